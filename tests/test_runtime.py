"""Deployment engines: every family on ONNX Runtime (fp32 identical to PyTorch, int8 runs, the
pipeline, bad files refused by name) and the Marian baseline on CTranslate2 (identical to
transformers). Toy models are untrained: identity does not depend on what a model learned."""

import json
import shutil

import pytest
import torch
from transformers import pipeline

import hf_nat
from hf_nat.runtime.ctranslate2 import CTranslate2ForSeq2SeqLM
from hf_nat.runtime.onnx import ONNX_CONFIG_NAME, ORTNATModelForSeq2SeqLM, export_onnx, onnx_parts
from hf_nat.translate import translate_corpus
from tests.family_checks import decode
from tests.toy import toy_ar_model, toy_sentences, toy_shape, toy_tokenizer

SENTENCES = toy_sentences(6, seed=11) + ["", "   ", "w1", "w3 zz¿ w2"]  # empty, blank, one token, unknown chars


def _save_toy(entry, folder, seed=0):
    torch.manual_seed(seed)
    tokenizer = toy_tokenizer()
    model = entry.head_class(entry.config_class(**toy_shape(tokenizer))).eval()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return model, tokenizer


@pytest.fixture(scope="module", params=list(hf_nat.FAMILIES.values()), ids=lambda family: family.model_type)
def exported(request, tmp_path_factory):
    """(Family, PyTorch model, tokenizer, folder with its ONNX files, fp32 ORT model, int8 ORT model)."""
    folder = tmp_path_factory.mktemp(request.param.model_type)
    model, tokenizer = _save_toy(request.param, folder)
    export_onnx(folder)
    fp32 = ORTNATModelForSeq2SeqLM.from_pretrained(folder)
    int8 = ORTNATModelForSeq2SeqLM.from_pretrained(folder, quantized=True)
    return request.param, model, tokenizer, folder, fp32, int8


def _settings(entry):
    return [{}, *(dict(s) for s in entry.benchmark_settings)]


def test_fp32_runtime_decodes_exactly_what_pytorch_decodes_in_a_batch_and_alone(exported):
    entry, model, tokenizer, _, fp32, _ = exported
    assert type(fp32) is entry.head_class and fp32.onnx_runtime["variant"] == "fp32"
    batch = tokenizer(SENTENCES, return_tensors="pt", padding=True)
    for setting in _settings(entry):
        expected = model.generate(**batch, **setting)
        assert torch.equal(fp32.generate(**batch, **setting), expected), setting
    for sentence in SENTENCES[:3] + SENTENCES[-3:]:
        alone = tokenizer([sentence], return_tensors="pt")
        assert torch.equal(fp32.generate(**alone), model.generate(**alone)), sentence


def test_int8_runtime_decodes_every_setting_to_content_tokens(exported):
    entry, model, tokenizer, _, _, int8 = exported
    assert int8.onnx_runtime["variant"] == "int8"
    assert all(name.endswith("_quantized.onnx") for name in int8.onnx_runtime["files"])
    batch = tokenizer(SENTENCES, return_tensors="pt", padding=True)
    specials = set(model.config.special_token_ids()) - {model.config.eos_token_id, model.config.pad_token_id}
    for setting in _settings(entry):
        out = int8.generate(**batch, **setting)
        assert out.shape[0] == len(SENTENCES)
        assert not specials & set(out.flatten().tolist()), setting
    assert torch.equal(
        int8.generate(**tokenizer([""], return_tensors="pt")), model.generate(**tokenizer([""], return_tensors="pt"))
    )


def test_pipeline_and_bad_sources_behave_as_on_pytorch(exported):
    entry, model, tokenizer, _, fp32, _ = exported
    translator = pipeline("translation", model=fp32, tokenizer=tokenizer)
    assert [r["translation_text"] for r in translator(SENTENCES, batch_size=3)] == decode(model, tokenizer, SENTENCES)
    assert translator("   ") == [{"translation_text": ""}]
    too_long = torch.full((1, model.max_source_positions() + 5), 10)
    with pytest.raises(ValueError, match="source positions") as on_torch:
        model.generate(too_long)
    with pytest.raises(ValueError, match="source positions") as on_ort:
        fp32.generate(too_long)
    assert str(on_ort.value) == str(on_torch.value)
    assert fp32.generate(torch.zeros((0, 4), dtype=torch.long)).shape[0] == 0


def test_every_part_of_the_family_has_its_files(exported):
    entry, model, _, folder, _, _ = exported
    manifest = json.loads((folder / ONNX_CONFIG_NAME).read_text())
    assert [(p["path"], p["kind"]) for p in manifest["parts"]] == [(p.path, p.kind) for p in onnx_parts(model)]
    kinds = {p["kind"] for p in manifest["parts"]}
    # A family without a separate encoder (one Transformer over source and output) has no decoder part.
    assert {"encoder", "decoder", "cross_kv", "linear"} <= kinds or (
        not model.nat_has_encoder and kinds == {"encoder", "linear"}
    )
    for part in manifest["parts"]:
        assert set(part["files"]) == {"fp32", "int8"}
        assert all((folder / name).is_file() for name in part["files"].values())


@pytest.fixture(scope="module")
def ctc_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ctc_bad")
    _save_toy(hf_nat.FAMILIES["ctc_nat"], folder)
    export_onnx(folder, quantize=False)
    return folder


