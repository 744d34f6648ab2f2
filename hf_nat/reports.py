"""The files a benchmark writes: ``results.json``, a markdown table and a BLEU-vs-speedup plot."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from hf_nat.files import write_json_atomic, write_text_atomic
from hf_nat.optional import require

__all__ = ["format_markdown", "measured_models_lines", "pareto_front", "plot_bleu_vs_speedup", "write_results"]


def measured_models_lines(rows: Sequence[dict[str, Any]]) -> list[str]:
    """One markdown list item per model of ``rows``: its name, folder and fingerprint."""
    models = dict.fromkeys((r["model"], r["model_path"], r.get("model_fingerprint")) for r in rows)
    return [
        f"- model {name}: `{path}`, fingerprint `{fingerprint or 'not recorded'}`" for name, path, fingerprint in models
    ]


def _ratio(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"  # None: no such reference in this run


def format_markdown(results: dict[str, Any]) -> str:
    """Markdown report: a few metadata lines and one table row per (model, engine, setting)."""
    m = results["metadata"]
    ct2 = m.get("ct2_reference")
    lines = [
        f"# Benchmark: {m['src']}→{m['tgt']} {m['split']} ({m['n_sentences']} sentences)",
        "",
        f"- speed ratios: `× tf` against `{m['baseline']}` ({m['baseline_setting']}) in transformers (PyTorch)"
        + (f"; `× ct2` against {ct2}" if ct2 else "; no CTranslate2 reference in this run"),
        f"- device: {m['device']} ({m.get('gpu', m['cpu'])}), dtype {m['dtype']}, "
        f"threads {m['threads']}, torch {m['torch']}"
        + ("" if "cpu_native_bf16" not in m else f", native bf16: {'yes' if m['cpu_native_bf16'] else 'no'}"),
        f"- host {m['hostname']}, commit `{m['git_commit']}`, {m['date']}",
        f"- latency: batch 1, first {m['latency_sentences']} sentences; "
        f"throughput: batch {m['batch_size']}, whole split",
        f"- command: `{m['command']}`",
        *measured_models_lines(results["rows"]),
        "",
        f"| model | engine | setting | BLEU | chrF | latency ms (median / p90) | b1 × ct2 | b1 × tf "
        f"| sents/s (b{m['batch_size']}) | b{m['batch_size']} × ct2 | b{m['batch_size']} × tf "
        f"| mean iterations | repetition % | length ratio | leftover specials |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results["rows"]:
        unit = "" if r["kind"] == "nat" else " steps"
        lines.append(
            f"| {r['model']} | {r.get('engine', 'pytorch')} | {r['label']} | {r['bleu']:.2f} | {r['chrf']:.2f} "
            f"| {r['latency_ms_median']:.1f} / {r['latency_ms_p90']:.1f} "
            f"| {_ratio(r.get('ct2_speedup'))} | {r['speedup']:.2f} "
            f"| {r['sents_per_s']:.1f} | {_ratio(r.get('ct2_throughput_ratio'))} "
            f"| {r['throughput_ratio']:.2f} "
            f"| {r['mean_iterations']:.2f}{unit} | {100 * r['repetition_rate']:.2f} "
            f"| {_ratio(r.get('length_ratio'))} | {r.get('leftover_special_tokens', 0)} |"
        )
    return "\n".join(lines) + "\n"


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the (speed, quality) points that no other point matches or beats on both, fastest
    first (of two points alike in quality, the faster one)."""
    order = sorted(range(len(points)), key=lambda i: (-points[i][0], -points[i][1]))
    front, best = [], float("-inf")
    for i in order:
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
    return front


def plot_bleu_vs_speedup(results: dict[str, Any], path: str) -> None:
    """BLEU against batch-1 speed (log axis; × CTranslate2 int8 greedy when measured, else × AR
    greedy in transformers), one marker per model and engine, the Pareto front drawn as a line."""
    matplotlib = require("matplotlib", "the benchmark's BLEU-vs-speed plot")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = results["rows"]
    use_ct2 = bool(results["metadata"].get("ct2_reference"))
    key = "ct2_speedup" if use_ct2 else "speedup"
    fig, ax = plt.subplots(figsize=(8, 5.5))
    markers = "osD^v<>ph*XP"
    groups = list(dict.fromkeys((r["model"], r.get("engine", "pytorch")) for r in rows))
    for k, (model, engine) in enumerate(groups):
        group = [r for r in rows if (r["model"], r.get("engine", "pytorch")) == (model, engine)]
        ax.scatter(
            [r[key] for r in group],
            [r["bleu"] for r in group],
            marker=markers[k % len(markers)],
            label=f"{model} ({engine})",
        )
        for r in group:
            ax.annotate(r["label"], (r[key], r["bleu"]), fontsize=6, xytext=(3, 3), textcoords="offset points")
    points = [(r[key], r["bleu"]) for r in rows]
    front = pareto_front(points)
    ax.plot(
        [points[i][0] for i in front], [points[i][1] for i in front], color="black", lw=1, ls=":", label="Pareto front"
    )
    ax.axvline(1.0, color="grey", lw=0.8, ls="--")
    ax.set_xscale("log")
    m = results["metadata"]
    reference = "CTranslate2 int8 greedy" if use_ct2 else "AR greedy (transformers)"
    ax.set_xlabel(f"batch-1 speed vs {reference} (×, log scale)")
    ax.set_ylabel("sacreBLEU")
    ax.set_title(f"{m['src']}→{m['tgt']} {m['split']} ({m['device']}, {m['threads']} threads)")
    ax.legend(fontsize=6, loc="lower left")
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


def write_results(results: dict[str, Any], output_dir: str) -> None:
    """Write ``results.json``, ``results.md`` and ``bleu_vs_speedup.png`` to ``output_dir``."""
    os.makedirs(output_dir, exist_ok=True)
    write_json_atomic(os.path.join(output_dir, "results.json"), results)
    write_text_atomic(os.path.join(output_dir, "results.md"), format_markdown(results))
    plot_bleu_vs_speedup(results, os.path.join(output_dir, "bleu_vs_speedup.png"))
