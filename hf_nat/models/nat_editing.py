"""Batched sequence edits shared by the families that generate by inserting and deleting tokens
(Levenshtein Transformer, Insertion Transformer).

Hypotheses are edited in their bounded form ``bos content eos pad…``; a *slot* i is the gap
between positions i and i+1, so a row with n content tokens has n + 1 slots. Insertion moves
every token right by the number of tokens inserted before it (a cumulative sum and a scatter);
deletion is a stable left-alignment of the kept tokens. No Python loop over sentences.
"""

import torch
import torch.nn.functional as F

from .modeling_nat import compact_targets
from .nat_generation import DecoderState, mean_token_scores
from .nat_layers import EncoderState, left_align, random_positions, uniform_noise


def add_boundaries(content: torch.Tensor, pad_token_id: int, bos_token_id: int, eos_token_id: int) -> torch.Tensor:
    """(B, T) left-aligned content (pad after) → (B, T + 2): bos, content, eos, pad."""
    lengths = content.ne(pad_token_id).sum(1)
    bounded = torch.nn.functional.pad(content, (1, 1), value=pad_token_id)
    bounded[:, 0] = bos_token_id
    return bounded.scatter(1, (lengths + 1)[:, None], eos_token_id)


def remove_boundaries(bounded: torch.Tensor, pad_token_id: int, bos_token_id: int, eos_token_id: int) -> torch.Tensor:
    """The inverse of :func:`add_boundaries`: content left-aligned, pad after (width ≥ 1)."""
    return left_align(bounded, content_mask(bounded, pad_token_id, bos_token_id, eos_token_id), pad_token_id)


def insert_into_slots(values: torch.Tensor, real: torch.Tensor, counts: torch.Tensor, fill_value,
                      pad_value) -> tuple[torch.Tensor, torch.Tensor]:
    """Insert ``counts[:, i]`` copies of ``fill_value`` into slot i of every row.

    ``values`` (B, L) are bounded rows (real positions first, marked by ``real``); ``counts``
    (B, L - 1) is ignored on slots that do not lie between two real positions. Returns the new
    values (B, L') and their real-position mask; rows end in ``pad_value``. The same call on a
    row's tokens and on its scores keeps them aligned.
    """
    slots = real[:, :-1] & real[:, 1:]
    counts = counts.masked_fill(~slots, 0)
    shift = torch.nn.functional.pad(counts.cumsum(1), (1, 0))  # values inserted before each position
    new_lengths = real.sum(1) + counts.sum(1)
    width = max(int(new_lengths.max()), 1) if new_lengths.numel() else 1
    columns = torch.arange(width, device=values.device)[None, :]
    new_real = columns < new_lengths[:, None]
    out = torch.full((values.shape[0], width + 1), fill_value, dtype=values.dtype, device=values.device)
    # Padding is scattered to an extra last column, then dropped.
    index = (torch.arange(values.shape[1], device=values.device)[None, :] + shift).masked_fill(~real, width)
    out = out.scatter(1, index, values)[:, :width]
    return out.masked_fill(~new_real, pad_value), new_real


def delete_positions(values: torch.Tensor, real: torch.Tensor, delete: torch.Tensor, pad_value) -> torch.Tensor:
    """Drop the positions marked in ``delete`` (B, L) from the ``real`` ones and left-align the
    rest, padding with ``pad_value``. The same call on a row's tokens and on its scores keeps them
    aligned."""
    return left_align(values, real & ~delete, pad_value)


def slot_states(hidden: torch.Tensor) -> torch.Tensor:
    """(B, L - 1, 2D): the states of the two tokens around every slot, concatenated."""
    return torch.cat([hidden[:, :-1], hidden[:, 1:]], -1)


def bounded_scores(scores: torch.Tensor) -> torch.Tensor:
    """Per-token scores of content rows laid out like :func:`add_boundaries` (0 at bos and eos)."""
    return torch.nn.functional.pad(scores, (1, 1), value=0.0)


def content_mask(bounded: torch.Tensor, pad_token_id: int, bos_token_id: int, eos_token_id: int) -> torch.Tensor:
    """(B, L) True on the content tokens of bounded rows."""
    return bounded.ne(pad_token_id) & bounded.ne(bos_token_id) & bounded.ne(eos_token_id)


