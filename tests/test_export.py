"""`hf-nat export` (hf_nat.hub_export): a Hub folder that loads without hf_nat, an honest model card, a safe push."""

import gzip
import hashlib
import json
import re
import shutil
from pathlib import Path

import huggingface_hub
import pytest
import torch
from huggingface_hub import HfApi, ModelCard
from transformers.dynamic_module_utils import get_imports, get_relative_imports

from hf_nat import CMLMForConditionalGeneration, benchmark, cli
from hf_nat import hub_export as export
from hf_nat.provenance import FingerprintChangedError, load_fingerprinted, model_fingerprint
from tests.family_checks import run_without_hf_nat
from tests.toy import toy_ar_model, toy_config

DECODE_OPTIONS = {"max_iterations": 4, "length_beam": 2}


@pytest.fixture(scope="module")
def model_dir(toy_dir):
    """The toy model's saved folder (``run/best``)."""
    return toy_dir


@pytest.fixture(scope="module")
def exported(model_dir, tmp_path_factory):
    return export.export_model(model_dir, tmp_path_factory.mktemp("exports") / "toy_cmlm")


def translate(toy, sentences, **options):
    ids = toy.model.generate(**toy.tokenizer(sentences, return_tensors="pt", padding=True), **options)
    return toy.tokenizer.batch_decode(ids, skip_special_tokens=True)


def snapshot(folder: Path) -> dict:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def section(card_text: str, title: str) -> str:
    return card_text.split(f"## {title}", 1)[1].split("\n## ", 1)[0]


def metadata(card_text: str) -> str:
    """The card's YAML header."""
    return card_text.split("---\n", 2)[1]


# --- the exported folder ---------------------------------------------------------------------------
def test_folder_has_weights_config_code_tokenizer_and_card(exported):
    names = {p.name for p in exported.iterdir()}
    assert {
        "model.safetensors",
        "config.json",
        "generation_config.json",
        "tokenizer.json",
        "README.md",
        "modeling_cmlm.py",
        "pipeline_translation.py",
    } <= names
    assert not any(n.endswith((".bin", ".pt")) for n in names)
    assert not exported.with_name(exported.name + ".tmp").exists()
    config = json.loads((exported / "config.json").read_text())
    assert config["auto_map"] == {
        "AutoConfig": "configuration_cmlm.CMLMConfig",
        "AutoModel": "modeling_cmlm.CMLMModel",
        "AutoModelForSeq2SeqLM": "modeling_cmlm.CMLMForConditionalGeneration",
    }
    assert config["custom_pipelines"] == {
        "translation": {
            "impl": "pipeline_translation.NATTranslationPipeline",
            "pt": ["AutoModelForSeq2SeqLM"],
            "type": "text",
        }
    }
    generation = json.loads((exported / "generation_config.json").read_text())
    assert {k: generation[k] for k in ("max_iterations", "length_beam", "adaptive")} == {
        "max_iterations": 10,
        "length_beam": 5,
        "adaptive": False,
    }


def test_every_relative_import_of_the_code_is_in_the_folder(exported):
    modules = {p.stem for p in exported.glob("*.py")}
    referenced = set(json.loads((exported / "config.json").read_text())["auto_map"].values())
    referenced.add("pipeline_translation.NATTranslationPipeline")
    assert {ref.split(".")[0] for ref in referenced} <= modules
    for path in exported.glob("*.py"):
        assert set(get_relative_imports(path)) <= modules, path.name
        assert "hf_nat" not in get_imports(path), path.name


def test_loads_and_translates_identically_where_hf_nat_is_not_importable(exported, toy, tmp_path):
    sentences = toy.test_sentences[:8]
    result = run_without_hf_nat(exported, sentences, DECODE_OPTIONS, tmp_path)
    assert result["base_class"] == "CMLMModel" and result["pipeline_class"] == "NATTranslationPipeline"
    assert result["defaults"] == translate(toy, sentences)
    expected = translate(toy, sentences, **DECODE_OPTIONS)
    assert result["options"] == expected and result["pipeline"] == expected


