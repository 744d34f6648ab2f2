"""The files a benchmark writes: ``results.json``, a markdown table and a BLEU-vs-speedup plot."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from hf_nat.files import write_json_atomic, write_text_atomic
from hf_nat.optional import require

__all__ = ["format_markdown", "measured_models_lines", "plot_bleu_vs_speedup", "write_results"]


def measured_models_lines(rows: Sequence[dict[str, Any]]) -> list[str]:
    """One markdown list item per model of ``rows``: its name, folder and fingerprint."""
    models = dict.fromkeys((r["model"], r["model_path"], r.get("model_fingerprint")) for r in rows)
    return [
        f"- model {name}: `{path}`, fingerprint `{fingerprint or 'not recorded'}`" for name, path, fingerprint in models
    ]


def format_markdown(results: dict[str, Any]) -> str:
    """Markdown report: a few metadata lines and one table row per (model, setting)."""
    m = results["metadata"]
    lines = [
        f"# Benchmark: {m['src']}→{m['tgt']} {m['split']} ({m['n_sentences']} sentences)",
        "",
        f"- baseline: `{m['baseline']}` ({m['baseline_setting']}); speed ratios are against it",
        f"- device: {m['device']} ({m.get('gpu', m['cpu'])}), dtype {m['dtype']}, "
        f"threads {m['threads']}, torch {m['torch']}",
        f"- host {m['hostname']}, commit `{m['git_commit']}`, {m['date']}",
        f"- latency: batch 1, first {m['latency_sentences']} sentences; "
        f"throughput: batch {m['batch_size']}, whole split",
        f"- command: `{m['command']}`",
        *measured_models_lines(results["rows"]),
        "",
        f"| model | setting | BLEU | chrF | latency ms (median / p90) | speedup × "
        f"| sents/s (b{m['batch_size']}) | throughput × | mean iterations | repetition % | leftover specials |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results["rows"]:
        unit = "" if r["kind"] == "nat" else " steps"
        lines.append(
            f"| {r['model']} | {r['label']} | {r['bleu']:.2f} | {r['chrf']:.2f} "
            f"| {r['latency_ms_median']:.1f} / {r['latency_ms_p90']:.1f} | {r['speedup']:.2f} "
            f"| {r['sents_per_s']:.1f} | {r['throughput_ratio']:.2f} "
            f"| {r['mean_iterations']:.2f}{unit} | {100 * r['repetition_rate']:.2f} "
            f"| {r.get('leftover_special_tokens', 0)} |"
        )
    return "\n".join(lines) + "\n"


def plot_bleu_vs_speedup(results: dict[str, Any], path: str) -> None:
    """Scatter of BLEU against batch-1 speedup over AR greedy, one labeled marker per row."""
    matplotlib = require("matplotlib", "the benchmark's BLEU-vs-speed plot")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 5))
    markers = "osD^v<>ph*"
    for k, model in enumerate(dict.fromkeys(r["model"] for r in results["rows"])):
        rows = [r for r in results["rows"] if r["model"] == model]
        ax.scatter(
            [r["speedup"] for r in rows],
            [r["bleu"] for r in rows],
            marker=markers[k % len(markers)],
            label=model,
        )
        for r in rows:
            ax.annotate(r["label"], (r["speedup"], r["bleu"]), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.axvline(1.0, color="grey", lw=0.8, ls="--")
    speedups = [r["speedup"] for r in results["rows"] if r["speedup"] > 0]
    if speedups and max(speedups) / min(speedups) > 50:
        ax.set_xscale("log")
    m = results["metadata"]
    ax.set_xlabel("batch-1 speedup vs AR greedy (×)")
    ax.set_ylabel("sacreBLEU")
    ax.set_title(f"{m['src']}→{m['tgt']} {m['split']} ({m['device']}, {m['threads']} threads)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_results(results: dict[str, Any], output_dir: str) -> None:
    """Write ``results.json``, ``results.md`` and ``bleu_vs_speedup.png`` to ``output_dir``."""
    os.makedirs(output_dir, exist_ok=True)
    write_json_atomic(os.path.join(output_dir, "results.json"), results)
    write_text_atomic(os.path.join(output_dir, "results.md"), format_markdown(results))
    plot_bleu_vs_speedup(results, os.path.join(output_dir, "bleu_vs_speedup.png"))
