"""Iterative refinement NAT (Lee et al., 2018): what makes this family different.

The first decoder pass reads the source embeddings uniformly copied to the predicted length; every
later pass reads the previous pass's tokens and rewrites all of them (the length stays fixed).
Training unrolls the passes and sums their losses, feeding refinement passes either the previous
output or the gold target with denoising corruption (replace / repeat / swap).
"""

import torch
import torch.nn.functional as F
from torch import nn

from .configuration_iterative_nat import IterativeNATConfig
from .modeling_nat import NATModel, NATPreTrainedModel, NATSeq2SeqLMOutput, compact_targets, length_loss
from .nat_copy import copied_by_length
from .nat_generation import (DecoderState, NATGenerationMixin, best_content_tokens, length_aware_scores,
                             length_beam_state)
from .nat_layers import EncoderState, uniform_noise


class IterativeNATPreTrainedModel(NATPreTrainedModel):
    """Base of the iterative NAT classes."""

    config_class = IterativeNATConfig


class IterativeNATModel(NATModel):
    """The backbone (embeddings, encoder, non-causal decoder, length predictor)."""

    config_class = IterativeNATConfig


class IterativeNATForConditionalGeneration(IterativeNATPreTrainedModel, NATGenerationMixin):
    """Iterative refinement NAT with unrolled denoising training and refine-until-unchanged ``generate()``.

    Decoding options: ``max_iterations`` (decoder passes; 1 = one shot), ``adaptive`` (stop a
    sentence once a pass leaves it unchanged), ``length_beam`` (candidates of the top predicted
    lengths, ranked by mean token log-probability plus length log-probability, or by ``rescorer=``).
    """

    _tied_weights_keys = {"lm_head.weight": "model.shared.weight"}
    nat_generation_defaults = {"max_iterations": 10, "adaptive": True, "length_beam": 1}

    def __init__(self, config: IterativeNATConfig):
        super().__init__(config)
        self.model = IterativeNATModel(config)
        self.lm_head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        self.post_init()
        self.generation_config = self._nat_default_generation_config()

    def _pass(self, encoder: EncoderState, keep: torch.Tensor, tokens: torch.Tensor | None,
              first: bool) -> torch.Tensor:
        """Decoder states of one pass: the first reads the copied source, later ones ``tokens``."""
        if first:
            embeds = copied_by_length(self.model.shared, encoder, self.config, keep.sum(1), keep.shape[1])
            return self.model.decoder(keep, encoder, inputs_embeds=embeds)
        return self.model.decoder(keep, encoder, tokens)

    # --- training -------------------------------------------------------------------------
    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                labels: torch.Tensor | None = None, generator: torch.Generator | None = None,
                **kwargs) -> NATSeq2SeqLMOutput:
        """With ``labels``: the mean cross-entropy of ``train_passes`` unrolled passes plus the
        length loss (``losses``: first, refine, length). Without: the length logits."""
        attention_mask = self._check_source(input_ids, attention_mask)
        encoder = self.model.encode(input_ids, attention_mask)
        length_logits = self.model.length_predictor(encoder)
        if labels is None:
            return NATSeq2SeqLMOutput(length_logits=length_logits, encoder_last_hidden_state=encoder.hidden)
        targets, lengths = compact_targets(labels, self.config)
        keep = targets.ne(self.config.pad_token_id)
        pass_losses, previous, logits = [], None, None
        for index in range(self.config.train_passes):
            if index > 0:
                use_gold = uniform_noise(targets.shape[0], generator, targets.device) < self.config.corruption_prob
                corrupted = corrupt_targets(targets, keep, self.config, generator)
                previous = torch.where(use_gold[:, None], corrupted, previous)
            logits = self.lm_head(self._pass(encoder, keep, previous, first=index == 0)[keep])
            pass_losses.append(F.cross_entropy(logits.float(), targets[keep],
                                               label_smoothing=self.config.label_smoothing))
            predicted = best_content_tokens(logits.detach(), self.config.special_token_ids())[1]
            previous = targets.masked_scatter(keep, predicted)
        len_loss = length_loss(length_logits, lengths)
        token_loss = torch.stack(pass_losses).mean()
        loss = token_loss + self.config.length_loss_weight * len_loss
        losses = {"first": pass_losses[0].detach(), "length": len_loss.detach()}
        if len(pass_losses) > 1:
            losses["refine"] = torch.stack(pass_losses[1:]).mean().detach()
        return NATSeq2SeqLMOutput(loss=loss, logits=logits, length_logits=length_logits, losses=losses,
                                  encoder_last_hidden_state=encoder.hidden)

    # --- decoding hooks -------------------------------------------------------------------
    def _nat_check_options(self, options: dict) -> None:
        super()._nat_check_options(options)
        if int(options["length_beam"]) < 1:
            raise ValueError(f"length_beam must be >= 1, got {options['length_beam']}")

    def _nat_initial_state(self, encoder: EncoderState, empty: torch.Tensor, options: dict) -> DecoderState:
        """Placeholders (mask tokens) at the top-``length_beam`` predicted lengths of each source."""
        return length_beam_state(self.model.length_predictor(encoder), int(options["length_beam"]), empty,
                                 self.config.mask_token_id, self.config.pad_token_id)

    def _nat_refine_step(self, encoder: EncoderState, state: DecoderState, step: int, options: dict) -> DecoderState:
        """One decoder pass rewriting every token (the first pass reads the copied source)."""
        keep = state.tokens.ne(self.config.pad_token_id)
        scores, tokens = best_content_tokens(self.lm_head(self._pass(encoder, keep, state.tokens, first=step == 0)),
                                             self.config.special_token_ids())
        return DecoderState(tokens=tokens.masked_fill(~keep, self.config.pad_token_id),
                            scores=scores.masked_fill(~keep, 0.0), source_index=state.source_index,
                            extras=state.extras)

    def _nat_candidate_scores(self, state: DecoderState) -> torch.Tensor:
        return length_aware_scores(state, self.config.pad_token_id)


