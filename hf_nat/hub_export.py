"""Export a trained hf_nat model as a self-contained Hub folder, and optionally push it.

The folder loads in a process where hf_nat is not installed::

    AutoModelForSeq2SeqLM.from_pretrained(folder, trust_remote_code=True)
    pipeline("translation", model=folder, trust_remote_code=True)

It holds safetensors weights, ``config.json`` (``auto_map`` for AutoConfig/AutoModel/
AutoModelForSeq2SeqLM, ``custom_pipelines["translation"]``), the flat modeling code, the
tokenizer, ``generation_config.json`` with the family's decoding defaults, and a README model card
rendered from ``model_cards/nat_translation.md`` with the benchmark results (never invented ones).
A model of audio sources (``source_modality="audio"``) also carries its feature extractor or
processor, ``custom_pipelines["automatic-speech-recognition"]`` and the card of
``model_cards/nat_speech_recognition.md``, filled from a ``training/benchmark_speech.py`` results.json.
A captioner (``source_modality="image"``) carries its image processor (processor_config.json),
``custom_pipelines["image-to-text"]`` and the card of ``model_cards/nat_image_captioning.md``,
filled from a ``training/benchmark_captioning.py`` results.json.

The benchmark rows must have been measured on this very model: their recorded fingerprint
(``hf_nat.provenance.model_fingerprint``) must equal the exported folder's. Rows of another model,
or rows without a fingerprint (older benchmarks), are refused; with
``--allow_results_of_another_model`` they appear in the card's prose and table, marked as another
model's, and never in its ``model-index`` metadata.

Example::

    hf-nat export --model runs/cmlm_en_de/best --output_dir exports/cmlm_en_de \\
        --results results/cmlm_en_de_cpu/results.json --model_key cmlm_en_de/best \\
        --training_summary runs/cmlm_en_de/summary.json [--push USER/cmlm-en-de] [--private]
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import transformers
from huggingface_hub import EvalResult, HfApi, ModelCard, ModelCardData, get_token
from huggingface_hub.constants import is_offline_mode
from huggingface_hub.utils import validate_repo_id
from transformers import AutoConfig, AutoModelForSeq2SeqLM, AutoTokenizer
from transformers.dynamic_module_utils import get_imports, get_relative_import_files

from hf_nat.files import read_json, replace_folder
from hf_nat.models import NATImageToTextPipeline, NATSpeechRecognitionPipeline, NATTranslationPipeline
from hf_nat.models.nat_registry import Family, family_of
from hf_nat.provenance import load_fingerprinted
from hf_nat.results import Row

CARD_TEMPLATE = Path(__file__).resolve().parent / "model_cards" / "nat_translation.md"
SPEECH_CARD_TEMPLATE = Path(__file__).resolve().parent / "model_cards" / "nat_speech_recognition.md"
AUTO_CLASSES = ("AutoConfig", "AutoModel", "AutoModelForSeq2SeqLM")
# What a model of an audio source also needs: its feature extractor's file, the speech Auto class.
FEATURE_EXTRACTOR_FILE = "preprocessor_config.json"
PROCESSOR_FILE = "processor_config.json"
SPEECH_AUTO_CLASS = "AutoModelForSpeechSeq2Seq"
CAPTION_CARD_TEMPLATE = Path(__file__).resolve().parent / "model_cards" / "nat_image_captioning.md"
IMAGE_AUTO_CLASS = "AutoModelForImageTextToText"
_EXAMPLES = {
    "en": "A man is riding a bicycle down the street.",
    "de": "Ein Mann fährt mit dem Fahrrad die Straße entlang.",
    "fr": "Un homme fait du vélo dans la rue.",
    "cs": "Muž jede na kole po ulici.",
}


# --- loading the model folder -------------------------------------------------------------------
def load_model_folder(model_dir: str | os.PathLike):
    """Load ``(model, tokenizer)`` from a ``save_pretrained`` folder, with errors that name the folder."""
    path = Path(model_dir)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(
            f"{path} is not a model folder: no config.json there "
            f"(expected the output of save_pretrained, e.g. runs/<name>/best)"
        )
    try:
        config = AutoConfig.from_pretrained(path)
    except (OSError, ValueError) as error:
        raise ValueError(f"unreadable config.json in {path}: {error}") from error
    family_of(config.model_type)
    model = AutoModelForSeq2SeqLM.from_pretrained(path)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError) as error:
        raise FileNotFoundError(f"no loadable tokenizer in {path}: {error}") from error
    fill_generation_defaults(model)
    return model.eval(), tokenizer


def fill_generation_defaults(model) -> None:
    """Give the generation config every decoding default of the family that it lacks (saved values win)."""
    for name, value in model.nat_generation_defaults.items():
        if not hasattr(model.generation_config, name):
            setattr(model.generation_config, name, value)


# --- the flat modeling code ------------------------------------------------------------------------
def _class_ref(cls: type) -> str:
    """``module.Class`` as remote code names it: the flat file's stem, then the class."""
    return f"{cls.__module__.rsplit('.', 1)[-1]}.{cls.__name__}"


