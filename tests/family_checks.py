"""Checks every family's model must pass, shared by the family test modules."""

from pathlib import Path

import torch
from transformers import AutoModelForSeq2SeqLM, pipeline


def decode(model, tokenizer, sentences: list[str], **options) -> list[str]:
    """The model's translations of ``sentences`` in one padded batch."""
    ids = model.generate(**tokenizer(sentences, return_tensors="pt", padding=True), **options)
    return tokenizer.batch_decode(ids, skip_special_tokens=True)


def assert_batch_size_invariant(model, tokenizer, sentences: list[str], singles: int = 8, **options) -> None:
    """Each of the first ``singles`` sentences translates the same alone as in the whole batch."""
    batched = decode(model, tokenizer, sentences, **options)
    assert [decode(model, tokenizer, [s], **options)[0] for s in sentences[:singles]] == batched[:singles]


def assert_insertion_penalty_lengthens(model, tokenizer, sentences: list[str]) -> None:
    """Edit families: a positive ``insertion_penalty`` makes "no insertion" less likely, so the
    outputs grow; a negative one shrinks them."""
    batch = tokenizer(sentences, return_tensors="pt", padding=True)

    def total_length(penalty: float) -> int:
        return int(model.generate(**batch, insertion_penalty=penalty).ne(model.config.pad_token_id).sum())

    assert total_length(-50.0) < total_length(0.0) < total_length(50.0)


def assert_round_trip_pipeline_and_export(model, tokenizer, sentences: list[str], tmp_path: Path, base_class: str,
                                          options: dict, files: set[str] = frozenset()) -> None:
    """save_pretrained → AutoModelForSeq2SeqLM gives identical outputs; the pipeline turns an
    empty source into an empty translation; the Hub export (holding ``files``) loads and
    translates identically in a process where hf_nat cannot be imported."""
    from tests.test_export import run_without_hf_nat
    from training import export

    model.save_pretrained(tmp_path / "run")
    tokenizer.save_pretrained(tmp_path / "run")
    loaded = AutoModelForSeq2SeqLM.from_pretrained(tmp_path / "run")
    assert type(loaded) is type(model)
    batch = tokenizer(sentences, return_tensors="pt", padding=True)
    assert torch.equal(loaded.generate(**batch, **options), model.generate(**batch, **options))
    assert pipeline("translation", model=model, tokenizer=tokenizer)("  ")[0]["translation_text"] == ""

    folder = export.export_model(tmp_path / "run", tmp_path / "export")
    assert set(files) <= {p.name for p in folder.iterdir()}
    result = run_without_hf_nat(folder, sentences, options, tmp_path)
    assert result["base_class"] == base_class
    assert result["defaults"] == decode(model, tokenizer, sentences)
    assert result["options"] == decode(model, tokenizer, sentences, **options) == result["pipeline"]
