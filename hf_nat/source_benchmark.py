"""What the speech and captioning benchmarks share: setting labels, batch-1 latency of
``generate()``, speed ratios to the AR baseline's greedy decoding, and the quality-against-speed plot."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from hf_nat.benchmark import setting_label
from hf_nat.optional import require

__all__ = ["add_speed_ratios", "measure_generate_latency", "plot_quality_vs_speedup", "source_setting_label"]


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