def _family_classes(family: Family) -> tuple[type, type, type]:
    """The classes AutoConfig, AutoModel and AutoModelForSeq2SeqLM load for ``family``."""
    return family.config_class, family.base_class, family.head_class


def auto_map_for(model_type: str, source_modality: str = "text") -> dict[str, str]:
    """The ``auto_map`` entries of a family: AutoConfig, AutoModel and AutoModelForSeq2SeqLM, and
    for a model of an audio source AutoModelForSpeechSeq2Seq, of an image AutoModelForImageTextToText."""
    family = family_of(model_type)
    entries = dict(zip(AUTO_CLASSES, map(_class_ref, _family_classes(family))))
    if source_modality == "audio":
        entries[SPEECH_AUTO_CLASS] = _class_ref(family.head_class)
    if source_modality == "image":
        entries[IMAGE_AUTO_CLASS] = _class_ref(family.head_class)
    return entries


def custom_pipelines_entry(source_modality: str = "text") -> dict[str, dict]:
    """``config.custom_pipelines`` for the model's pipeline, in the format transformers 5 reads:
    "translation" for a text source, "automatic-speech-recognition" for audio, "image-to-text"
    for images.

    ``pipeline()`` looks a task up in ``config.custom_pipelines`` *before* it rejects the task
    names transformers 5 removed or renamed ("translation", "image-to-text") and before its
    built-in tasks, so no registration is needed in the loading process. ``pt`` names transformers Auto classes; v5 has
    no TensorFlow, so no ``tf``.
    """
    if source_modality == "audio":
        return {
            "automatic-speech-recognition": {
                "impl": _class_ref(NATSpeechRecognitionPipeline),
                "pt": [SPEECH_AUTO_CLASS],
                "type": "audio",
            }
        }
    if source_modality == "image":
        return {
            "image-to-text": {"impl": _class_ref(NATImageToTextPipeline), "pt": [IMAGE_AUTO_CLASS], "type": "image"}
        }
    return {
        "translation": {"impl": _class_ref(NATTranslationPipeline), "pt": ["AutoModelForSeq2SeqLM"], "type": "text"}
    }


def pipeline_class_of(source_modality: str) -> type:
    """The pipeline class an exported model of ``source_modality`` carries."""
    return {"audio": NATSpeechRecognitionPipeline, "image": NATImageToTextPipeline}.get(
        source_modality, NATTranslationPipeline
    )


def code_files(classes: Sequence[type]) -> list[Path]:
    """Source files of ``classes`` plus every sibling module they import relatively, recursively.

    Uses transformers' own import scanner, so the list is exactly what the remote-code loader
    will look for.
    """
    files: dict[str, Path] = {}
    for cls in classes:
        source = Path(sys.modules[cls.__module__].__file__)
        for path in [source, *map(Path, get_relative_import_files(source))]:
            files.setdefault(path.name, path)
    return sorted(files.values())


def copy_code(classes: Sequence[type], folder: Path) -> list[Path]:
    """Copy the flat modeling code into ``folder``; refuse code that imports hf_nat absolutely."""
    copied = []
    for source in code_files(classes):
        if "hf_nat" in get_imports(source):
            raise ValueError(
                f"{source} imports hf_nat absolutely; remote code can only use relative imports of sibling modules"
            )
        target = folder / source.name
        shutil.copyfile(source, target)
        copied.append(target)
    return copied


