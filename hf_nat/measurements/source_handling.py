"""How a trained model's output depends on how its sources are handed to ``generate()``: the
tokenizer's own mask, the same mask as bool, no mask, left padding, and every source with
surrounding and doubled whitespace; then whitespace-only sources (they must come back empty)."""

from __future__ import annotations

import os

import torch

from hf_nat.files import write_json_atomic, write_text_atomic
from hf_nat.metrics import corpus_scores
from hf_nat.run_info import git_commit

__all__ = ["VARIANTS", "WHITESPACE_SOURCES", "decode", "probe_source_handling", "write_source_handling"]

VARIANTS = ("tokenizer_mask", "bool_mask", "no_mask", "left_padding", "whitespace")
WHITESPACE_SOURCES = [" ", "   ", "\t", " \n "]


@torch.inference_mode()
def decode(model, tokenizer, sources: list[str], batch_size: int, variant: str) -> list[str]:
    """Translations of ``sources`` in order, the batch handed to ``generate()`` as ``variant`` says."""
    out = []
    for start in range(0, len(sources), batch_size):
        chunk = sources[start : start + batch_size]
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


def probe_source_handling(
    model, tokenizer, sources: list[str], references: list[str], batch_size: int = 64, command: str = ""
) -> dict:
    """BLEU of every variant and how many outputs differ from the tokenizer-mask ones, plus the
    translations of whitespace-only sources."""
    rows, reference_output = [], None
    for variant in VARIANTS:
        hyps = decode(model, tokenizer, sources, batch_size, variant)
        reference_output = reference_output or hyps
        rows.append(
            {
                "variant": variant,
                "bleu": round(corpus_scores(hyps, references)["bleu"], 2),
                "outputs_differing_from_tokenizer_mask": sum(a != b for a, b in zip(hyps, reference_output)),
            }
        )
    blank = decode(model, tokenizer, WHITESPACE_SOURCES, batch_size, "tokenizer_mask")
    return {
        "command": command,
        "commit": git_commit(short=True),
        "sentences": len(sources),
        "variants": rows,
        "whitespace_only_sources": dict(zip(WHITESPACE_SOURCES, blank)),
    }


def write_source_handling(report: dict, folder: str, split: str) -> None:
    """``source_handling.json`` and ``source_handling.md`` in ``folder``."""
    os.makedirs(folder, exist_ok=True)
    write_json_atomic(os.path.join(folder, "source_handling.json"), report)
    lines = [
        f"Command: `{report['command']}` (commit {report['commit']}), {report['sentences']} {split} sentences",
        "",
        "| sources given as | BLEU | outputs differing from the tokenizer's mask |",
        "|---|---:|---:|",
    ]
    lines += [
        f"| {r['variant']} | {r['bleu']} | {r['outputs_differing_from_tokenizer_mask']} |" for r in report["variants"]
    ]
    lines += [
        "",
        "Whitespace-only sources → " + ", ".join(f"{s!r}: {t!r}" for s, t in report["whitespace_only_sources"].items()),
    ]
    write_text_atomic(os.path.join(folder, "source_handling.md"), "\n".join(lines) + "\n")
