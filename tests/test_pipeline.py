"""The "translation" pipeline after ``import hf_nat``."""

import pytest
from transformers import pipeline

import hf_nat  # noqa: F401  (registers the pipeline)


@pytest.fixture(scope="module")
def translator(toy):
    return pipeline("translation", model=toy.model, tokenizer=toy.tokenizer, max_iterations=4, length_beam=1)


def test_string_and_batch_give_real_translations(translator, toy):
    batch = toy.test_sentences[:6]
    # The pipeline's contract is the model's own decoding (which copies most sentences exactly).
    direct = toy.model.generate(
        **toy.tokenizer(batch, return_tensors="pt", padding=True), max_iterations=4, length_beam=1
    )
    expected = toy.tokenizer.batch_decode(direct, skip_special_tokens=True)
    assert sum(e == s for e, s in zip(expected, batch)) >= 4
    assert translator(batch[0]) == [{"translation_text": expected[0]}]
    results = translator(batch, batch_size=4)
    assert [r["translation_text"] for r in results] == expected


def test_mixed_length_batch_equals_each_sentence_alone(translator, toy):
    sentences = sorted(toy.test_sentences[:10], key=len) + ["w1"]
    alone = [translator(s, length_beam=3)[0]["translation_text"] for s in sentences]
    together = [r["translation_text"] for r in translator(sentences, batch_size=len(sentences), length_beam=3)]
    assert together == alone


def test_nat_options_pass_through(translator, toy):
    sentences = toy.test_sentences[:8]
    for options in ({"max_iterations": 1, "length_beam": 2}, {"max_iterations": 3, "length_beam": 4}):
        direct = toy.model.generate(**toy.tokenizer(sentences, return_tensors="pt", padding=True), **options)
        expected = toy.tokenizer.batch_decode(direct, skip_special_tokens=True)
        assert [r["translation_text"] for r in translator(sentences, batch_size=8, **options)] == expected
    with pytest.raises(ValueError, match="unsupported option"):
        translator(toy.test_sentences[0], not_an_option=1)


def test_empty_whitespace_and_unknown_input(translator):
    results = translator(["", "   ", "w1 zzz w2"], batch_size=3)
    assert results[0]["translation_text"] == "" and results[1]["translation_text"] == ""
    assert isinstance(results[2]["translation_text"], str)  # unknown word became <unk>, no crash


def test_overlong_input_is_truncated_with_warning_or_rejected(translator):
    too_long = " ".join(["w1"] * 60)
    with pytest.warns(UserWarning, match="truncated"):
        out = translator(too_long)
    assert isinstance(out[0]["translation_text"], str)
    with pytest.raises(ValueError, match="positions"):
        translator(too_long, truncation=False)


def test_non_string_input_is_a_clear_error(translator):
    with pytest.raises(TypeError, match="string"):
        translator(42)
