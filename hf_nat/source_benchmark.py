"""What the speech and captioning benchmarks share: setting labels, batch-1 latency of
``generate()``, speed ratios to the AR baseline's greedy decoding, and the quality-against-speed plot."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from hf_nat.benchmark import DEFAULT_AR_SETTINGS, setting_label
from hf_nat.files import write_text_atomic
from hf_nat.models.nat_registry import family_of
from hf_nat.optional import require

__all__ = [
    "SourceTask",
    "add_speed_ratios",
    "benchmark_rows",
    "measure_generate_latency",
    "plot_quality_vs_speedup",
    "source_setting_label",
]


@dataclass
class SourceTask:
    """What a benchmark of one kind of source gives :func:`benchmark_rows`.

    ``load(path)`` → (model, processor, fingerprint); ``prepare(processor, split)`` → the split's
    model inputs, made once with the baseline's processor, before any timing; ``one_by_one(inputs)``
    → generate() keywords per example, for batch-1 latency; ``decode(model, processor, inputs,
    setting)`` → hypotheses in order; ``score(hypotheses, split, processor)`` → named metrics.
    ``unit`` ("clips", "images") names the row keys ``<unit>_per_s`` and ``latency_<unit>``.
    """

    name: str
    unit: str
    load: Callable
    prepare: Callable
    one_by_one: Callable
    decode: Callable
    score: Callable


def source_setting_label(setting: dict[str, Any], is_nat: bool) -> str:
    """:func:`hf_nat.benchmark.setting_label`, with a NAT's single-candidate pass called "one pass"."""
    if is_nat and all(key == "num_candidates" and value == 1 for key, value in setting.items()):
        return "one pass"
    return setting_label(setting, is_nat)


@torch.inference_mode()
def measure_generate_latency(model, inputs: Sequence[dict], setting: dict, warmup: int) -> dict[str, float]:
    """Batch-1 latency of ``model.generate(**one_input, **setting)`` over ``inputs`` (one dict of
    generate() tensors per example) after ``warmup`` untimed ones: median and p90 in ms, and n."""
    for one in inputs[:warmup]:
        model.generate(**one, **setting)
    times = []
    for one in inputs:
        start = time.perf_counter()
        model.generate(**one, **setting)
        times.append(time.perf_counter() - start)
    ms = np.asarray(times) * 1000.0
    return {"median_ms": float(np.median(ms)), "p90_ms": float(np.percentile(ms, 90)), "n": len(times)}


def benchmark_rows(
    task: SourceTask,
    models: Sequence[str],
    baseline: str,
    splits: Sequence[str],
    output_dir: str,
    latency_examples: int,
    warmup: int,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """(rows, inputs per split): ``baseline`` (AR, greedy and beam 5) and ``models`` (their
    families' settings) decoded on every split, with batch-1 latency on the first split's first
    ``latency_examples``, throughput, the task's scores and the hypotheses written to ``output_dir``;
    every row carries its speed ratios to the baseline's greedy row."""
    paths = [baseline] + [m for m in models if os.path.realpath(m) != os.path.realpath(baseline)]
    inputs: dict[str, Any] = {}
    rows: list[dict[str, Any]] = []
    for index, path in enumerate(paths):
        model, processor, fingerprint = task.load(path)
        is_nat = bool(getattr(model, "is_nat", False))
        if index == 0 and is_nat:
            raise ValueError(f"baseline {path} is a NAT model; it must be autoregressive")
        if not inputs:  # every model reads the baseline's inputs: one processor for the run
            inputs = {split: task.prepare(processor, split) for split in splits}
        family_settings = family_of(model.config.model_type).benchmark_settings if is_nat else None
        settings = list(family_settings or [{}]) if is_nat else DEFAULT_AR_SETTINGS
        name = os.path.basename(os.path.dirname(os.path.normpath(path))) or path
        timed = task.one_by_one(inputs[splits[0]])[:latency_examples]
        for setting in settings:
            label = source_setting_label(setting, is_nat)
            print(f"[{task.name} benchmark] {name} | {label}", file=sys.stderr, flush=True)
            latency = measure_generate_latency(model, timed, setting, warmup)
            row = {
                "model": name,
                "model_path": path,
                "model_fingerprint": fingerprint,
                "kind": "nat" if is_nat else "ar",
                "setting": setting,
                "label": label,
                "latency_ms_median": latency["median_ms"],
                "latency_ms_p90": latency["p90_ms"],
                f"latency_{task.unit}": latency["n"],
            }
            for split in splits:
                start = time.perf_counter()
                hyps = task.decode(model, processor, inputs[split], setting)
                seconds = time.perf_counter() - start
                hyps_file = f"hyps_{name}_{label.replace(' ', '_').replace('=', '')}_{split}.txt"
                write_text_atomic(os.path.join(output_dir, hyps_file), "".join(h + "\n" for h in hyps))
                row[split] = {
                    **task.score(hyps, split, processor),
                    f"{task.unit}_per_s": len(hyps) / seconds,
                    "seconds": seconds,
                    "hyps_file": hyps_file,
                }
            rows.append(row)
        del model
    add_speed_ratios(rows, baseline, splits[0], f"{task.unit}_per_s")
    return rows, inputs


def add_speed_ratios(rows: list[dict[str, Any]], baseline: str, split: str, rate: str) -> None:
    """Give every row ``speedup`` (batch-1 latency) and ``throughput_ratio`` (``row[split][rate]``)
    against the greedy row of the AR model at path ``baseline``."""
    reference = next(r for r in rows if r["model_path"] == baseline and r["setting"] == {"num_beams": 1})
    for r in rows:
        r["speedup"] = reference["latency_ms_median"] / r["latency_ms_median"]
        r["throughput_ratio"] = r[split][rate] / reference[split][rate]


def plot_quality_vs_speedup(results: dict[str, Any], path: str, metric: str, axis_label: str) -> None:
    """``metric`` on every split against batch-1 speed (× AR greedy, log axis), one marker per model."""
    matplotlib = require("matplotlib", "the benchmark's quality-vs-speed plot")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    splits = results["metadata"]["splits"]
    fig, axes = plt.subplots(1, len(splits), figsize=(5 * len(splits), 4.5), sharey=True, squeeze=False)
    for ax, split in zip(axes[0], splits):
        for k, model in enumerate(dict.fromkeys(r["model"] for r in results["rows"])):
            group = [r for r in results["rows"] if r["model"] == model]
            speeds, scores = [r["speedup"] for r in group], [r[split][metric] for r in group]
            ax.scatter(speeds, scores, marker="osD^v"[k % 5], label=model)
            for r, x, y in zip(group, speeds, scores):
                ax.annotate(r["label"], (x, y), fontsize=6, xytext=(3, 3), textcoords="offset points")
        ax.axvline(1.0, color="grey", lw=0.8, ls="--")
        ax.set_xscale("log")
        ax.set_xlabel("batch-1 speed vs AR greedy (×, log scale)")
        ax.set_title(split)
        ax.grid(alpha=0.3, which="both")
    axes[0][0].set_ylabel(axis_label)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)
