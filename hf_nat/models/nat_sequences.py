"""Pure row operations on batches of token rows: left-alignment of the kept positions and the
distinct rows per source. No Python loop over rows."""

import torch

__all__ = ["distinct_per_source", "left_align"]


def left_align(tokens: torch.Tensor, keep: torch.Tensor, pad_token_id: int) -> torch.Tensor:
    """The ``keep`` (B, T) tokens of each row of ``tokens`` (B, T) moved to the front in order, pad
    after: (B, W) with W the most kept tokens of a row (at least 1)."""
    # A stable sort on "not kept" moves kept tokens to the front and keeps their order.
    order = (~keep).to(torch.int8).argsort(dim=1, stable=True)
    lengths = keep.sum(1)
    width = max(int(lengths.max()), 1) if tokens.numel() else 1
    out = tokens.gather(1, order)[:, :width]
    positions = torch.arange(width, device=tokens.device)
    return out.masked_fill(positions[None, :] >= lengths[:, None], pad_token_id)


def distinct_per_source(
    source_index: torch.Tensor, rows: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Drop repeats of a row within the same source: ``source_index`` (N,), ``rows`` (N, T) →
    (distinct source_index (M,), distinct rows (M, T), inverse (N,)), with ``distinct[inverse]``
    giving back every original row."""
    distinct, inverse = torch.unique(torch.cat([source_index[:, None], rows], 1), dim=0, return_inverse=True)
    return distinct[:, 0], distinct[:, 1:], inverse
