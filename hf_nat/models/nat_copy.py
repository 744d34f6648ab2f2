"""Decoder inputs made of copied source embeddings (Gu et al., 2018).

Families whose decoder reads the source rather than target tokens build its input here: copy by
fertility (source token i repeated f_i times), uniform copy (target position t reads source
position ≈ t·S/T) and soft copy (a softmax over source positions centred there). Only source
content tokens are copied: eos, bos and padding never are.
"""

import torch

from .nat_layers import EncoderState, TokenEmbedding
from .nat_sequences import left_align

__all__ = [
    "copied_by_length",
    "copyable_source",
    "fertility_copy_index",
    "gather_positions",
    "soft_copy_weights",
    "uniform_copy_index",
]


def copyable_source(encoder: EncoderState, config) -> torch.Tensor:
    """(B, S) bool: source content tokens; rows without any (empty sources) fall back to every real token."""
    content = encoder.keep.clone()
    for token in (config.eos_token_id, config.bos_token_id, config.pad_token_id):
        if token is not None:
            content &= encoder.input_ids.ne(token)
    return torch.where(content.any(1, keepdim=True), content, encoder.keep)


def gather_positions(embeddings: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """(B, T, D): ``embeddings`` (B, S, D) read at source positions ``index`` (B, T)."""
    return embeddings.gather(1, index[..., None].expand(-1, -1, embeddings.shape[-1]))


def fertility_copy_index(fertility: torch.Tensor, max_length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Source position of every target position when source token i is copied ``fertility[:, i]`` times.

    Returns (index (B, T), keep (B, T)); T is the longest total fertility, capped at ``max_length``.
    """
    cumulative = fertility.cumsum(1)
    lengths = cumulative[:, -1].clamp(max=max_length)
    width = max(int(lengths.max()), 1) if lengths.numel() else 1
    positions = torch.arange(width, device=fertility.device)
    index = torch.searchsorted(cumulative, positions.expand(fertility.shape[0], width).contiguous(), right=True)
    return index.clamp(max=fertility.shape[1] - 1), positions[None, :] < lengths[:, None]


def _content_axis(content: torch.Tensor, lengths: torch.Tensor, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Each target position's place on the source content axis (B, T; float) and the content count (B,)."""
    source_lengths = content.sum(1).clamp(min=1)
    positions = torch.arange(width, device=content.device, dtype=torch.float32)
    ratio = source_lengths.float() / lengths.clamp(min=1).float()
    return (positions[None, :] + 0.5) * ratio[:, None] - 0.5, source_lengths


def uniform_copy_index(content: torch.Tensor, lengths: torch.Tensor, width: int) -> torch.Tensor:
    """(B, T) source positions for uniform copy: target t of n reads content token round(t·S/n)."""
    place, source_lengths = _content_axis(content, lengths, width)
    rank = place.round().long().clamp(min=0)
    rank = torch.minimum(rank, (source_lengths - 1)[:, None])
    positions = torch.arange(content.shape[1], device=content.device).expand_as(content)
    content_positions = left_align(positions, content, 0)  # k-th content token's position
    return content_positions.gather(1, rank.clamp(max=content_positions.shape[1] - 1))


def soft_copy_weights(content: torch.Tensor, lengths: torch.Tensor, width: int, temperature: float) -> torch.Tensor:
    """(B, T, S) soft-copy weights: softmax over content tokens of -|rank - t·S/n| / temperature."""
    place, _ = _content_axis(content, lengths, width)
    rank = (content.cumsum(1) - 1).float()
    logits = -(rank[:, None, :] - place[:, :, None]).abs() / temperature
    return logits.masked_fill(~content[:, None, :], float("-inf")).softmax(-1)


def copied_by_length(
    embed: TokenEmbedding,
    encoder: EncoderState,
    config,
    lengths: torch.Tensor,
    width: int,
    soft_temperature: float | None = None,
) -> torch.Tensor:
    """(B, T, D) decoder input for targets of ``lengths`` (B,): uniform copy of the source tokens'
    embeddings by ``embed`` (the decoder's), or soft copy when ``soft_temperature`` is given."""
    content = copyable_source(encoder, config)
    embeddings = embed.token_embeds(encoder.input_ids)  # (B, S, D)
    if soft_temperature is None:
        return gather_positions(embeddings, uniform_copy_index(content, lengths, width))
    weights = soft_copy_weights(content, lengths, width, soft_temperature).to(embeddings.dtype)
    return weights @ embeddings
