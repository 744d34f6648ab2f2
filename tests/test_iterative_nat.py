"""Iterative refinement NAT: denoising corruption, the toy task learned, refinement that stops when
nothing changes, batch invariance with a length beam."""

import pytest
import torch

from hf_nat import IterativeNATConfig, IterativeNATForConditionalGeneration
from hf_nat.models.nat_noise import corrupt_targets
from tests.family_checks import assert_batch_size_invariant
from tests.toy import exact_match, toy_batch, toy_sentences, toy_shape, toy_tokenizer, train_toy_model


def corrupt(targets, keep, config, generator):
    return corrupt_targets(
        targets,
        keep,
        config.corruption_token_prob,
        config.special_token_ids(),
        config.vocab_size,
        config.pad_token_id,
        generator,
    )


def test_corruption_changes_only_content_tokens():
    tokenizer = toy_tokenizer()
    config = IterativeNATConfig(**toy_shape(tokenizer), corruption_token_prob=1.0)
    generator = torch.Generator().manual_seed(0)
    targets = torch.tensor([[7, 8, 9, 10, 11, 12], [13, 14, 15, 0, 0, 0]])
    keep = targets.ne(config.pad_token_id)
    corrupted = corrupt(targets, keep, config, generator)
    assert corrupted[~keep].eq(config.pad_token_id).all()
    assert not torch.isin(corrupted[keep], torch.tensor(config.special_token_ids())).any()
    assert corrupted.ne(targets).any()
    config.corruption_token_prob = 0.0
    assert torch.equal(corrupt(targets, keep, config, generator), targets)


def test_corruption_uses_replace_repeat_and_swap():
    config = IterativeNATConfig(vocab_size=1000, corruption_token_prob=0.3)
    generator = torch.Generator().manual_seed(1)
    targets = torch.arange(10, 30).view(2, 10)
    keep = torch.ones_like(targets, dtype=torch.bool)
    seen = {"swap": 0, "repeat": 0, "replace": 0}
    for _ in range(20):
        out = corrupt(targets, keep, config, generator)
        for row in range(2):
            t, o = targets[row].tolist(), out[row].tolist()
            for i in range(10):
                if o[i] == t[i]:
                    continue
                if i + 1 < 10 and o[i] == t[i + 1] and o[i + 1] == t[i]:
                    seen["swap"] += 1
                elif i > 0 and o[i] == t[i - 1] and not (o[i - 1] == t[i]):
                    seen["repeat"] += 1
                elif o[i] not in t:
                    seen["replace"] += 1
    assert all(count > 0 for count in seen.values()), seen


@pytest.fixture(scope="module")
def toy_iterative():
    tokenizer = toy_tokenizer()
    torch.manual_seed(0)
    model = IterativeNATForConditionalGeneration(IterativeNATConfig(**toy_shape(tokenizer), train_passes=3))
    history = train_toy_model(model, lambda step: toy_batch(tokenizer, toy_sentences(64, seed=5000 + step)), 300)
    return model, tokenizer, toy_sentences(40, seed=7), history


@pytest.mark.learning
def test_iterative_nat_learns_and_refinement_helps(toy_iterative):
    model, tokenizer, sentences, history = toy_iterative
    assert history[-1]["refine"] < history[0]["refine"] and history[-1]["first"] < history[0]["first"]
    one = exact_match(model, tokenizer, sentences, max_iterations=1)
    four = exact_match(model, tokenizer, sentences, max_iterations=4)
    assert four >= 0.8 and four >= one


def test_refinement_stops_once_nothing_changes(toy_iterative):
    model, tokenizer, sentences, _ = toy_iterative
    batch = tokenizer(sentences, return_tensors="pt", padding=True)
    out = model.generate(**batch, max_iterations=10, return_dict_in_generate=True, output_history=True)
    assert out.iterations.max() <= 10 and out.iterations.float().mean() < 10
    fixed = model.generate(**batch, max_iterations=10, adaptive=False, return_dict_in_generate=True)
    assert fixed.iterations.eq(10).all()
    one = model.generate(**batch, max_iterations=1, return_dict_in_generate=True)
    assert one.iterations.eq(1).all()
    assert model.config.mask_token_id not in out.sequences.flatten().tolist()


def test_iterative_decoding_is_batch_size_invariant(toy_iterative):
    model, tokenizer, sentences, _ = toy_iterative
    assert_batch_size_invariant(model, tokenizer, sentences, length_beam=3)


@pytest.mark.parametrize("separate, reads_states", [(True, True), (True, False), (False, True)])
def test_refinement_variants_train_and_decode(separate, reads_states):
    """Besides the default (one shared decoder reading tokens), the paper's setup (own refinement
    decoder reading tokens + states) and the mixed ones learn the toy task's first steps and decode."""
    tokenizer = toy_tokenizer()
    torch.manual_seed(0)
    config = IterativeNATConfig(
        **toy_shape(tokenizer), separate_refine_decoder=separate, refine_reads_states=reads_states
    )
    model = IterativeNATForConditionalGeneration(config)
    assert (model.refine_decoder is not None) == separate
    history = train_toy_model(model, lambda step: toy_batch(tokenizer, toy_sentences(32, seed=5000 + step)), 40)
    assert history[-1]["refine"] < history[0]["refine"]
    batch = tokenizer(toy_sentences(6, seed=7), return_tensors="pt", padding=True)
    out = model.generate(**batch, max_iterations=3, return_dict_in_generate=True)
    assert out.sequences.shape[0] == 6 and out.iterations.le(3).all()