def length_caps(source_keep: torch.Tensor, ratio: float, max_positions: int) -> torch.Tensor:
    """(B,) the most content tokens a row may grow to: ⌊ratio · source length⌋ + 5, within the positions."""
    return ((source_keep.sum(1).float() * ratio).long() + 5).clamp(max=max_positions - 2)


def cap_insertions(counts: torch.Tensor, content_lengths: torch.Tensor, caps: torch.Tensor) -> torch.Tensor:
    """``counts`` (B, S) reduced, left to right, so that no row grows beyond ``caps``."""
    room = (caps - content_lengths).clamp(min=0)
    before = counts.cumsum(1) - counts
    return torch.minimum(counts, (room[:, None] - before).clamp(min=0))


def random_subsequence(targets: torch.Tensor, keep: torch.Tensor, generator: torch.Generator | None,
                       pad_token_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A uniformly sized random subsequence of every row (0..n of its n tokens kept, in order).

    Returns the kept tokens left-aligned and the (B, T) mask of kept positions.
    """
    lengths = keep.sum(1)
    count = (uniform_noise(lengths.shape, generator, keep.device) * (lengths + 1).float()).long().clamp(max=lengths)
    kept = random_positions(keep, count, uniform_noise(keep.shape, generator, keep.device))
    return left_align(targets, kept, pad_token_id), kept


class BoundedEditsMixin:
    """Helpers of edit-based family models: bounded rows, their content, decoder states of them,
    and the decoding state and candidate score shared by these families."""

    def _unbounded_state(self, bounded: torch.Tensor, scores: torch.Tensor, state: DecoderState) -> DecoderState:
        """The decoding state holding the content of edited ``bounded`` rows and their token ``scores``."""
        content = self._content(bounded)
        return DecoderState(tokens=left_align(bounded, content, self.config.pad_token_id),
                            scores=left_align(scores.masked_fill(~content, 0.0), content, 0),
                            source_index=state.source_index, extras=state.extras)

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
            raise ValueError(f"target of {targets.shape[1]} tokens (+ bos/eos) exceeds max_position_embeddings="
                             f"{self.config.max_position_embeddings}; filter the corpus by length")
        return targets

    def _states(self, encoder: EncoderState, bounded: torch.Tensor) -> torch.Tensor:
        return self.model.decoder(bounded.ne(self.config.pad_token_id), encoder, bounded)


def corrupt_targets(targets: torch.Tensor, keep: torch.Tensor, probability: float, special_token_ids: list[int],
                    vocab_size: int, pad_token_id: int, generator: torch.Generator | None) -> torch.Tensor:
    """Denoising noise of Lee et al. (2018) on content tokens: each token, with ``probability``, is
    replaced by a random non-special token, repeats its left neighbour, or swaps with its right
    neighbour. Padding is never touched."""
    shape, device = targets.shape, targets.device
    chosen = (uniform_noise(shape, generator, device) < probability) & keep
    operation = (uniform_noise(shape, generator, device) * 3).long()
    positions = torch.arange(shape[1], device=device)
    # Swaps pair (t, t+1) only at positions of one parity per row, so no two swaps overlap.
    parity = (uniform_noise(shape[0], generator, device) < 0.5).long()
    next_real = F.pad(keep[:, 1:], (0, 1), value=False)
    swap_first = chosen & operation.eq(2) & next_real & (positions[None, :] % 2).eq(parity[:, None])
    swap_second = F.pad(swap_first[:, :-1], (1, 0), value=False)
    out = targets.clone()
    out = torch.where(swap_first, F.pad(targets[:, 1:], (0, 1), value=pad_token_id), out)
    out = torch.where(swap_second, F.pad(targets[:, :-1], (1, 0), value=pad_token_id), out)
    others = chosen & ~swap_first & ~swap_second
    repeat = others & operation.eq(1) & positions[None, :].gt(0)
    out = torch.where(repeat, F.pad(targets[:, :-1], (1, 0), value=pad_token_id), out)
    random_tokens = (uniform_noise(shape, generator, device) * vocab_size).long().clamp(max=vocab_size - 1)
    special = torch.zeros(vocab_size, dtype=torch.bool, device=device)
    special[special_token_ids] = True
    replace = others & operation.eq(0) & ~special[random_tokens]
    return torch.where(replace, random_tokens, out)
