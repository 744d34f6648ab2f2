"""Paths through a directed acyclic graph of decoder vertices (DA-Transformer, Huang et al., 2022).

The decoder emits one token distribution per vertex and a transition distribution from each vertex
to the later ones. A target y of m tokens is generated along a path a_1 = 0 < a_2 < … < a_m = the
last vertex, vertex a_t emitting y_t:

    P(y, a | x) = Π_t P_{a_t}(y_t) · Π_{t<m} E[a_t, a_{t+1}],      P(y | x) = Σ_a P(y, a | x).

Both the sum over paths (the training loss) and the best path (glancing, Viterbi) are dynamic
programs over target positions, vectorised over the batch and the vertices, in float32 log space.
"""

import torch

from .nat_sequences import left_align

__all__ = [
    "dag_best_path",
    "dag_log_likelihood",
    "dag_lookahead_path",
    "dag_path_output",
    "dag_viterbi_path",
    "dag_viterbi_paths",
]

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


def _forward(transitions, emissions, vertices, lengths, reduce, every_length=False):
    """α_t (B, L) for t = 1..T with ``reduce`` (logsumexp or max) over predecessors; the value at
    each row's last target position and last vertex (with ``every_length``: at the last vertex for
    every t, (B, T)), and every step's argmax when reducing by max."""
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
    if every_length:
        return alphas[rows, :, vertices - 1], pointers
    return alphas[rows, lengths - 1, vertices - 1], pointers


def _backtrack(pointers: list, vertices: torch.Tensor, lengths: torch.Tensor, steps: int) -> torch.Tensor:
    """(B, T) vertex indices of the best paths ending at each row's last vertex after ``lengths``
    steps (-1 beyond), following the max-product DP's argmax ``pointers``."""
    batch = vertices.shape[0]
    rows = torch.arange(batch, device=vertices.device)
    path = torch.full((batch, steps), -1, dtype=torch.long, device=vertices.device)
    current = vertices - 1
    for t in range(steps - 1, -1, -1):
        current = torch.where(lengths - 1 == t, vertices - 1, current)  # a row's last token sits on the last vertex
        inside = lengths - 1 >= t
        path[:, t] = torch.where(inside, current, -1)
        if t > 0:
            current = torch.where(inside, pointers[t - 1][rows, current.clamp(min=0)], current)
    return path


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
        return value, _backtrack(pointers, vertices, lengths, emissions.shape[2])


