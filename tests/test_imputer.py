"""The Imputer: block-wise commitment, the toy task learned at 1..4 steps. (Round trip, batch
invariance, the pipeline and the export: tests/test_family_contract.py.)"""

import pytest
import torch

from hf_nat import ImputerConfig, ImputerForConditionalGeneration
from hf_nat.models.modeling_imputer import _best_open_per_block
from tests.toy import exact_match, toy_batch, toy_sentences, toy_shape, toy_tokenizer, train_toy_model


def test_each_block_commits_its_most_confident_open_position():
    scores = torch.tensor([[0.1, 0.9, 0.3, 0.2, 0.8]])
    committed = torch.tensor([[False, True, False, False, False]])
    chosen = _best_open_per_block(scores, committed, block=2)
    assert chosen.tolist() == [[True, False, True, False, True]]
    assert not _best_open_per_block(scores, torch.ones_like(committed), block=2).any()


@pytest.fixture(scope="module")
def toy_imputer():
    torch.manual_seed(0)
    tokenizer = toy_tokenizer()
    model = ImputerForConditionalGeneration(ImputerConfig(**toy_shape(tokenizer, upsample_ratio=2)))
    sentences = toy_sentences(40, seed=7)
    # CTC models sit on a plateau, then learn fast; how long the plateau lasts depends on the CPU's
    # kernels (measured: 300-400 updates with AVX2, up to 800 with plain code), so train until the
    # one-step decoding copies almost every held-out sentence.
    losses = train_toy_model(
        model,
        lambda step: toy_batch(tokenizer, toy_sentences(64, seed=3000 + step)),
        2500,
        until=lambda m: exact_match(m, tokenizer, sentences, max_iterations=1) >= 0.95,
    )
    return model, tokenizer, sentences, losses


@pytest.mark.learning
def test_imputer_learns_the_copy_task_at_every_step_count(toy_imputer):
    model, tokenizer, sentences, losses = toy_imputer
    assert losses[-1]["impute"] < losses[0]["impute"] and losses[-1]["ctc"] < losses[0]["ctc"]
    assert len(losses) < 2500, "the Imputer did not learn the copy task within 2500 updates"
    for steps in (1, 2, 4):
        assert exact_match(model, tokenizer, sentences, max_iterations=steps) >= 0.7, steps
    out = model.generate(
        **tokenizer(sentences[:3], return_tensors="pt", padding=True),
        max_iterations=4,
        return_dict_in_generate=True,
        output_history=True,
    )
    assert out.iterations.tolist() == [4, 4, 4] and len(out.history) == 4
    assert model.config.mask_token_id not in out.sequences.flatten().tolist()
