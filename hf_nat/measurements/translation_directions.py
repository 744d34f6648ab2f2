"""Translation in both directions from one model (KERMIT) beside one-direction models: BLEU, chrF,
repetition and insertion rounds per sentence on one split, each direction against its own
reference side, and pairs sampled from nothing by models that generate them.

A direction is (source language, target language): a model that translates several directions
is asked through its ``nat_language_options`` (what the translation pipeline's ``src_lang`` /
``tgt_lang`` do); a one-direction model runs only the direction it was trained on.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import torch

from hf_nat.benchmark import read_test_pairs
from hf_nat.files import write_json_atomic, write_text_atomic
from hf_nat.loading import load_model
from hf_nat.metrics import corpus_scores
from hf_nat.metrics.output_stats import repetition_rate
from hf_nat.run_info import environment

__all__ = ["format_directions", "measure_directions", "plot_directions", "write_directions"]


def _translate(model, tokenizer, sources: list[str], options: dict, batch_size: int) -> tuple[list, list, float]:
    """(hypotheses, output token ids, mean rounds per sentence) of ``sources``."""
    hypotheses, token_ids, rounds = [], [], []
    for start in range(0, len(sources), batch_size):
        batch = tokenizer(sources[start : start + batch_size], return_tensors="pt", padding=True, truncation=True)
        out = model.generate(**batch, **options, return_dict_in_generate=True)
        hypotheses += tokenizer.batch_decode(out.sequences, skip_special_tokens=True)
        token_ids += [[t for t in row if t != tokenizer.pad_token_id] for row in out.sequences.tolist()]
        rounds += out.iterations.tolist()
    return hypotheses, token_ids, sum(rounds) / max(len(rounds), 1)


def measure_directions(
    models: Sequence[str],
    data_dir: str,
    languages: tuple[str, str],
    split: str,
    options: dict | None = None,
    batch_size: int = 64,
    max_sentences: int | None = None,
    samples: int = 5,
    seed: int = 0,
    threads: int = 1,
    command: str | None = None,
) -> dict[str, Any]:
    """Every model in every direction between ``languages`` it translates (with ``options`` to
    ``generate()``), and ``samples`` pairs from each model that samples pairs
    (``generate_pairs``)."""
    torch.set_num_threads(threads)
    first, second = languages
    pairs = {
        (first, second): read_test_pairs(data_dir, split, first, second, max_sentences),
        (second, first): read_test_pairs(data_dir, split, second, first, max_sentences),
    }
    rows, sampled = [], []
    for path in models:
        loaded = load_model(path)
        model, tokenizer = loaded.model, loaded.tokenizer
        for (src, tgt), (sources, references) in pairs.items():
            try:
                direction = model.nat_language_options(src, tgt)
            except ValueError:
                if (src, tgt) != languages:  # a one-direction model: the corpus's direction only
                    continue
                direction = {}
            begin = time.perf_counter()
            hypotheses, token_ids, rounds = _translate(
                model, tokenizer, sources, {**(options or {}), **direction}, batch_size
            )
            seconds = time.perf_counter() - begin
            scores = corpus_scores(hypotheses, references)
            rows.append(
                {
                    "model": path,
                    "family": model.config.model_type,
                    "direction": f"{src}→{tgt}",
                    "options": {**(options or {}), **direction},
                    "bleu": scores["bleu"],
                    "chrf": scores["chrf"],
                    "repetition_percent": 100 * repetition_rate(token_ids, model.config.special_token_ids()),
                    "mean_rounds": rounds,
                    "sentences": len(sources),
                    "seconds": seconds,
                    "examples": [
                        {"source": s, "hypothesis": h, "reference": r}
                        for s, h, r in list(zip(sources, hypotheses, references))[:3]
                    ],
                }
            )
        if samples and hasattr(model, "generate_pairs"):
            x, y = model.generate_pairs(samples, generator=torch.Generator().manual_seed(seed))
            sampled += [
                {
                    "model": path,
                    model.config.x_language: tokenizer.decode(a, skip_special_tokens=True),
                    model.config.y_language: tokenizer.decode(b, skip_special_tokens=True),
                }
                for a, b in zip(x.tolist(), y.tolist())
            ]
    return {
        "split": split,
        "languages": list(languages),
        "rows": rows,
        "samples": sampled,
        "environment": environment(threads=threads, command=command),
    }


def format_directions(results: dict[str, Any]) -> str:
    """The markdown report of :func:`measure_directions`."""
    env = results["environment"]
    lines = [
        f"# Both directions from one model: Multi30k {results['split']}",
        "",
        f"- command: `{env.get('command', '')}`",
        f"- commit `{env.get('git_commit', '')}`, {env.get('cpu', '')}, threads {env.get('threads', '')}",
        "- each direction is scored against its own side of the split (sacreBLEU 13a, chrF)",
        "",
        "| model | family | direction | BLEU | chrF | repetition % | rounds / sentence | seconds |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for row in results["rows"]:
        lines.append(
            f"| {row['model']} | {row['family']} | {row['direction']} | {row['bleu']:.2f} | {row['chrf']:.2f} | "
            f"{row['repetition_percent']:.2f} | {row['mean_rounds']:.2f} | {row['seconds']:.1f} |"
        )
    if results["samples"]:
        lines += ["", "Pairs sampled from an empty canvas (`generate_pairs`, seed 0):", ""]
        for sample in results["samples"]:
            sides = [f"{k}: {v!r}" for k, v in sample.items() if k != "model"]
            lines.append(f"- {'; '.join(sides)}")
    return "\n".join(lines) + "\n"


def plot_directions(results: dict[str, Any], path: str) -> None:
    """A bar chart of BLEU per model and direction."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = results["rows"]
    figure, axis = plt.subplots(figsize=(7, 3.5))
    labels = [f"{r['family']}\n{r['direction']}" for r in rows]
    axis.bar(
        range(len(rows)), [r["bleu"] for r in rows], color=["C0" if r["family"] == "kermit" else "C1" for r in rows]
    )
    axis.set_xticks(range(len(rows)), labels)
    axis.set_ylabel("BLEU")
    axis.set_title(f"Multi30k {results['split']}: each direction from its model")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def write_directions(results: dict[str, Any], output_dir: str) -> None:
    """results.json, results.md and bleu_by_direction.png in ``output_dir``."""
    import os

    os.makedirs(output_dir, exist_ok=True)
    write_json_atomic(os.path.join(output_dir, "results.json"), results)
    write_text_atomic(os.path.join(output_dir, "results.md"), format_directions(results))
    plot_directions(results, os.path.join(output_dir, "bleu_by_direction.png"))
