"""How a trained model's output depends on how its sources are handed to ``generate()``.

    python training/probe_source_handling.py --model runs/quickstart/best --split val --output results/NAME

Decodes the split five ways — the tokenizer's own mask, the same mask as bool, no mask, left
padding, and every source with surrounding and doubled whitespace — and reports the BLEU of each
and how many outputs differ from the first; then translates whitespace-only sources through
``generate()`` (they must come back empty). Writes ``source_handling.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import torch
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

import hf_nat  # noqa: F401  (registers the families)
from hf_nat.data import load_parallel_corpus
from hf_nat.metrics import corpus_scores
from hf_nat.run_info import git_commit

WHITESPACE_SOURCES = [" ", "   ", "\t", " \n "]


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True)
    p.add_argument("--data_dir", default=os.path.join(_REPO, "..", "shared", "data", "multi30k"))
    p.add_argument("--src", default="en")
    p.add_argument("--tgt", default="de")
    p.add_argument("--split", default="val")
    p.add_argument("--batch_size", type=int, default=64)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--output", default=None)
    return p.parse_args(argv)


@torch.inference_mode()
def decode(model, tokenizer, sources: list[str], batch_size: int, variant: str) -> list[str]:
    """Translations of ``sources`` in order, the batch handed to ``generate()`` as ``variant`` says."""
    out = []
    for start in range(0, len(sources), batch_size):
        chunk = sources[start:start + batch_size]
        if variant == "whitespace":
            chunk = [f"  {'  '.join(s.split(' '))} " for s in chunk]
        tokenizer.padding_side = "left" if variant == "left_padding" else "right"
        batch = tokenizer(chunk, return_tensors="pt", padding=True, truncation=True)
        if variant == "bool_mask":
            batch["attention_mask"] = batch["attention_mask"].bool()
        if variant == "no_mask":
            del batch["attention_mask"]
        out += tokenizer.batch_decode(model.generate(**batch), skip_special_tokens=True)
    tokenizer.padding_side = "right"
    return out


def main(argv=None) -> dict:
    """Run the probes; print and return the report."""
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    model = AutoModelForSeq2SeqLM.from_pretrained(args.model).eval()
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    split = load_parallel_corpus(args.data_dir, args.src, args.tgt, splits=[args.split])[args.split]
    sources, references = list(split["source"]), list(split["target"])
    rows, reference_output = [], None
    for variant in ("tokenizer_mask", "bool_mask", "no_mask", "left_padding", "whitespace"):
        hyps = decode(model, tokenizer, sources, args.batch_size, variant)
        reference_output = reference_output or hyps
        rows.append({"variant": variant, "bleu": round(corpus_scores(hyps, references)["bleu"], 2),
                     "outputs_differing_from_tokenizer_mask": sum(a != b for a, b in zip(hyps, reference_output))})
    blank = decode(model, tokenizer, WHITESPACE_SOURCES, args.batch_size, "tokenizer_mask")
    report = {"command": "python training/probe_source_handling.py " + " ".join(argv or sys.argv[1:]),
              "commit": git_commit(short=True), "model": args.model, "split": args.split, "sentences": len(sources),
              "variants": rows, "whitespace_only_sources": dict(zip(WHITESPACE_SOURCES, blank))}
    print(json.dumps(report, indent=2, ensure_ascii=False))
    if args.output:
        os.makedirs(args.output, exist_ok=True)
        with open(os.path.join(args.output, "source_handling.json"), "w") as f:
            json.dump(report, f, indent=2, ensure_ascii=False)
        lines = [f"Command: `{report['command']}` (commit {report['commit']}), {len(sources)} {args.split} sentences",
                 "", "| sources given as | BLEU | outputs differing from the tokenizer's mask |", "|---|---:|---:|"]
        lines += [f"| {r['variant']} | {r['bleu']} | {r['outputs_differing_from_tokenizer_mask']} |" for r in rows]
        lines += ["", "Whitespace-only sources → " + ", ".join(f"{s!r}: {t!r}" for s, t in zip(WHITESPACE_SOURCES, blank))]
        with open(os.path.join(args.output, "source_handling.md"), "w") as f:
            f.write("\n".join(lines) + "\n")
    return report


if __name__ == "__main__":
    main()
