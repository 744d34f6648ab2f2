"""Training noise drawn from a caller's ``torch.Generator`` (so that a resumed run is bit-identical):
uniform noise, random positions, random prefixes, random subsequences and the denoising corruption
of Lee et al. (2018)."""

import torch
import torch.nn.functional as F

from .nat_sequences import left_align

__all__ = ["corrupt_targets", "random_positions", "random_prefix", "random_subsequence", "uniform_noise"]


def uniform_noise(shape, generator: torch.Generator | None, device) -> torch.Tensor:
    """Uniform [0, 1) noise of ``shape`` drawn from ``generator`` (on its own device), returned on ``device``."""
    noise_device = generator.device if generator is not None else device
    return torch.rand(shape, generator=generator, device=noise_device).to(device)


def random_positions(keep: torch.Tensor, count: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """(B, T) bool: ``count`` (B,) real positions of each row (``keep`` (B, T)), those with the
    lowest ``noise`` (B, T)."""
    rank = noise.masked_fill(~keep, 2.0).argsort(1).argsort(1)
    return (rank < count[:, None]) & keep


def random_prefix(
    keep: torch.Tensor, probability: float, generator: torch.Generator | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """A gold prefix for a ``probability`` share of the rows of ``keep`` (B, T; real positions
    first): what a drafter sees after a verified prefix, the rest being what it must predict.

    Returns (chosen (B,) bool, prefix (B, T) bool): a chosen row of n real positions gets a
    prefix of k of them, k uniform in 0..n-1; other rows get none.
    """
    lengths = keep.sum(1)
    chosen = uniform_noise(lengths.shape, generator, keep.device) < probability
    count = (uniform_noise(lengths.shape, generator, keep.device) * lengths.float()).long()
    count = count.clamp(max=(lengths - 1).clamp(min=0)) * chosen
    return chosen, torch.arange(keep.shape[1], device=keep.device)[None, :] < count[:, None]


def random_subsequence(
    targets: torch.Tensor, keep: torch.Tensor, generator: torch.Generator | None, pad_token_id: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """A uniformly sized random subsequence of every row of ``targets`` (B, T) (0..n of its n
    ``keep`` tokens kept, in order).

    Returns the kept tokens left-aligned (B, W) and the (B, T) mask of kept positions.
    """
    lengths = keep.sum(1)
    count = (uniform_noise(lengths.shape, generator, keep.device) * (lengths + 1).float()).long().clamp(max=lengths)
    kept = random_positions(keep, count, uniform_noise(keep.shape, generator, keep.device))
    return left_align(targets, kept, pad_token_id), kept


def corrupt_targets(
    targets: torch.Tensor,
    keep: torch.Tensor,
    probability: float,
    special_token_ids: list[int],
    vocab_size: int,
    pad_token_id: int,
    generator: torch.Generator | None,
) -> torch.Tensor:
    """Denoising noise of Lee et al. (2018) on the content tokens (``keep``, (B, T)) of ``targets``
    (B, T): each token, with ``probability``, is replaced by a random non-special token, repeats
    its left neighbour, or swaps with its right neighbour. Padding is never touched. (B, T)."""
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
