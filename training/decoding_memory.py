"""Peak memory of ``generate()``: each case decodes one batch in a fresh process and reports its
peak resident memory above what the loaded model and the batch already held.

    python training/decoding_memory.py --output results/decoding_memory \\
        --case npd100_b512 runs/quickstart/best '{"npd_samples": 100}' 512 \\
        --case cmlm_lb100_b8 random:cmlm '{"length_beam": 100}' 8

A case is NAME MODEL OPTIONS BATCH: MODEL is a saved model folder or ``random:FAMILY`` (a
randomly initialised model of the recipe's shape, 3+3 layers, d=256, with MODEL's vocabulary of
the tokenizer ``--tokenizer``); the batch is the first BATCH sources of the test split. A case
whose options are refused, or that exceeds ``--cap_gib`` of address space, records the error. Writes ``memory.json`` and ``memory.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--case", nargs=4, action="append", metavar=("NAME", "MODEL", "OPTIONS", "BATCH"), required=True)
    p.add_argument("--tokenizer", default=None, help="tokenizer folder for random:FAMILY models")
    p.add_argument("--data_dir", default=os.path.join(_REPO, "..", "shared", "data", "multi30k"))
    p.add_argument("--src", default="en")
    p.add_argument("--tgt", default="de")
    p.add_argument("--split", default="test_2016_flickr")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--cap_gib", type=float, default=16.0,
                   help="address-space limit of each case's process, so a runaway case fails instead of the machine")
    p.add_argument("--output", default=None, help="folder for memory.json / memory.md")
    p.add_argument("--one", action="store_true", help=argparse.SUPPRESS)  # run a single case in this process
    return p.parse_args(argv)


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _load(model: str, tokenizer_dir: str | None):
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    import hf_nat
    from hf_nat.data import special_token_ids

    if not model.startswith("random:"):
        return AutoModelForSeq2SeqLM.from_pretrained(model).eval(), AutoTokenizer.from_pretrained(model)
    if tokenizer_dir is None:
        raise SystemExit("--tokenizer is needed for random:FAMILY models")
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    family = model.split(":", 1)[1]
    heads = {name: entry.head_class for name, entry in hf_nat.FAMILIES.items()}
    if family not in heads:
        raise SystemExit(f"unknown family {family!r}; choose from {sorted(heads)}")
    ids = special_token_ids(tokenizer)
    config = heads[family].config_class(
        vocab_size=len(tokenizer), d_model=256, encoder_layers=3, decoder_layers=3, encoder_ffn_dim=1024,
        decoder_ffn_dim=1024, pad_token_id=ids["pad"], bos_token_id=ids["bos"], eos_token_id=ids["eos"],
        unk_token_id=ids["unk"], mask_token_id=ids["mask"], placeholder_token_id=ids["placeholder"],
        blank_token_id=ids["blank"], decoder_start_token_id=ids["bos"])
    return heads[family](config).eval(), tokenizer


def run_one(args) -> dict:
    """Decode one case in this process; its peak memory above the loaded model and batch."""
    import torch

    from hf_nat.data import load_parallel_corpus

    torch.set_num_threads(args.threads)
    cap = int(args.cap_gib * 2 ** 30)
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    name, model_path, options, batch_size = args.case[0]
    model, tokenizer = _load(model_path, args.tokenizer)
    sources = list(load_parallel_corpus(args.data_dir, args.src, args.tgt, splits=[args.split])[args.split]["source"])
    batch = tokenizer(sources[:int(batch_size)], return_tensors="pt", padding=True, truncation=True)
    before = _peak_mib()
    started = time.perf_counter()
    try:
        with torch.inference_mode():
            model.generate(**batch, **json.loads(options))
        error = None
    except (ValueError, TypeError, RuntimeError, MemoryError) as exc:  # a refused option or the cap is a result too
        error = f"{type(exc).__name__}: {exc}"
    return {"case": name, "model": model_path, "options": json.loads(options), "batch": int(batch_size),
            "peak_above_loaded_mib": round(_peak_mib() - before, 1), "peak_mib": round(_peak_mib(), 1),
            "seconds": round(time.perf_counter() - started, 2), "error": error}


def main(argv=None) -> list[dict]:
    """Run every case in its own process; write and return the rows."""
    args = parse_args(argv)
    if args.one:
        print(json.dumps(run_one(args)))
        return []
    rows = []
    for case in args.case:
        command = [sys.executable, os.path.abspath(__file__), "--one", "--case", *case, "--data_dir", args.data_dir,
                   "--src", args.src, "--tgt", args.tgt, "--split", args.split, "--threads", str(args.threads),
                   "--cap_gib", str(args.cap_gib)]
        if args.tokenizer:
            command += ["--tokenizer", args.tokenizer]
        done = subprocess.run(command, capture_output=True, text=True)
        lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
        row = json.loads(lines[-1]) if done.returncode == 0 and lines else {
            "case": case[0], "model": case[1], "options": json.loads(case[2]), "batch": int(case[3]),
            "error": f"process exited {done.returncode} (killed for memory?): {done.stderr[-300:]}"}
        print(json.dumps(row))
        rows.append(row)
    if args.output:
        write_report(rows, args.output, argv if argv is not None else sys.argv[1:])
    return rows


def write_report(rows: list[dict], folder: str, argv: list[str]) -> None:
    """``memory.json`` (rows, command, commit) and ``memory.md`` (a table) in ``folder``."""
    os.makedirs(folder, exist_ok=True)
    from hf_nat.run_info import git_commit

    meta = {"command": "python training/decoding_memory.py " + " ".join(argv), "commit": git_commit(short=True)}
    with open(os.path.join(folder, "memory.json"), "w") as f:
        json.dump({**meta, "rows": rows}, f, indent=2)
    lines = [f"Command: `{meta['command']}` (commit {meta['commit']})", "",
             "| case | model | options | batch | peak above loaded model (MiB) | seconds | error |",
             "|---|---|---|---:|---:|---:|---|"]
    for r in rows:
        lines.append(f"| {r['case']} | {r['model']} | `{json.dumps(r['options'])}` | {r['batch']} | "
                     f"{r.get('peak_above_loaded_mib', '')} | {r.get('seconds', '')} | {r.get('error') or ''} |")
    with open(os.path.join(folder, "memory.md"), "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
