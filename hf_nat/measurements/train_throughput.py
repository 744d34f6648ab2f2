"""Training throughput of fp32 against bf16 autocast, measured side by side: two copies of the same
model train on the same batches, alternating update by update (so load on a shared machine hits
both alike); target tokens/s of each precision, their ratio, and each one's last loss."""

from __future__ import annotations

import time

import torch

from hf_nat.model_builder import build_model
from hf_nat.run_info import cpu_model, git_commit
from hf_nat.trainer import compute_loss

__all__ = ["PRECISIONS", "compare_precisions", "format_throughput"]

PRECISIONS = ("fp32", "bf16")


def compare_precisions(model_args, tokenizer, batches: list[dict], warmup_updates: int, command: str) -> dict:
    """Train one model per precision on ``batches`` (the first ``warmup_updates`` untimed); return
    the result record (rows per precision and ``bf16_speedup``)."""
    runs = {}
    for precision in PRECISIONS:
        torch.manual_seed(0)
        model = build_model(model_args, tokenizer).train()
        runs[precision] = {
            "model": model,
            "opt": torch.optim.AdamW(model.parameters(), lr=5e-4),
            "gen": torch.Generator().manual_seed(0),
            "seconds": 0.0,
            "tokens": 0,
            "loss": 0.0,
        }
    for step, batch in enumerate(batches):
        for precision in PRECISIONS:
            run = runs[precision]
            start = time.perf_counter()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
                loss, _ = compute_loss(run["model"], batch, run["gen"], 0.1)
            loss.backward()
            run["opt"].step()
            run["opt"].zero_grad()
            if step >= warmup_updates:
                run["seconds"] += time.perf_counter() - start
                run["tokens"] += int((batch["labels"] != -100).sum())
                run["loss"] = float(loss)
    rows = {
        k: {"target_tokens_per_s": r["tokens"] / r["seconds"], "seconds": r["seconds"], "last_loss": r["loss"]}
        for k, r in runs.items()
    }
    return {
        "command": command,
        "commit": git_commit(),
        "machine": cpu_model(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "model_type": model_args.model_type,
        "updates": len(batches) - warmup_updates,
        "rows": rows,
        "bf16_speedup": rows["bf16"]["target_tokens_per_s"] / rows["fp32"]["target_tokens_per_s"],
    }


def format_throughput(result: dict, max_tokens: int) -> str:
    """The markdown table of a comparison."""
    lines = ["| precision | target tokens/s | loss after run |", "|---|---|---|"]
    lines += [f"| {k} | {v['target_tokens_per_s']:.0f} | {v['last_loss']:.3f} |" for k, v in result["rows"].items()]
    lines.append(
        f"\nbf16 / fp32 throughput: {result['bf16_speedup']:.2f}× ({result['model_type']}, "
        f"{result['updates']} updates of {max_tokens} tokens, {result['threads']} thread(s), "
        f"commit {result['commit'][:10]})"
    )
    return "\n".join(lines) + "\n"
