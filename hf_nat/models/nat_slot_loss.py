"""The slot loss of insertion-based training (Insertion Transformer, Stern et al., 2019; KERMIT):
for a hypothesis that is a subsequence of the target, every slot between two kept tokens scores
the target tokens missing there, and a complete slot scores "no insertion"."""

import torch

__all__ = ["SLOT_WEIGHTINGS", "slot_insertion_loss"]

SLOT_WEIGHTINGS = ("binary_tree", "uniform")


def slot_insertion_loss(
    log_probs: torch.Tensor,
    targets: torch.Tensor,
    target_keep: torch.Tensor,
    kept: torch.Tensor,
    weighting: str = "binary_tree",
    temperature: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The mean slot loss of a batch, and the (B, S) masks of its complete slots and of its slots.

    ``targets`` (B, T) are the target tokens, real where ``target_keep`` (B, T); ``kept`` (B, T)
    marks the target positions the hypothesis holds, so row b's hypothesis is its kept tokens in
    order and has ``kept[b].sum() + 1`` slots (slot s lies after kept token s; slot 0 after bos).
    ``log_probs`` (B, S, V + 1) are float log-probabilities per slot over the vocabulary and, last,
    "no insertion"; S is at least the most slots of a row.

    The target tokens missing from a slot (a span of n) are weighted: ``"uniform"`` 1/n each,
    ``"binary_tree"`` ∝ exp(-|rank - (n - 1)/2| / ``temperature``) (rank = place in the span, so
    the middle weighs most), normalised to 1 per span. A complete slot (n = 0) scores "no
    insertion". The loss is -(Σ weight · log p(token | slot) + Σ log p(stop | complete slot)) over
    the batch, divided by the number of slots.
    """
    if weighting not in SLOT_WEIGHTINGS:
        raise ValueError(f"weighting must be one of {SLOT_WEIGHTINGS}, got {weighting!r}")
    slots = torch.arange(log_probs.shape[1], device=kept.device)[None, :] <= kept.sum(1)[:, None]  # (B, S)
    missing = target_keep & ~kept
    positions = torch.arange(targets.shape[1], device=targets.device)
    slot_of = kept.long().cumsum(1) - kept.long()  # kept tokens before each target position
    last_kept = torch.where(kept, positions, -1).cummax(1).values
    rank = positions[None, :] - last_kept - 1  # position inside its missing span
    span = torch.zeros(slots.shape, device=targets.device).scatter_add(1, slot_of, missing.float())  # (B, S)
    span_of = span.gather(1, slot_of)  # (B, T): length of each position's span
    if weighting == "binary_tree":
        weight = torch.exp(-(rank - (span_of - 1) / 2).abs() / temperature) * missing
        weight = weight / torch.zeros_like(span).scatter_add(1, slot_of, weight).gather(1, slot_of).clamp(min=1e-9)
    else:
        weight = missing / span_of.clamp(min=1)
    vocab = log_probs.shape[-1]
    token_log_probs = log_probs.flatten(1).gather(1, slot_of * vocab + targets)  # (B, T)
    token_part = -(weight * token_log_probs).sum()
    complete = slots & span.eq(0)
    stop_part = -log_probs[..., -1][complete].sum()
    return (token_part + stop_part) / slots.sum().clamp(min=1), complete, slots
