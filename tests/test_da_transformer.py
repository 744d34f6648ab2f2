"""DA-Transformer: the toy task is learned in one pass under every decoding strategy, glancing
reveals tokens on the best path, infeasible targets are counted, options are checked, Viterbi
candidates go to a rescorer. (The path DPs: tests/test_nat_dag.py; round trip, batch
invariance, the pipeline and the export: tests/test_family_contract.py.)"""

import pytest
import torch

from hf_nat import DATransformerConfig, DATransformerForConditionalGeneration
from tests.toy import exact_match, toy_ar_model, toy_batch, toy_sentences, toy_shape, toy_tokenizer, train_toy_model

STRATEGIES = ("greedy", "lookahead", "viterbi")


def toy_dag(tokenizer, **overrides) -> DATransformerForConditionalGeneration:
    return DATransformerForConditionalGeneration(
        DATransformerConfig(**toy_shape(tokenizer, **{"upsample_ratio": 2, **overrides}))
    )


def has_repeat(sentence: str) -> bool:
    words = sentence.split()
    return any(a == b for a, b in zip(words, words[1:]))


@pytest.fixture(scope="module")
def toy_da():
    torch.manual_seed(0)
    tokenizer = toy_tokenizer()
    model = toy_dag(tokenizer)
    held_out = toy_sentences(40, seed=7)

    def learned(m) -> bool:
        return all(
            exact_match(m, tokenizer, held_out, decode_strategy=s, merge_repeats=False) >= 0.9 for s in STRATEGIES
        )

    train_toy_model(
        model,
        lambda step: toy_batch(tokenizer, toy_sentences(64, seed=2000 + step)),
        1500,
        until=learned,
        min_steps=100,
    )
    return model, tokenizer, held_out


@pytest.mark.learning
def test_da_transformer_learns_the_copy_task_in_one_pass_with_every_strategy(toy_da):
    model, tokenizer, sentences = toy_da
    for strategy in STRATEGIES:
        assert exact_match(model, tokenizer, sentences, decode_strategy=strategy, merge_repeats=False) >= 0.8
        without_repeats = [s for s in sentences if not has_repeat(s)]
        assert exact_match(model, tokenizer, without_repeats, decode_strategy=strategy) >= 0.8
    out = model.generate(**tokenizer(sentences[:4], return_tensors="pt", padding=True), return_dict_in_generate=True)
    assert out.iterations.tolist() == [1, 1, 1, 1]


def test_merging_repeats_drops_a_repeated_word_only_when_asked(toy_da):
    model, tokenizer, sentences = toy_da
    batch = tokenizer(sentences, return_tensors="pt", padding=True)
    merged, kept = model.generate(**batch), model.generate(**batch, merge_repeats=False)
    assert merged.ne(0).sum() <= kept.ne(0).sum()
    for row in range(len(sentences)):
        words = tokenizer.decode(merged[row], skip_special_tokens=True).split()
        assert not any(a == b for a, b in zip(words, words[1:]))


def test_viterbi_candidates_go_to_a_rescorer_and_other_strategies_have_one(toy_da):
    model, tokenizer, sentences = toy_da
    batch = tokenizer(sentences[:6], return_tensors="pt", padding=True)
    best = model.generate(**batch, decode_strategy="viterbi", return_dict_in_generate=True)
    many = model.generate(**batch, decode_strategy="viterbi", num_candidates=4, return_dict_in_generate=True)
    assert torch.equal(best.sequences, many.sequences)  # the best length ranks first either way
    assert torch.allclose(best.sequences_scores, many.sequences_scores)
    rescored = model.generate(**batch, decode_strategy="viterbi", num_candidates=4, rescorer=toy_ar_model(tokenizer))
    assert rescored.shape[0] == 6
    with pytest.raises(ValueError, match="num_candidates > 1 needs decode_strategy='viterbi'"):
        model.generate(**batch, decode_strategy="lookahead", num_candidates=2)
    with pytest.raises(ValueError, match="decode_strategy must be one of"):
        model.generate(**batch, decode_strategy="beam")
    with pytest.raises(ValueError, match="decode_beta"):
        model.generate(**batch, decode_beta=-1.0)


def test_glancing_reveals_tokens_at_best_path_vertices_and_anneals():
    torch.manual_seed(0)
    tokenizer = toy_tokenizer()
    model = toy_dag(tokenizer, glancing=True, glancing_anneal_steps=20)
    history = train_toy_model(model, lambda step: toy_batch(tokenizer, toy_sentences(32, seed=3000 + step)), 30)
    assert int(model.glancing_updates) == 30 and model.glancing_ratio() == pytest.approx(0.3)
    assert history[0]["revealed"] > 0  # an untrained first pass errs everywhere
    assert history[-1]["dag"] < history[0]["dag"]


def test_targets_longer_than_their_graph_are_left_out_and_counted():
    torch.manual_seed(0)
    tokenizer = toy_tokenizer()
    model = toy_dag(tokenizer, upsample_ratio=1)
    enc = tokenizer(["w1", "w1 w2 w3"], text_target=["w1 w2 w3 w4", "w1"], return_tensors="pt", padding=True)
    out = model(**enc)
    assert out.losses["infeasible"] == 1 and torch.isfinite(out.loss)
    out.loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters() if p.requires_grad)
    with_no_path = tokenizer(["w1"], text_target=["w1 w2 w3 w4"], return_tensors="pt")
    assert model(**with_no_path).loss == 0  # nothing to learn from, and no NaN


def test_a_source_whose_graph_exceeds_the_positions_is_a_clear_error():
    tokenizer = toy_tokenizer()
    model = toy_dag(tokenizer, upsample_ratio=4).eval()  # 32 positions: sources of at most 8 tokens
    long = tokenizer([" ".join(["w1"] * 12)], return_tensors="pt")
    with pytest.raises(ValueError, match="exceeds the model's 8 source positions"):
        model.generate(**long)
    with pytest.raises(ValueError, match="transition_heads"):
        DATransformerConfig(**toy_shape(tokenizer), transition_heads=3)
