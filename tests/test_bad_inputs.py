"""The bad-input battery, over every registered family: malformed sources and masks, option values
and generation configs, whitespace, left padding, chunked decoding and hand-edited config.json files
get a clear error or a defined result, and never change what the caller passed in."""

import json

import pytest
import torch
from transformers import AutoModelForSeq2SeqLM, GenerationConfig, pipeline

import hf_nat
from hf_nat.data import train_joint_tokenizer
from hf_nat.models import nat_generation
from tests.toy import toy_ar_model, toy_sentences, toy_shape, toy_tokenizer

FAMILY_HEADS = [family.head_class for family in hf_nat.FAMILIES.values()]


@pytest.fixture(scope="module", params=FAMILY_HEADS, ids=lambda head: head.config_class.model_type)
def family(request):
    """An untrained toy model of each family (decoding never depends on training for these checks)."""
    torch.manual_seed(0)
    tokenizer = toy_tokenizer()
    head = request.param
    return head(head.config_class(**toy_shape(tokenizer))).eval(), tokenizer


def test_generate_leaves_the_callers_mask_alone_and_a_missing_mask_equals_the_tokenizers(family):
    model, tokenizer = family
    batch = tokenizer(toy_sentences(6, seed=1), return_tensors="pt", padding=True)
    reference = model.generate(**batch)
    mask = batch["attention_mask"].bool()
    before = mask.clone()
    assert torch.equal(model.generate(batch["input_ids"], attention_mask=mask), reference)
    assert torch.equal(mask, before)
    assert torch.equal(model.generate(batch["input_ids"]), reference)


def test_left_padding_decodes_as_right_padding(family):
    model, tokenizer = family
    sentences = toy_sentences(6, seed=2)
    right = tokenizer(sentences, return_tensors="pt", padding=True)
    tokenizer.padding_side = "left"
    try:
        left = tokenizer(sentences, return_tensors="pt", padding=True)
    finally:
        tokenizer.padding_side = "right"
    assert not torch.equal(left["input_ids"], right["input_ids"])
    assert torch.equal(model.generate(**left), model.generate(**right))


def test_empty_batches_sources_and_whitespace_give_empty_translations(family):
    model, tokenizer = family
    eos = model.config.eos_token_id
    assert model.generate(torch.zeros((0, 4), dtype=torch.long)).shape[0] == 0
    assert model.generate(torch.zeros((3, 0), dtype=torch.long)).tolist() == [[eos]] * 3
    out = model.generate(**tokenizer(["", "w1 w2"], return_tensors="pt", padding=True))
    assert out[0].tolist() == [eos] + [model.config.pad_token_id] * (out.shape[1] - 1)
    translator = pipeline("translation", model=model, tokenizer=tokenizer)
    assert translator([]) == []
    assert translator(["   ", "\t\n"]) == [{"translation_text": ""}] * 2


@pytest.mark.parametrize(
    "ids, error",
    [
        ([[7, 8, 2]], TypeError),  # a Python list
        (torch.tensor([[7.0, 8.0, 2.0]]), TypeError),  # float ids
        (torch.tensor([7, 8, 2]), ValueError),  # one dimension
        (torch.tensor([[7, -1, 2]]), ValueError),  # negative id
        (torch.tensor([[7, 10_000, 2]]), ValueError),  # outside the vocabulary
    ],
)
def test_malformed_source_ids_raise_clear_errors(family, ids, error):
    model, _ = family
    with pytest.raises(error, match="input_ids"):
        model.generate(ids)


@pytest.mark.parametrize(
    "mask", [torch.ones(1, 2, dtype=torch.long), torch.ones(1, 3) * 0.5, torch.tensor([[1, 2, 1]])]
)
def test_malformed_masks_raise_clear_errors(family, mask):
    model, _ = family
    with pytest.raises(ValueError, match="attention_mask"):
        model.generate(torch.tensor([[7, 8, 2]]), attention_mask=mask)


def test_over_long_sources_raise_a_clear_error(family):
    model, _ = family
    too_long = torch.full((1, model.max_source_positions() + 1), 7)
    with pytest.raises(ValueError, match="source positions"):
        model.generate(too_long)


def _bad_values(default):
    """Values of the wrong type for an option whose default is ``default``."""
    if isinstance(default, bool):
        return ["no", 1, 0.5]
    if isinstance(default, int):
        return [2.7, "3", True]
    return [float("nan"), float("inf"), "1.0"]


def test_option_values_of_the_wrong_type_or_range_are_rejected(family):
    model, tokenizer = family
    batch = tokenizer(["w1 w2"], return_tensors="pt")
    for name, default in model.nat_generation_defaults.items():
        for value in _bad_values(default):
            with pytest.raises(ValueError, match=name):
                model.generate(**batch, **{name: value})
    for name, bounds in model.nat_option_bounds.items():
        for value in (bounds.low, bounds.high):
            if value is not None:
                outside = value - 1 if value == bounds.low else value + 1
                with pytest.raises(ValueError, match=name):
                    model.generate(**batch, **{name: type(model.nat_generation_defaults[name])(outside)})
    with pytest.raises(ValueError, match="rescore_length_penalty"):
        model.generate(**batch, rescore_length_penalty=float("nan"))


