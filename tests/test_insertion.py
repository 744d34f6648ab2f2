"""Insertion Transformer: the binary-tree loss learns a small fixed set of pairs and decodes it in
about log2(n) rounds, the uniform loss trains, batch invariance, round trip and export.

(Generalising on the copy task needs content-based alignment of slots with the source, which these
tiny models do not find within a test's budget: a fixed set is learned in seconds.)"""

import math

import pytest
import torch

from hf_nat import InsertionTransformerConfig, InsertionTransformerForConditionalGeneration
from tests.family_checks import (assert_batch_size_invariant, assert_insertion_penalty_lengthens,
                                 assert_round_trip_pipeline_and_export)
from tests.toy import exact_match, toy_batch, toy_sentences, toy_shape, toy_tokenizer, train_toy_model


FIXED = toy_sentences(8, seed=21, min_len=5, max_len=9)


def train_toy_insertion(loss: str, steps: int = 500, until=None):
    tokenizer = toy_tokenizer()
    torch.manual_seed(0)
    model = InsertionTransformerForConditionalGeneration(
        InsertionTransformerConfig(**toy_shape(tokenizer), insertion_loss=loss))
    history = train_toy_model(model, lambda step: toy_batch(tokenizer, FIXED * 8), steps, until=until,
                              check_every=50)
    return model, history


def share_within_log2_rounds(model, tokenizer, sentences: list[str]) -> float:
    """Share of sentences decoded in a balanced order: a sentence of n tokens takes about
    log2(n) + 1 rounds, plus one that inserts nothing."""
    out = model.generate(**tokenizer(sentences, return_tensors="pt", padding=True), return_dict_in_generate=True)
    lengths = out.sequences.ne(model.config.pad_token_id).sum(1) - 1
    bound = torch.tensor([math.ceil(math.log2(n + 1)) + 2 for n in lengths.tolist()])
    return (out.iterations <= bound).float().mean().item()


def learned_balanced_order(model, tokenizer=toy_tokenizer()) -> bool:
    """7 of the 8 pairs reproduced, in about log2(n) rounds each."""
    return (exact_match(model, tokenizer, FIXED) >= 0.875
            and share_within_log2_rounds(model, tokenizer, FIXED) >= 0.875)


@pytest.fixture(scope="module")
def toy_tree():
    # With a constant learning rate the share of pairs reproduced swings between 0.5 and 1 from
    # update to update, and when it first reaches 7/8 depends on the CPU's kernels (measured:
    # 300-800 updates with AVX2 or plain code): train until it does.
    model, history = train_toy_insertion("binary_tree", steps=2000, until=learned_balanced_order)
    return model, toy_tokenizer(), FIXED, history


@pytest.mark.learning
def test_binary_tree_loss_learns_in_about_log2_rounds(toy_tree):
    model, tokenizer, sentences, history = toy_tree
    assert history[-1]["insertion"] < history[0]["insertion"]
    assert len(history) < 2000, "the tree loss did not learn the pairs in a balanced order within 2000 updates"
    assert exact_match(model, tokenizer, sentences) >= 0.75
    assert share_within_log2_rounds(model, tokenizer, sentences) >= 0.85


def test_uniform_loss_trains_too():
    model, history = train_toy_insertion("uniform", steps=60)
    assert history[-1]["insertion"] < history[0]["insertion"]
    with pytest.raises(ValueError, match="insertion_loss"):
        InsertionTransformerConfig(insertion_loss="left_to_right")


def test_tree_weights_centre_on_the_middle_of_each_span():
    tokenizer = toy_tokenizer()
    torch.manual_seed(0)
    model = InsertionTransformerForConditionalGeneration(InsertionTransformerConfig(**toy_shape(tokenizer),
                                                                                    tree_temperature=0.1))
    sentences = toy_sentences(8, seed=3)
    batch = toy_batch(tokenizer, sentences)
    # With a tiny temperature the loss is that of the middle token(s) only: it stays finite and
    # differs from the uniform loss on the same subsample.
    tree = model(**batch, generator=torch.Generator().manual_seed(5)).loss
    model.config.insertion_loss = "uniform"
    uniform = model(**batch, generator=torch.Generator().manual_seed(5)).loss
    assert torch.isfinite(tree) and not torch.isclose(tree, uniform)


def test_insertion_batch_invariance_round_trip_and_export(toy_tree, tmp_path):
    model, tokenizer, sentences, _ = toy_tree
    assert_batch_size_invariant(model, tokenizer, sentences)
    assert_round_trip_pipeline_and_export(model, tokenizer, sentences[:6], tmp_path, "InsertionTransformerModel",
                                          {"max_iterations": 3}, {"modeling_insertion.py", "nat_editing.py"})


def test_insertion_penalty_lengthens_outputs(toy_tree):
    model, tokenizer, sentences, _ = toy_tree
    assert_insertion_penalty_lengthens(model, tokenizer, sentences[:8])
