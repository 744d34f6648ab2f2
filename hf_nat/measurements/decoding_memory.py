"""Peak memory of ``generate()``: each case decodes one batch in a fresh process and reports its peak
resident memory above what the loaded model and the batch already held.

A case is (NAME, MODEL, OPTIONS, BATCH): MODEL is a saved model folder or ``random:FAMILY`` (a
randomly initialised model of the recipe's shape, 3+3 layers, d=256, over a given tokenizer's
vocabulary); OPTIONS a JSON object of ``generate()`` options; the batch is the first BATCH sources
of a split. A case whose options are refused, or that exceeds the address-space cap, records the
error instead of numbers.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import resource
import time
from collections.abc import Sequence
from typing import Any

from hf_nat.files import write_json_atomic, write_text_atomic
from hf_nat.run_info import git_commit

__all__ = ["format_memory", "measure_cases", "write_memory_report"]


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _load(model: str, tokenizer_dir: str | None):
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    from hf_nat.cli import build_parser
    from hf_nat.model_builder import build_model

    if not model.startswith("random:"):
        return AutoModelForSeq2SeqLM.from_pretrained(model).eval(), AutoTokenizer.from_pretrained(model)
    if tokenizer_dir is None:
        raise ValueError("a tokenizer folder is needed for random:FAMILY models")
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    shape = build_parser().parse_args(["train", "--output_dir", "-", "--model_type", model.split(":", 1)[1]])
    return build_model(shape, tokenizer).eval(), tokenizer


def _run_case(
    case: Sequence[str], tokenizer_dir: str | None, sources: list[str], threads: int, cap_gib: float, results
) -> None:
    """Decode one case in this (fresh) process and put its row on ``results``."""
    import torch

    torch.set_num_threads(threads)
    cap = int(cap_gib * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    name, model_path, options, batch_size = case
    model, tokenizer = _load(model_path, tokenizer_dir)
    batch = tokenizer(sources[: int(batch_size)], return_tensors="pt", padding=True, truncation=True)
    before = _peak_mib()
    started = time.perf_counter()
    try:
        with torch.inference_mode():
            model.generate(**batch, **json.loads(options))
        error = None
    except (ValueError, TypeError, RuntimeError, MemoryError) as exc:  # a refused option or the cap is a result too
        error = f"{type(exc).__name__}: {exc}"
    results.put(
        {
            "case": name,
            "model": model_path,
            "options": json.loads(options),
            "batch": int(batch_size),
            "peak_above_loaded_mib": round(_peak_mib() - before, 1),
            "peak_mib": round(_peak_mib(), 1),
            "seconds": round(time.perf_counter() - started, 2),
            "error": error,
        }
    )


def measure_cases(
    cases: Sequence[Sequence[str]],
    sources: list[str],
    tokenizer_dir: str | None = None,
    threads: int = 1,
    cap_gib: float = 16.0,
) -> list[dict[str, Any]]:
    """Run every case in its own process (capped at ``cap_gib`` of address space); return the rows."""
    context = multiprocessing.get_context("spawn")
    rows = []
    for case in cases:
        results = context.Queue()
        process = context.Process(target=_run_case, args=(case, tokenizer_dir, sources, threads, cap_gib, results))
        process.start()
        process.join()
        if process.exitcode == 0 and not results.empty():
            row = results.get()
        else:
            row = {
                "case": case[0],
                "model": case[1],
                "options": json.loads(case[2]),
                "batch": int(case[3]),
                "error": f"process exited {process.exitcode} (killed for memory?)",
            }
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


def format_memory(rows: list[dict], command: str, commit: str) -> str:
    """The markdown table of the cases."""
    lines = [
        f"Command: `{command}` (commit {commit})",
        "",
        "| case | model | options | batch | peak above loaded model (MiB) | seconds | error |",
        "|---|---|---|---:|---:|---:|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['case']} | {r['model']} | `{json.dumps(r['options'])}` | {r['batch']} | "
            f"{r.get('peak_above_loaded_mib', '')} | {r.get('seconds', '')} | {r.get('error') or ''} |"
        )
    return "\n".join(lines) + "\n"


def write_memory_report(rows: list[dict], folder: str, command: str) -> None:
    """``memory.json`` (rows, command, commit) and ``memory.md`` in ``folder``."""
    commit = git_commit(short=True)
    write_json_atomic(os.path.join(folder, "memory.json"), {"command": command, "commit": commit, "rows": rows})
    write_text_atomic(os.path.join(folder, "memory.md"), format_memory(rows, command, commit))
