"""Choose a decoding option on the validation split: BLEU for each value of one ``generate()`` option.

    python training/sweep_decoding.py --model runs/levenshtein_distill_en_de/best \
      --data_dir ../shared/data/multi30k --src en --tgt de --split val \
      --option insertion_penalty --values 0 0.5 1 2 --fixed '{"max_iterations": 10}' \
      --output results/NAME/val_sweep_levenshtein

Writes OUTPUT.json and OUTPUT.md (BLEU, chrF, output/reference length ratio, mean iterations per
value, and the best value). Tune on a validation split, then benchmark the chosen value on test.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchmark import decode_corpus, load_model, read_test_pairs  # noqa: E402

from hf_nat.metrics import corpus_scores  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="NAT model folder")
    p.add_argument("--data_dir", required=True)
    p.add_argument("--src", required=True)
    p.add_argument("--tgt", required=True)
    p.add_argument("--split", default="val")
    p.add_argument("--option", required=True, help="the generate() option to vary")
    p.add_argument("--values", type=json.loads, nargs="+", required=True, help="JSON values, e.g. 0 0.5 2")
    p.add_argument("--fixed", type=json.loads, default={}, help="other generate() options (JSON)")
    p.add_argument("--output", required=True, help="path prefix of the .json / .md results")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch_size", type=int, default=64)
    return p.parse_args(argv)


def sweep(args: argparse.Namespace, argv: list[str]) -> dict:
    """Decode the split once per value; return the rows and the value with the best BLEU."""
    sources, references = read_test_pairs(args.data_dir, args.split, args.src, args.tgt)
    lm = load_model(args.model, "cpu")
    rows = []
    for value in args.values:
        setting = {**args.fixed, args.option: value}
        result = decode_corpus(lm, sources, setting, batch_size=args.batch_size)
        scores = corpus_scores(result.hypotheses, references)
        length_ratio = sum(len(h.split()) for h in result.hypotheses) / max(sum(len(r.split()) for r in references), 1)
        rows.append({"value": value, "bleu": scores["bleu"], "chrf": scores["chrf"],
                     "length_ratio": length_ratio,
                     "mean_iterations": sum(result.iterations) / max(len(result.iterations), 1)})
        print(f"{args.option}={value}: BLEU {scores['bleu']:.2f} length ratio {length_ratio:.3f}", flush=True)
    best = max(rows, key=lambda row: row["bleu"])
    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    return {"model": args.model, "split": args.split, "option": args.option, "fixed": args.fixed,
            "rows": rows, "best_value": best["value"], "commit": commit,
            "command": shlex.join(["python", "training/sweep_decoding.py", *argv])}


def write(report: dict, prefix: str) -> None:
    """``prefix``.json and a markdown table ``prefix``.md."""
    os.makedirs(os.path.dirname(prefix) or ".", exist_ok=True)
    with open(prefix + ".json", "w") as f:
        json.dump(report, f, indent=2)
    lines = [f"# `{report['option']}` on {report['split']}: `{report['model']}`", "",
             f"- fixed options: `{json.dumps(report['fixed'])}`; commit `{report['commit']}`",
             f"- command: `{report['command']}`", "",
             f"| {report['option']} | BLEU | chrF | length ratio (words) | mean iterations |",
             "|---:|---:|---:|---:|---:|"]
    for row in report["rows"]:
        mark = " **best**" if row["value"] == report["best_value"] else ""
        lines.append(f"| {row['value']:g}{mark} | {row['bleu']:.2f} | {row['chrf']:.2f} | "
                     f"{row['length_ratio']:.3f} | {row['mean_iterations']:.2f} |")
    with open(prefix + ".md", "w") as f:
        f.write("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    write(sweep(args, argv), args.output)


if __name__ == "__main__":
    main()
