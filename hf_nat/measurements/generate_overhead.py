"""How much of ``generate()`` is the network: the time spent in the model's dense parts (encoders,
decoders with their cross-attention projections, linear heads: :func:`hf_nat.runtime.onnx.onnx_parts`)
against the whole call, at batch 1 and at a large batch, plus torch's profile of one call.

The parts are timed by wrapping their ``forward`` (and each decoder's ``cross_kv``) on the model
instance for the measurement only; everything else in ``generate()`` (option checks, candidate
bookkeeping, collapsing, output padding) is the overhead.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import torch

from hf_nat.runtime.onnx import onnx_parts
from hf_nat.translate import _pad_batch, tokenize_sources

__all__ = ["generate_overhead", "format_overhead"]


class _PartClock:
    """Wraps the model's parts so their calls add up into ``seconds`` (nested calls count once)."""

    def __init__(self, model):
        self.seconds, self._depth, self._restore = 0.0, 0, []
        for part in onnx_parts(model):
            module = model.get_submodule(part.path)
            name = "cross_kv" if part.kind == "cross_kv" else "forward"
            own = module.__dict__.get(name)  # a runtime's stand-in (ONNX Runtime), else the class's method
            setattr(module, name, self._timed(getattr(module, name)))
            self._restore.append((module, name, own))

    def _timed(self, function):
        def timed(*args, **kwargs):
            self._depth += 1
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self._depth -= 1
                if self._depth == 0:
                    self.seconds += time.perf_counter() - start

        return timed

    def remove(self) -> None:
        for module, name, own in self._restore:
            if own is None:
                delattr(module, name)
            else:
                setattr(module, name, own)


def _batches(ids: list[list[int]], batch_size: int, pad: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [_pad_batch(ids[i : i + batch_size], pad, torch.device("cpu")) for i in range(0, len(ids), batch_size)]


@torch.inference_mode()
def generate_overhead(
    model, tokenizer, sources: Sequence[str], options: dict, batch_sizes: Sequence[int] = (1, 64), repeats: int = 3
) -> dict:
    """For each batch size: median over ``repeats`` passes of the summed ``generate()`` time and of
    the time inside the network's parts, their ratio, and the top operators of torch's profile."""
    model.eval()
    ids = tokenize_sources(model, tokenizer, sources)
    pad = tokenizer.pad_token_id
    rows = {}
    for batch_size in batch_sizes:
        batches = _batches(ids, batch_size, pad)
        for input_ids, mask in batches[:3]:  # warm-up
            model.generate(input_ids=input_ids, attention_mask=mask, **options)
        totals, networks = [], []
        for _ in range(repeats):
            clock = _PartClock(model)
            total = 0.0
            try:
                for input_ids, mask in batches:
                    start = time.perf_counter()
                    model.generate(input_ids=input_ids, attention_mask=mask, **options)
                    total += time.perf_counter() - start
            finally:
                clock.remove()
            totals.append(total)
            networks.append(clock.seconds)
        total, network = float(np.median(totals)), float(np.median(networks))
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profile:
            for input_ids, mask in batches[:20]:
                model.generate(input_ids=input_ids, attention_mask=mask, **options)
        table = profile.key_averages().table(sort_by="self_cpu_time_total", row_limit=12)
        rows[str(batch_size)] = {
            "sentences": len(ids),
            "generate_ms_per_sentence": 1000 * total / len(ids),
            "network_ms_per_sentence": 1000 * network / len(ids),
            "generate_over_network": total / network if network > 0 else float("inf"),
            "profile_top_ops": table,
        }
    return rows


def format_overhead(results: dict) -> str:
    """Markdown: one row per (model, setting, batch size), then each profile."""
    lines = [
        "# generate() against the network it wraps",
        "",
        f"- command: `{results['command']}`",
        f"- commit `{results['commit']}`, {results['machine']}, torch {results['torch']}, threads {results['threads']}",
        "",
        "| model | setting | batch | generate ms/sentence | network ms/sentence | generate / network |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for entry in results["models"]:
        for batch, row in entry["batches"].items():
            lines.append(
                f"| {entry['model']} | {entry['setting']} | {batch} | {row['generate_ms_per_sentence']:.3f} "
                f"| {row['network_ms_per_sentence']:.3f} | {row['generate_over_network']:.3f} |"
            )
    for entry in results["models"]:
        for batch, row in entry["batches"].items():
            lines += ["", f"## {entry['model']} {entry['setting']}, batch {batch}: torch profile", "", "```"]
            lines += [row["profile_top_ops"], "```"]
    return "\n".join(lines) + "\n"
