"""CMLM / Mask-Predict (Ghazvininejad et al., 2019): what makes this family different.

Training masks a uniformly drawn number of target tokens and predicts them; decoding starts from
a fully masked target of each of the top-l predicted lengths, then re-masks the least confident
tokens with a linearly decaying count and predicts them again.
"""

import torch
import torch.nn.functional as F
from torch import nn

from .configuration_cmlm import CMLMConfig
from .modeling_nat import NATModel, NATPreTrainedModel, NATSeq2SeqLMOutput, compact_targets, length_loss
from .nat_generation import (
    CANDIDATE_BOUNDS,
    ITERATION_BOUNDS,
    DecoderState,
    NATGenerationMixin,
    best_tokens_of_states,
    draft_layout,
    length_beam_state,
    mean_token_scores,
)
from .nat_glancing import GlancingMixin
from .nat_layers import EncoderState, LengthPredictor
from .nat_noise import random_positions, random_prefix, uniform_noise
from .nat_registry import register_family
from .nat_sequences import left_align

__all__ = ["CMLMForConditionalGeneration", "CMLMModel", "CMLMPreTrainedModel"]


class CMLMPreTrainedModel(NATPreTrainedModel):
    """Base of the CMLM classes."""

    config_class = CMLMConfig


class CMLMModel(NATModel):
    """The CMLM backbone (embeddings, encoder, non-causal decoder, length predictor), no LM head."""

    config_class = CMLMConfig


