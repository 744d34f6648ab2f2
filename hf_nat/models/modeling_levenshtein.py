"""Levenshtein Transformer (Gu et al., 2019): what makes this family different.

A hypothesis is refined by three decoder passes per iteration: delete tokens, insert placeholders
into the slots between tokens, fill the placeholders. Training imitates the shortest
insertion/deletion edit script (:mod:`levenshtein_oracle`): placeholders and tokens are learned on
a random deletion of the target, deletions on the model's own filled output. Decoding starts from
the empty sequence, or from a given draft (``generate(..., decoder_input_ids=draft)``).
"""

import copy
from dataclasses import replace

import torch
import torch.nn.functional as F
from torch import nn

from .configuration_levenshtein import LevenshteinConfig
from .levenshtein_oracle import edit_oracle
from .modeling_nat import NATModel, NATPreTrainedModel, NATSeq2SeqLMOutput
from .nat_edit_mixin import EDIT_DECODING_DEFAULTS, EDIT_OPTION_BOUNDS, BoundedEditsMixin
from .nat_edits import bounded_scores, cap_insertions, delete_positions, insert_into_slots, length_caps, slot_states
from .nat_generation import (
    DecoderState,
    NATGenerationMixin,
    best_content_tokens,
    best_tokens_of_states,
)
from .nat_layers import EncoderState, NATDecoder
from .nat_noise import corrupt_targets, random_subsequence, uniform_noise
from .nat_registry import register_family
from .nat_sequences import left_align

__all__ = ["LevenshteinModel", "LevenshteinPreTrainedModel", "LevenshteinTransformerForConditionalGeneration"]


class LevenshteinPreTrainedModel(NATPreTrainedModel):
    """Base of the Levenshtein Transformer classes."""

    config_class = LevenshteinConfig


class LevenshteinModel(NATModel):
    """The backbone; the length follows from the edits, so no length predictor."""

    config_class = LevenshteinConfig
    predicts_length = False