@torch.no_grad()
def dag_viterbi_path(
    transitions: torch.Tensor, token_scores: torch.Tensor, vertices: torch.Tensor, length_penalty: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Joint-Viterbi decoding: the path and length maximising max_Y log P(A, Y | x) / |Y|^β.

    ``token_scores`` (B, L): each vertex's best token log-probability (the best Y along a path
    takes each vertex's best token); ``transitions`` and ``vertices`` as for
    :func:`dag_log_likelihood`; β = ``length_penalty``. Returns (path (B, L) vertex indices, -1
    beyond each row's length; lengths (B,); normalised scores (B,)).
    """
    paths, lengths, scores = dag_viterbi_paths(transitions, token_scores, vertices, length_penalty, 1)
    return paths[:, 0], lengths[:, 0], scores[:, 0]


@torch.no_grad()
def dag_viterbi_paths(
    transitions: torch.Tensor,
    token_scores: torch.Tensor,
    vertices: torch.Tensor,
    length_penalty: float = 1.0,
    num_paths: int = 1,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The joint-Viterbi paths of the ``num_paths`` (k) best lengths, best first: the best path
    of each length is what :func:`dag_viterbi_path` compares. Returns (paths (B, k, L), lengths
    (B, k), normalised scores (B, k)); a graph with fewer than k lengths repeats its best."""
    batch, graph = token_scores.shape
    steps = graph
    emissions = token_scores[:, :, None].expand(batch, graph, steps)
    lengths = torch.ones(batch, dtype=torch.long, device=token_scores.device)
    _check(transitions, emissions, vertices, lengths)
    totals, pointers = _forward(transitions, emissions, vertices, lengths, "max", every_length=True)  # (B, T)
    counts = torch.arange(1, steps + 1, device=totals.device, dtype=totals.dtype)
    normalised = totals / counts[None, :] ** length_penalty
    no_path = (counts[None, :] > vertices[:, None]) | (totals <= _IMPOSSIBLE / 2)  # e.g. one token, many vertices
    normalised = normalised.masked_fill(no_path, float("-inf"))
    best, index = normalised.topk(min(num_paths, steps), dim=1)  # (B, k')
    if best.shape[1] < num_paths:
        index = torch.cat([index, index[:, :1].expand(-1, num_paths - best.shape[1])], 1)
    index = torch.where(normalised.gather(1, index).isinf(), index[:, :1], index)  # lengths a graph lacks
    best = normalised.gather(1, index)
    paths = torch.stack([_backtrack(pointers, vertices, index[:, j] + 1, steps) for j in range(num_paths)], 1)
    return paths, index + 1, best


def dag_path_output(
    path: torch.Tensor,
    lengths: torch.Tensor,
    vertex_tokens: torch.Tensor,
    vertex_scores: torch.Tensor,
    pad_token_id: int,
    merge_repeats: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The output a path reads: the tokens of its vertices between the first and the last (those
    emit bos and eos), left-aligned; with ``merge_repeats`` consecutive equal tokens become one.

    ``path`` (N, P) vertex indices (-1 beyond each row's ``lengths`` (N,)); ``vertex_tokens`` and
    ``vertex_scores`` (N, L): each vertex's token and its log-probability. Returns (tokens (N, W),
    scores (N, W)), pad and 0 after each row's output.
    """
    on_path = vertex_tokens.gather(1, path.clamp(min=0))  # (N, P)
    scores = vertex_scores.gather(1, path.clamp(min=0))
    positions = torch.arange(path.shape[1], device=path.device)[None, :]
    inner = (positions >= 1) & (positions < lengths[:, None] - 1)
    marked = on_path.masked_fill(~inner, -1)
    previous = torch.nn.functional.pad(marked[:, :-1], (1, 0), value=-1)
    emitted = inner & marked.ne(previous) if merge_repeats else inner
    return left_align(on_path, emitted, pad_token_id), left_align(scores, emitted, 0.0)


@torch.no_grad()
def dag_lookahead_path(
    transitions: torch.Tensor, token_scores: torch.Tensor, vertices: torch.Tensor, lookahead: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Greedy (``lookahead`` = 0) or lookahead decoding: from vertex 0, step to
    argmax_j log E[i, j] + β · token_scores[j] until the last vertex. Arguments as for
    :func:`dag_viterbi_path`; returns (path (B, L), -1 beyond each row's length; lengths (B,))."""
    batch, graph = token_scores.shape
    device = token_scores.device
    vertex_ids = torch.arange(graph, device=device)
    real = vertex_ids[None, :] < vertices[:, None]
    forward_edge = vertex_ids[:, None] < vertex_ids[None, :]
    allowed = forward_edge[None] & real[:, :, None] & real[:, None, :]
    scores = (transitions.float() + lookahead * token_scores.float()[:, None, :]).masked_fill(~allowed, float("-inf"))
    step_to = scores.argmax(-1)  # (B, L): the next vertex from each vertex
    rows = torch.arange(batch, device=device)
    path = torch.full((batch, graph), -1, dtype=torch.long, device=device)
    current = torch.zeros(batch, dtype=torch.long, device=device)
    lengths = torch.zeros(batch, dtype=torch.long, device=device)
    done = torch.zeros(batch, dtype=torch.bool, device=device)
    for t in range(graph):
        path[:, t] = torch.where(done, -1, current)
        lengths += (~done).long()
        done = done | current.eq(vertices - 1)
        if bool(done.all()):
            break
        current = torch.where(done, current, step_to[rows, current])
    return path, lengths