@register_family(
    base_class=CMLMModel,
    benchmark_settings=[{"max_iterations": t, "length_beam": b} for t in (1, 4, 10) for b in (1, 5)],
)
class CMLMForConditionalGeneration(CMLMPreTrainedModel, GlancingMixin, NATGenerationMixin):
    """CMLM with its output projection, masked-token training and mask-predict ``generate()``.

    Decoding options: ``max_iterations`` (T; 1 = one shot), ``length_beam`` (candidate lengths per
    source), ``adaptive`` (stop a row once an iteration leaves its tokens unchanged: faster, but
    off by default since it cost up to 3 BLEU on Multi30k; a later pass still changes tokens
    whose confidence moved).

    With ``config.glancing`` training follows GLAT instead of uniform masking: a fully masked
    first pass without gradient, then ratio × its errors gold tokens are shown and the rest
    predicted; this trains the one-shot mode (``max_iterations=1``).
    """

    _tied_weights_keys = {"lm_head.weight": "model.shared.weight"}
    nat_generation_defaults = {"max_iterations": 10, "length_beam": 5, "adaptive": False}
    nat_option_bounds = {"max_iterations": ITERATION_BOUNDS, "length_beam": CANDIDATE_BOUNDS}
    nat_draft_defaults = {"draft_iterations": 1}
    nat_draft_bounds = {"draft_iterations": ITERATION_BOUNDS}

    def __init__(self, config: CMLMConfig):
        super().__init__(config)
        self.model = NATModel(config)
        self.lm_head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        self._init_glancing()
        self.post_init()
        self.generation_config = self._nat_default_generation_config()

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        decoder_input_ids: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        pixel_values: torch.Tensor | None = None,
        **kwargs,
    ) -> NATSeq2SeqLMOutput:
        """With ``labels``: mask the target, return the loss (``losses``: tokens, length).
        With ``decoder_input_ids`` only: logits of every position. ``generator`` seeds the masking.
        The source is ``input_ids``, or ``pixel_values`` for an image model."""
        source, attention_mask = self._check_inputs(input_ids, None, attention_mask, pixel_values)
        encoder = self.model.encode(source, attention_mask)
        length_logits = self.model.length_predictor(encoder)
        if labels is None:
            logits = None
            if decoder_input_ids is not None:
                keep = decoder_input_ids.ne(self.config.pad_token_id)
                logits = self.lm_head(self.model.decoder(keep, encoder, decoder_input_ids))
            return NATSeq2SeqLMOutput(
                logits=logits, length_logits=length_logits, encoder_last_hidden_state=encoder.hidden
            )

        targets, lengths = compact_targets(labels, self.config)
        if targets.shape[1] > self.config.max_position_embeddings:
            raise ValueError(
                f"target of {targets.shape[1]} tokens exceeds max_position_embeddings="
                f"{self.config.max_position_embeddings}; filter the corpus by length"
            )
        keep = targets.ne(self.config.pad_token_id)
        if self.config.glancing and self.training:
            masked = self._glancing_mask(encoder, targets, keep, generator)
        else:
            masked = self._random_mask(keep, lengths, generator)
        if self.config.draft_prefix_prob > 0:
            chosen, prefix = random_prefix(keep, self.config.draft_prefix_prob, generator)
            masked = torch.where(chosen[:, None], keep & ~prefix, masked)
        decoder_input = targets.masked_fill(masked, self.config.mask_token_id)
        hidden = self.model.decoder(keep, encoder, decoder_input)
        # Only masked positions are scored, so only they go through the vocabulary projection.
        logits = self.lm_head(hidden[masked])
        token_loss = F.cross_entropy(logits.float(), targets[masked], label_smoothing=self.config.label_smoothing)
        len_loss = length_loss(length_logits, lengths)
        loss = token_loss + self.config.length_loss_weight * len_loss
        return NATSeq2SeqLMOutput(
            loss=loss,
            logits=logits,
            length_logits=length_logits,
            losses={"tokens": token_loss.detach(), "length": len_loss.detach()},
            encoder_last_hidden_state=encoder.hidden,
        )

    def _glancing_mask(
        self, encoder: EncoderState, targets: torch.Tensor, keep: torch.Tensor, generator: torch.Generator | None
    ) -> torch.Tensor:
        """GLAT: positions left masked after revealing ratio × (errors of a fully masked pass)."""
        with torch.no_grad():
            first = targets.masked_fill(keep, self.config.mask_token_id)
            predicted = self.lm_head(self.model.decoder(keep, encoder, first)).argmax(-1)
            errors = (predicted.ne(targets) & keep).sum(1)
        return keep & ~self._glancing_reveal(keep, errors, generator)

    @staticmethod
    def _random_mask(keep: torch.Tensor, lengths: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """Mask k ~ Uniform{1..n} random positions of each target of n tokens."""
        u = uniform_noise(keep.shape, generator, keep.device)
        r = uniform_noise(keep.shape[0], generator, keep.device)
        return random_positions(keep, (r * lengths).long() + 1, u)

    # --- decoding hooks -------------------------------------------------------------------
    def _nat_candidates_per_source(self, options: dict) -> int:
        return int(options["length_beam"])

    def _nat_initial_state(self, encoder: EncoderState, empty: torch.Tensor, options: dict) -> DecoderState:
        """Fully masked targets of the top-``length_beam`` predicted lengths of each source."""
        return length_beam_state(
            self.model.length_predictor(encoder),
            int(options["length_beam"]),
            empty,
            self.config.mask_token_id,
            self.config.pad_token_id,
        )

    def _nat_refine_step(self, encoder: EncoderState, state: DecoderState, step: int, options: dict) -> DecoderState:
        """One mask-predict iteration: re-mask the least confident tokens, predict them."""
        keep = state.tokens.ne(self.config.pad_token_id)
        if step == 0:
            masked = keep
        else:
            total = int(options["max_iterations"])
            count = (keep.sum(1) * (total - step)) // total
            rank = state.scores.masked_fill(~keep, float("inf")).argsort(dim=1, stable=True).argsort(1)
            masked = (rank < count[:, None]) & keep
        decoder_input = state.tokens.masked_fill(masked, self.config.mask_token_id)
        hidden = self.model.decoder(keep, encoder, decoder_input)
        best_scores, best_tokens = best_tokens_of_states(hidden[masked], self.lm_head, self.config.special_token_ids())
        tokens = state.tokens.masked_scatter(masked, best_tokens)
        scores = state.scores.masked_scatter(masked, best_scores)
        return DecoderState(tokens=tokens, scores=scores, source_index=state.source_index, extras=state.extras)

    def _nat_candidate_scores(self, state: DecoderState) -> torch.Tensor:
        return mean_token_scores(state, self.config.pad_token_id)

    def _nat_draft_length(self, encoder: EncoderState) -> torch.Tensor:
        return LengthPredictor.top_lengths(self.model.length_predictor(encoder), 1)[:, 0]

    def _nat_draft(
        self, encoder: EncoderState, prefix: torch.Tensor, draft_lengths: torch.Tensor, options: dict
    ) -> torch.Tensor:
        """The prefix kept, the draft positions masked and predicted; with ``draft_iterations`` T > 1,
        mask-predict over the draft positions only (the least confident re-masked, linear decay)."""
        tokens, keep, draft = draft_layout(prefix, draft_lengths, self.config.pad_token_id)
        total = int(options["draft_iterations"])
        masked, scores = draft, torch.zeros(tokens.shape, device=tokens.device)
        for step in range(total):
            hidden = self.model.decoder(keep, encoder, tokens.masked_fill(masked, self.config.mask_token_id))
            best_scores, best = best_tokens_of_states(hidden[masked], self.lm_head, self.config.special_token_ids())
            tokens, scores = tokens.masked_scatter(masked, best), scores.masked_scatter(masked, best_scores)
            if step + 1 < total:
                count = (draft.sum(1) * (total - step - 1)) // total
                rank = scores.masked_fill(~draft, float("inf")).argsort(dim=1, stable=True).argsort(1)
                masked = (rank < count[:, None]) & draft
        return left_align(tokens, draft, self.config.pad_token_id)[:, : max(int(draft_lengths.max()), 0)]