@register_family(base_class=LevenshteinModel, benchmark_settings=[{"max_iterations": 10}])
class LevenshteinTransformerForConditionalGeneration(LevenshteinPreTrainedModel, BoundedEditsMixin, NATGenerationMixin):
    """Levenshtein Transformer with imitation-learning training and delete/insert/fill ``generate()``.

    Decoding options: ``max_iterations`` (delete–insert–fill rounds), ``adaptive`` (stop a
    sentence once a round changes nothing), ``insertion_penalty`` (subtracted from the
    log-probability of inserting nothing into a slot: > 0 gives longer outputs),
    ``max_length_ratio`` (outputs hold at most ⌊ratio · source length⌋ + 5 tokens). Per call:
    ``decoder_input_ids`` (B, T), a draft to refine instead of starting from nothing (specials in
    it are ignored).
    """

    _tied_weights_keys = {
        "lm_head.weight": "model.shared.weight",
        "insertion_decoder.embed.embed_tokens.weight": "model.shared.weight",
    }
    nat_generation_defaults = EDIT_DECODING_DEFAULTS
    nat_option_bounds = EDIT_OPTION_BOUNDS
    nat_call_options = {"decoder_input_ids": None}

    def __init__(self, config: LevenshteinConfig):
        super().__init__(config)
        self.model = LevenshteinModel(config)
        self.lm_head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        self.deletion_head = nn.Linear(config.d_model, 2)
        self.insertion_head = nn.Linear(2 * config.d_model, config.max_insertions + 1)
        self.insertion_decoder = None
        if config.insertion_decoder_layers > 0:
            shape = copy.deepcopy(config)
            shape.decoder_layers = config.insertion_decoder_layers
            self.insertion_decoder = NATDecoder(shape, self.model.shared)
        self.post_init()
        self.generation_config = self._nat_default_generation_config()

    def _slot_counts_logits(self, encoder: EncoderState, bounded: torch.Tensor) -> torch.Tensor:
        """(B, L - 1, max_insertions + 1) placeholder-count logits of every slot."""
        if self.insertion_decoder is None:
            hidden = self._states(encoder, bounded)
        else:  # the main decoder's cached cross-attention keys/values are not this decoder's
            hidden = self.insertion_decoder(
                bounded.ne(self.config.pad_token_id), replace(encoder, cross_kv=None), bounded
            )
        return self.insertion_head(slot_states(hidden))

    # --- training -------------------------------------------------------------------------
    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        **kwargs,
    ) -> NATSeq2SeqLMOutput:
        """With ``labels``: placeholder, token and deletion losses of one imitation-learning step
        (``losses``: insertion, tokens, deletion). Without: the encoder output only."""
        input_ids, attention_mask = self._check_source(input_ids, attention_mask)
        encoder = self.model.encode(input_ids, attention_mask)
        if labels is None:
            return NATSeq2SeqLMOutput(encoder_last_hidden_state=encoder.hidden)
        c = self.config
        targets = self._content_targets(labels)
        zero = encoder.hidden.new_zeros(())

        # Roll-in 1: a random deletion of the target; learn how many tokens each slot misses, then the tokens.
        partial, _ = random_subsequence(targets, targets.ne(c.pad_token_id), generator, c.pad_token_id)
        _, counts, masked = edit_oracle(partial, targets, c.pad_token_id, c.placeholder_token_id)
        bounded = self._bounded(partial)
        real = bounded.ne(c.pad_token_id)
        slots = real[:, :-1] & real[:, 1:]
        slot_logits = self._slot_counts_logits(encoder, bounded)
        insertion_loss = F.cross_entropy(slot_logits[slots].float(), counts[slots].clamp(max=c.max_insertions))

        bounded_masked = self._bounded(masked)
        holes = bounded_masked.eq(c.placeholder_token_id)
        token_logits = self.lm_head(self._states(encoder, bounded_masked)[holes])
        gold = self._bounded(targets)[holes]
        token_loss = (
            F.cross_entropy(token_logits.float(), gold, label_smoothing=c.label_smoothing) if holes.any() else zero
        )

        # Roll-in 2: the model's own filling of those placeholders, or a noisy target; learn to
        # delete the mistakes.
        with torch.no_grad():
            filled = bounded_masked.masked_scatter(holes, best_content_tokens(token_logits, c.special_token_ids())[1])
            filled_content = self._unbounded(filled)
            noisy = corrupt_targets(
                targets,
                targets.ne(c.pad_token_id),
                c.draft_noise_token_prob,
                c.special_token_ids(),
                c.vocab_size,
                c.pad_token_id,
                generator,
            )
            use_noise = uniform_noise(targets.shape[0], generator, targets.device) < c.draft_noise_prob
            filled_content = torch.where(use_noise[:, None], noisy, filled_content)
            delete, _, _ = edit_oracle(filled_content, targets, c.pad_token_id, c.placeholder_token_id)
        bounded_filled = self._bounded(filled_content)
        content = self._content(bounded_filled)
        deletion_logits = self.deletion_head(self._states(encoder, bounded_filled))
        delete_labels = F.pad(delete, (1, bounded_filled.shape[1] - delete.shape[1] - 1), value=False)
        deletion_loss = (
            F.cross_entropy(deletion_logits[content].float(), delete_labels[content].long()) if content.any() else zero
        )

        loss = c.insertion_loss_weight * insertion_loss + token_loss + c.deletion_loss_weight * deletion_loss
        return NATSeq2SeqLMOutput(
            loss=loss,
            logits=token_logits,
            losses={
                "insertion": insertion_loss.detach(),
                "tokens": token_loss.detach(),
                "deletion": deletion_loss.detach(),
            },
            encoder_last_hidden_state=encoder.hidden,
        )

    # --- decoding hooks -------------------------------------------------------------------
    def _nat_initial_state(self, encoder: EncoderState, empty: torch.Tensor, options: dict) -> DecoderState:
        """The empty hypothesis, or the content tokens of ``decoder_input_ids``."""
        c = self.config
        rows = empty.shape[0]
        draft = options["decoder_input_ids"]
        if draft is None:
            tokens = torch.full((rows, 1), c.pad_token_id, dtype=torch.long, device=empty.device)
        else:
            draft = torch.as_tensor(draft, device=empty.device)
            if draft.dim() != 2 or draft.shape[0] != rows:
                raise ValueError(f"decoder_input_ids must be (batch={rows}, length), got {tuple(draft.shape)}")
            keep = ~torch.isin(draft, torch.tensor(c.special_token_ids(), device=draft.device))
            tokens = left_align(draft, keep, c.pad_token_id)[:, : c.max_position_embeddings - 2]
        return DecoderState(
            tokens=tokens,
            scores=self._draft_scores(encoder, tokens),
            source_index=torch.arange(rows, device=empty.device),
        )

    def _draft_scores(self, encoder: EncoderState, tokens: torch.Tensor) -> torch.Tensor:
        """The token head's log-probability of every token of a draft (0 on padding)."""
        if not tokens.ne(self.config.pad_token_id).any():
            return torch.zeros(tokens.shape, device=tokens.device)
        bounded = self._bounded(tokens)
        log_probs = self.lm_head(self._states(encoder, bounded)).float().log_softmax(-1)
        scores = log_probs.gather(-1, bounded[..., None]).squeeze(-1)[:, 1 : tokens.shape[1] + 1]
        return scores.masked_fill(tokens.eq(self.config.pad_token_id), 0.0)

    def _nat_refine_step(self, encoder: EncoderState, state: DecoderState, step: int, options: dict) -> DecoderState:
        """One round: delete, insert placeholders (within the length cap), fill.

        A token keeps the log-probability it was filled with (as in mask-predict), so only the
        placeholders go through the vocabulary projection, and a round that inserts nothing
        (the last one of every sentence) skips the filling pass."""
        c = self.config
        bounded, scores = self._bounded(state.tokens), bounded_scores(state.scores)
        content = self._content(bounded)
        if content.any():
            real = bounded.ne(c.pad_token_id)
            delete = self.deletion_head(self._states(encoder, bounded)).argmax(-1).eq(1) & content
            scores = delete_positions(scores, real, delete, 0.0)
            bounded = delete_positions(bounded, real, delete, c.pad_token_id)

        real = bounded.ne(c.pad_token_id)
        slot_scores = self._slot_counts_logits(encoder, bounded).float().log_softmax(-1)
        slot_scores[..., 0] -= float(options["insertion_penalty"])
        caps = length_caps(encoder.keep, float(options["max_length_ratio"]), c.max_position_embeddings)
        counts = cap_insertions(
            slot_scores.argmax(-1) * (real[:, :-1] & real[:, 1:]), self._content(bounded).sum(1), caps
        )
        scores, _ = insert_into_slots(scores, real, counts, 0.0, 0.0)
        bounded, real = insert_into_slots(bounded, real, counts, c.placeholder_token_id, c.pad_token_id)

        holes = bounded.eq(c.placeholder_token_id)
        if holes.any():
            filled_scores, filled = best_tokens_of_states(
                self._states(encoder, bounded)[holes], self.lm_head, c.special_token_ids()
            )
            bounded, scores = bounded.masked_scatter(holes, filled), scores.masked_scatter(holes, filled_scores)
        return self._unbounded_state(bounded, scores, state)