# --- benchmark results and training summary ---------------------------------------------------------
def load_results(path: str | os.PathLike) -> dict:
    """Read a results.json written by ``hf-nat benchmark``: ``{"metadata": dict, "rows": [Row, ...]}``."""
    results = read_json(path, "benchmark results")
    if not isinstance(results.get("rows"), list) or not all(isinstance(r, dict) for r in results["rows"]):
        raise ValueError(
            f"benchmark results file {path} has no 'rows' list of objects (not an hf-nat benchmark result)"
        )
    try:
        rows = [Row.from_dict(row) for row in results["rows"]]
    except ValueError as error:
        raise ValueError(f"benchmark results file {path}: {error}") from error
    return {"metadata": results.get("metadata") or {}, "rows": rows}


def _same_path(a: str, b: str | os.PathLike) -> bool:
    return os.path.normpath(a) == os.path.normpath(b) or os.path.realpath(a) == os.path.realpath(b)


def select_rows(results: dict | None, model_dir: str | os.PathLike, model_key: str | None = None) -> list[Row]:
    """The NAT rows of ``results`` that measured this model: named ``model_key``, else with its path.

    No match by bare folder name ("best"): a wrong match would put another model's numbers on the card.
    """
    if not results:
        return []
    rows = [r for r in results["rows"] if r.is_nat]
    if model_key is not None:
        return [r for r in rows if r.model == model_key]
    return [r for r in rows if _same_path(r.model_path, model_dir)]


class ResultsOfAnotherModelError(ValueError):
    """The benchmark rows chosen for a card cannot be shown to have measured the exported model."""


def measured_models(rows: Sequence[Row]) -> list[dict]:
    """The distinct models that ``rows`` measured: ``{"path", "fingerprint"}`` each, fingerprint None
    where the benchmark recorded none."""
    pairs = dict.fromkeys((r.model_path, r.model_fingerprint) for r in rows)
    return [{"path": path, "fingerprint": fingerprint} for path, fingerprint in pairs]


def results_mismatch(rows: Sequence[Row], fingerprint: str) -> str | None:
    """Why ``rows`` may not be claimed as results of the model with ``fingerprint``; None when they may.

    They may only if every row recorded exactly this fingerprint.
    """
    measured = measured_models(rows)
    others = [m for m in measured if m["fingerprint"] and m["fingerprint"] != fingerprint]
    if others:
        return "they were measured on another model: " + ", ".join(
            f"{m['path']} (fingerprint {m['fingerprint']})" for m in others
        )
    if any(not m["fingerprint"] for m in measured):
        return (
            "they record no fingerprint of the model measured (written by a benchmark older "
            "than model fingerprints), so they cannot be traced to this model"
        )
    return None


def baseline_rows(results: dict | None) -> list[Row]:
    """The autoregressive rows of ``results`` (the baseline that speed ratios refer to)."""
    return [r for r in results["rows"] if not r.is_nat] if results else []


def default_training_summary(model_dir: str | os.PathLike) -> Path | None:
    """``training_info.json``, which hf-nat train writes into best/ and final/, if present."""
    path = Path(model_dir) / "training_info.json"
    return path if path.is_file() else None


# --- the model card -----------------------------------------------------------------------------------
def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _fmt(value: Any, digits: int = 2) -> str:
    return f"{value:.{digits}f}" if _finite(value) else "n/a"


def eval_results(rows: Sequence[Row], dataset: dict, baseline_label: str) -> list[EvalResult]:
    """model-index entries: sacreBLEU, chrF and the latency speedup of each decoding setting, as measured."""
    common = dict(
        task_type="translation",
        task_name="Translation",
        dataset_type=dataset["type"],
        dataset_name=dataset["name"],
        dataset_config=dataset["config"],
        dataset_split=dataset["split"],
    )
    metrics = [
        ("bleu", "bleu", "sacreBLEU"),
        ("chrf", "chrf", "chrF"),
        ("speedup", "speedup", f"latency speedup vs AR {baseline_label}, batch 1"),
    ]
    results = []
    for row in rows:
        for key, metric_type, name in metrics:
            if _finite(getattr(row, key)):
                results.append(
                    EvalResult(
                        metric_type=metric_type,
                        metric_name=f"{name} ({row.label})",
                        metric_value=getattr(row, key),
                        **common,
                    )
                )
    return results


