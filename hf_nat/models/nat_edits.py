"""Pure batched edits of bounded token rows, shared by the families that generate by inserting and
deleting tokens (Levenshtein Transformer, Insertion Transformer).

Rows are edited in their bounded form ``bos content eos pad…``; a *slot* i is the gap between
positions i and i+1, so a row with n content tokens has n + 1 slots. Insertion moves every token
right by the number of tokens inserted before it (a cumulative sum and a scatter); deletion is a
stable left-alignment of the kept tokens. No Python loop over sentences.
"""

import torch

from .nat_sequences import left_align

__all__ = [
    "add_boundaries",
    "bounded_scores",
    "cap_insertions",
    "content_mask",
    "delete_positions",
    "insert_into_slots",
    "length_caps",
    "remove_boundaries",
    "slot_states",
]


def add_boundaries(content: torch.Tensor, pad_token_id: int, bos_token_id: int, eos_token_id: int) -> torch.Tensor:
    """(B, T) left-aligned content (pad after) → (B, T + 2): bos, content, eos, pad."""
    lengths = content.ne(pad_token_id).sum(1)
    bounded = torch.nn.functional.pad(content, (1, 1), value=pad_token_id)
    bounded[:, 0] = bos_token_id
    return bounded.scatter(1, (lengths + 1)[:, None], eos_token_id)


def remove_boundaries(bounded: torch.Tensor, pad_token_id: int, bos_token_id: int, eos_token_id: int) -> torch.Tensor:
    """The inverse of :func:`add_boundaries`: content left-aligned, pad after (width ≥ 1)."""
    return left_align(bounded, content_mask(bounded, pad_token_id, bos_token_id, eos_token_id), pad_token_id)


def insert_into_slots(
    values: torch.Tensor, real: torch.Tensor, counts: torch.Tensor, fill_value, pad_value
) -> tuple[torch.Tensor, torch.Tensor]:
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
