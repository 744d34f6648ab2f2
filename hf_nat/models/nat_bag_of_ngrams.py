"""The bag-of-n-grams loss of Shao et al. (AAAI 2020), computed exactly.

A one-pass NAT predicts independent token distributions p_1..p_T. The expected number of times an
n-gram g = (g_1..g_n) occurs in its output is E[C(g)] = Σ_t Π_i p_{t+i}(g_{i+1}), a sum of
products along one diagonal; the reference's bag holds counts C_ref(g). Both bags have
T - n + 1 n-grams in all (the model decodes at the reference length in training), so their L1
distance is 2(T - n + 1) - 2 Σ_g min(E[C(g)], C_ref(g)), and only the reference's own n-grams
enter the sum: no enumeration of the V^n possible n-grams, no sampling.
"""

import torch

__all__ = ["bag_of_ngrams_loss"]


def bag_of_ngrams_loss(
    log_probs: torch.Tensor, targets: torch.Tensor, lengths: torch.Tensor, n: int = 2
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sentence BoN-L1 distance between the model's expected n-gram bag and the reference's,
    divided by its maximum 2(T - n + 1): 0 when every reference n-gram is certain, 1 when none can
    occur.

    Args:
        log_probs: (B, T, V) log-probabilities of each output position (position t of sentence b is
            meaningful for t < lengths[b]).
        targets: (B, T) reference tokens, left-aligned; entries at t >= lengths[b] are ignored.
        lengths: (B,) reference lengths (= output lengths).
        n: the n-gram order (≥ 1).

    Returns:
        (loss (B,) float32, has_ngrams (B,) bool): sentences shorter than n have no n-gram and get
        loss 0 with has_ngrams False, so a caller averages over ``has_ngrams`` only.
    """
    if n < 1:
        raise ValueError(f"the n-gram order must be at least 1, got {n}")
    batch, width, _ = log_probs.shape
    starts = width - n + 1  # n-gram start positions of the widest sentence
    ngrams = (lengths - n + 1).clamp(min=0)  # (B,) n-grams per sentence
    if starts <= 0:
        zero = log_probs.sum((1, 2)).float() * 0.0
        return zero, ngrams.gt(0)
    # hit[b, t, k] = p_t(y_k): the chance that output position t emits the reference token at k
    hit = log_probs.float().exp().gather(-1, targets[:, None, :].expand(batch, width, width))  # (B, T, T)
    expected = hit[:, :starts, :starts]
    for i in range(1, n):
        expected = expected * hit[:, i : i + starts, i : i + starts]  # (B, m, m): Π_i p_{t+i}(y_{k+i})
    valid = torch.arange(starts, device=lengths.device)[None, :] < ngrams[:, None]  # (B, m)
    expected = (expected * valid[:, :, None]).sum(1)  # (B, m): E[count of the reference n-gram at k]
    same = valid[:, :, None] & valid[:, None, :]  # (B, m, m): n-grams at k and k' are equal
    for i in range(n):
        window = targets[:, i : i + starts]
        same = same & window[:, :, None].eq(window[:, None, :])
    reference_count = same.sum(2)  # (B, m)
    earlier = torch.ones(starts, starts, dtype=torch.bool, device=same.device).tril(-1)
    first = valid & ~(same & earlier).any(2)  # (B, m): count each distinct n-gram once
    overlap = (torch.minimum(expected, reference_count.float()) * first).sum(1)  # (B,)
    loss = 1.0 - overlap / ngrams.clamp(min=1)
    has_ngrams = ngrams.gt(0)
    return loss.masked_fill(~has_ngrams, 0.0), has_ngrams
