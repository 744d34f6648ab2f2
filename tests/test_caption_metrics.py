"""Captioning metrics: CIDEr-D equals pycocoevalcap's Cider, BLEU-4 scores every reference of a prediction."""

from __future__ import annotations

import math
import random

import pytest
import sacrebleu

from hf_nat.metrics import caption_scores, corpus_scores, load_metric, pad_references

VOCAB = ["a", "b", "c", "d", "e"]


def _cider(predictions, references, **kwargs):
    return load_metric("cider").compute(predictions=predictions, references=references, **kwargs)


def _random_caption(rng: random.Random, max_len: int = 9) -> str:
    return " ".join(rng.choice(VOCAB) for _ in range(rng.randrange(0, max_len)))


def _random_corpus(rng: random.Random) -> tuple[list[str], list[list[str]]]:
    n = rng.randrange(1, 8)
    hyps = [_random_caption(rng) for _ in range(n)]
    refs = [[_random_caption(rng) for _ in range(rng.randrange(1, 6))] for _ in range(n)]
    refs[0][0] = "a b c"  # pycocoevalcap needs some reference n-gram somewhere
    return hyps, refs


@pytest.mark.parametrize("seed", range(4))
def test_cider_equals_pycocoevalcap_on_random_corpora(seed):
    cider = pytest.importorskip("pycocoevalcap.cider.cider", reason="pycocoevalcap (the reference CIDEr-D) is missing")
    rng = random.Random(seed)
    for _ in range(25):
        hyps, refs = _random_corpus(rng)
        expected, expected_per_image = cider.Cider().compute_score(
            {i: r for i, r in enumerate(refs)}, {i: [h] for i, h in enumerate(hyps)}
        )
        out = _cider(hyps, refs)
        assert out["score"] == pytest.approx(float(expected), abs=1e-6), (hyps, refs)
        assert out["scores"] == pytest.approx([float(s) for s in expected_per_image], abs=1e-6), (hyps, refs)


def test_cider_hand_computed():
    # every n-gram occurs in one of the two images: idf log 2 throughout, which cancels in the cosines;
    # image 2 ("c" against "c") matches its unigrams only: 10 * 1 / 4
    # clipping: "a a" against "a b" has unigram cosine min(2, 1) * 1 / (2 * sqrt 2), not 2 / (2 * sqrt 2)
    assert _cider(["a a", "c"], [["a b"], ["c"]])["scores"] == pytest.approx([10 / (8 * math.sqrt(2)), 2.5])
    # length penalty: "a" against seven "a"s has cosine 1 but 6 words' difference: exp(-36 / 72)
    assert _cider(["a", "c"], [["a a a a a a a"], ["c"]])["scores"] == pytest.approx([2.5 * math.exp(-0.5), 2.5])
    # two-word captions equal to their reference: orders 1 and 2 score 1, orders 3 and 4 have no n-grams
    assert caption_scores(["a b", "c d"], [["a b"], ["c d"]])["cider"] == pytest.approx(500.0)
    # the idf comes from the corpus itself: one image alone has idf 0 everywhere
    assert _cider(["a b c d"], [["a b c d"]])["score"] == 0.0


def test_identical_predictions_and_references_score_ten():
    hyps = ["a man rides a horse", "two dogs play in the snow", "a red bus on the street"]
    refs = [[h, h] for h in hyps[:2]] + [[hyps[2]]]
    assert _cider(hyps, refs)["scores"] == pytest.approx([10.0, 10.0, 10.0])
    assert caption_scores(hyps, refs) == pytest.approx({"bleu4": 100.0, "cider": 1000.0})


def test_empty_prediction_scores_zero():
    out = _cider(["", "c d"], [["a b", "a b c"], ["c d"]])
    assert out["scores"] == pytest.approx([0.0, 5.0])
    scores = caption_scores(["", "c d"], [["a b", "a b c"], ["c d"]])
    assert scores["cider"] == pytest.approx(250.0)
    assert caption_scores([""], [["a b"]])["bleu4"] == 0.0


def test_tokenisation_lower_cases_and_drops_punctuation():
    refs = [["A dog, catching a frisbee.", "The DOG catches it!"], ["Two cats sleep ."]]
    plain = [["a dog catching a frisbee", "the dog catches it"], ["two cats sleep"]]
    hyps = ["A DOG catches a frisbee!", "two cats -- sleeping"]
    expected = _cider(["a dog catches a frisbee", "two cats sleeping"], plain)
    assert _cider(hyps, refs)["scores"] == pytest.approx(expected["scores"])


def test_bleu4_uses_all_references_with_none_padding():
    rng = random.Random(0)
    for _ in range(30):
        hyps, refs = _random_corpus(rng)
        width = max(len(r) for r in refs)
        none_streams = [[r[i] if i < len(r) else None for r in refs] for i in range(width)]
        # repeating a reference changes neither the clipped counts nor the closest length: an independent padding
        repeat_streams = [[r[i] if i < len(r) else r[0] for r in refs] for i in range(width)]
        expected = sacrebleu.corpus_bleu(hyps, none_streams).score
        assert caption_scores(hyps, refs)["bleu4"] == pytest.approx(expected, abs=1e-9)
        assert sacrebleu.corpus_bleu(hyps, repeat_streams).score == pytest.approx(expected, abs=1e-9)


def test_empty_string_padding_would_change_bleu():
    # "" is a reference of length 0, the closest to a 4-word hypothesis against a 10-word reference,
    # so it would lift the brevity penalty to 1; None is skipped
    hyps, ref = ["the dog runs fast"], "the dog runs fast in the big green park today"
    assert pad_references([[ref], ["a b", "c d"]]) == [[ref, None], ["a b", "c d"]]
    alone = sacrebleu.corpus_bleu(hyps, [[ref]])
    assert sacrebleu.corpus_bleu(hyps, [[ref], [None]]).score == pytest.approx(alone.score)
    assert alone.bp < 1.0
    assert sacrebleu.corpus_bleu(hyps, [[ref], [""]]).bp == 1.0
    assert caption_scores(hyps, [[ref]])["bleu4"] == pytest.approx(alone.score)


def test_bleu4_equals_corpus_scores_with_equal_reference_counts():
    hyps = ["a cat sits on the mat", "a dog runs in the park"]
    refs = [["a cat is on the mat", "the cat sits on a mat"], ["a dog running in a park", "dogs run in parks"]]
    assert caption_scores(hyps, refs)["bleu4"] == pytest.approx(corpus_scores(hyps, refs)["bleu"])
    assert caption_scores(hyps, [r[0] for r in refs])["bleu4"] == pytest.approx(
        corpus_scores(hyps, [r[0] for r in refs])["bleu"]
    )


def test_bad_input():
    with pytest.raises(ValueError, match="2 predictions but 1 references"):
        caption_scores(["a", "b"], [["a"]])
    with pytest.raises(ValueError, match="no captions to score"):
        caption_scores([], [])
    with pytest.raises(ValueError, match="at least one reference"):
        caption_scores(["a", "b"], [["a"], []])


def test_tokenize_none_only_splits():
    # with tokenize="none" "Dog." and "dog" are different words, so nothing matches
    assert _cider(["Dog.", "c"], [["dog"], ["c"]], tokenize="none")["scores"] == pytest.approx([0.0, 2.5])
    assert _cider(["Dog.", "c"], [["dog"], ["c"]])["scores"] == pytest.approx([2.5, 2.5])
    with pytest.raises(ValueError, match="unknown tokenize"):
        _cider(["a"], [["a"]], tokenize="ptb")