def _table_row(row: Row, nat_kind: str) -> dict:
    iterations = _fmt(row.mean_iterations)
    if not row.is_nat and iterations != "n/a":
        iterations += " steps"
    return {
        "model": row.model,
        "kind": nat_kind if row.is_nat else "AR baseline",
        "setting": row.label,
        "bleu": _fmt(row.bleu),
        "chrf": _fmt(row.chrf),
        "latency": _fmt(row.latency_ms_median, 1),
        "speedup": _fmt(row.speedup),
        "sents_per_s": _fmt(row.sents_per_s, 1),
        "throughput": _fmt(row.throughput_ratio),
        "iterations": iterations,
        "repetition": _fmt(100 * row.repetition_rate) if _finite(row.repetition_rate) else "n/a",
    }


def _show(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return json.dumps(value) if isinstance(value, (dict, list, bool)) or value is None else str(value)


def _recipe(summary: dict | None) -> dict | None:
    """Training facts as (name, value) pairs: top-level scalars, then the command-line arguments."""
    if not summary:
        return None
    facts = [(k, v) for k, v in summary.items() if not isinstance(v, (dict, list))]
    args = summary.get("args") if isinstance(summary.get("args"), dict) else {}
    curve = summary.get("valid_curve")
    if isinstance(curve, list) and curve:
        facts.append(("validation points", len(curve)))
    return {"facts": [(k, _show(v)) for k, v in facts], "args": [(k, _show(v)) for k, v in args.items()]}


def _model_facts(model) -> dict:
    config = model.config
    family = family_of(config.model_type)
    return {
        "family": family.head_class.__name__.replace("ForConditionalGeneration", ""),
        "family_summary": (family.config_class.__doc__ or "").strip().splitlines()[0].rstrip("."),
        "model_type": config.model_type,
        "parameters": f"{model.num_parameters():,}",
        "encoder_layers": config.encoder_layers,
        "decoder_layers": config.decoder_layers,
        "d_model": config.d_model,
        "heads": config.encoder_attention_heads,
        "ffn_dim": config.encoder_ffn_dim,
        "vocab_size": config.vocab_size,
        "max_positions": config.max_position_embeddings,
        # Python literals: the card's snippets pass them as keyword arguments (a string needs its quotes).
        "decoding_defaults": {k: repr(getattr(model.generation_config, k)) for k in model.nat_generation_defaults},
    }


def _dataset(
    results: dict | None, summary: dict | None, dataset_name: str | None, src: str | None, tgt: str | None
) -> dict:
    """Dataset name, languages and split, from the arguments, else the results, else the training args."""
    meta = (results or {}).get("metadata", {})
    args = (summary or {}).get("args") or {}
    src = src or meta.get("src") or args.get("src")
    tgt = tgt or meta.get("tgt") or args.get("tgt")
    data_dir = meta.get("data_dir") or args.get("data")
    name = dataset_name or (os.path.basename(os.path.normpath(data_dir)) if data_dir else None)
    pair = f"{src}-{tgt}" if src and tgt else None
    return {
        "type": name or "unknown",
        "name": f"{name} {pair}" if name and pair else (name or "unknown"),
        "config": pair,
        "split": meta.get("split"),
        "src": src,
        "tgt": tgt,
        "known": name is not None,
    }


def render_model_card(
    model,
    fingerprint: str,
    rows: Sequence[Row] = (),
    results: dict | None = None,
    training_summary: dict | None = None,
    model_name: str = "model",
    repo_id: str | None = None,
    dataset_name: str | None = None,
    src: str | None = None,
    tgt: str | None = None,
    template_path: str | os.PathLike = CARD_TEMPLATE,
) -> ModelCard:
    """Fill the card template: metadata (``model-index`` from ``rows``), usage, results, recipe, limitations.

    ``fingerprint`` is the model's (``hf_nat.provenance.model_fingerprint`` of its folder) and
    ``rows`` the benchmark rows chosen for it. Only rows that recorded this fingerprint go into
    ``model-index``; other rows (which export_model lets through only when told to) appear in the
    prose and table under a statement that they are not this model's. With no rows, the card says
    that the metrics are missing and ``model-index`` is left out. No number appears that is not in
    ``results``.
    """
    dataset = _dataset(results, training_summary, dataset_name, src, tgt)
    facts = dict(_model_facts(model), fingerprint=fingerprint)
    meta = (results or {}).get("metadata", {}) if rows else {}
    baseline_label = meta.get("baseline_setting", "greedy")
    mismatch = results_mismatch(rows, fingerprint) if rows else None
    measured = measured_models(rows)
    # "another model" when a recorded fingerprint differs; rows without one are only untraceable.
    provenance = {
        "this_model": mismatch is None,
        "measured": measured,
        "another_model": any(m["fingerprint"] and m["fingerprint"] != fingerprint for m in measured),
    }
    evals = eval_results(rows, dataset, baseline_label) if mismatch is None else []
    card_data = ModelCardData(
        language=[lang for lang in (dataset["src"], dataset["tgt"]) if lang] or None,
        license="apache-2.0",
        library_name="transformers",
        pipeline_tag="translation",
        tags=["translation", "non-autoregressive", "hf_nat", facts["model_type"]],
        datasets=[dataset["type"]] if dataset["known"] else None,
        metrics=["sacrebleu", "chrf"] if evals else None,
        model_name=model_name if evals else None,
        eval_results=evals or None,
    )
    nat_kind = "this model" if mismatch is None else "another model"
    table = [_table_row(r, nat_kind) for r in [*baseline_rows(results if rows else None), *rows]]
    return ModelCard.from_template(
        card_data,
        template_path=str(template_path),
        model_name=model_name,
        repo_id=repo_id or f"path/to/{model_name}",
        dataset=dataset,
        model=facts,
        example=_EXAMPLES.get(dataset["src"], f"<a sentence in {dataset['src'] or 'the source language'}>"),
        has_results=bool(rows),
        provenance=provenance,
        table=table,
        meta=meta,
        device=meta.get("gpu") or meta.get("cpu") or meta.get("device"),
        recipe=_recipe(training_summary),
        transformers_version=transformers.__version__,
    )


# --- the speech model card ---------------------------------------------------------------------------
def select_speech_rows(results: dict | None, model_dir: str | os.PathLike, model_key: str | None = None) -> list:
    """The NAT rows of a speech (or captioning) benchmark's results that measured this model (by ``model_key``,
    else by path), each as a :class:`Row`-like record for the provenance checks."""
    if not results:
        return []
    if not isinstance(results.get("rows"), list) or "splits" not in results.get("metadata", {}):
        raise ValueError(
            "the results are not a speech benchmark's (training/benchmark_speech.py results.json) "
            "or a captioning benchmark's (training/benchmark_captioning.py)"
        )
    rows = [r for r in results["rows"] if r.get("kind") == "nat"]
    chosen = (
        [r for r in rows if r["model"] == model_key]
        if model_key
        else [r for r in rows if _same_path(r["model_path"], model_dir)]
    )
    return [SpeechRow(r) for r in chosen]


class SpeechRow(dict):
    """A speech benchmark row with the attribute names the provenance checks read."""

    @property
    def model_path(self) -> str:
        return self["model_path"]

    @property
    def model_fingerprint(self) -> str | None:
        return self.get("model_fingerprint")


def _speech_table_row(row: dict, splits: Sequence[str]) -> dict:
    return {
        "model": row["model"] + (" (AR baseline)" if row["kind"] == "ar" else ""),
        "label": row["label"],
        "scores": {s: {"wer": _fmt(row[s]["wer"]), "cer": _fmt(row[s]["cer"])} for s in splits},
        "latency": _fmt(row["latency_ms_median"], 1),
        "speedup": _fmt(row.get("speedup")),
        "throughput": _fmt(row.get("throughput_ratio")),
    }


def render_speech_model_card(
    model,
    model_dir: Path,
    fingerprint: str,
    rows: Sequence[dict],
    results: dict | None,
    training_summary: dict | None,
    model_name: str,
    repo_id: str | None = None,
    dataset_name: str | None = None,
) -> ModelCard:
    """Fill the speech card template: usage through the ASR pipeline, WER/CER per test split and
    speed ratios from a speech benchmark's ``results`` (only rows of this fingerprint go into
    ``model-index``), the training recipe and limitations. No number appears that is not in ``results``."""
    from transformers import AutoFeatureExtractor

    extractor = AutoFeatureExtractor.from_pretrained(model_dir)
    parts = _source_card_parts(
        model, fingerprint, rows, results, training_summary, model_name, dataset_name,
        "automatic-speech-recognition", "Speech recognition", [("wer", "WER"), ("cer", "CER")],
        ["automatic-speech-recognition"],
    )  # fmt: skip
    hop_seconds = extractor.sampling_rate and getattr(extractor, "hop_length", 160) / extractor.sampling_rate
    facts = dict(
        _model_facts(model),
        fingerprint=fingerprint,
        num_mel_bins=model.config.num_mel_bins,
        sampling_rate=extractor.sampling_rate,
        max_seconds=f"{model.max_source_positions() * (hop_seconds or 0.01):.1f}",
    )
    return _render_source_card(
        SPEECH_CARD_TEMPLATE, parts, facts, rows, _speech_table_row, model_name, repo_id, training_summary
    )


# --- the captioning model card ------------------------------------------------------------------------
def render_caption_model_card(
    model,
    model_dir: Path,
    fingerprint: str,
    rows: Sequence[dict],
    results: dict | None,
    training_summary: dict | None,
    model_name: str,
    repo_id: str | None = None,
    dataset_name: str | None = None,
) -> ModelCard:
    """Fill the captioning card template: usage through the image-to-text pipeline, BLEU-4, CIDEr
    and repetition per test split and speed ratios from a captioning benchmark's ``results`` (only
    rows of this fingerprint go into ``model-index``), the training recipe and limitations. No
    number appears that is not in ``results``."""
    parts = _source_card_parts(
        model, fingerprint, rows, results, training_summary, model_name, dataset_name,
        "image-to-text", "Image captioning", [("bleu4", "BLEU-4"), ("cider", "CIDEr")],
        ["image-to-text", "image-captioning"],
    )  # fmt: skip
    vision = model.config.vision_config
    facts = dict(
        _model_facts(model),
        fingerprint=fingerprint,
        vision_model_type=vision.get("model_type"),
        vision_layers=vision.get("num_hidden_layers", "?"),
        image_size=vision.get("image_size", "?"),
        patch_size=vision.get("patch_size", "?"),
    )
    return _render_source_card(
        CAPTION_CARD_TEMPLATE, parts, facts, rows, _caption_table_row, model_name, repo_id, training_summary
    )


def _caption_table_row(row: dict, splits: Sequence[str]) -> dict:
    return {
        "model": row["model"] + (" (AR baseline)" if row["kind"] == "ar" else ""),
        "label": row["label"],
        "scores": {s: {k: _fmt(row[s][k]) for k in ("bleu4", "cider", "repetition")} for s in splits},
        "latency": _fmt(row["latency_ms_median"], 1),
        "speedup": _fmt(row.get("speedup")),
        "throughput": _fmt(row.get("throughput_ratio")),
    }


def _source_card_parts(
    model,
    fingerprint: str,
    rows: Sequence[dict],
    results: dict | None,
    training_summary: dict | None,
    model_name: str,
    dataset_name: str | None,
    pipeline_tag: str,
    task_name: str,
    metrics: Sequence[tuple[str, str]],
    tags: Sequence[str],
) -> dict:
    """What the speech and captioning cards share: the benchmark's metadata, the dataset (and
    whether it is one of our synthetic corpora), splits, provenance, the ``model-index`` entries of
    ``metrics`` ((key, title) pairs; only rows of this fingerprint), the card data and the AR rows."""
    meta = (results or {}).get("metadata", {}) if rows else {}
    args = (training_summary or {}).get("args") or {}
    data = meta.get("data") or args.get("data")
    name = dataset_name or (os.path.basename(os.path.normpath(data)) if data else None)
    dataset = {"type": name or "unknown", "name": name or "unknown", "known": name is not None}
    splits = meta.get("splits", [])
    mismatch = results_mismatch(rows, fingerprint) if rows else None
    evals = [
        EvalResult(
            task_type=pipeline_tag,
            task_name=task_name,
            dataset_type=dataset["type"],
            dataset_name=dataset["name"],
            dataset_split=split,
            metric_type=key,
            metric_name=f"{title} ({row['label']})",
            metric_value=row[split][key],
        )
        for row in (rows if mismatch is None else [])
        for split in splits
        for key, title in metrics
    ]
    card_data = ModelCardData(
        language=["en"],
        license="apache-2.0",
        library_name="transformers",
        pipeline_tag=pipeline_tag,
        tags=[*tags, "non-autoregressive", "hf_nat", model.config.model_type],
        datasets=[dataset["type"]] if dataset["known"] else None,
        metrics=[key for key, _ in metrics] if evals else None,
        model_name=model_name if evals else None,
        eval_results=evals or None,
    )
    return {
        "meta": meta,
        "dataset": dataset,
        "synthetic": bool(data) and os.path.isfile(os.path.join(data, "corpus_info.json")),
        "splits": splits,
        "provenance": {"this_model": mismatch is None, "measured": measured_models(rows)},
        "card_data": card_data,
        "baseline": [r for r in (results or {}).get("rows", []) if r.get("kind") == "ar"] if rows else [],
    }


def _render_source_card(
    template: Path, parts: dict, facts: dict, rows, table_row, model_name: str, repo_id, training_summary
) -> ModelCard:
    """A speech or captioning card from ``template``, the shared ``parts`` and the model's ``facts``."""
    splits = parts["splits"]
    return ModelCard.from_template(
        parts["card_data"],
        template_path=str(template),
        model_name=model_name,
        repo_id=repo_id or f"path/to/{model_name}",
        dataset=parts["dataset"],
        synthetic=parts["synthetic"],
        model=facts,
        has_results=bool(rows),
        provenance=parts["provenance"],
        splits=splits,
        table=[table_row(r, splits) for r in [*parts["baseline"], *rows]],
        meta=parts["meta"],
        device=parts["meta"].get("cpu"),
        recipe=_recipe(training_summary),
        transformers_version=transformers.__version__,
    )


# --- export and push ------------------------------------------------------------------------------------
def _prepare_output(output_dir: Path, overwrite: bool) -> Path:
    """A fresh staging folder beside ``output_dir``; refuse to clobber a non-empty one unless asked."""
    if output_dir.exists() and any(output_dir.iterdir()) and not overwrite:
        raise FileExistsError(f"{output_dir} exists and is not empty (pass overwrite=True / --overwrite)")
    staging = output_dir.with_name(output_dir.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    return staging


def _save_model(model, tokenizer, folder: Path, model_dir: Path) -> None:
    """Weights, config (auto_map, custom_pipelines), generation defaults, tokenizer, the feature
    extractor of an audio model or the image processor of a captioner, flat code."""
    family = family_of(model.config.model_type)
    modality = model.config.source_modality
    # transformers only writes the saved class's own _auto_class into auto_map: seed them all.
    model.config.auto_map = auto_map_for(model.config.model_type, modality)
    model.config.custom_pipelines = custom_pipelines_entry(modality)
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    if modality in ("audio", "image"):
        # A feature extractor or image processor saved alone writes preprocessor_config.json; one
        # saved in a processor (hf-nat train --task speech / captioning) is inside
        # processor_config.json. Either reloads it.
        found = [name for name in (FEATURE_EXTRACTOR_FILE, PROCESSOR_FILE) if (model_dir / name).is_file()]
        if not found:
            kind = "feature extractor" if modality == "audio" else "image processor"
            raise FileNotFoundError(
                f"{model_dir} holds an {modality} model but no {kind} ({FEATURE_EXTRACTOR_FILE} or "
                f"{PROCESSOR_FILE}); save the {kind} (or processor) the model was trained with into it"
            )
        for name in found:
            shutil.copyfile(model_dir / name, folder / name)
    copy_code([*_family_classes(family), pipeline_class_of(modality)], folder)


def export_model(
    model_dir: str | os.PathLike,
    output_dir: str | os.PathLike,
    results: str | os.PathLike | None = None,
    model_key: str | None = None,
    training_summary: str | os.PathLike | None = None,
    dataset_name: str | None = None,
    src: str | None = None,
    tgt: str | None = None,
    repo_id: str | None = None,
    overwrite: bool = False,
    allow_results_of_another_model: bool = False,
) -> Path:
    """Export the model in ``model_dir`` into ``output_dir`` as a Hub folder; returns its path.

    ``results`` is an ``hf-nat benchmark`` results.json (rows picked by ``model_key``, else by
    this model's path); ``training_summary`` an ``hf-nat train`` summary.json (default: the
    folder's training_info.json). The folder is written beside ``output_dir`` and moved into
    place only when complete.

    The picked rows must carry this model's fingerprint; otherwise (another model's rows, or rows
    without a fingerprint) ResultsOfAnotherModelError is raised before anything is written, unless
    ``allow_results_of_another_model``: then the card shows them as another model's, outside
    ``model-index``.
    """
    output = Path(output_dir)
    if output.resolve() == Path(model_dir).resolve():
        raise ValueError(f"output_dir {output} is the model folder itself; export into another folder")
    (model, tokenizer), fingerprint = load_fingerprinted(model_dir, load_model_folder)
    modality = model.config.source_modality
    speech = modality != "text"  # speech and captioning benchmarks share one results layout
    bench = None
    if results:
        bench = read_json(results, f"{modality} benchmark results") if speech else load_results(results)
    rows = select_speech_rows(bench, model_dir, model_key) if speech else select_rows(bench, model_dir, model_key)
    if bench is not None and not rows:
        available = sorted({r.model for r in bench["rows"] if r.is_nat})
        warnings.warn(
            f"{results} has no rows for {model_key or model_dir} (NAT models there: {available}; "
            f"pass model_key to pick one); the card will say that metrics are missing",
            stacklevel=2,
        )
    mismatch = results_mismatch(rows, fingerprint) if rows else None
    if mismatch and not allow_results_of_another_model:
        raise ResultsOfAnotherModelError(
            f"the rows of {results} for {model_key or model_dir} cannot go on the card of {model_dir} "
            f"(fingerprint {fingerprint}): {mismatch}. Benchmark this model (hf-nat benchmark --models "
            f"{model_dir}) and export with those results, or pass --allow_results_of_another_model to show them "
            f"on the card marked as another model's and left out of model-index; nothing was written"
        )
    summary_path = training_summary if training_summary is not None else default_training_summary(model_dir)
    summary = read_json(summary_path, "training summary") if summary_path is not None else None
    name = repo_id.split("/")[-1] if repo_id else output.name
    if modality == "audio":
        card = render_speech_model_card(
            model, Path(model_dir), fingerprint, rows, bench, summary, name, repo_id, dataset_name
        )
    elif modality == "image":
        card = render_caption_model_card(
            model, Path(model_dir), fingerprint, rows, bench, summary, name, repo_id, dataset_name
        )
    else:
        card = render_model_card(
            model,
            fingerprint,
            rows,
            bench,
            summary,
            model_name=name,
            repo_id=repo_id,
            dataset_name=dataset_name,
            src=src,
            tgt=tgt,
        )
    staging = _prepare_output(output, overwrite)
    try:
        _save_model(model, tokenizer, staging, Path(model_dir))
        card.save(staging / "README.md")
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    replace_folder(staging, output)
    return output


def push_folder(output_dir: str | os.PathLike, repo_id: str, token: str | None = None, private: bool = False) -> str:
    """Upload an exported folder to the Hub model repo ``repo_id`` (created if missing); returns its URL.

    Raises RuntimeError, before any network call, without a token (``token``, HF_TOKEN or a saved
    login) or in offline mode, and wraps network/Hub failures in a RuntimeError. The folder is
    only read, never changed.
    """
    folder = Path(output_dir)
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"{folder} is not an exported model folder (no config.json); run the export first")
    validate_repo_id(repo_id)
    token = token or get_token()
    if not token:
        raise RuntimeError(
            f"cannot push to {repo_id}: no Hugging Face token (pass --token, set HF_TOKEN or "
            f"run `hf auth login`); the exported folder {folder} is intact"
        )
    if is_offline_mode():
        raise RuntimeError(
            f"cannot push to {repo_id}: offline mode is on (HF_HUB_OFFLINE=1); the exported folder {folder} is intact"
        )
    api = HfApi(token=token)
    try:
        url = api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
        api.upload_folder(
            folder_path=str(folder),
            repo_id=repo_id,
            repo_type="model",
            commit_message="Upload hf_nat export (weights, remote code, model card)",
        )
    # Auth, network and server failures surface as many exception types (HfHubHTTPError,
    # OfflineModeIsEnabled, the HTTP client's own errors): report them all the same way, chained.
    except Exception as error:
        raise RuntimeError(
            f"push of {folder} to {repo_id} failed ({type(error).__name__}: {error}); "
            f"the exported folder is intact, retry with the same command"
        ) from error
    return str(url)