def test_missing_generation_defaults_are_filled_in(toy, tmp_path):
    source = tmp_path / "best"
    toy.model.save_pretrained(source)
    toy.tokenizer.save_pretrained(source)
    generation = json.loads((source / "generation_config.json").read_text())
    for key in ("max_iterations", "length_beam", "adaptive"):
        generation.pop(key)
    (source / "generation_config.json").write_text(json.dumps(generation))
    out = export.export_model(source, tmp_path / "export")
    written = json.loads((out / "generation_config.json").read_text())
    assert {k: written[k] for k in ("max_iterations", "length_beam", "adaptive")} == {
        "max_iterations": 10,
        "length_beam": 5,
        "adaptive": False,
    }


# --- the model card --------------------------------------------------------------------------------------
def test_card_without_results_says_metrics_are_missing(exported):
    text = (exported / "README.md").read_text()
    card = ModelCard.load(exported / "README.md")
    assert card.data.eval_results is None and "model-index" not in text
    assert card.data.license == "apache-2.0" and card.data.pipeline_tag == "translation"
    assert {"non-autoregressive", "hf_nat", "cmlm"} <= set(card.data.tags)
    evaluation = section(text, "Evaluation")
    assert "No benchmark results are available" in evaluation
    assert not re.search(r"\d", evaluation)  # no number at all, invented or not
    assert "Training recipe: not recorded." in text
    assert "trust_remote_code=True" in text and 'pipeline("translation"' in text and "import hf_nat" not in text


OTHER_FINGERPRINT = "sha256:" + "b" * 64


def synthetic_results(model_dir: Path) -> dict:
    """Results as training/benchmark.py writes them: an AR baseline, two settings of the model in
    ``model_dir`` (with its fingerprint) and one of another model ``other/best``."""
    nan = float("nan")
    base = dict(
        n_sentences=3,
        latency_ms_p90=1.0,
        latency_sentences=3,
        decode_seconds=1.0,
        extra={},
        iterations_unit="refinement iterations",
        hyps_file="h.txt",
    )
    own = dict(model="run/best", model_path=str(model_dir), model_fingerprint=model_fingerprint(model_dir))
    rows = [
        dict(
            base,
            model="ar/best",
            model_path="runs/ar/best",
            model_fingerprint="sha256:" + "a" * 64,
            kind="ar",
            setting={"num_beams": 1},
            label="greedy",
            bleu=31.25,
            chrf=58.5,
            latency_ms_median=50.0,
            sents_per_s=100.0,
            speedup=1.0,
            throughput_ratio=1.0,
            mean_iterations=16.5,
            repetition_rate=0.125,
        ),
        dict(
            base,
            **own,
            kind="nat",
            setting={"max_iterations": 1, "length_beam": 1},
            label="T=1 lb=1",
            bleu=16.125,
            chrf=43.75,
            latency_ms_median=10.0,
            sents_per_s=300.0,
            speedup=5.0625,
            throughput_ratio=3.0,
            mean_iterations=1.0,
            repetition_rate=0.25,
        ),
        dict(
            base,
            **own,
            kind="nat",
            setting={"max_iterations": 4, "length_beam": 3},
            label="T=4 lb=3",
            bleu=21.375,
            chrf=49.875,
            latency_ms_median=nan,
            sents_per_s=120.0,
            speedup=nan,
            throughput_ratio=1.2,
            mean_iterations=4.0,
            repetition_rate=0.1,
        ),
        dict(
            base,
            model="other/best",
            model_path="runs/other/best",
            model_fingerprint=OTHER_FINGERPRINT,
            kind="nat",
            setting={"max_iterations": 1, "length_beam": 1},
            label="T=1 lb=1",
            bleu=87.654,
            chrf=76.543,
            latency_ms_median=9.0,
            sents_per_s=310.0,
            speedup=5.4321,
            throughput_ratio=3.1,
            mean_iterations=1.0,
            repetition_rate=0.2,
        ),
    ]
    metadata = dict(
        date="2026-01-01T00:00:00+00:00",
        command="python training/benchmark.py ...",
        hostname="h",
        cpu="cpu",
        device="cpu",
        dtype="float32",
        threads=1,
        torch="2",
        transformers="5",
        python="3.11",
        git_commit="abc123",
        data_dir="data/multi30k",
        split="test_2016_flickr",
        src="en",
        tgt="de",
        n_sentences=3,
        batch_size=64,
        latency_sentences=3,
        warmup=1,
        max_new_tokens="2*src_len+10",
        baseline="runs/ar/best",
        baseline_setting="greedy",
    )
    return {"metadata": metadata, "rows": rows}


