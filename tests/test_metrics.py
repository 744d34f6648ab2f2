"""The offline evaluate metrics must match sacrebleu exactly."""

from __future__ import annotations

import gzip
import os
import random
import subprocess
import sys

import pytest
import sacrebleu

from hf_nat.metrics import corpus_scores, load_metric, normalize_references
from tests.conftest import MULTI30K

VAL_DE = str(MULTI30K / "val.de.gz")


def _read_lines(path: str, n: int) -> list[str]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [line.rstrip("\n") for _, line in zip(range(n), f)]


def _perturb(sentence: str, rng: random.Random) -> str:
    """Drop, duplicate or swap words so hypotheses differ from references."""
    words = sentence.split()
    if len(words) > 3:
        i = rng.randrange(len(words) - 1)
        op = rng.choice(["drop", "dup", "swap", "keep"])
        if op == "drop":
            del words[i]
        elif op == "dup":
            words.insert(i, words[i])
        elif op == "swap":
            words[i], words[i + 1] = words[i + 1], words[i]
    return " ".join(words)


@pytest.fixture(scope="module")
def refs_hyps() -> tuple[list[str], list[str]]:
    if os.path.exists(VAL_DE):
        refs = _read_lines(VAL_DE, 40)
    else:  # keeps the test runnable outside the shared machine
        refs = [f"Ein Mann Nummer {i} sitzt auf einer Bank im Park." for i in range(40)]
    rng = random.Random(0)
    return refs, [_perturb(r, rng) for r in refs]


def test_loads_with_hub_offline() -> None:
    # A fresh interpreter, so HF_HUB_OFFLINE is read at import as in real use.
    code = (
        "from hf_nat.metrics import corpus_scores;"
        "print(corpus_scores(['ein Hund spielt im Park .'], ['ein Hund spielt im Park .'])['bleu'])"
    )
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert float(out.stdout.strip().splitlines()[-1]) == pytest.approx(100.0)
    assert load_metric("sacrebleu") is load_metric("SacreBLEU")


def test_bleu_matches_sacrebleu(refs_hyps: tuple[list[str], list[str]]) -> None:
    refs, hyps = refs_hyps
    out = load_metric("sacrebleu").compute(predictions=hyps, references=[[r] for r in refs])
    expected = sacrebleu.corpus_bleu(hyps, [refs])
    assert out["score"] == expected.score
    assert out["counts"] == expected.counts
    assert out["totals"] == expected.totals
    assert out["bp"] == expected.bp
    assert (out["sys_len"], out["ref_len"]) == (expected.sys_len, expected.ref_len)
    assert 0.0 < out["score"] < 100.0


def test_bleu_kwargs_pass_through(refs_hyps: tuple[list[str], list[str]]) -> None:
    refs, hyps = refs_hyps
    hyps = [h.lower() for h in hyps]
    out = load_metric("bleu").compute(predictions=hyps, references=[[r] for r in refs], lowercase=True, tokenize="intl")
    expected = sacrebleu.corpus_bleu(hyps, [refs], lowercase=True, tokenize="intl")
    assert out["score"] == expected.score


def test_chrf_matches_sacrebleu(refs_hyps: tuple[list[str], list[str]]) -> None:
    refs, hyps = refs_hyps
    out = load_metric("chrf").compute(predictions=hyps, references=[[r] for r in refs])
    assert out["score"] == sacrebleu.corpus_chrf(hyps, [refs]).score
    assert (out["char_order"], out["word_order"], out["beta"]) == (6, 0, 2)


def test_corpus_scores_flat_and_nested(refs_hyps: tuple[list[str], list[str]]) -> None:
    refs, hyps = refs_hyps
    flat = corpus_scores(hyps, refs)
    nested = corpus_scores(hyps, [[r] for r in refs])
    assert flat == nested
    assert flat["bleu"] == sacrebleu.corpus_bleu(hyps, [refs]).score
    assert flat["chrf"] == sacrebleu.corpus_chrf(hyps, [refs]).score


def test_multi_reference(refs_hyps: tuple[list[str], list[str]]) -> None:
    refs, hyps = refs_hyps
    rng = random.Random(1)
    refs2 = [_perturb(r, rng) for r in refs]
    scores = corpus_scores(hyps, [[a, b] for a, b in zip(refs, refs2)])
    assert scores["bleu"] == sacrebleu.corpus_bleu(hyps, [refs, refs2]).score
    assert scores["chrf"] == sacrebleu.corpus_chrf(hyps, [refs, refs2]).score
    assert scores["bleu"] >= corpus_scores(hyps, refs)["bleu"]


def test_errors() -> None:
    with pytest.raises(ValueError, match="unknown metric"):
        load_metric("rouge")
    with pytest.raises(ValueError, match="predictions"):
        corpus_scores(["a"], ["a", "b"])
    assert normalize_references(["x", ["y", "z"]]) == [["x"], ["y", "z"]]
