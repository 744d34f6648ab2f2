"""The expert of the Levenshtein Transformer's imitation learning: the shortest insertion/deletion
edit script from a hypothesis to the target (a substitution is a deletion plus an insertion).

The script keeps a longest common subsequence of the two, deletes every other hypothesis token and
inserts the missing target tokens into the slots between kept tokens. rapidfuzz computes it in
compiled code (microseconds a pair). Only training calls the oracle, so rapidfuzz is optional (the
``hf_nat[train]`` extra): without it this module still imports and decoding works.
"""

import torch

# In a try block: transformers' remote-code import check skips it, so an exported checkpoint does
# not need rapidfuzz either.
try:
    from rapidfuzz.distance import Indel
except ImportError:
    Indel = None

__all__ = ["edit_oracle", "edit_script"]

_MISSING_RAPIDFUZZ = (
    'the Levenshtein Transformer\'s training oracle needs rapidfuzz: pip install "hf_nat[train]" '
    "(or pip install rapidfuzz)"
)


def edit_script(hypothesis: list[int], target: list[int]) -> tuple[list[bool], list[int]]:
    """(delete flag per hypothesis token, insertion count per slot of the kept tokens).

    With k kept tokens there are k + 1 slots: before the first, between each pair, after the last.
    """
    if Indel is None:
        raise ImportError(_MISSING_RAPIDFUZZ)
    delete = [True] * len(hypothesis)
    counts = [0]
    for op in Indel.opcodes(hypothesis, target):
        if op.tag == "equal":
            for i in range(op.src_start, op.src_end):
                delete[i] = False
                counts.append(0)
        elif op.tag == "insert":
            counts[-1] += op.dest_end - op.dest_start
        elif op.tag == "replace":  # Indel has no substitutions, but be explicit if one appears
            counts[-1] += op.dest_end - op.dest_start
    return delete, counts


def _rows(tokens: torch.Tensor, pad_token_id: int) -> list[list[int]]:
    return [[t for t in row if t != pad_token_id] for row in tokens.tolist()]


def edit_oracle(
    hypotheses: torch.Tensor, targets: torch.Tensor, pad_token_id: int, placeholder_token_id: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The expert's actions for a batch of content rows (left-aligned, pad after).

    Returns ``delete`` (B, Th) bool, ``insert_counts`` (B, Th + 1) over the slots of the kept
    tokens (left-aligned like them; 0 beyond), and ``masked_target`` (B, Tt): the kept tokens with
    a placeholder wherever a target token is to be inserted (the target's layout).
    """
    delete = torch.zeros(hypotheses.shape, dtype=torch.bool)
    counts = torch.zeros(hypotheses.shape[0], hypotheses.shape[1] + 1, dtype=torch.long)
    masked = torch.full(targets.shape, pad_token_id, dtype=torch.long)
    for row, (hypothesis, target) in enumerate(zip(_rows(hypotheses, pad_token_id), _rows(targets, pad_token_id))):
        flags, slot_counts = edit_script(hypothesis, target)
        delete[row, : len(flags)] = torch.tensor(flags, dtype=torch.bool)
        counts[row, : len(slot_counts)] = torch.tensor(slot_counts)
        layout = []
        kept = [t for t, gone in zip(hypothesis, flags) if not gone]
        for slot, count in enumerate(slot_counts):
            layout += [placeholder_token_id] * count
            if slot < len(kept):
                layout.append(kept[slot])
        masked[row, : len(layout)] = torch.tensor(layout, dtype=torch.long)
    device = hypotheses.device
    return delete.to(device), counts.to(device), masked.to(device)