def corrupt_targets(targets: torch.Tensor, keep: torch.Tensor, config: IterativeNATConfig,
                    generator: torch.Generator | None) -> torch.Tensor:
    """Denoising noise of Lee et al. (2018) on content tokens: each token, with probability
    ``config.corruption_token_prob``, is replaced by a random non-special token, repeats its left
    neighbour, or swaps with its right neighbour. Padding is never touched."""
    shape, device = targets.shape, targets.device
    chosen = (uniform_noise(shape, generator, device) < config.corruption_token_prob) & keep
    operation = (uniform_noise(shape, generator, device) * 3).long()
    positions = torch.arange(shape[1], device=device)
    # Swaps pair (t, t+1) only at positions of one parity per row, so no two swaps overlap.
    parity = (uniform_noise(shape[0], generator, device) < 0.5).long()
    next_real = F.pad(keep[:, 1:], (0, 1), value=False)
    swap_first = chosen & operation.eq(2) & next_real & (positions[None, :] % 2).eq(parity[:, None])
    swap_second = F.pad(swap_first[:, :-1], (1, 0), value=False)
    out = targets.clone()
    out = torch.where(swap_first, F.pad(targets[:, 1:], (0, 1), value=config.pad_token_id), out)
    out = torch.where(swap_second, F.pad(targets[:, :-1], (1, 0), value=config.pad_token_id), out)
    others = chosen & ~swap_first & ~swap_second
    repeat = others & operation.eq(1) & positions[None, :].gt(0)
    out = torch.where(repeat, F.pad(targets[:, :-1], (1, 0), value=config.pad_token_id), out)
    random_tokens = (uniform_noise(shape, generator, device) * config.vocab_size).long().clamp(max=config.vocab_size - 1)
    special = torch.zeros(config.vocab_size, dtype=torch.bool, device=device)
    special[config.special_token_ids()] = True
    replace = others & operation.eq(0) & ~special[random_tokens]
    return torch.where(replace, random_tokens, out)
