"""Training throughput of fp32 vs bf16 autocast on this machine, measured side by side.

    python training/train_throughput.py --model_type cmlm --updates 40 --output_dir results/train_throughput_cpu

Two copies of the same model train on the same batches, alternating update by update (so load
on a shared machine hits both alike); the script reports target tokens/s of each precision,
their ratio, and the loss of each after the run. Writes results.json and results.md.
"""

from __future__ import annotations

import argparse
import os
import sys

import torch
from transformers import AutoTokenizer

from hf_nat.cli import build_parser
from hf_nat.data import Seq2SeqCollator, TokenBudgetBatchSampler, load_parallel_corpus, tokenize_corpus
from hf_nat.demo import LOCAL_DATA
from hf_nat.files import write_json_atomic, write_text_atomic
from hf_nat.measurements.train_throughput import compare_precisions, format_throughput


def main(argv=None) -> dict:
    """Parse the options, prepare the batches, compare the precisions, write the results."""
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
    sampler = TokenBudgetBatchSampler(
        [max(len(e["input_ids"]), len(e["labels"])) for e in examples], args.max_tokens, seed=0
    )
    collate = Seq2SeqCollator(tokenizer.pad_token_id)
    batches = [collate([examples[i] for i in b]) for b in list(sampler)[: args.updates + args.warmup_updates]]

    result = compare_precisions(
        model_args, tokenizer, batches, args.warmup_updates, " ".join([sys.executable, *sys.argv])
    )
    result["max_tokens"] = args.max_tokens
    write_json_atomic(os.path.join(args.output_dir, "results.json"), result)
    table = format_throughput(result, args.max_tokens)
    write_text_atomic(os.path.join(args.output_dir, "results.md"), table)
    print(table)
    return result


if __name__ == "__main__":
    main()