def _copy(folder, tmp_path):
    target = tmp_path / "model"
    shutil.copytree(folder, target)
    return target


def test_missing_corrupt_and_foreign_onnx_files_are_errors_naming_the_file(ctc_folder, tmp_path):
    decoder_file = "model.decoder.onnx"
    missing = _copy(ctc_folder, tmp_path / "a")
    (missing / decoder_file).unlink()
    with pytest.raises(FileNotFoundError, match=f"missing ONNX file .*{decoder_file}"):
        ORTNATModelForSeq2SeqLM.from_pretrained(missing)

    corrupt = _copy(ctc_folder, tmp_path / "b")
    data = (corrupt / decoder_file).read_bytes()
    (corrupt / decoder_file).write_bytes(data[: len(data) // 3])
    with pytest.raises(OSError, match=f"corrupt or unreadable ONNX file .*{decoder_file}"):
        ORTNATModelForSeq2SeqLM.from_pretrained(corrupt)

    with pytest.raises(FileNotFoundError, match="no int8 ONNX file"):
        ORTNATModelForSeq2SeqLM.from_pretrained(ctc_folder, quantized=True)

    other = tmp_path / "other"
    _save_toy(hf_nat.FAMILIES["ctc_nat"], other, seed=1)
    export_onnx(other, quantize=False)
    foreign = _copy(ctc_folder, tmp_path / "c")
    shutil.copy(other / decoder_file, foreign / decoder_file)
    with pytest.raises(ValueError, match=f"{decoder_file} was exported from another model"):
        ORTNATModelForSeq2SeqLM.from_pretrained(foreign)

    retrained = _copy(ctc_folder, tmp_path / "d")
    shutil.copy(other / "model.safetensors", retrained / "model.safetensors")
    with pytest.raises(ValueError, match=f"{ONNX_CONFIG_NAME} describes another model"):
        ORTNATModelForSeq2SeqLM.from_pretrained(retrained)

    never = tmp_path / "never"
    _save_toy(hf_nat.FAMILIES["ctc_nat"], never)
    with pytest.raises(FileNotFoundError, match="export the model first"):
        ORTNATModelForSeq2SeqLM.from_pretrained(never)
    assert ORTNATModelForSeq2SeqLM.from_pretrained(never, export=True).onnx_runtime["variant"] == "fp32"


def test_an_opset_the_runtime_cannot_run_is_an_error_naming_both_versions(ctc_folder, tmp_path):
    import onnx
    import onnxruntime

    folder = _copy(ctc_folder, tmp_path)
    path = folder / "lm_head.onnx"
    proto = onnx.load(str(path))
    for entry in proto.opset_import:
        if entry.domain in ("", "ai.onnx"):
            entry.version = 99
    onnx.save(proto, str(path))
    manifest = json.loads((folder / ONNX_CONFIG_NAME).read_text())
    manifest["opset"] = 99
    (folder / ONNX_CONFIG_NAME).write_text(json.dumps(manifest))
    with pytest.raises(
        RuntimeError, match=f"lm_head.onnx uses ONNX opset 99, which onnxruntime {onnxruntime.__version__}"
    ):
        ORTNATModelForSeq2SeqLM.from_pretrained(folder)


def test_ar_models_are_refused_by_the_onnx_export(tmp_path):
    tokenizer = toy_tokenizer()
    toy_ar_model(tokenizer).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="not an hf_nat model"):
        export_onnx(tmp_path)


def test_ctranslate2_conversion_of_the_baseline_translates_as_transformers_does(tmp_path):
    """The benchmark's Marian layout: pad id 0, decoder start <s> (id 1), relu, scaled embeddings."""
    tokenizer = toy_tokenizer()
    model = toy_ar_model(tokenizer, seed=3, activation_function="relu", scale_embedding=True, forced_eos_token_id=2)
    model.generation_config.update(max_length=64, bad_words_ids=None)
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    sources = toy_sentences(24, seed=1) + ["w1", "w3 zz¿ w2"]
    ct2 = CTranslate2ForSeq2SeqLM.from_pretrained(tmp_path, compute_type="float32", threads=1)
    for beams in (1, 5):
        expected = translate_corpus(model, tokenizer, sources, {"num_beams": beams}, batch_size=8).token_ids
        assert translate_corpus(ct2, tokenizer, sources, {"num_beams": beams}, batch_size=8).token_ids == expected
    # An empty source is an empty translation (transformers would decode something from </s> alone).
    assert translate_corpus(ct2, tokenizer, ["", "   "]).hypotheses == ["", ""]
    int8 = CTranslate2ForSeq2SeqLM.from_pretrained(tmp_path, compute_type="int8", threads=1)
    assert len(translate_corpus(int8, tokenizer, sources).hypotheses) == len(sources)
    with pytest.raises(ValueError, match="does not support"):
        ct2.generate(torch.tensor([[5, 2]]), do_sample=True)


def test_ctranslate2_refuses_a_model_that_is_not_marian(tmp_path):
    _save_toy(hf_nat.FAMILIES["cmlm"], tmp_path)
    with pytest.raises(ValueError, match="holds a 'cmlm' model"):
        CTranslate2ForSeq2SeqLM.from_pretrained(tmp_path)
