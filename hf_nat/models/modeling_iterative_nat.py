"""Iterative refinement NAT (Lee et al., 2018): what makes this family different.

The first decoder pass reads the source embeddings uniformly copied to the predicted length; every
later pass reads the previous pass's tokens (optionally also its final states, through a decoder of
its own) and rewrites all of them (the length stays fixed). Training unrolls the passes and sums their losses,
feeding refinement passes either the previous output or the gold target with denoising corruption
(replace / repeat / swap).
"""

from dataclasses import replace

import torch
import torch.nn.functional as F
from torch import nn

from .configuration_iterative_nat import IterativeNATConfig
from .modeling_nat import NATModel, NATPreTrainedModel, NATSeq2SeqLMOutput, compact_targets, length_loss
from .nat_copy import copied_by_length
from .nat_generation import (
    CANDIDATE_BOUNDS,
    ITERATION_BOUNDS,
    DecoderState,
    NATGenerationMixin,
    best_content_tokens,
    best_tokens_of_states,
    length_aware_scores,
    length_beam_state,
)
from .nat_layers import EncoderState, NATDecoder
from .nat_noise import corrupt_targets, uniform_noise
from .nat_registry import register_family
from .nat_training_techniques import TrainingTechniquesMixin

__all__ = ["IterativeNATForConditionalGeneration", "IterativeNATModel", "IterativeNATPreTrainedModel"]


class IterativeNATPreTrainedModel(NATPreTrainedModel):
    """Base of the iterative NAT classes."""

    config_class = IterativeNATConfig


class IterativeNATModel(NATModel):
    """The backbone (embeddings, encoder, non-causal decoder, length predictor)."""

    config_class = IterativeNATConfig


