"""NAT-assisted decoding measured against the verifier's own greedy search, batch by batch.

Every batch is decoded by the AR model's greedy ``generate()`` (the reference and the speed
baseline, same engine as the verifier), by CTranslate2 int8 greedy when given (the fastest AR
engine), and by every assisted variant (drafter × draft cap), one after the other, so that
machine drift hits them alike. Identity is checked row by row against the greedy output.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import torch

from hf_nat.assisted import assisted_generate
from hf_nat.metrics import corpus_scores
from hf_nat.translate import AR_LENGTH, _batches, _pad_batch, tokenize_sources

__all__ = ["format_assisted", "measure_assisted", "next_token_accuracy", "plot_assisted"]


def _timed(function, *args, **kwargs):
    """(``function(*args, **kwargs)``, the seconds it took)."""
    start = time.perf_counter()
    out = function(*args, **kwargs)
    return out, time.perf_counter() - start


def _decoded(tokenizer, sequences: torch.Tensor) -> list[str]:
    return tokenizer.batch_decode(sequences, skip_special_tokens=True)


@torch.inference_mode()
def measure_assisted(
    verifier,
    tokenizer,
    sources: Sequence[str],
    references: Sequence[str],
    drafters: Sequence[tuple[str, object, dict]],
    draft_caps: Sequence[int | None] = (None,),
    batch_sizes: Sequence[int] = (1, 64),
    fastest_ar=None,
    warmup_batches: int = 3,
) -> dict:
    """For each batch size, the greedy reference, ``fastest_ar`` (a model with a greedy
    ``generate()``, e.g. CTranslate2 int8) and every (drafter, cap) variant over ``sources``;
    ``drafters`` holds (name, model, drafting options).

    Returns ``{"batches": {size: {"greedy": row, "fastest_ar": row, "variants": [row, ...]}}}``;
    a row has seconds, ms per sentence, sentences per second and BLEU; a variant row also the
    rows that differ from greedy, AR passes per sentence, drafted and accepted tokens per
    verification, and its speed ratios to greedy and to ``fastest_ar``.
    """
    ids = tokenize_sources(verifier, tokenizer, sources)
    pad = tokenizer.pad_token_id
    results = {}
    for batch_size in batch_sizes:
        batches = _batches([len(x) for x in ids], batch_size, None, None)
        variants = [(name, drafter, options, cap) for name, drafter, options in drafters for cap in draft_caps]
        seconds = {"greedy": 0.0, "fastest_ar": 0.0, **{i: 0.0 for i in range(len(variants))}}
        greedy_out = [None] * len(ids)
        fastest_out = [None] * len(ids)
        variant_out = [[None] * len(ids) for _ in variants]
        stats = [{"mismatches": 0, "verifications": 0, "drafted": 0, "accepted": 0, "tokens": 0} for _ in variants]
        for number, index in enumerate(batches):
            timed = number >= warmup_batches or len(batches) <= warmup_batches
            input_ids, mask = _pad_batch([ids[i] for i in index], pad, torch.device("cpu"))
            inputs = {
                "input_ids": input_ids,
                "attention_mask": mask,
                "num_beams": 1,
                "max_length": int(AR_LENGTH[0] * input_ids.shape[1] + AR_LENGTH[1]) + 1,
            }
            if not timed:  # warm-up: every engine once, untimed
                verifier.generate(**inputs)
            reference, took = _timed(verifier.generate, **inputs)
            seconds["greedy"] += took
            for row, i in enumerate(index):
                greedy_out[i] = reference[row]
            if fastest_ar is not None:
                if not timed:
                    fastest_ar.generate(**inputs)
                fast, took = _timed(fastest_ar.generate, **inputs)
                seconds["fastest_ar"] += took
                for row, i in enumerate(index):
                    fastest_out[i] = fast[row]
            for v, (_, drafter, options, cap) in enumerate(variants):
                assisted = {"assistant_model": drafter, "draft_max_tokens": cap, "draft_options": options}
                assisted["return_dict_in_generate"] = True
                if not timed:
                    assisted_generate(verifier, **inputs, **assisted)
                out, took = _timed(assisted_generate, verifier, **inputs, **assisted)
                seconds[v] += took
                same = out.sequences.shape == reference.shape and torch.equal(out.sequences, reference)
                if not same:
                    width = max(out.sequences.shape[1], reference.shape[1])
                    a = torch.nn.functional.pad(out.sequences, (0, width - out.sequences.shape[1]), value=pad)
                    b = torch.nn.functional.pad(reference, (0, width - reference.shape[1]), value=pad)
                    stats[v]["mismatches"] += int(a.ne(b).any(1).sum())
                stats[v]["verifications"] += int(out.verifications.sum())
                stats[v]["drafted"] += int(out.drafted_tokens.sum())
                stats[v]["accepted"] += int(out.accepted_tokens.sum())
                stats[v]["tokens"] += int((out.accepted_tokens + out.verifications).sum())
                for row, i in enumerate(index):
                    variant_out[v][i] = out.sequences[row]

        def row(name, total, outputs):
            hypotheses = [_decoded(tokenizer, o[None])[0] for o in outputs]
            scores = corpus_scores(hypotheses, list(references))
            return {
                "name": name,
                "seconds": total,
                "ms_per_sentence": 1000 * total / len(ids),
                "sentences_per_second": len(ids) / total if total > 0 else float("inf"),
                "bleu": scores["bleu"],
            }

        entry = {"greedy": row("AR greedy (transformers)", seconds["greedy"], greedy_out), "variants": []}
        if fastest_ar is not None:
            entry["fastest_ar"] = row("AR greedy (fastest engine)", seconds["fastest_ar"], fastest_out)
        for v, (name, _, options, cap) in enumerate(variants):
            s = stats[v]
            variant = row(name, seconds[v], variant_out[v])
            variant.update(
                draft_max_tokens=cap,
                draft_options=options,
                sentences=len(ids),
                mismatches=s["mismatches"],
                ar_passes_per_sentence=s["verifications"] / len(ids),
                drafted_per_verification=s["drafted"] / max(s["verifications"], 1),
                accepted_per_verification=s["accepted"] / max(s["verifications"], 1),
                tokens_per_sentence=s["tokens"] / len(ids),
                speedup_vs_greedy=seconds["greedy"] / seconds[v],
                speedup_vs_fastest_ar=seconds["fastest_ar"] / seconds[v] if fastest_ar is not None else None,
            )
            entry["variants"].append(variant)
        results[str(batch_size)] = entry
    return {"batches": results}


@torch.inference_mode()
def next_token_accuracy(verifier, drafter, tokenizer, sources: Sequence[str], options: dict) -> dict:
    """How often the drafter's first drafted token is the verifier's next greedy token, given the
    verifier's own greedy prefix of every length (teacher forcing: what bounds acceptance).

    Returns ``{"positions": N, "first_token_accuracy": share}``; each sentence's prefixes are
    drafted in one batch.
    """
    ids = tokenize_sources(verifier, tokenizer, sources)
    pad, eos = tokenizer.pad_token_id, tokenizer.eos_token_id
    hits = positions = 0
    for x in ids:
        input_ids, mask = _pad_batch([x], pad, torch.device("cpu"))
        greedy = verifier.generate(
            input_ids=input_ids,
            attention_mask=mask,
            num_beams=1,
            max_length=int(AR_LENGTH[0] * input_ids.shape[1] + AR_LENGTH[1]) + 1,
        )[0, 1:]
        target = greedy[greedy.ne(pad) & greedy.ne(eos)]
        n = target.numel()
        if n == 0:
            continue
        source_ids, source_mask = drafter._check_source(input_ids, mask)
        encoder = drafter.model.encode(source_ids, source_mask, cache_cross_kv=True)
        total = drafter._nat_draft_length(encoder)
        rows = encoder.select(torch.zeros(n, dtype=torch.long))
        lengths = torch.arange(n)
        prefix = target[None, :].expand(n, -1).masked_fill(torch.arange(n)[None, :] >= lengths[:, None], pad)
        draft = drafter._nat_draft(rows, prefix, (total - lengths).clamp(min=1), options)
        hits += int(draft[:, 0].eq(target).sum())
        positions += n
    return {"positions": positions, "first_token_accuracy": hits / max(positions, 1)}


def format_assisted(results: dict) -> str:
    """Markdown: the run's provenance, then one table per batch size."""
    lines = [
        "# NAT-assisted decoding: exact AR greedy output in fewer AR passes",
        "",
        f"- command: `{results['command']}`",
        f"- commit `{results['commit']}`, {results['machine']}, torch {results['torch']}, threads {results['threads']}",
        f"- verifier: `{results['verifier']}`; fastest AR engine: {results.get('fastest_ar') or 'none'}",
        f"- {results['sentences']} sentences of {results['split']}",
        "",
    ]
    for batch, entry in results["batches"].items():
        unit = "ms/sentence" if batch == "1" else "sentences/s"
        lines += [
            f"## batch {batch}",
            "",
            f"| decoding | {unit} | × AR greedy | × fastest AR | BLEU | rows ≠ greedy | AR passes/sentence "
            f"| accepted/verification | drafted/verification |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]

        greedy = entry["greedy"]
        lines.append(f"| {greedy['name']} | {_speed(greedy, batch)} | 1.00 | | {greedy['bleu']:.2f} | | | | |")
        if "fastest_ar" in entry:
            fast = entry["fastest_ar"]
            ratio = greedy["seconds"] / fast["seconds"]
            lines.append(
                f"| {fast['name']} | {_speed(fast, batch)} | {ratio:.2f} | 1.00 | {fast['bleu']:.2f} | | | | |"
            )
        for v in entry["variants"]:
            vs_fast = "" if v["speedup_vs_fastest_ar"] is None else f"{v['speedup_vs_fastest_ar']:.2f}"
            lines.append(
                f"| {v['name']}, draft ≤ {_cap(v)} | {_speed(v, batch)} | {v['speedup_vs_greedy']:.2f} | {vs_fast} "
                f"| {v['bleu']:.2f} | {v['mismatches']} / {v['sentences']} | {v['ar_passes_per_sentence']:.2f} "
                f"| {v['accepted_per_verification']:.2f} | {v['drafted_per_verification']:.2f} |"
            )
        lines.append("")
    if results.get("next_token_accuracy"):
        lines += [
            "## drafters as next-token predictors",
            "",
            "Share of positions where the first drafted token is the verifier's next greedy token, the",
            "draft conditioned on the verifier's own greedy prefix (this bounds the acceptance).",
            "",
            "| drafter | positions | first-token accuracy |",
            "|---|---:|---:|",
        ]
        for name, row in results["next_token_accuracy"].items():
            lines.append(f"| {name} | {row['positions']} | {row['first_token_accuracy']:.3f} |")
        lines.append("")
    return "\n".join(lines)


def _speed(row: dict, batch: str) -> str:
    """Latency at batch 1, throughput otherwise."""
    return f"{row['ms_per_sentence']:.2f}" if batch == "1" else f"{row['sentences_per_second']:.0f}"


def _cap(variant: dict) -> str:
    return "all" if variant["draft_max_tokens"] is None else str(variant["draft_max_tokens"])


def plot_assisted(results: dict, path: str) -> None:
    """Speed ratio to AR greedy of every variant at each batch size (bars), the fastest AR engine as a line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    batches = list(results["batches"])
    fig, axes = plt.subplots(1, len(batches), figsize=(6 * len(batches), 5.5), squeeze=False)
    for ax, batch in zip(axes[0], batches):
        entry = results["batches"][batch]
        names = [f"{v['name']}\n≤{_cap(v)}" for v in entry["variants"]]
        ax.bar(range(len(names)), [v["speedup_vs_greedy"] for v in entry["variants"]], color="tab:blue")
        ax.axhline(1.0, color="gray", linestyle=":", label="AR greedy (transformers)")
        if "fastest_ar" in entry:
            fast = entry["greedy"]["seconds"] / entry["fastest_ar"]["seconds"]
            ax.axhline(fast, color="tab:red", linestyle="--", label="AR greedy, fastest engine")
        ax.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=7)
        ax.set_ylabel("× AR greedy (identical output)")
        ax.set_title(f"batch {batch}")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