def test_card_model_index_holds_exactly_the_measured_numbers(model_dir, tmp_path):
    results = tmp_path / "results.json"
    results.write_text(json.dumps(synthetic_results(model_dir)))
    summary = tmp_path / "summary.json"
    summary.write_text(json.dumps({"updates": 400, "train_minutes": 1.5, "args": {"lr": 0.003, "seed": 7}}))
    out = export.export_model(model_dir, tmp_path / "export", results=results, training_summary=summary)
    card = ModelCard.load(out / "README.md")
    measured = {(r.metric_type, r.metric_name, r.metric_value) for r in card.data.eval_results}
    speed = "latency speedup vs AR greedy, batch 1"
    assert measured == {
        ("bleu", "sacreBLEU (T=1 lb=1)", 16.125),
        ("chrf", "chrF (T=1 lb=1)", 43.75),
        ("speedup", f"{speed} (T=1 lb=1)", 5.0625),
        ("bleu", "sacreBLEU (T=4 lb=3)", 21.375),
        ("chrf", "chrF (T=4 lb=3)", 49.875),
    }
    first = card.data.eval_results[0]
    assert (first.task_type, first.dataset_type, first.dataset_config, first.dataset_split) == (
        "translation",
        "multi30k",
        "en-de",
        "test_2016_flickr",
    )
    assert card.data.language == ["en", "de"] and card.data.datasets == ["multi30k"]
    text = (out / "README.md").read_text()
    assert "87.65" not in text and "5.43" not in text  # another model's rows stay out
    table = section(text, "Evaluation")
    assert "| ar/best (AR baseline) | greedy | 31.25 | 58.50 |" in table
    assert "| run/best (this model) | T=4 lb=3 | 21.38 | 49.88 | n/a | n/a |" in table
    assert "| updates | 400 |" in text and "| `lr` | `0.003` |" in text


def test_model_key_selects_rows_and_an_unknown_key_gives_a_card_without_metrics(model_dir, tmp_path):
    results = tmp_path / "results.json"
    results.write_text(json.dumps(synthetic_results(model_dir)))
    out = export.export_model(model_dir, tmp_path / "own", results=results, model_key="run/best")
    assert {r.metric_value for r in ModelCard.load(out / "README.md").data.eval_results} == {
        16.125,
        43.75,
        5.0625,
        21.375,
        49.875,
    }
    with pytest.raises(export.ResultsOfAnotherModelError, match="other/best"):
        export.export_model(model_dir, tmp_path / "other", results=results, model_key="other/best")
    assert not (tmp_path / "other").exists()
    with pytest.warns(UserWarning, match="no rows"):
        out = export.export_model(model_dir, tmp_path / "none", results=results, model_key="missing/best")
    text = (out / "README.md").read_text()
    assert ModelCard.load(out / "README.md").data.eval_results is None
    assert "No benchmark results are available" in text and "31.25" not in text