@pytest.mark.parametrize(
    "setting",
    [
        {"num_beams": 4},
        {"max_length": 5},
        {"do_sample": True},
        {"num_return_sequences": 2, "do_sample": True},
        {"max_new_tokens": 3},
    ],
)
def test_transformers_options_in_a_generation_config_are_rejected(family, setting):
    model, tokenizer = family
    batch = tokenizer(["w1 w2"], return_tensors="pt")
    with pytest.raises(ValueError, match=list(setting)[0]):
        model.generate(**batch, generation_config=GenerationConfig(**setting))
    saved = model.generation_config
    model.generation_config = GenerationConfig(**{**saved.to_dict(), **setting})
    try:
        with pytest.raises(ValueError, match=list(setting)[0]):
            model.generate(**batch)
    finally:
        model.generation_config = saved


def test_a_nat_rescorer_is_rejected(family):
    model, tokenizer = family
    with pytest.raises(ValueError, match="autoregressive"):
        model.generate(**tokenizer(["w1 w2"], return_tensors="pt"), rescorer=model)


def test_decoding_in_chunks_of_sources_gives_the_same_output(family, monkeypatch):
    model, tokenizer = family
    sentences = toy_sentences(10, seed=3) + ["", "w4"]
    batch = tokenizer(sentences, return_tensors="pt", padding=True)
    options = dict(return_dict_in_generate=True, output_history=True)
    whole = model.generate(**batch, **options)
    monkeypatch.setattr(nat_generation, "_CANDIDATE_TOKENS_PER_PASS", 3 * batch["input_ids"].shape[1])
    chunked = model.generate(**batch, **options)
    assert torch.equal(chunked.sequences, whole.sequences)
    assert torch.equal(chunked.iterations, whole.iterations)
    assert torch.allclose(chunked.sequences_scores, whole.sequences_scores, atol=1e-5)
    assert len(chunked.history) == len(whole.history)
    for a, b in zip(chunked.history, whole.history):
        width = max(a.shape[1], b.shape[1])
        pad = model.config.pad_token_id
        assert torch.equal(
            torch.nn.functional.pad(a, (0, width - a.shape[1]), value=pad),
            torch.nn.functional.pad(b, (0, width - b.shape[1]), value=pad),
        )


def test_output_width_follows_the_chosen_candidates(family):
    model, tokenizer = family
    out = model.generate(**tokenizer(toy_sentences(4, seed=4), return_tensors="pt", padding=True))
    assert out.ne(model.config.pad_token_id).sum(1).max() == out.shape[1]


def test_a_config_json_of_another_family_or_with_wrong_types_is_refused(family, tmp_path):
    model, _ = family
    model.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    others = [head.config_class.model_type for head in FAMILY_HEADS if head is not type(model)]
    (tmp_path / "config.json").write_text(json.dumps({**config, "model_type": others[0]}))
    with pytest.raises(ValueError, match="model_type|do not fit"):
        AutoModelForSeq2SeqLM.from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({**config, "encoder_layers": "2"}))
    with pytest.raises(ValueError, match="encoder_layers"):
        AutoModelForSeq2SeqLM.from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({**config, "model_type": "no_such_family"}))
    with pytest.raises(ValueError, match="no_such_family") as error:
        AutoModelForSeq2SeqLM.from_pretrained(tmp_path)
    assert "trust_remote_code" not in str(error.value)


def test_the_pipeline_reads_unencodable_characters_as_unknown():
    torch.manual_seed(0)
    tokenizer = toy_tokenizer()
    model = hf_nat.CMLMForConditionalGeneration(hf_nat.CMLMConfig(**toy_shape(tokenizer))).eval()
    translator = pipeline("translation", model=model, tokenizer=tokenizer)
    assert isinstance(translator("w1 \udcff w2")[0]["translation_text"], str)


def test_trained_tokenizers_encode_whitespace_only_text_as_empty():
    tokenizer = train_joint_tokenizer(["A dog runs .", "Ein Hund läuft ."] * 20, vocab_size=120)
    for text in ("", "   ", "\t \n"):
        assert tokenizer(text)["input_ids"] == [tokenizer.eos_token_id]
    assert tokenizer("  A  dog ")["input_ids"] == tokenizer("A dog")["input_ids"]


def test_fertility_nat_refuses_length_beam_with_fertility_inputs():
    tokenizer = toy_tokenizer()
    model = hf_nat.FertilityNATForConditionalGeneration(hf_nat.FertilityNATConfig(**toy_shape(tokenizer))).eval()
    with pytest.raises(ValueError, match="npd_samples"):
        model.generate(**tokenizer(["w1 w2"], return_tensors="pt"), length_beam=3)


def test_the_ar_rescorer_still_works_with_a_bool_mask():
    torch.manual_seed(0)
    tokenizer = toy_tokenizer()
    model = hf_nat.CMLMForConditionalGeneration(hf_nat.CMLMConfig(**toy_shape(tokenizer))).eval()
    batch = tokenizer(toy_sentences(4, seed=5), return_tensors="pt", padding=True)
    teacher = toy_ar_model(tokenizer)
    reference = model.generate(**batch, length_beam=3, rescorer=teacher)
    mask = batch["attention_mask"].bool()
    assert torch.equal(
        model.generate(batch["input_ids"], attention_mask=mask, length_beam=3, rescorer=teacher), reference
    )


def test_decoding_helpers_leave_the_callers_logits_alone():
    logits = torch.randn(3, 5, 20)
    before = logits.clone()
    scores, tokens = nat_generation.best_content_tokens(logits, [0, 1, 2])
    assert torch.equal(logits, before)
    assert not torch.isin(tokens, torch.tensor([0, 1, 2])).any() and torch.isfinite(scores).all()
