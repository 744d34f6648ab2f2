"""CMLM / Mask-Predict: learning, iterations and adaptive stop, tied weights and saved decoding
defaults, masking. (Round trip, batch invariance, special tokens, the pipeline, the export and bad
input: tests/test_family_contract.py and tests/test_bad_inputs.py.)"""

import pytest
import torch
from transformers import AutoModelForSeq2SeqLM

import hf_nat
from hf_nat.models.modeling_nat import compact_targets
from tests.toy import exact_match, toy_batch, toy_config, toy_sentences, toy_tokenizer


@pytest.mark.learning
def test_learns_copy_task(toy):
    for iterations in (1, 4):
        assert (
            exact_match(toy.model, toy.tokenizer, toy.test_sentences, max_iterations=iterations, length_beam=1) >= 0.9
        )


def test_outputs_respect_iterations(toy):
    batch = toy.tokenizer(toy.test_sentences, return_tensors="pt", padding=True)
    out = toy.model.generate(
        **batch, max_iterations=5, length_beam=2, return_dict_in_generate=True, output_history=True
    )
    config = toy.model.config
    content = out.sequences.masked_fill(out.sequences.eq(config.eos_token_id), config.pad_token_id)
    assert ((out.iterations >= 1) & (out.iterations <= 5)).all()
    assert 1 <= len(out.history) <= 5
    assert torch.equal(out.history[-1], content[:, : out.history[-1].shape[1]])


def test_adaptive_stop_ends_unchanged_rows_early(toy):
    batch = toy.tokenizer(toy.test_sentences[:8], return_tensors="pt", padding=True)
    full = toy.model.generate(**batch, max_iterations=6, length_beam=1, adaptive=False, return_dict_in_generate=True)
    assert (full.iterations == 6).all()
    early = toy.model.generate(**batch, max_iterations=6, length_beam=1, adaptive=True, return_dict_in_generate=True)
    assert (early.iterations < 6).all() and (early.iterations >= 2).all()


def test_generation_config_defaults_are_used_and_overridable(toy):
    batch = toy.tokenizer(toy.test_sentences[:3], return_tensors="pt", padding=True)
    toy.model.generation_config.max_iterations = 1
    try:
        out = toy.model.generate(**batch, return_dict_in_generate=True)
        assert (out.iterations == 1).all()
    finally:
        toy.model.generation_config.max_iterations = 10


def test_a_saved_model_keeps_its_tied_weights_and_decoding_defaults(toy, tmp_path):
    toy.model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists() and not list(tmp_path.glob("*.bin"))
    loaded = AutoModelForSeq2SeqLM.from_pretrained(tmp_path).eval()
    assert loaded.lm_head.weight.data_ptr() == loaded.model.shared.weight.data_ptr()
    assert loaded.generation_config.max_iterations == toy.model.generation_config.max_iterations


def test_missing_or_corrupt_checkpoint_names_the_file(toy, tmp_path):
    with pytest.raises(OSError, match="nowhere"):
        AutoModelForSeq2SeqLM.from_pretrained(tmp_path / "nowhere")
    toy.model.save_pretrained(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(Exception, match="model.safetensors"):
        AutoModelForSeq2SeqLM.from_pretrained(tmp_path)


def test_training_loss_has_named_parts_and_reaches_every_parameter():
    tokenizer = toy_tokenizer()
    torch.manual_seed(0)
    model = hf_nat.CMLMForConditionalGeneration(toy_config(tokenizer))
    batch = toy_batch(tokenizer, toy_sentences(8, seed=3))
    out = model(**batch, generator=torch.Generator().manual_seed(0))
    assert set(out.losses) == {"tokens", "length"}
    out.loss.backward()
    assert all(p.grad is not None for p in model.parameters())
    # The caller's generator fully determines the masking noise.
    again = model(**batch, generator=torch.Generator().manual_seed(0)).loss
    assert torch.equal(out.loss.detach(), again.detach())


def test_masking_draws_between_one_and_all_tokens():
    keep = torch.ones(2000, 7, dtype=torch.bool)
    lengths = torch.full((2000,), 7)
    counts = hf_nat.CMLMForConditionalGeneration._random_mask(keep, lengths, torch.Generator().manual_seed(1)).sum(1)
    assert counts.min() == 1 and counts.max() == 7
    assert set(counts.tolist()) == set(range(1, 8))


def test_compact_targets_strips_specials():
    config = hf_nat.CMLMConfig()
    labels = torch.tensor([[1, 10, 11, 2, -100], [12, 2, -100, -100, -100]])
    targets, lengths = compact_targets(labels, config)
    assert lengths.tolist() == [2, 1]
    assert targets.tolist() == [[10, 11], [12, 0]]
