"""The offline WER/CER evaluate module must equal jiwer's wer() and cer()."""

from __future__ import annotations

import itertools
import random

import pytest

from hf_nat.metrics import error_rates, load_metric

jiwer = pytest.importorskip("jiwer", reason="jiwer (the reference implementation) is not installed")

ALPHABET = ["a", "b", "ab", "c", " ", "  ", "\t"]


def _random_text(rng: random.Random) -> str:
    return "".join(rng.choice(ALPHABET) for _ in range(rng.randrange(0, 9)))


@pytest.mark.parametrize("seed", range(4))
def test_error_rates_equal_jiwer_on_random_corpora(seed):
    rng = random.Random(seed)
    for _ in range(50):
        n = rng.randrange(1, 5)
        refs = [_random_text(rng) for _ in range(n)]
        hyps = [_random_text(rng) for _ in range(n)]
        scores = error_rates(hyps, refs)
        assert scores["wer"] == pytest.approx(100 * jiwer.wer(refs, hyps), abs=1e-9), (refs, hyps)
        assert scores["cer"] == pytest.approx(100 * jiwer.cer(refs, hyps), abs=1e-9), (refs, hyps)


def test_edit_distance_equals_brute_force_on_short_sequences():
    """The counts add up to the smallest number of edits, found by trying every edit script length."""
    wer = load_metric("wer")
    for ref, hyp in itertools.product(["", "a", "a b", "b a a"], ["", "a", "b b", "a b a c"]):
        out = wer.compute(predictions=[hyp], references=[ref])
        edits = out["substitutions"] + out["deletions"] + out["insertions"]
        assert edits == _levenshtein(ref.split(), hyp.split())
        assert out["reference_length"] == len(ref.split())


def _levenshtein(a: list[str], b: list[str]) -> int:
    if not a or not b:
        return len(a) + len(b)
    return min(_levenshtein(a[1:], b[1:]) + (a[0] != b[0]), _levenshtein(a[1:], b) + 1, _levenshtein(a, b[1:]) + 1)


def test_known_values_and_bad_input():
    assert error_rates(["a x c"], ["a b c d"]) == pytest.approx({"wer": 50.0, "cer": 3 / 7 * 100})
    assert error_rates(["x y"], [""])["wer"] == pytest.approx(200.0)  # all-empty references: edits / 1
    with pytest.raises(ValueError, match="2 predictions but 1 references"):
        error_rates(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="unknown metric"):
        load_metric("ter")