# --- fingerprints: the benchmark's numbers belong to the model measured ----------------------------------
def copy_folder(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target


def test_fingerprint_follows_weights_and_model_config_not_bookkeeping(model_dir, exported, tmp_path):
    fingerprint = model_fingerprint(model_dir)
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", fingerprint)
    # The export adds auto_map and custom_pipelines and saves the same weights again: same model.
    assert model_fingerprint(exported) == fingerprint
    assert model_fingerprint(copy_folder(model_dir, tmp_path / "copy")) == fingerprint

    one_byte = copy_folder(model_dir, tmp_path / "one_byte")
    weights = bytearray((one_byte / "model.safetensors").read_bytes())
    weights[-1] ^= 1
    (one_byte / "model.safetensors").write_bytes(bytes(weights))
    assert model_fingerprint(one_byte) != fingerprint

    deeper = copy_folder(model_dir, tmp_path / "deeper")
    config = json.loads((deeper / "config.json").read_text())
    (deeper / "config.json").write_text(json.dumps({**config, "decoder_layers": config["decoder_layers"] + 1}))
    assert model_fingerprint(deeper) != fingerprint

    no_weights = copy_folder(model_dir, tmp_path / "no_weights")
    (no_weights / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="no weights"):
        model_fingerprint(no_weights)


def test_a_folder_that_changes_while_loading_has_no_fingerprint(model_dir, tmp_path):
    folder = copy_folder(model_dir, tmp_path / "best")

    def load_while_training_saves(path):
        config = json.loads((path / "config.json").read_text())
        (path / "config.json").write_text(json.dumps({**config, "dropout": 0.5}))
        return "loaded"

    with pytest.raises(FingerprintChangedError, match="changed while it was being loaded"):
        load_fingerprinted(folder, load_while_training_saves)
    assert load_fingerprinted(model_dir, lambda path: "loaded") == ("loaded", model_fingerprint(model_dir))


@pytest.fixture(scope="module")
def benchmarked(model_dir, toy, tmp_path_factory):
    """training/benchmark.py run on the toy model and on another (untrained) CMLM, against a toy AR baseline."""
    root = tmp_path_factory.mktemp("benchmarked")
    torch.manual_seed(1)
    other_dir = root / "other" / "best"
    CMLMForConditionalGeneration(toy_config(toy.tokenizer)).save_pretrained(other_dir)
    toy.tokenizer.save_pretrained(other_dir)
    ar_dir = root / "ar" / "best"
    toy_ar_model(toy.tokenizer).save_pretrained(ar_dir)
    toy.tokenizer.save_pretrained(ar_dir)
    data = root / "data"
    data.mkdir()
    for lang in ("en", "de"):  # the copy task: target = source
        with gzip.open(data / f"test.{lang}.gz", "wt", encoding="utf-8") as f:
            f.write("\n".join(toy.test_sentences[:6]) + "\n")
    results = benchmark.run_benchmark(
        models=[str(model_dir), str(other_dir)],
        baseline=str(ar_dir),
        data_dir=str(data),
        src="en",
        tgt="de",
        split="test",
        output_dir=str(root / "results"),
        settings=[{"max_iterations": 2, "length_beam": 1}],
        ar_settings=[{"num_beams": 1}],
        latency_sentences=2,
        warmup=0,
        command="pytest",
    )
    key = {r["model_path"]: r["model"] for r in results["rows"]}
    return {
        "results": root / "results" / "results.json",
        "rows": results["rows"],
        "other_dir": other_dir,
        "own_key": key[str(model_dir)],
        "other_key": key[str(other_dir)],
    }


def cli_export(model_dir: Path, output: Path, results: Path, model_key: str, *extra: str) -> Path:
    return cli.main(
        [
            "export",
            "--model",
            str(model_dir),
            "--output_dir",
            str(output),
            "--results",
            str(results),
            "--model_key",
            model_key,
            *extra,
        ]
    )


def test_export_with_the_models_own_benchmark_puts_its_numbers_in_model_index(model_dir, benchmarked, tmp_path):
    own = [r for r in benchmarked["rows"] if r["model_path"] == str(model_dir)]
    assert own and {r["model_fingerprint"] for r in own} == {model_fingerprint(model_dir)}
    out = cli_export(model_dir, tmp_path / "export", benchmarked["results"], benchmarked["own_key"])
    card = ModelCard.load(out / "README.md")
    claimed = {(r.metric_type, r.metric_value) for r in card.data.eval_results}
    assert claimed >= {("bleu", own[0]["bleu"]), ("chrf", own[0]["chrf"])}
    evaluation = section((out / "README.md").read_text(), "Evaluation")
    assert "on this very model" in evaluation and "another model" not in evaluation
    assert model_fingerprint(model_dir) in (out / "README.md").read_text()


def test_cli_refuses_another_models_numbers_and_writes_nothing(model_dir, benchmarked, tmp_path):
    output = tmp_path / "export"
    with pytest.raises(SystemExit) as refused:
        cli_export(model_dir, output, benchmarked["results"], benchmarked["other_key"])
    message = str(refused.value.code)
    assert "measured on another model" in message and str(benchmarked["other_dir"]) in message
    assert model_fingerprint(model_dir) in message and model_fingerprint(benchmarked["other_dir"]) in message
    assert "--allow_results_of_another_model" in message
    assert not output.exists() and not output.with_name("export.tmp").exists()
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "keep.txt").write_text("mine")
    with pytest.raises(SystemExit, match="measured on another model"):
        cli_export(model_dir, occupied, benchmarked["results"], benchmarked["other_key"], "--overwrite")
    assert [p.name for p in occupied.iterdir()] == ["keep.txt"]


