"""Peak memory and time of one DA-Transformer training update at the recipe's size, per graph size
λ (``upsample_ratio``), each in a fresh process: what the path-summed loss costs where it is
largest, beside the vocabulary logits every one-pass family pays for.

The batch is the one of the training split (under the recipe's token budget) with the largest
B·L² (L = λ · source length, vertices): the worst case of the transition matrix and of the DP.
"""

from __future__ import annotations

import json
import multiprocessing
import resource
import time
from collections.abc import Sequence
from typing import Any

from hf_nat.files import write_json_atomic, write_text_atomic
from hf_nat.run_info import environment

__all__ = ["format_dag_memory", "measure_dag_memory", "write_dag_memory"]


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _largest_graph_batch(data: str, tokenizer, max_tokens: int, ratio: int, source_limit: int) -> dict:
    """The training batch (under ``max_tokens``, sources filtered to ``source_limit`` tokens as
    training does) with the largest B · (ratio · source length)²."""
    from hf_nat.data import Seq2SeqCollator, TokenBudgetBatchSampler, load_parallel_corpus, tokenize_corpus

    corpus = load_parallel_corpus(data, "en", "de", splits=["train"])
    train = tokenize_corpus(corpus, tokenizer, max_source_length=source_limit)["train"]  # filters the train split
    examples = [{"input_ids": s, "labels": t} for s, t in zip(train["input_ids"], train["labels"])]
    sampler = TokenBudgetBatchSampler(
        [max(len(e["input_ids"]), len(e["labels"])) for e in examples], max_tokens, seed=0
    )

    def size(batch: list[int]) -> int:
        return len(batch) * (ratio * max(len(examples[i]["input_ids"]) for i in batch)) ** 2

    return Seq2SeqCollator(tokenizer.pad_token_id)([examples[i] for i in max(sampler, key=size)])


def _run_case(ratio: int, tokenizer_dir: str, data: str, max_tokens: int, threads: int, results) -> None:
    """Two training updates (bf16 autocast, glancing) in this fresh process; put the row on ``results``."""
    import torch
    from transformers import AutoTokenizer

    from hf_nat.cli import build_parser
    from hf_nat.data.preprocess import source_token_limit
    from hf_nat.model_builder import build_model

    torch.set_num_threads(threads)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    overrides = json.dumps({"upsample_ratio": ratio, "glancing": True})
    args = build_parser().parse_args(
        ["train", "--output_dir", "-", "--model_type", "da_transformer", "--config_overrides", overrides]
    )
    model = build_model(args, tokenizer).train()
    batch = _largest_graph_batch(data, tokenizer, max_tokens, ratio, source_token_limit(model))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    generator = torch.Generator().manual_seed(0)
    before = _peak_mib()
    seconds = []
    for _ in range(2):
        started = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = model(**batch, generator=generator).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        seconds.append(time.perf_counter() - started)
    sentences, source_length = batch["input_ids"].shape
    vertices = ratio * source_length
    config = model.config
    results.put(
        {
            "upsample_ratio": ratio,
            "sentences": sentences,
            "vertices": vertices,
            "target_tokens": int((batch["labels"] != -100).sum()),
            "transition_mib": round(sentences * config.transition_heads * vertices**2 * 4 / 2**20, 1),
            "logits_mib": round(sentences * vertices * config.vocab_size * 4 / 2**20, 1),
            "peak_above_model_mib": round(_peak_mib() - before, 1),
            "seconds_per_update": round(seconds[-1], 2),
            "loss": float(loss),
        }
    )


def measure_dag_memory(
    ratios: Sequence[int], tokenizer_dir: str, data: str, max_tokens: int = 4096, threads: int = 1, command: str = ""
) -> dict[str, Any]:
    """One fresh process per ratio; the rows and the environment."""
    context = multiprocessing.get_context("spawn")
    rows = []
    for ratio in ratios:
        results = context.Queue()
        process = context.Process(target=_run_case, args=(ratio, tokenizer_dir, data, max_tokens, threads, results))
        process.start()
        row = results.get()  # before join: a full queue would block the child's exit
        process.join()
        print(json.dumps(row), flush=True)
        rows.append(row)
    return {"rows": rows, "max_tokens": max_tokens, "environment": environment(threads=threads, command=command)}


def format_dag_memory(results: dict[str, Any]) -> str:
    """The markdown table of :func:`measure_dag_memory`."""
    env = results["environment"]
    lines = [
        "# DA-Transformer: one training update at the recipe's size (3+3 layers, d=256, 8k vocabulary)",
        "",
        f"- command: `{env['command']}`",
        f"- commit `{env['git_commit']}`, {env['cpu']}, threads {env['threads']}, bf16 autocast, glancing on",
        f"- batch: the training batch (≤ {results['max_tokens']} tokens) with the largest B·L²",
        "- transition MiB: the float32 (B, heads, L, L) scores; logits MiB: one float32 (B, L, V) copy",
        "",
        "| λ | sentences | vertices L | target tokens | transitions MiB | logits MiB | peak above model MiB "
        "| s / update |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results["rows"]:
        lines.append(
            f"| {r['upsample_ratio']} | {r['sentences']} | {r['vertices']} | {r['target_tokens']} | "
            f"{r['transition_mib']} | {r['logits_mib']} | {r['peak_above_model_mib']} | {r['seconds_per_update']} |"
        )
    return "\n".join(lines) + "\n"


def write_dag_memory(results: dict[str, Any], output_dir: str) -> None:
    """results.json, results.md and memory.png (peak and its two largest parts per λ)."""
    import os

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    os.makedirs(output_dir, exist_ok=True)
    write_json_atomic(os.path.join(output_dir, "results.json"), results)
    write_text_atomic(os.path.join(output_dir, "results.md"), format_dag_memory(results))
    rows = results["rows"]
    ratios = [r["upsample_ratio"] for r in rows]
    figure, axis = plt.subplots(figsize=(6, 3.5))
    for offset, key, label in [
        (-0.25, "peak_above_model_mib", "peak above model"),
        (0, "logits_mib", "one logits copy"),
        (0.25, "transition_mib", "transition scores"),
    ]:
        axis.bar([i + offset for i in range(len(rows))], [r[key] for r in rows], width=0.25, label=label)
    axis.set_xticks(range(len(rows)), [f"λ={r}" for r in ratios])
    axis.set_ylabel("MiB")
    axis.legend()
    axis.set_title("DA-Transformer training update, largest B·L² batch")
    figure.tight_layout()
    figure.savefig(os.path.join(output_dir, "memory.png"), dpi=120)
    plt.close(figure)