@register_family(base_class=IterativeNATModel, benchmark_settings=[{"max_iterations": t} for t in (1, 2, 4, 10)])
class IterativeNATForConditionalGeneration(IterativeNATPreTrainedModel, TrainingTechniquesMixin, NATGenerationMixin):
    """Iterative refinement NAT with unrolled denoising training and refine-until-unchanged ``generate()``.

    Decoding options: ``max_iterations`` (decoder passes; 1 = one shot), ``adaptive`` (stop a
    sentence once a pass leaves it unchanged), ``length_beam`` (candidates of the top predicted
    lengths, ranked by mean token log-probability plus length log-probability, or by ``rescorer=``).
    """

    _tied_weights_keys = {
        "lm_head.weight": "model.shared.weight",
        "refine_decoder.embed.embed_tokens.weight": "model.shared.weight",
        **TrainingTechniquesMixin.TECHNIQUE_TIED_WEIGHTS,
    }
    nat_generation_defaults = {"max_iterations": 10, "adaptive": True, "length_beam": 1}
    nat_option_bounds = {"max_iterations": ITERATION_BOUNDS, "length_beam": CANDIDATE_BOUNDS}

    def __init__(self, config: IterativeNATConfig):
        super().__init__(config)
        self.model = IterativeNATModel(config)
        self.lm_head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        self.refine_decoder = NATDecoder(config, self.model.shared) if config.separate_refine_decoder else None
        self._init_training_techniques()
        self.post_init()
        self.generation_config = self._nat_default_generation_config()

    def _first_pass(self, encoder: EncoderState, keep: torch.Tensor) -> torch.Tensor:
        """Decoder states (B, T, D) of the first pass, which reads the uniformly copied source."""
        embeds = copied_by_length(self.model.decoder.embed, encoder, self.config, keep.sum(1), keep.shape[1])
        return self.model.decoder(keep, encoder, inputs_embeds=embeds)

    def _refine_pass(
        self, encoder: EncoderState, keep: torch.Tensor, tokens: torch.Tensor, states: torch.Tensor | None
    ) -> torch.Tensor:
        """Decoder states of a refinement pass reading ``tokens`` (and, with ``refine_reads_states``,
        the previous pass's ``states``)."""
        if self.refine_decoder is None:
            decoder = self.model.decoder
        else:  # the cached cross-attention keys/values belong to the first-pass decoder
            decoder, encoder = self.refine_decoder, replace(encoder, cross_kv=None)
        if not self.config.refine_reads_states:
            return decoder(keep, encoder, tokens)
        return decoder(keep, encoder, inputs_embeds=decoder.embed.token_embeds(tokens) + states)

    # --- training -------------------------------------------------------------------------
    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        **kwargs,
    ) -> NATSeq2SeqLMOutput:
        """With ``labels``: the mean cross-entropy of ``train_passes`` unrolled passes plus the
        length loss and the first pass's training techniques (``losses``: first, refine, length[,
        bag_of_ngrams, similarity, reconstruction, hint_hidden, hint_alignment]). Without: the
        length logits."""
        input_ids, attention_mask = self._check_source(input_ids, attention_mask)
        encoder = self.model.encode(input_ids, attention_mask)
        length_logits = self.model.length_predictor(encoder)
        if labels is None:
            return NATSeq2SeqLMOutput(length_logits=length_logits, encoder_last_hidden_state=encoder.hidden)
        targets, lengths = compact_targets(labels, self.config)
        keep = targets.ne(self.config.pad_token_id)
        pass_losses, previous, states, logits = [], None, None, None
        for index in range(self.config.train_passes):
            if index == 0:  # the one-pass vanilla NAT: where the training techniques apply
                embeds = copied_by_length(self.model.decoder.embed, encoder, self.config, lengths, keep.shape[1])
                states, internals = self._decode_for_training(keep, encoder, embeds)
                terms, logits = self._token_loss(states, targets, lengths)
                pass_losses.append(sum(weight * value for weight, value in terms.values()))
                first_terms = {"first" if name == "tokens" else name: value for name, (_, value) in terms.items()}
                techniques = self._technique_losses(encoder, attention_mask, targets, lengths, states, internals)
            else:
                use_gold = uniform_noise(targets.shape[0], generator, targets.device) < self.config.corruption_prob
                corrupted = corrupt_targets(
                    targets,
                    keep,
                    self.config.corruption_token_prob,
                    self.config.special_token_ids(),
                    self.config.vocab_size,
                    self.config.pad_token_id,
                    generator,
                )
                previous = torch.where(use_gold[:, None], corrupted, previous)
                states = self._refine_pass(encoder, keep, previous, states)
                logits = self.lm_head(states[keep])
                pass_losses.append(
                    F.cross_entropy(logits.float(), targets[keep], label_smoothing=self.config.label_smoothing)
                )
            predicted = best_content_tokens(logits.detach(), self.config.special_token_ids())[1]
            previous = targets.masked_scatter(keep, predicted)
        len_loss = length_loss(length_logits, lengths)
        token_loss = torch.stack(pass_losses).mean()
        loss = token_loss + self.config.length_loss_weight * len_loss
        loss = loss + sum(weight * value for weight, value in techniques.values())
        losses = {**first_terms, **{name: value for name, (_, value) in techniques.items()}, "length": len_loss}
        losses = {name: value.detach() for name, value in losses.items()}
        if len(pass_losses) > 1:
            losses["refine"] = torch.stack(pass_losses[1:]).mean().detach()
        return NATSeq2SeqLMOutput(
            loss=loss,
            logits=logits,
            length_logits=length_logits,
            losses=losses,
            encoder_last_hidden_state=encoder.hidden,
        )

    # --- decoding hooks -------------------------------------------------------------------
    def _nat_candidates_per_source(self, options: dict) -> int:
        return int(options["length_beam"])

    def _nat_initial_state(self, encoder: EncoderState, empty: torch.Tensor, options: dict) -> DecoderState:
        """Placeholders (mask tokens) at the top-``length_beam`` predicted lengths of each source."""
        state = length_beam_state(
            self.model.length_predictor(encoder),
            int(options["length_beam"]),
            empty,
            self.config.mask_token_id,
            self.config.pad_token_id,
        )
        if not self.config.refine_reads_states:
            return state
        states = encoder.hidden.new_zeros(*state.tokens.shape, self.config.d_model)
        return replace(state, extras={**state.extras, "states": states})

    def _nat_refine_step(self, encoder: EncoderState, state: DecoderState, step: int, options: dict) -> DecoderState:
        """One decoder pass rewriting every token (the first pass reads the copied source). With
        ``refine_reads_states`` the pass's final states travel in ``extras["states"]`` to the next one."""
        keep = state.tokens.ne(self.config.pad_token_id)
        width = keep.shape[1]
        carried = state.extras.get("states")
        if step == 0:
            states = self._first_pass(encoder, keep)
        else:
            states = self._refine_pass(encoder, keep, state.tokens, None if carried is None else carried[:, :width])
        scores, tokens = best_tokens_of_states(states, self.lm_head, self.config.special_token_ids())
        extras = state.extras
        if carried is not None:
            # Kept as wide as the state it came from, so refined rows merge back into it.
            extras = {**extras, "states": F.pad(states, (0, 0, 0, carried.shape[1] - width))}
        return DecoderState(
            tokens=tokens.masked_fill(~keep, self.config.pad_token_id),
            scores=scores.masked_fill(~keep, 0.0),
            source_index=state.source_index,
            extras=extras,
        )

    def _nat_candidate_scores(self, state: DecoderState) -> torch.Tensor:
        return length_aware_scores(state, self.config.pad_token_id)
