"""CTC alignments in plain torch: collapsing a path to its output, and the best (Viterbi) path of a
target under per-position log-probabilities, batched (used by glancing training and the Imputer).

A path is a sequence over the vocabulary plus blank; its output drops repeated tokens, then blanks.
"""

import torch

from .nat_sequences import left_align

__all__ = ["best_alignment", "collapse", "ctc_feasible"]


def collapse(paths: torch.Tensor, keep: torch.Tensor, blank_token_id: int, pad_token_id: int) -> torch.Tensor:
    """Outputs of CTC paths (N, L): merge repeats, drop blanks, left-align, pad with pad.

    ``keep`` (N, L) marks the real positions of each path.
    """
    previous = torch.nn.functional.pad(paths[:, :-1], (1, 0), value=blank_token_id)
    emitted = keep & paths.ne(blank_token_id) & paths.ne(previous)
    return left_align(paths, emitted, pad_token_id)


def ctc_feasible(
    targets: torch.Tensor, target_lengths: torch.Tensor, input_lengths: torch.Tensor, pad_token_id: int
) -> torch.Tensor:
    """True where a path of ``input_lengths`` can emit the target: length + repeated neighbours."""
    same_as_next = targets[:, 1:].eq(targets[:, :-1]) & targets[:, 1:].ne(pad_token_id)
    needed = target_lengths + same_as_next.sum(1)
    return needed <= input_lengths


@torch.no_grad()
def best_alignment(
    log_probs: torch.Tensor,
    targets: torch.Tensor,
    input_lengths: torch.Tensor,
    target_lengths: torch.Tensor,
    blank_token_id: int,
) -> torch.Tensor:
    """The most likely CTC path of each target (Viterbi), as (B, L) token ids (blank included).

    ``log_probs`` (B, L, V); ``targets`` (B, U) content tokens; lengths (B,). Rows whose target
    cannot be emitted within their input length get an all-blank path. Positions beyond a row's
    input length are blank.
    """
    batch, length, _ = log_probs.shape
    device = log_probs.device
    width = targets.shape[1] * 2 + 1
    # Extended target: blank, y1, blank, y2, ..., blank.
    beyond = torch.arange(targets.shape[1], device=device)[None, :] >= target_lengths[:, None]
    extended = torch.full((batch, width), blank_token_id, dtype=torch.long, device=device)
    extended[:, 1::2] = targets.masked_fill(beyond, blank_token_id)
    ext_len = target_lengths * 2 + 1
    states = torch.arange(width, device=device)
    valid_state = states[None, :] < ext_len[:, None]
    # A skip (s-2 → s) is allowed into a token that differs from the token two states back.
    skip_ok = torch.zeros((batch, width), dtype=torch.bool, device=device)
    skip_ok[:, 2:] = extended[:, 2:].ne(blank_token_id) & extended[:, 2:].ne(extended[:, :-2])
    emit = log_probs.float().gather(2, extended[:, None, :].expand(batch, length, width))  # (B, L, W)

    neg_inf = torch.tensor(float("-inf"), device=device)
    score = torch.full((batch, width), float("-inf"), device=device)
    score[:, 0] = emit[:, 0, 0]
    score[:, 1] = torch.where(target_lengths > 0, emit[:, 0, 1], neg_inf)
    score = score.masked_fill(~valid_state, float("-inf"))
    moves = torch.zeros((batch, length, width), dtype=torch.long, device=device)  # 0 stay, 1 step, 2 skip
    for t in range(1, length):
        stay = score
        step = torch.nn.functional.pad(score[:, :-1], (1, 0), value=float("-inf"))
        skip = torch.nn.functional.pad(score[:, :-2], (2, 0), value=float("-inf")).masked_fill(~skip_ok, float("-inf"))
        candidates = torch.stack([stay, step, skip], dim=-1)
        best, move = candidates.max(-1)
        new = (best + emit[:, t]).masked_fill(~valid_state, float("-inf"))
        active = (t < input_lengths)[:, None]
        score = torch.where(active, new, score)
        moves[:, t] = torch.where(active, move, torch.zeros_like(move))

    # End in the last blank or the last token, whichever scores higher.
    last = (ext_len - 1).clamp(min=0)
    end_blank = score.gather(1, last[:, None]).squeeze(1)
    end_token = score.gather(1, (last - 1).clamp(min=0)[:, None]).squeeze(1)
    end_token = torch.where(target_lengths > 0, end_token, neg_inf)
    state = torch.where(end_token > end_blank, last - 1, last)
    feasible = torch.maximum(end_blank, end_token) > float("-inf")

    path = torch.full((batch, length), blank_token_id, dtype=torch.long, device=device)
    rows = torch.arange(batch, device=device)
    for t in range(length - 1, -1, -1):
        inside = t < input_lengths
        token = extended[rows, state]
        path[:, t] = torch.where(inside & feasible, token, torch.full_like(token, blank_token_id))
        move = moves[rows, t, state]
        state = torch.where(inside, state - move, state)
    return path
