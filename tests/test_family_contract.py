"""The contract every registered family keeps, parametrised from the registry (a family is covered
the moment it registers): save/load identity, batch invariance with empty and one-token sources,
the pipeline, the Hub export where hf_nat cannot be imported, unknown options and config fields
rejected with the valid names listed, no special token in any output, forward() logits untouched
by decoding, and benchmark settings that pass the family's own option validation.

Models are small and untrained: the contract does not depend on what a model has learned."""

import json

import pytest
import torch
from transformers import AutoConfig, AutoModel, AutoModelForSeq2SeqLM, pipeline

import hf_nat
from hf_nat import hub_export
from tests.family_checks import copy_task_batch, decode, run_without_hf_nat
from tests.toy import toy_sentences, toy_shape, toy_tokenizer

SENTENCES = toy_sentences(6, seed=11) + ["", "w1"]


@pytest.fixture(scope="module", params=list(hf_nat.FAMILIES.values()), ids=lambda family: family.model_type)
def family(request):
    """(Family, an untrained toy model of it in eval mode, the toy tokenizer)."""
    torch.manual_seed(0)
    tokenizer = toy_tokenizer()
    entry = request.param
    model = entry.head_class(entry.config_class(**toy_shape(tokenizer))).eval()
    return entry, model, tokenizer


def settings(entry) -> list[dict]:
    """The decoding settings every check runs: the defaults and the family's benchmark settings."""
    return [{}, *(dict(s) for s in entry.benchmark_settings)]


def test_benchmark_settings_are_json_and_pass_the_familys_option_validation(family):
    entry, model, tokenizer = family
    assert json.loads(json.dumps(entry.benchmark_settings)) == list(entry.benchmark_settings)
    batch = tokenizer(["w1 w2"], return_tensors="pt")
    for setting in entry.benchmark_settings:
        model._nat_check_options(model._nat_options(None, dict(setting)))
        assert model.generate(**batch, **setting).shape[0] == 1


def test_save_load_identity_through_the_auto_classes(family, tmp_path):
    entry, model, tokenizer = family
    model.save_pretrained(tmp_path)
    config = AutoConfig.from_pretrained(tmp_path)
    assert type(config) is entry.config_class
    assert {**config.to_dict(), "_name_or_path": ""} == {**model.config.to_dict(), "_name_or_path": ""}
    loaded = AutoModelForSeq2SeqLM.from_pretrained(tmp_path).eval()
    assert type(loaded) is entry.head_class
    assert type(AutoModel.from_pretrained(tmp_path)) is entry.base_class
    batch = tokenizer(SENTENCES, return_tensors="pt", padding=True)
    for setting in settings(entry):
        assert torch.equal(loaded.generate(**batch, **setting), model.generate(**batch, **setting)), setting


def test_batch_invariance_with_empty_and_one_token_sources(family):
    entry, model, tokenizer = family
    for setting in settings(entry)[:2]:
        together = model.generate(**tokenizer(SENTENCES, return_tensors="pt", padding=True), **setting)
        for row, sentence in enumerate(SENTENCES):
            alone = model.generate(**tokenizer([sentence], return_tensors="pt"), **setting)[0]
            assert torch.equal(together[row, : alone.shape[0]], alone), (setting, sentence)
            assert together[row, alone.shape[0] :].eq(model.config.pad_token_id).all()


def test_pipeline_translates_a_string_and_a_batch(family):
    entry, model, tokenizer = family
    translator = pipeline("translation", model=model, tokenizer=tokenizer)
    expected = decode(model, tokenizer, SENTENCES)
    assert translator(SENTENCES[0]) == [{"translation_text": expected[0]}]
    assert [r["translation_text"] for r in translator(SENTENCES, batch_size=4)] == expected
    assert translator("   ") == [{"translation_text": ""}]


def test_export_loads_and_translates_where_hf_nat_cannot_be_imported(family, tmp_path):
    entry, model, tokenizer = family
    model.save_pretrained(tmp_path / "run")
    tokenizer.save_pretrained(tmp_path / "run")
    folder = hub_export.export_model(tmp_path / "run", tmp_path / "export")
    assert {p.name for p in hub_export.code_files([entry.config_class, entry.base_class, entry.head_class])} <= {
        p.name for p in folder.iterdir()
    }
    setting = dict(entry.benchmark_settings[0])
    result = run_without_hf_nat(folder, SENTENCES, setting, tmp_path)
    assert result["base_class"] == entry.base_class.__name__
    assert result["defaults"] == decode(model, tokenizer, SENTENCES)
    assert result["options"] == decode(model, tokenizer, SENTENCES, **setting) == result["pipeline"]


def test_unknown_generate_options_are_rejected_with_the_valid_names(family):
    entry, model, tokenizer = family
    with pytest.raises(ValueError, match="not_an_option") as error:
        model.generate(**tokenizer(["w1 w2"], return_tensors="pt"), not_an_option=1)
    assert all(repr(name) in str(error.value) for name in model.nat_generation_defaults)


def test_unknown_config_fields_are_rejected_with_the_valid_names(family, tmp_path):
    entry, model, tokenizer = family
    own_fields = [
        name
        for cls in entry.config_class.__mro__
        for name in vars(cls).get("__annotations__", {})
        if isinstance(cls, type) and issubclass(cls, hf_nat.NATConfig)
    ]
    with pytest.raises(ValueError, match="not_a_field") as error:
        entry.config_class(**toy_shape(tokenizer), not_a_field=0.3)
    assert all(repr(name) in str(error.value) for name in own_fields)
    model.config.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**saved, "vocab_sise": 9}))
    with pytest.raises(ValueError, match="vocab_sise.*did you mean 'vocab_size'"):
        AutoConfig.from_pretrained(tmp_path)


def test_no_special_token_in_any_output(family):
    entry, model, tokenizer = family
    config = model.config
    batch = tokenizer(SENTENCES, return_tensors="pt", padding=True)
    for setting in settings(entry):
        out = model.generate(**batch, **setting, return_dict_in_generate=True, output_history=True)
        lengths = out.sequences.ne(config.pad_token_id).sum(1) - 1  # content tokens before eos
        positions = torch.arange(out.sequences.shape[1])[None, :]
        content = positions < lengths[:, None]
        found = sorted(set(out.sequences[content].tolist()) & set(config.special_token_ids()))
        assert not found, f"special token ids {found} in the output of generate(**{setting})"
        assert out.sequences.gather(1, lengths[:, None]).eq(config.eos_token_id).all(), setting
        for step in out.history:
            assert not torch.isin(
                step, torch.tensor([i for i in config.special_token_ids() if i != config.pad_token_id])
            ).any(), setting


def test_forward_logits_are_left_untouched_by_decoding_helpers(family):
    entry, model, tokenizer = family
    batch = copy_task_batch(tokenizer, toy_sentences(4, seed=6))
    model.train()
    try:
        out = model(**batch, generator=torch.Generator().manual_seed(0))
    finally:
        model.eval()
    assert torch.isfinite(out.loss)
    for name in ("logits", "length_logits"):
        value = getattr(out, name)
        assert value is None or torch.isfinite(value).all(), f"forward(labels=...).{name} holds -inf or nan"
    plain = model(batch["input_ids"], attention_mask=batch["attention_mask"])
    for name in ("logits", "length_logits"):
        value = getattr(plain, name)
        assert value is None or torch.isfinite(value).all(), f"forward().{name} holds -inf or nan"