def test_allowing_another_models_numbers_states_it_and_keeps_them_out_of_model_index(model_dir, benchmarked, tmp_path):
    out = cli_export(
        model_dir,
        tmp_path / "export",
        benchmarked["results"],
        benchmarked["other_key"],
        "--allow_results_of_another_model",
    )
    text = (out / "README.md").read_text()
    assert ModelCard.load(out / "README.md").data.eval_results is None and "model-index" not in metadata(text)
    evaluation = section(text, "Evaluation")
    assert "These numbers were measured on another model, not on this one." in evaluation
    assert model_fingerprint(benchmarked["other_dir"]) in evaluation and model_fingerprint(model_dir) in evaluation
    other = next(r for r in benchmarked["rows"] if r["model"] == benchmarked["other_key"])
    assert f"| {benchmarked['other_key']} (another model) | {other['label']} | {other['bleu']:.2f} |" in evaluation
    assert "(this model)" not in evaluation and "on this very model" not in evaluation


def test_results_without_fingerprints_are_refused_unless_allowed(model_dir, benchmarked, tmp_path):
    old = json.loads(benchmarked["results"].read_text())
    for row in old["rows"]:
        del row["model_fingerprint"]
    old_results = tmp_path / "old_results.json"
    old_results.write_text(json.dumps(old))
    with pytest.raises(export.ResultsOfAnotherModelError, match="record no fingerprint"):
        export.export_model(model_dir, tmp_path / "export", results=old_results, model_key=benchmarked["own_key"])
    assert not (tmp_path / "export").exists()
    out = export.export_model(
        model_dir,
        tmp_path / "export",
        results=old_results,
        model_key=benchmarked["own_key"],
        allow_results_of_another_model=True,
    )
    text = (out / "README.md").read_text()
    assert ModelCard.load(out / "README.md").data.eval_results is None and "model-index" not in metadata(text)
    assert "These numbers cannot be traced to this model" in section(text, "Evaluation")


