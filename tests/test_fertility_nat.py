"""Vanilla NAT with fertility: labels from the aligner, the toy task learned, noisy parallel decoding,
the copy variants, REINFORCE fine-tuning, clear errors."""

import random

import pytest
import torch

from hf_nat import FertilityNATConfig, FertilityNATForConditionalGeneration
from hf_nat.data import Seq2SeqCollator
from hf_nat.data.fertility import corpus_fertilities, subword_fertilities
from tests.family_checks import assert_batch_size_invariant
from tests.toy import (
    WORDS,
    exact_match,
    toy_ar_model,
    toy_batch,
    toy_sentences,
    toy_shape,
    toy_tokenizer,
    train_toy_model,
)


def rule_fertility(word: str) -> int:
    """The toy task's fertility: w0, w5, w10, w15 vanish, w1, w6, w11 double, the rest are copied."""
    k = int(word[1:])
    return 0 if k % 5 == 0 else 2 if k % 5 == 1 else 1


def rule_target(source: str) -> str:
    return " ".join(w for w in source.split() for _ in range(rule_fertility(w)))


def rule_batch(tokenizer, sentences: list[str]) -> dict:
    """Source → rule target, with the rule's fertilities as labels (eos: 0)."""
    enc = tokenizer(sentences, text_target=[rule_target(s) for s in sentences])
    rows = [
        {"input_ids": s, "labels": t, "fertility": [rule_fertility(w) for w in src.split()] + [0]}
        for s, t, src in zip(enc["input_ids"], enc["labels"], sentences)
    ]
    return Seq2SeqCollator(tokenizer.pad_token_id)(rows)


def test_subword_fertilities_sum_to_the_target_length_and_fill_unaligned_words():
    # Source words: [0] [1, 2] [3]; target words: [0] [1] [2, 3] [4]; eos at 4 / 5.
    source_words, target_words = [[0], [1, 2], [3]], [[0], [1], [2, 3], [4]]
    fertility, unaligned = subword_fertilities([(0, 0), (1, 2), (2, 3)], source_words, target_words, 5)
    # Target word 1 is unaligned: it goes with word 0 (the previous aligned one). Target word 2
    # (two tokens) spreads over source word 1's two tokens.
    assert fertility == [2, 1, 1, 1, 0] and unaligned == 1
    assert sum(fertility) == 5
    first_unaligned, _ = subword_fertilities([(2, 1)], source_words, [[0], [1]], 5)
    assert first_unaligned == [0, 0, 0, 2, 0]  # nothing before: the next aligned word's source
    nothing, missing = subword_fertilities([], source_words, target_words, 5)
    assert sum(nothing) == 5 and missing == 4
    assert subword_fertilities([], source_words, [], 5) == ([0] * 5, 0)


def distinct_word_sentences(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.sample(WORDS, rng.randint(3, 7))) for _ in range(n)]


def test_eflomal_fertilities_of_a_toy_corpus():
    tokenizer = toy_tokenizer()
    sources = distinct_word_sentences(2000, seed=11)
    # Deleting words only: the aligner finds every fertility.
    dropped = [" ".join(w for w in s.split() if rule_fertility(w)) for s in sources]
    pairs = [(s, t) for s, t in zip(sources, dropped) if t]
    fertilities, stats = corpus_fertilities([s for s, _ in pairs], [t for _, t in pairs], tokenizer)
    assert fertilities == [[min(rule_fertility(w), 1) for w in s.split()] + [0] for s, _ in pairs]
    assert stats["unaligned_target_words"] == 0 and stats["sentences"] == len(pairs)
    # With doubled words too, fertilities still sum to every target length, and most are right
    # (eflomal's sampler is seeded from /dev/urandom: the share varies a little from run to run).
    pairs = [(s, rule_target(s)) for s in sources if rule_target(s)]
    fertilities, _ = corpus_fertilities([s for s, _ in pairs], [t for _, t in pairs], tokenizer)
    assert [sum(f) for f in fertilities] == [len(t.split()) for _, t in pairs]
    expected = [[rule_fertility(w) for w in s.split()] + [0] for s, _ in pairs]
    right = sum(a == b for f, e in zip(fertilities, expected) for a, b in zip(f, e))
    assert right / sum(len(e) for e in expected) >= 0.7


def toy_fertility_model(**overrides) -> FertilityNATForConditionalGeneration:
    torch.manual_seed(0)
    return FertilityNATForConditionalGeneration(FertilityNATConfig(**toy_shape(toy_tokenizer(), **overrides)))


def held_out() -> list[str]:
    return [s for s in toy_sentences(60, seed=7) if rule_target(s)][:40]


def rule_exact_match(model, tokenizer, sentences, **options) -> float:
    out = model.generate(**tokenizer(sentences, return_tensors="pt", padding=True), **options)
    hyps = tokenizer.batch_decode(out, skip_special_tokens=True)
    return sum(h == rule_target(s) for h, s in zip(hyps, sentences)) / len(sentences)


@pytest.fixture(scope="module")
def toy_fertility():
    tokenizer = toy_tokenizer()
    model = toy_fertility_model()
    history = train_toy_model(model, lambda step: rule_batch(tokenizer, toy_sentences(64, seed=6000 + step)), 300)
    return model, tokenizer, held_out(), history


