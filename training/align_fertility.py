"""Fertility labels for ``fertility_nat`` training: align a corpus with eflomal and cache the
subword fertilities next to it.

    python training/align_fertility.py --data runs/distill_en_de --tokenizer runs/tok_en_de_8k \
        --output runs/distill_en_de_fertility

Writes a ``save_to_disk`` DatasetDict (``source``, ``target``, ``fertility``: one integer per
source token, eos included) and ``fertility_info.json`` (the statistics and a fingerprint of the
tokenizer, which ``train.py --fertility`` checks). How unaligned words are handled is described
in :mod:`hf_nat.data.fertility`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time

import datasets
from transformers import AutoTokenizer

from hf_nat.data import load_parallel_corpus
from hf_nat.data.fertility import INFO_FILE, corpus_fertilities, tokenizer_fingerprint


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="corpus folder (text files or save_to_disk) or Hub id")
    p.add_argument("--src", default="en")
    p.add_argument("--tgt", default="de")
    p.add_argument("--splits", nargs="+", default=["train"])
    p.add_argument("--tokenizer", required=True, help="the tokenizer the model trains with")
    p.add_argument("--output", required=True)
    return p


def main(argv: list[str] | None = None) -> dict:
    """Align every split and save the fertilities; returns the statistics."""
    args = build_parser().parse_args(argv)
    tokenizer = AutoTokenizer.from_pretrained(args.tokenizer)
    corpus = load_parallel_corpus(args.data, args.src, args.tgt, splits=args.splits)
    out, stats = {}, {}
    for split in args.splits:
        started = time.perf_counter()
        sources, targets = list(corpus[split]["source"]), list(corpus[split]["target"])
        fertility, stats[split] = corpus_fertilities(sources, targets, tokenizer)
        stats[split]["seconds"] = round(time.perf_counter() - started, 1)
        out[split] = datasets.Dataset.from_dict({"source": sources, "target": targets, "fertility": fertility})
        print(f"{split}: {stats[split]}")
    tmp = args.output.rstrip("/") + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    datasets.DatasetDict(out).save_to_disk(tmp)
    with open(os.path.join(tmp, INFO_FILE), "w") as f:
        json.dump({"tokenizer_fingerprint": tokenizer_fingerprint(tokenizer), "data": args.data,
                   "src": args.src, "tgt": args.tgt, "stats": stats}, f, indent=2)
    shutil.rmtree(args.output, ignore_errors=True)
    os.replace(tmp, args.output)
    return stats


if __name__ == "__main__":
    main(sys.argv[1:])
