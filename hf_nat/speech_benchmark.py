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
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from hf_nat.data.speech import SpeechCollator, load_speech_corpus, speech_features, transcribe
from hf_nat.files import write_json_atomic, write_text_atomic
from hf_nat.metrics import error_rates
from hf_nat.run_info import environment
from hf_nat.source_benchmark import SourceTask, benchmark_rows, plot_quality_vs_speedup

__all__ = ["load_speech_model", "run_speech_benchmark"]


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

    def prepare(processor, split: str) -> list[np.ndarray]:
        clips = corpus[split]["audio"][:max_clips] if max_clips else corpus[split]["audio"]
        return speech_features(clips, processor.feature_extractor)

    def one_by_one(features: list[np.ndarray]) -> list[dict]:
        collate = SpeechCollator()
        batches = [collate([{"input_features": f, "labels": [0]}]) for f in features]
        return [{"input_features": b["input_features"], "attention_mask": b["attention_mask"]} for b in batches]

    def decode(model, processor, features, setting: dict) -> list[str]:
        return transcribe(model, processor.tokenizer, features, batch_size, **setting)

    def score(hyps: list[str], split: str, processor) -> dict:
        return error_rates(hyps, list(corpus[split]["target"][: len(hyps)]))

    task = SourceTask("speech", "clips", load_speech_model, prepare, one_by_one, decode, score)
    rows, features = benchmark_rows(task, models, baseline, splits, output_dir, latency_clips, warmup)
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
