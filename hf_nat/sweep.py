"""Choosing a decoding option on a validation split: BLEU for each value of one ``generate()`` option.

Tune on a validation split, then benchmark the chosen value on test (``hf-nat benchmark``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

from hf_nat.benchmark import read_test_pairs
from hf_nat.files import write_json_atomic, write_text_atomic
from hf_nat.loading import load_model
from hf_nat.metrics import corpus_scores
from hf_nat.metrics.output_stats import length_ratio
from hf_nat.run_info import git_commit
from hf_nat.translate import translate_corpus

__all__ = ["format_sweep", "sweep_option", "write_sweep"]


def sweep_option(
    model_dir: str,
    data_dir: str,
    src: str,
    tgt: str,
    split: str,
    option: str,
    values: Sequence[Any],
    fixed: dict[str, Any],
    batch_size: int = 64,
    command: str = "",
) -> dict[str, Any]:
    """Decode the split once per value of ``option`` (the others ``fixed``); return the rows (BLEU,
    chrF, output/reference length ratio, mean iterations) and the value with the best BLEU."""
    sources, references = read_test_pairs(data_dir, split, src, tgt)
    lm = load_model(model_dir, "cpu")
    rows = []
    for value in values:
        result = translate_corpus(lm.model, lm.tokenizer, sources, {**fixed, option: value}, batch_size=batch_size)
        scores = corpus_scores(result.hypotheses, references)
        ratio = length_ratio(result.hypotheses, references)
        rows.append(
            {
                "value": value,
                "bleu": scores["bleu"],
                "chrf": scores["chrf"],
                "length_ratio": ratio,
                "mean_iterations": sum(result.iterations) / max(len(result.iterations), 1),
            }
        )
        print(f"{option}={value}: BLEU {scores['bleu']:.2f} length ratio {ratio:.3f}", flush=True)
    best = max(rows, key=lambda row: row["bleu"])
    return {
        "model": model_dir,
        "split": split,
        "option": option,
        "fixed": fixed,
        "rows": rows,
        "best_value": best["value"],
        "commit": git_commit(),
        "command": command,
    }


def format_sweep(report: dict[str, Any]) -> str:
    """The markdown table of a sweep, the best value marked."""
    lines = [
        f"# `{report['option']}` on {report['split']}: `{report['model']}`",
        "",
        f"- fixed options: `{json.dumps(report['fixed'])}`; commit `{report['commit']}`",
        f"- command: `{report['command']}`",
        "",
        f"| {report['option']} | BLEU | chrF | length ratio (words) | mean iterations |",
        "|---:|---:|---:|---:|---:|",
    ]
    for row in report["rows"]:
        mark = " **best**" if row["value"] == report["best_value"] else ""
        lines.append(
            f"| {row['value']:g}{mark} | {row['bleu']:.2f} | {row['chrf']:.2f} | "
            f"{row['length_ratio']:.3f} | {row['mean_iterations']:.2f} |"
        )
    return "\n".join(lines) + "\n"


def write_sweep(report: dict[str, Any], prefix: str) -> None:
    """``prefix``.json and the markdown table ``prefix``.md."""
    os.makedirs(os.path.dirname(prefix) or ".", exist_ok=True)
    write_json_atomic(prefix + ".json", report)
    write_text_atomic(prefix + ".md", format_sweep(report))
