"""Levenshtein Transformer: the toy task learned, the same result at batch size 1 and 64,
refinement of a given draft, the insertion penalty."""

import pytest
import torch

from hf_nat import LevenshteinConfig, LevenshteinTransformerForConditionalGeneration
from tests.family_checks import assert_batch_size_invariant, assert_insertion_penalty_lengthens
from tests.toy import exact_match, toy_batch, toy_sentences, toy_shape, toy_tokenizer, train_toy_model


@pytest.fixture(scope="module")
def toy_levt():
    tokenizer = toy_tokenizer()
    torch.manual_seed(0)
    model = LevenshteinTransformerForConditionalGeneration(LevenshteinConfig(**toy_shape(tokenizer), max_insertions=8))
    history = train_toy_model(model, lambda step: toy_batch(tokenizer, toy_sentences(64, seed=10000 + step)), 400)
    return model, tokenizer, toy_sentences(40, seed=7), history


@pytest.mark.learning
def test_levt_learns_every_head(toy_levt):
    model, tokenizer, sentences, history = toy_levt
    for head in ("insertion", "tokens", "deletion"):
        assert history[-1][head] < history[0][head], head
    assert exact_match(model, tokenizer, sentences) >= 0.8
    out = model.generate(**tokenizer(sentences, return_tensors="pt", padding=True), return_dict_in_generate=True)
    assert 1 <= out.iterations.float().mean() < 10  # stops once a round changes nothing
    special = set(model.config.special_token_ids()) - {model.config.eos_token_id, model.config.pad_token_id}
    assert not special & set(out.sequences.flatten().tolist())


def test_levt_batch_of_one_matches_the_batch(toy_levt):
    model, tokenizer, sentences, _ = toy_levt
    assert_batch_size_invariant(model, tokenizer, sentences, singles=10)


def test_levt_refines_a_given_draft(toy_levt):
    model, tokenizer, sentences, _ = toy_levt
    batch = tokenizer(sentences, return_tensors="pt", padding=True)
    # A correct draft is a fixed point: one round that changes nothing, the draft returned.
    correct = tokenizer(sentences, return_tensors="pt", padding=True)["input_ids"]
    projections = []
    hook = model.lm_head.register_forward_hook(lambda module, inputs, output: projections.append(output.shape))
    try:
        out = model.generate(**batch, decoder_input_ids=correct, return_dict_in_generate=True)
    finally:
        hook.remove()
    assert tokenizer.batch_decode(out.sequences, skip_special_tokens=True) == sentences
    assert out.iterations.eq(1).all()
    # The draft's tokens are scored once by the token head; a round that inserts nothing fills nothing.
    assert len(projections) == 1
    assert (out.sequences_scores < 0).all() and out.sequences_scores.isfinite().all()
    # A draft is where refinement starts: one round from it differs from one round from nothing.
    drafts = tokenizer([" ".join(s.split()[1:]) for s in sentences], return_tensors="pt", padding=True)["input_ids"]
    assert not torch.equal(
        model.generate(**batch, decoder_input_ids=drafts, max_iterations=1), model.generate(**batch, max_iterations=1)
    )
    with pytest.raises(ValueError, match="decoder_input_ids"):
        model.generate(**batch, decoder_input_ids=drafts[:3])


def test_levt_without_its_own_insertion_decoder_trains_saves_and_loads(tmp_path):
    tokenizer = toy_tokenizer()
    torch.manual_seed(0)
    model = LevenshteinTransformerForConditionalGeneration(
        LevenshteinConfig(**toy_shape(tokenizer), max_insertions=8, insertion_decoder_layers=0)
    )
    assert model.insertion_decoder is None
    history = train_toy_model(model, lambda step: toy_batch(tokenizer, toy_sentences(32, seed=10000 + step)), 20)
    assert history[-1]["insertion"] < history[0]["insertion"]
    model.save_pretrained(tmp_path)
    loaded = LevenshteinTransformerForConditionalGeneration.from_pretrained(tmp_path)
    batch = tokenizer(toy_sentences(4, seed=7), return_tensors="pt", padding=True)
    assert torch.equal(loaded.generate(**batch), model.generate(**batch))


def test_insertion_penalty_lengthens_outputs(toy_levt):
    model, tokenizer, sentences, _ = toy_levt
    assert_insertion_penalty_lengthens(model, tokenizer, sentences[:8])
