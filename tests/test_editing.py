"""Batched edits and the Levenshtein oracle: insertion/deletion helpers and the shortest edit script
against a brute-force search."""

import functools
import random

import torch

from hf_nat.models.levenshtein_oracle import edit_oracle, edit_script
from hf_nat.models.nat_edits import (
    add_boundaries,
    cap_insertions,
    delete_positions,
    insert_into_slots,
    remove_boundaries,
)

PAD, BOS, EOS, PLH = 0, 1, 2, 5


def test_boundaries_round_trip():
    content = torch.tensor([[7, 8, 9], [7, PAD, PAD], [PAD, PAD, PAD]])
    bounded = add_boundaries(content, PAD, BOS, EOS)
    assert bounded.tolist() == [[1, 7, 8, 9, 2], [1, 7, 2, 0, 0], [1, 2, 0, 0, 0]]
    assert torch.equal(remove_boundaries(bounded, PAD, BOS, EOS), content)


def test_insert_and_delete_are_vectorised_and_exact():
    bounded = torch.tensor([[1, 7, 8, 2], [1, 2, 0, 0]])
    real = bounded.ne(PAD)
    counts = torch.tensor([[2, 0, 1], [3, 9, 9]])  # the second row has one slot; the rest is ignored
    out, out_real = insert_into_slots(bounded, real, counts, PLH, PAD)
    assert out.tolist() == [[1, 5, 5, 7, 8, 5, 2], [1, 5, 5, 5, 2, 0, 0]]
    assert out_real.tolist() == out.ne(PAD).tolist()
    delete = torch.zeros_like(out, dtype=torch.bool)
    delete[0, 1:3] = True
    delete[1, 2] = True
    assert delete_positions(out, out_real, delete, PAD).tolist() == [[1, 7, 8, 5, 2], [1, 5, 5, 2, 0]]
    scores = torch.arange(14.0).view(2, 7)
    assert delete_positions(scores, out_real, delete, 0.0).tolist() == [[0, 3, 4, 5, 6], [7, 8, 10, 11, 0]]


def test_insertions_respect_the_length_cap_left_to_right():
    counts = torch.tensor([[2, 3, 1], [1, 1, 1]])
    capped = cap_insertions(counts, torch.tensor([4, 0]), torch.tensor([7, 10]))
    assert capped.tolist() == [[2, 1, 0], [1, 1, 1]]


def brute_force_distance(a: tuple, b: tuple) -> int:
    """Insert/delete edit distance by plain recursion (memoised)."""

    @functools.cache
    def d(i: int, j: int) -> int:
        if i == len(a):
            return len(b) - j
        if j == len(b):
            return len(a) - i
        best = 1 + min(d(i + 1, j), d(i, j + 1))
        return min(best, d(i + 1, j + 1)) if a[i] == b[j] else best

    return d(0, 0)


def test_edit_script_is_shortest_and_reaches_the_target():
    rng = random.Random(0)
    for _ in range(300):
        hypothesis = [rng.randint(7, 10) for _ in range(rng.randint(0, 7))]
        target = [rng.randint(7, 10) for _ in range(rng.randint(0, 7))]
        delete, counts = edit_script(hypothesis, target)
        kept = [t for t, gone in zip(hypothesis, delete) if not gone]
        assert len(counts) == len(kept) + 1
        assert sum(delete) + sum(counts) == brute_force_distance(tuple(hypothesis), tuple(target))
        # Applying the script: the kept tokens with the inserted spans give exactly the target.
        rebuilt, cursor = [], 0
        for slot, count in enumerate(counts):
            rebuilt += target[cursor : cursor + count]
            cursor += count
            if slot < len(kept):
                assert target[cursor] == kept[slot]
                rebuilt.append(kept[slot])
                cursor += 1
        assert rebuilt == target


def test_batched_oracle_gives_masks_counts_and_masked_targets():
    hypotheses = torch.tensor([[7, 9, 8], [7, PAD, PAD]])
    targets = torch.tensor([[7, 8, 10], [9, 7, 9]])
    delete, counts, masked = edit_oracle(hypotheses, targets, PAD, PLH)
    assert delete.tolist() == [[False, True, False], [False, False, False]]
    assert counts.tolist() == [[0, 0, 1, 0], [1, 1, 0, 0]]
    assert masked.tolist() == [[7, 8, PLH], [PLH, 7, PLH]]