@pytest.mark.learning
def test_fertility_nat_learns_fertilities_and_tokens(toy_fertility):
    model, tokenizer, sentences, history = toy_fertility
    assert history[-1]["fertility"] < 0.1 * history[0]["fertility"]
    assert rule_exact_match(model, tokenizer, sentences) >= 0.8
    out = model.generate(**tokenizer(sentences[:4], return_tensors="pt", padding=True), return_dict_in_generate=True)
    assert out.iterations.tolist() == [1, 1, 1, 1]


def test_noisy_parallel_decoding(toy_fertility):
    model, tokenizer, sentences, _ = toy_fertility
    batch = tokenizer(sentences, return_tensors="pt", padding=True)
    argmax = model.generate(**batch, return_dict_in_generate=True)
    npd = model.generate(**batch, npd_samples=10, return_dict_in_generate=True)
    # The argmax fertilities are one of the candidates, so the chosen score can only rise.
    assert (npd.sequences_scores >= argmax.sequences_scores - 1e-5).all()
    again = model.generate(**batch, npd_samples=10)
    assert torch.equal(again, npd.sequences)  # deterministic for a given npd_seed
    assert_batch_size_invariant(model, tokenizer, sentences, singles=6, npd_samples=10)
    with pytest.MonkeyPatch.context() as patch:  # candidates projected a few rows at a time: same result
        patch.setattr("hf_nat.models.nat_generation._LOGITS_PER_CHUNK", 1000)
        assert torch.equal(model.generate(**batch, npd_samples=10), npd.sequences)
    # Repeated fertility samples are decoded once: the candidates equal decoding every sample.
    with torch.no_grad():
        encoder = model.model.encode(batch["input_ids"], batch["attention_mask"])
        options = {**model.nat_generation_defaults, "npd_samples": 10}
        fertility = model._decoding_fertilities(encoder, options)
        index = torch.arange(len(sentences)).repeat_interleave(10)
        every = model._decode_fertilities(encoder.select(index), fertility, index)
        state = model._nat_initial_state(encoder, torch.zeros(len(sentences), dtype=torch.bool), options)
    assert torch.unique(torch.cat([index[:, None], fertility], 1), dim=0).shape[0] < fertility.shape[0]
    assert torch.equal(state.tokens, every.tokens) and torch.equal(state.source_index, index)
    torch.testing.assert_close(state.scores, every.scores)
    rescored = model.generate(**batch, npd_samples=10, rescorer=toy_ar_model(tokenizer, seed=3))
    assert rescored.shape[0] == len(sentences)
    with pytest.raises(ValueError, match="npd_samples"):
        model.generate(**batch, npd_samples=0)


@pytest.mark.learning
def test_copy_variants_learn_the_copy_task_and_refuse_npd():
    tokenizer = toy_tokenizer()
    sentences = toy_sentences(40, seed=7)
    for mode in ("uniform_copy", "soft_copy"):
        model = toy_fertility_model(decoder_input=mode)
        assert model.fertility_head is None and model.model.length_predictor is not None
        train_toy_model(model, lambda step: toy_batch(tokenizer, toy_sentences(64, seed=7000 + step)), 200)
        assert exact_match(model, tokenizer, sentences, length_beam=3) >= 0.8, mode
        with pytest.raises(ValueError, match="length_beam"):
            model.generate(**tokenizer(sentences[:2], return_tensors="pt", padding=True), npd_samples=4)


def test_reinforce_trains_the_fertility_predictor(toy_fertility):
    model, tokenizer, sentences, _ = toy_fertility
    student = toy_fertility_model(fertility_loss_weight=0.0, fertility_reinforce_weight=1.0, reinforce_samples=8)
    student.load_state_dict(model.state_dict())
    torch.nn.init.zeros_(student.fertility_head.weight)  # forget the fertilities, keep the decoder
    torch.nn.init.zeros_(student.fertility_head.bias)
    for name, parameter in student.named_parameters():
        parameter.requires_grad = name.startswith("fertility_head")
    before = rule_exact_match(student.eval(), tokenizer, sentences)
    history = train_toy_model(
        student, lambda step: rule_batch(tokenizer, toy_sentences(64, seed=8000 + step)), 150, lr=3e-2
    )
    assert all("reinforce" in h for h in history)
    assert rule_exact_match(student, tokenizer, sentences) > before + 0.3


def test_missing_or_wrong_fertility_labels_are_clear_errors(toy_fertility):
    model, tokenizer, sentences, _ = toy_fertility
    batch = rule_batch(tokenizer, sentences[:3])
    with pytest.raises(ValueError, match="hf-nat align"):
        model(**{k: v for k, v in batch.items() if k != "fertility"})
    wrong = dict(batch, fertility=batch["fertility"].clone())
    wrong["fertility"][0, 0] += 1
    with pytest.raises(ValueError, match="do not sum"):
        model(**wrong)
    with pytest.raises(ValueError, match="another tokenizer"):
        model(**dict(batch, fertility=batch["fertility"][:, :-1]))


def test_glancing_option_trains(toy_fertility):
    tokenizer = toy_tokenizer()
    model = toy_fertility_model(glancing=True, glancing_anneal_steps=10)
    history = train_toy_model(model, lambda step: rule_batch(tokenizer, toy_sentences(32, seed=9000 + step)), 20)
    assert int(model.glancing_updates) == 20 and history[-1]["tokens"] < history[0]["tokens"]
