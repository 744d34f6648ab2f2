"""Insertion Transformer (Stern et al., 2019): what makes this family different.

Every slot between two adjacent tokens (bos and eos included) gets a representation from the two
tokens' decoder states and a distribution over the vocabulary plus "no insertion". Training
subsamples the target and scores, for every slot, the target tokens missing there (balanced
binary-tree or uniform weights); decoding inserts into every slot whose best token beats "no
insertion", in parallel, until nothing is inserted.
"""

import torch
from torch import nn

from .configuration_insertion import InsertionTransformerConfig
from .modeling_nat import NATModel, NATPreTrainedModel, NATSeq2SeqLMOutput
from .nat_edit_mixin import EDIT_DECODING_DEFAULTS, EDIT_OPTION_BOUNDS, BoundedEditsMixin
from .nat_edits import bounded_scores, cap_insertions, insert_into_slots, length_caps, slot_states
from .nat_generation import DecoderState, NATGenerationMixin
from .nat_layers import EncoderState
from .nat_noise import random_subsequence
from .nat_registry import register_family
from .nat_slot_loss import slot_insertion_loss

__all__ = [
    "InsertionTransformerForConditionalGeneration",
    "InsertionTransformerModel",
    "InsertionTransformerPreTrainedModel",
]


class InsertionTransformerPreTrainedModel(NATPreTrainedModel):
    """Base of the Insertion Transformer classes."""

    config_class = InsertionTransformerConfig


class InsertionTransformerModel(NATModel):
    """The backbone; the length follows from the insertions, so no length predictor."""

    config_class = InsertionTransformerConfig
    predicts_length = False


@register_family(base_class=InsertionTransformerModel, benchmark_settings=[{"max_iterations": 10}])
class InsertionTransformerForConditionalGeneration(
    InsertionTransformerPreTrainedModel, BoundedEditsMixin, NATGenerationMixin
):
    """Insertion Transformer with slot-loss training and parallel-insertion ``generate()``.

    Decoding options: ``max_iterations`` (insertion rounds; a balanced model needs about
    log2(n) + 1), ``adaptive`` (stop a sentence once nothing is inserted), ``insertion_penalty``
    (subtracted from the log-probability of "no insertion", as in the Levenshtein Transformer:
    > 0 gives longer outputs), ``max_length_ratio`` (at most ⌊ratio · source length⌋ + 5 tokens).
    """

    _tied_weights_keys = {"lm_head.weight": "model.shared.weight"}
    nat_generation_defaults = EDIT_DECODING_DEFAULTS
    nat_option_bounds = EDIT_OPTION_BOUNDS

    def __init__(self, config: InsertionTransformerConfig):
        super().__init__(config)
        self.model = InsertionTransformerModel(config)
        self.slot_proj = nn.Linear(2 * config.d_model, config.d_model)
        self.lm_head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        self.no_insertion_head = nn.Linear(config.d_model, 1)
        self.post_init()
        self.generation_config = self._nat_default_generation_config()

    def _slot_log_probs(self, encoder: EncoderState, bounded: torch.Tensor) -> torch.Tensor:
        """(B, L - 1, V + 1) per slot: log-probabilities of each token, and of "no insertion" last."""
        slots = self.slot_proj(slot_states(self._states(encoder, bounded)))
        return torch.cat([self.lm_head(slots), self.no_insertion_head(slots)], -1).float().log_softmax(-1)

    # --- training -------------------------------------------------------------------------
    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        **kwargs,
    ) -> NATSeq2SeqLMOutput:
        """With ``labels``: the slot loss of a random subsequence of each target (``losses``:
        insertion, and the share of slots that are complete). Without: the encoder output."""
        input_ids, attention_mask = self._check_source(input_ids, attention_mask)
        encoder = self.model.encode(input_ids, attention_mask)
        if labels is None:
            return NATSeq2SeqLMOutput(encoder_last_hidden_state=encoder.hidden)
        c = self.config
        targets = self._content_targets(labels)
        real_target = targets.ne(c.pad_token_id)
        partial, kept = random_subsequence(targets, real_target, generator, c.pad_token_id)
        bounded = self._bounded(partial)
        log_probs = self._slot_log_probs(encoder, bounded)  # (B, S, V + 1), slot s follows kept token s
        loss, complete, slots = slot_insertion_loss(
            log_probs, targets, real_target, kept, c.insertion_loss, c.tree_temperature
        )
        return NATSeq2SeqLMOutput(
            loss=loss,
            losses={"insertion": loss.detach(), "complete_slots": complete.sum() / slots.sum().clamp(min=1)},
            encoder_last_hidden_state=encoder.hidden,
        )

    # --- decoding hooks -------------------------------------------------------------------
    def _nat_initial_state(self, encoder: EncoderState, empty: torch.Tensor, options: dict) -> DecoderState:
        """The empty hypothesis."""
        tokens = torch.full((empty.shape[0], 1), self.config.pad_token_id, dtype=torch.long, device=empty.device)
        return DecoderState(
            tokens=tokens,
            scores=torch.zeros(tokens.shape, device=tokens.device),
            source_index=torch.arange(empty.shape[0], device=empty.device),
        )

    def _nat_refine_step(self, encoder: EncoderState, state: DecoderState, step: int, options: dict) -> DecoderState:
        """One round of parallel insertion: every slot whose best token beats "no insertion"."""
        c = self.config
        bounded = self._bounded(state.tokens)
        real = bounded.ne(c.pad_token_id)
        log_probs = self._slot_log_probs(encoder, bounded)
        token_log_probs = log_probs[..., :-1].clone()
        token_log_probs[..., c.special_token_ids()] = float("-inf")
        best_scores, best_tokens = token_log_probs.max(-1)
        insert = (best_scores > log_probs[..., -1] - float(options["insertion_penalty"])) & real[:, :-1] & real[:, 1:]
        caps = length_caps(encoder.keep, float(options["max_length_ratio"]), c.max_position_embeddings)
        counts = cap_insertions(insert.long(), self._content(bounded).sum(1), caps)
        chosen = counts.bool()
        tokens, _ = insert_into_slots(bounded, real, counts, c.placeholder_token_id, c.pad_token_id)
        scores, _ = insert_into_slots(bounded_scores(state.scores), real, counts, 0.0, 0.0)
        new = tokens.eq(c.placeholder_token_id)  # new tokens appear in slot order, like `chosen`
        tokens = tokens.masked_scatter(new, best_tokens[chosen])
        scores = scores.masked_scatter(new, best_scores[chosen])
        return self._unbounded_state(tokens, scores, state)