# --- bad input ------------------------------------------------------------------------------------------
def test_missing_or_corrupt_model_folder_is_a_clear_error(model_dir, tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json"):
        export.export_model(tmp_path / "nowhere", tmp_path / "out")
    bad_config = tmp_path / "bad_config"
    bad_config.mkdir()
    (bad_config / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match="config.json"):
        export.export_model(bad_config, tmp_path / "out")
    truncated = tmp_path / "truncated"
    truncated.mkdir()
    for f in model_dir.iterdir():
        (truncated / f.name).write_bytes(f.read_bytes())
    weights = truncated / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(OSError, match="model.safetensors"):
        export.export_model(truncated, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_non_nat_model_corrupt_results_and_existing_output_are_refused(model_dir, toy, tmp_path):
    ar = tmp_path / "ar"
    toy_ar_model(toy.tokenizer).save_pretrained(ar)
    toy.tokenizer.save_pretrained(ar)
    with pytest.raises(ValueError, match="unknown hf_nat model_type 'marian'"):
        export.export_model(ar, tmp_path / "out")
    broken = tmp_path / "results.json"
    broken.write_text("{")
    with pytest.raises(ValueError, match="not valid JSON"):
        export.export_model(model_dir, tmp_path / "out", results=broken)
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="overwrite"):
        export.export_model(model_dir, occupied)
    assert (occupied / "keep.txt").read_text() == "mine"


# --- push -------------------------------------------------------------------------------------------------
@pytest.fixture
def no_saved_token(monkeypatch, tmp_path):
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_OIDC_RESOURCE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_TOKEN_PATH", str(tmp_path / "no_token"))


@pytest.fixture
def hub_calls(monkeypatch):
    """Replace the two Hub calls by recorders: no test here touches the network."""
    calls = []

    def create_repo(self, repo_id, **kwargs):
        calls.append(("create_repo", repo_id, kwargs))
        return f"https://huggingface.co/{repo_id}"

    def upload_folder(self, **kwargs):
        calls.append(("upload_folder", kwargs))

    monkeypatch.setattr(HfApi, "create_repo", create_repo)
    monkeypatch.setattr(HfApi, "upload_folder", upload_folder)
    return calls


def test_push_without_token_fails_before_any_call_and_keeps_the_folder(exported, no_saved_token, hub_calls):
    before = snapshot(exported)
    with pytest.raises(RuntimeError, match="no Hugging Face token"):
        export.push_folder(exported, "someone/toy-cmlm")
    assert hub_calls == [] and snapshot(exported) == before


def test_push_offline_or_failing_network_is_a_clear_error_and_keeps_the_folder(exported, monkeypatch, hub_calls):
    before = snapshot(exported)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(RuntimeError, match="offline"):
        export.push_folder(exported, "someone/toy-cmlm", token="hf_dummy")
    assert hub_calls == []
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)

    def unreachable(self, repo_id, **kwargs):
        raise OSError("[Errno 101] Network is unreachable")

    monkeypatch.setattr(HfApi, "create_repo", unreachable)
    with pytest.raises(RuntimeError, match="failed.*Network is unreachable.*intact"):
        export.push_folder(exported, "someone/toy-cmlm", token="hf_dummy")
    assert snapshot(exported) == before


def test_push_uploads_the_folder(exported, monkeypatch, hub_calls):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    url = export.push_folder(exported, "someone/toy-cmlm", token="hf_dummy", private=True)
    assert url == "https://huggingface.co/someone/toy-cmlm"
    (_, repo_id, create_kwargs), (_, upload_kwargs) = hub_calls
    assert repo_id == "someone/toy-cmlm" and create_kwargs["private"] and create_kwargs["exist_ok"]
    assert upload_kwargs["folder_path"] == str(exported) and upload_kwargs["repo_id"] == "someone/toy-cmlm"
    with pytest.raises(ValueError):
        export.push_folder(exported, "not a repo id!", token="hf_dummy")


def test_cli_push_without_token_exits_with_the_error_and_leaves_the_export(
    model_dir, tmp_path, no_saved_token, hub_calls
):
    out = tmp_path / "cli_export"
    with pytest.raises(SystemExit, match="no Hugging Face token"):
        cli.main(["export", "--model", str(model_dir), "--output_dir", str(out), "--push", "someone/toy-cmlm"])
    assert (out / "model.safetensors").is_file() and (out / "README.md").is_file()
    assert 'model="someone/toy-cmlm"' in (out / "README.md").read_text()
    assert hub_calls == []
