"""Paths through a directed acyclic graph of decoder vertices (DA-Transformer, Huang et al., 2022).

The decoder emits one token distribution per vertex and a transition distribution from each vertex
to the later ones. A target y of m tokens is generated along a path a_1 = 0 < a_2 < … < a_m = the
last vertex, vertex a_t emitting y_t:

    P(y, a | x) = Π_t P_{a_t}(y_t) · Π_{t<m} E[a_t, a_{t+1}],      P(y | x) = Σ_a P(y, a | x).

Both the sum over paths (the training loss) and the best path (glancing, Viterbi) are dynamic
programs over target positions, vectorised over the batch and the vertices, in float32 log space.
"""

import torch

__all__ = ["dag_best_path", "dag_log_likelihood"]

# Impossible moves score this instead of -inf: a logsumexp over nothing but -inf has a NaN
# gradient, while exp(-1e9) is exactly 0 in float32 and float64, so real paths are unaffected.
_IMPOSSIBLE = -1e9


def _check(transitions: torch.Tensor, emissions: torch.Tensor, vertices: torch.Tensor, lengths: torch.Tensor):
    if transitions.dim() != 3 or transitions.shape[1] != transitions.shape[2]:
        raise ValueError(f"transitions must be (B, L, L), got {tuple(transitions.shape)}")
    if emissions.dim() != 3 or emissions.shape[:2] != transitions.shape[:2]:
        raise ValueError(f"emissions must be (B, L, T) with (B, L) = {tuple(transitions.shape[:2])}")
    if (lengths < 1).any() or (lengths > emissions.shape[2]).any():
        raise ValueError("every target needs 1..T tokens")
    if (vertices < lengths).any() or (vertices > transitions.shape[1]).any():
        raise ValueError("a graph needs at least as many vertices as its target has tokens, and at most L")


def _forward(transitions, emissions, vertices, lengths, reduce):
    """α_t (B, L) for t = 1..T with ``reduce`` (logsumexp or max) over predecessors; the value at
    each row's last target position and last vertex, and every step's argmax when reducing by max."""
    batch, graph, steps = emissions.shape
    dtype = torch.promote_types(emissions.dtype, torch.float32)
    transitions = transitions.to(dtype).clamp(min=_IMPOSSIBLE)
    emissions = emissions.to(dtype).clamp(min=_IMPOSSIBLE)
    vertex_ids = torch.arange(graph, device=emissions.device)
    real = vertex_ids[None, :] < vertices[:, None]  # (B, L)
    forward_edge = vertex_ids[None, :, None] < vertex_ids[None, None, :]  # (1, L, L): i -> j > i only
    transitions = transitions.masked_fill(~(forward_edge & real[:, :, None] & real[:, None, :]), _IMPOSSIBLE)
    start = torch.full((batch, graph), _IMPOSSIBLE, dtype=dtype, device=emissions.device)
    alpha = start.index_fill(1, vertex_ids[:1], 0.0) + emissions[:, :, 0]  # (B, L): paths start at vertex 0
    finals = [alpha]
    pointers = []
    for t in range(1, steps):
        scores = alpha[:, :, None] + transitions  # (B, L_i, L_j)
        if reduce == "max":
            best, pointer = scores.max(1)
            pointers.append(pointer)
        else:
            best = scores.logsumexp(1)
        alpha = best + emissions[:, :, t]  # (B, L)
        finals.append(alpha)
    alphas = torch.stack(finals, 1)  # (B, T, L)
    rows = torch.arange(batch, device=emissions.device)
    return alphas[rows, lengths - 1, vertices - 1], pointers


def dag_log_likelihood(
    transitions: torch.Tensor, emissions: torch.Tensor, vertices: torch.Tensor, lengths: torch.Tensor
) -> torch.Tensor:
    """log P(y | x) summed over every path (B,).

    ``transitions`` (B, L, L): log E[i, j] (entries with j <= i or beyond a row's ``vertices`` are
    ignored); ``emissions`` (B, L, T): log P_i(y_t), the log-probability of target token t at vertex
    i; ``vertices`` (B,): vertices of each graph (paths end at the last); ``lengths`` (B,): target
    tokens. A target longer than its graph has no path: an error. Differentiable.
    """
    _check(transitions, emissions, vertices, lengths)
    value, _ = _forward(transitions, emissions, vertices, lengths, "logsumexp")
    return value


def dag_best_path(
    transitions: torch.Tensor, emissions: torch.Tensor, vertices: torch.Tensor, lengths: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The most probable path of each target (max-product DP): (log P(y, a* | x) (B,), a* (B, T)
    vertex indices, -1 beyond each row's length). Arguments as for :func:`dag_log_likelihood`."""
    _check(transitions, emissions, vertices, lengths)
    with torch.no_grad():
        value, pointers = _forward(transitions, emissions, vertices, lengths, "max")
        batch, steps = emissions.shape[0], emissions.shape[2]
        rows = torch.arange(batch, device=emissions.device)
        path = torch.full((batch, steps), -1, dtype=torch.long, device=emissions.device)
        current = vertices - 1
        for t in range(steps - 1, -1, -1):
            here = lengths - 1 == t
            current = torch.where(here, vertices - 1, current)  # a row's last token sits on the last vertex
            inside = lengths - 1 >= t
            path[:, t] = torch.where(inside, current, -1)
            if t > 0:
                current = torch.where(inside, pointers[t - 1][rows, current.clamp(min=0)], current)
    return value, path
