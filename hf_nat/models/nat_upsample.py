"""Upsampling the source into decoder positions (CTC NAT, the Imputer; any family whose decoder
reads ``ratio`` states per source token): a linear map of every encoder state to ratio × d,
split into ratio consecutive states."""

import torch
from torch import nn

__all__ = ["upsample", "upsampled_keep", "upsampler"]


def upsampler(d_model: int, ratio: int) -> nn.Linear:
    """The projection of one encoder state (d) to ``ratio`` decoder input states (ratio · d)."""
    if ratio < 1:
        raise ValueError(f"upsample_ratio must be >= 1, got {ratio}")
    return nn.Linear(d_model, d_model * ratio)


def upsampled_keep(keep: torch.Tensor, ratio: int) -> torch.Tensor:
    """(B, S · ratio) real-position mask of the upsampled source, from the source's ``keep`` (B, S)."""
    return keep.repeat_interleave(ratio, dim=1)


def upsample(projection: nn.Linear, hidden: torch.Tensor, keep: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Decoder input states (B, S · r, D) of encoder states ``hidden`` (B, S, D) through an
    :func:`upsampler` ``projection`` (D → r · D), and their real-position mask (B, S · r) from the
    source's ``keep`` (B, S). The r states of source token i sit at positions i·r … i·r + r - 1."""
    batch, length, dim = hidden.shape
    ratio = projection.out_features // dim
    states = projection(hidden).view(batch, length * ratio, dim)  # (B, S·r, D)
    return states, upsampled_keep(keep, ratio)
