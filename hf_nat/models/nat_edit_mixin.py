"""The bounded-row helpers of edit-based family models (Levenshtein Transformer, Insertion
Transformer): their rows in bounded form, decoder states of them, and the decoding state and
candidate score these families share."""

import torch

from .modeling_nat import compact_targets
from .nat_edits import add_boundaries, content_mask, remove_boundaries
from .nat_generation import ITERATION_BOUNDS, POSITIVE, DecoderState, OptionBounds, mean_token_scores
from .nat_layers import EncoderState
from .nat_sequences import left_align

__all__ = ["BoundedEditsMixin"]


# The decoding options of the families that insert into slots round by round (Levenshtein and
# Insertion Transformer): rounds, stop once unchanged, the penalty subtracted from the log-probability
# of inserting nothing (> 0 gives longer outputs) and the length cap (⌊ratio · source length⌋ + 5).
EDIT_DECODING_DEFAULTS = {"max_iterations": 10, "adaptive": True, "insertion_penalty": 0.0, "max_length_ratio": 2.0}
EDIT_OPTION_BOUNDS = {
    "max_iterations": ITERATION_BOUNDS,
    "insertion_penalty": OptionBounds(),
    "max_length_ratio": POSITIVE,
}


class BoundedEditsMixin:
    """Helpers of edit-based family models: bounded rows, their content, decoder states of them,
    and the decoding state and candidate score shared by these families."""

    def _unbounded_state(self, bounded: torch.Tensor, scores: torch.Tensor, state: DecoderState) -> DecoderState:
        """The decoding state holding the content of edited ``bounded`` rows and their token ``scores``."""
        content = self._content(bounded)
        return DecoderState(
            tokens=left_align(bounded, content, self.config.pad_token_id),
            scores=left_align(scores.masked_fill(~content, 0.0), content, 0),
            source_index=state.source_index,
            extras=state.extras,
        )

    def _nat_candidate_scores(self, state: DecoderState) -> torch.Tensor:
        return mean_token_scores(state, self.config.pad_token_id)

    def _bounded(self, content: torch.Tensor) -> torch.Tensor:
        c = self.config
        return add_boundaries(content, c.pad_token_id, c.bos_token_id, c.eos_token_id)

    def _unbounded(self, bounded: torch.Tensor) -> torch.Tensor:
        c = self.config
        return remove_boundaries(bounded, c.pad_token_id, c.bos_token_id, c.eos_token_id)

    def _content(self, bounded: torch.Tensor) -> torch.Tensor:
        c = self.config
        return content_mask(bounded, c.pad_token_id, c.bos_token_id, c.eos_token_id)

    def _content_targets(self, labels: torch.Tensor) -> torch.Tensor:
        """The content tokens of ``labels`` (left-aligned); bounded, they must fit the positions."""
        targets, _ = compact_targets(labels, self.config)
        if targets.shape[1] + 2 > self.config.max_position_embeddings:
            raise ValueError(
                f"target of {targets.shape[1]} tokens (+ bos/eos) exceeds max_position_embeddings="
                f"{self.config.max_position_embeddings}; filter the corpus by length"
            )
        return targets

    def _states(self, encoder: EncoderState, bounded: torch.Tensor) -> torch.Tensor:
        return self.model.decoder(bounded.ne(self.config.pad_token_id), encoder, bounded)
