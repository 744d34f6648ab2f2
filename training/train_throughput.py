"""Training throughput of fp32 vs bf16 autocast on this machine, measured side by side.

    python training/train_throughput.py --model_type cmlm --updates 40 --output_dir results/train_throughput_cpu

Two copies of the same model train on the same batches, alternating update by update (so load
on a shared machine hits both alike); the script reports target tokens/s of each precision,
their ratio, and the loss of each after the run. Writes results.json and results.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import torch
from transformers import AutoTokenizer

from hf_nat.cli import build_parser
from hf_nat.data import Seq2SeqCollator, TokenBudgetBatchSampler, load_parallel_corpus, tokenize_corpus
from hf_nat.demo import LOCAL_DATA
from hf_nat.files import write_json_atomic, write_text_atomic
from hf_nat.model_builder import build_model
from hf_nat.run_info import cpu_model, git_commit
from hf_nat.trainer import compute_loss

PRECISIONS = ("fp32", "bf16")


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model_type", default="cmlm")
    p.add_argument("--tokenizer", default="runs/tok_en_de_8k")
    p.add_argument("--data", default=LOCAL_DATA)
    p.add_argument("--updates", type=int, default=40)
    p.add_argument("--warmup_updates", type=int, default=3)
    p.add_argument("--max_tokens", type=int, default=4096)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--output_dir", required=True)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    model_args = build_parser().parse_args(["train", "--output_dir", args.output_dir, "--model_type", args.model_type])
    tokenizer = AutoTokenizer.from_pretrained(args.tokenizer)
    train = tokenize_corpus(load_parallel_corpus(args.data, "en", "de", splits=["train"])["train"], tokenizer)
    examples = [{"input_ids": s, "labels": t} for s, t in zip(train["input_ids"], train["labels"])]
    sampler = TokenBudgetBatchSampler([max(len(e["input_ids"]), len(e["labels"])) for e in examples],
                                      args.max_tokens, seed=0)
    collate = Seq2SeqCollator(tokenizer.pad_token_id)
    batches = [collate([examples[i] for i in b]) for b in list(sampler)[: args.updates + args.warmup_updates]]

    runs = {}
    for precision in PRECISIONS:
        torch.manual_seed(0)
        model = build_model(model_args, tokenizer).train()
        runs[precision] = {"model": model, "opt": torch.optim.AdamW(model.parameters(), lr=5e-4),
                           "gen": torch.Generator().manual_seed(0), "seconds": 0.0, "tokens": 0, "loss": 0.0}
    for step, batch in enumerate(batches):
        for precision in PRECISIONS:
            run = runs[precision]
            start = time.perf_counter()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
                loss, _ = compute_loss(run["model"], batch, run["gen"], 0.1)
            loss.backward()
            run["opt"].step()
            run["opt"].zero_grad()
            if step >= args.warmup_updates:
                run["seconds"] += time.perf_counter() - start
                run["tokens"] += int((batch["labels"] != -100).sum())
                run["loss"] = float(loss)
    rows = {k: {"target_tokens_per_s": r["tokens"] / r["seconds"], "seconds": r["seconds"], "last_loss": r["loss"]}
            for k, r in runs.items()}
    result = {"command": " ".join([sys.executable, *sys.argv]), "commit": git_commit(),
              "machine": cpu_model(), "torch": torch.__version__,
              "threads": args.threads, "model_type": args.model_type, "updates": args.updates,
              "max_tokens": args.max_tokens, "rows": rows,
              "bf16_speedup": rows["bf16"]["target_tokens_per_s"] / rows["fp32"]["target_tokens_per_s"]}
    write_json_atomic(os.path.join(args.output_dir, "results.json"), result)
    lines = ["| precision | target tokens/s | loss after run |", "|---|---|---|"]
    lines += [f"| {k} | {v['target_tokens_per_s']:.0f} | {v['last_loss']:.3f} |" for k, v in rows.items()]
    lines.append(f"\nbf16 / fp32 throughput: {result['bf16_speedup']:.2f}× ({args.model_type}, {args.updates} "
                 f"updates of {args.max_tokens} tokens, {args.threads} thread(s), commit {result['commit'][:10]})")
    write_text_atomic(os.path.join(args.output_dir, "results.md"), "\n".join(lines) + "\n")
    print("\n".join(lines))
    return result


if __name__ == "__main__":
    main()
