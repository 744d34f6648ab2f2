"""Quality/speed benchmark of speech recognisers: NAT models against an AR baseline, in one run.

Every model folder (saved with its processor by ``hf-nat train --task speech``) transcribes each
test split under each of its decoding settings; the AR baseline (e.g. Speech2Text) is decoded in
the same run, so batch-1 latency and batch throughput are ratios to its greedy decoding on the
same machine and threads. Features are computed once, before any timing: the feature extractor's
cost is the same whichever model reads them. Latency is measured on the first split; WER and CER
(jiwer's definitions, :func:`hf_nat.metrics.error_rates`) on every split. A NAT model's settings
default to what its family declares (``Family.benchmark_settings``).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from hf_nat.data.speech import SpeechCollator, load_speech_corpus, speech_features, transcribe
from hf_nat.files import write_json_atomic, write_text_atomic
from hf_nat.metrics import error_rates
from hf_nat.models.nat_registry import family_of
from hf_nat.run_info import environment
from hf_nat.source_benchmark import (
    add_speed_ratios,
    measure_generate_latency,
    plot_quality_vs_speedup,
    source_setting_label,
)

__all__ = ["load_speech_model", "measure_speech_latency", "run_speech_benchmark"]

AR_SETTINGS = [{"num_beams": 1}, {"num_beams": 5}]


def load_speech_model(path: str):
    """(model, processor, fingerprint) of a speech model folder, on CPU in eval mode."""
    from transformers import AutoModelForSpeechSeq2Seq, AutoProcessor

    import hf_nat  # noqa: F401  (registers the NAT families with the Auto classes)
    from hf_nat.provenance import load_fingerprinted

    def load(folder: str):
        return AutoModelForSpeechSeq2Seq.from_pretrained(folder).eval(), AutoProcessor.from_pretrained(folder)

    (model, processor), fingerprint = load_fingerprinted(path, load)
    if not hasattr(processor, "feature_extractor"):
        raise ValueError(f"{path} holds no feature extractor (preprocessor/processor config); is it a speech model?")
    return model, processor, fingerprint


def measure_speech_latency(model, features: Sequence[np.ndarray], setting: dict, warmup: int) -> dict[str, float]:
    """Batch-1 latency of ``generate()`` over ``features`` after ``warmup`` untimed clips."""
    collate = SpeechCollator()
    batches = [collate([{"input_features": f, "labels": [0]}]) for f in features]
    inputs = [{"input_features": b["input_features"], "attention_mask": b["attention_mask"]} for b in batches]
    return measure_generate_latency(model, inputs, setting, warmup)


def run_speech_benchmark(
    models: Sequence[str],
    baseline: str,
    data: str,
    splits: Sequence[str],
    output_dir: str,
    threads: int = 1,
    batch_size: int = 64,
    latency_clips: int = 100,
    warmup: int = 5,
    max_clips: int | None = None,
    command: str | None = None,
) -> dict[str, Any]:
    """Benchmark ``baseline`` (AR, greedy and beam 5) and ``models`` (their families' settings) on
    ``splits`` of the speech corpus ``data``; write ``results.json``, ``results.md`` and
    ``wer_vs_speedup.png`` to ``output_dir`` and return the results."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    corpus = load_speech_corpus(data, splits)
    os.makedirs(output_dir, exist_ok=True)
    paths = [baseline] + [m for m in models if os.path.realpath(m) != os.path.realpath(baseline)]
    features: dict[str, list[np.ndarray]] = {}
    rows: list[dict[str, Any]] = []
    for index, path in enumerate(paths):
        model, processor, fingerprint = load_speech_model(path)
        is_nat = bool(getattr(model, "is_nat", False))
        if index == 0 and is_nat:
            raise ValueError(f"baseline {path} is a NAT model; it must be autoregressive")
        if not features:  # every model reads the baseline's features: one extractor config for the run
            for split in splits:
                clips = corpus[split]["audio"][:max_clips] if max_clips else corpus[split]["audio"]
                features[split] = speech_features(clips, processor.feature_extractor)
        settings = list(family_of(model.config.model_type).benchmark_settings or [{}]) if is_nat else AR_SETTINGS
        name = os.path.basename(os.path.dirname(os.path.normpath(path))) or path
        for setting in settings:
            label = source_setting_label(setting, is_nat)
            print(f"[speech benchmark] {name} | {label}", file=sys.stderr, flush=True)
            latency = measure_speech_latency(model, features[splits[0]][:latency_clips], setting, warmup)
            row = {
                "model": name,
                "model_path": path,
                "model_fingerprint": fingerprint,
                "kind": "nat" if is_nat else "ar",
                "setting": setting,
                "label": label,
                "latency_ms_median": latency["median_ms"],
                "latency_ms_p90": latency["p90_ms"],
                "latency_clips": latency["n"],
            }
            for split in splits:
                references = list(corpus[split]["target"][: len(features[split])])
                start = time.perf_counter()
                hyps = transcribe(model, processor.tokenizer, features[split], batch_size, **setting)
                seconds = time.perf_counter() - start
                scores = error_rates(hyps, references)
                hyps_file = f"hyps_{name}_{label.replace(' ', '_').replace('=', '')}_{split}.txt"
                write_text_atomic(os.path.join(output_dir, hyps_file), "".join(h + "\n" for h in hyps))
                row[split] = {**scores, "clips_per_s": len(hyps) / seconds, "seconds": seconds, "hyps_file": hyps_file}
            rows.append(row)
        del model
    add_speed_ratios(rows, baseline, splits[0], "clips_per_s")
    results = {
        "metadata": {
            **environment("cpu", "float32", threads, command),
            "data": data,
            "splits": list(splits),
            "clips": {split: len(f) for split, f in features.items()},
            "batch_size": batch_size,
            "latency_clips": min(latency_clips, len(features[splits[0]])),
            "warmup": warmup,
            "baseline": baseline,
            "baseline_setting": "greedy",
        },
        "rows": rows,
    }
    write_json_atomic(os.path.join(output_dir, "results.json"), results)
    write_text_atomic(os.path.join(output_dir, "results.md"), format_speech_markdown(results))
    plot_quality_vs_speedup(results, os.path.join(output_dir, "wer_vs_speedup.png"), "wer", "WER (%)")
    return results


def format_speech_markdown(results: dict[str, Any]) -> str:
    """The results as a markdown table: WER/CER per split, latency and both speed ratios."""
    m = results["metadata"]
    splits = m["splits"]
    head = ["model", "decoding"] + [f"{metric} {split}" for split in splits for metric in ("WER", "CER")]
    head += ["batch-1 ms", "× AR greedy (batch 1)", f"clips/s (batch {m['batch_size']})", "× AR greedy (batch)"]
    lines = [
        f"# Speech recognition benchmark: {m['data']}",
        "",
        f"- command: `{m['command']}`",
        f"- commit {m['git_commit']}, {m['date']}, {m['cpu']}, {m['threads']} thread(s), {m['device']} {m['dtype']}",
        f"- clips: {m['clips']}; latency over the first {m['latency_clips']} clips of {splits[0]} "
        f"after {m['warmup']} warm-up clips; throughput on {splits[0]}",
        f"- ratios are to {m['baseline']} {m['baseline_setting']} in the same run; features computed before timing",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for r in results["rows"]:
        cells = [r["model"], r["label"]]
        cells += [f"{r[split][metric]:.2f}" for split in splits for metric in ("wer", "cer")]
        cells += [f"{r['latency_ms_median']:.1f}", f"{r['speedup']:.2f}", f"{r[splits[0]]['clips_per_s']:.1f}"]
        cells += [f"{r['throughput_ratio']:.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
