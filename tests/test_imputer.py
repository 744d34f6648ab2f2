"""The Imputer: block-wise commitment, the toy task learned at 1..4 steps, batch invariance, round trip."""

import pytest
import torch
from transformers import AutoModelForSeq2SeqLM

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
    losses = train_toy_model(model, lambda step: toy_batch(tokenizer, toy_sentences(64, seed=3000 + step)), 2500,
                             until=lambda m: exact_match(m, tokenizer, sentences, max_iterations=1) >= 0.95)
    return model, tokenizer, sentences, losses


@pytest.mark.learning
def test_imputer_learns_the_copy_task_at_every_step_count(toy_imputer):
    model, tokenizer, sentences, losses = toy_imputer
    assert losses[-1]["impute"] < losses[0]["impute"] and losses[-1]["ctc"] < losses[0]["ctc"]
    assert len(losses) < 2500, "the Imputer did not learn the copy task within 2500 updates"
    for steps in (1, 2, 4):
        assert exact_match(model, tokenizer, sentences, max_iterations=steps) >= 0.7, steps
    out = model.generate(**tokenizer(sentences[:3], return_tensors="pt", padding=True), max_iterations=4,
                         return_dict_in_generate=True, output_history=True)
    assert out.iterations.tolist() == [4, 4, 4] and len(out.history) == 4
    assert model.config.mask_token_id not in out.sequences.flatten().tolist()


def test_imputer_decoding_is_batch_size_invariant(toy_imputer):
    model, tokenizer, sentences, _ = toy_imputer
    batched = model.generate(**tokenizer(sentences, return_tensors="pt", padding=True), max_iterations=2)
    texts = tokenizer.batch_decode(batched, skip_special_tokens=True)
    single = [tokenizer.decode(model.generate(**tokenizer([s], return_tensors="pt"), max_iterations=2)[0],
                               skip_special_tokens=True) for s in sentences[:8]]
    assert texts[:8] == single


def test_imputer_round_trips_through_the_auto_classes(toy_imputer, tmp_path):
    model, tokenizer, sentences, _ = toy_imputer
    model.save_pretrained(tmp_path)
    loaded = AutoModelForSeq2SeqLM.from_pretrained(tmp_path)
    assert isinstance(loaded, ImputerForConditionalGeneration)
    assert loaded.generation_config.max_iterations == 4
    batch = tokenizer(sentences[:5], return_tensors="pt", padding=True)
    assert torch.equal(loaded.generate(**batch), model.generate(**batch))


def test_imputer_export_loads_where_hf_nat_is_not_importable(toy_imputer, tmp_path):
    from tests.test_export import run_without_hf_nat
    from training import export

    model, tokenizer, sentences, _ = toy_imputer
    model.save_pretrained(tmp_path / "run")
    tokenizer.save_pretrained(tmp_path / "run")
    folder = export.export_model(tmp_path / "run", tmp_path / "toy_imputer")
    assert {"modeling_imputer.py", "modeling_ctc.py", "ctc_alignment.py"} <= {p.name for p in folder.iterdir()}
    result = run_without_hf_nat(folder, sentences[:6], {"max_iterations": 2}, tmp_path)
    assert result["base_class"] == "ImputerModel"

    def translate(**options):
        ids = model.generate(**tokenizer(sentences[:6], return_tensors="pt", padding=True), **options)
        return tokenizer.batch_decode(ids, skip_special_tokens=True)

    assert result["defaults"] == translate()
    assert result["options"] == translate(max_iterations=2) == result["pipeline"]
