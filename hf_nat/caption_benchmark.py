"""Quality/speed benchmark of image captioners: NAT models against an AR baseline, in one run.

Every model folder (saved with its processor by ``hf-nat train --task captioning``) captions each
test split under each of its decoding settings; the AR baseline (a VisionEncoderDecoder) is
decoded in the same run, so batch-1 latency and batch throughput are ratios to its greedy
decoding on the same machine and threads. Pixels are computed once, before any timing. Latency
is measured on the first split; BLEU-4 against all references, CIDEr-D
(:func:`hf_nat.metrics.caption_scores`) and the repetition rate of the caption tokens on every
split. A NAT model's settings default to what its family declares (``Family.benchmark_settings``).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

import torch

from hf_nat.data.captions import load_caption_corpus
from hf_nat.data.images import caption_pixels, image_pixels
from hf_nat.files import write_json_atomic, write_text_atomic
from hf_nat.metrics import caption_scores
from hf_nat.metrics.output_stats import repetition_rate
from hf_nat.models.nat_registry import family_of
from hf_nat.run_info import environment
from hf_nat.source_benchmark import (
    add_speed_ratios,
    measure_generate_latency,
    plot_quality_vs_speedup,
    source_setting_label,
)

__all__ = ["load_caption_model", "measure_caption_latency", "run_caption_benchmark"]

AR_SETTINGS = [{"num_beams": 1}, {"num_beams": 5}]


def load_caption_model(path: str):
    """(model, processor, fingerprint) of a captioning model folder (an hf_nat image model or a
    transformers VisionEncoderDecoder), on CPU in eval mode."""
    from transformers import AutoModelForSeq2SeqLM, AutoProcessor, VisionEncoderDecoderModel

    import hf_nat  # noqa: F401  (registers the NAT families with the Auto classes)
    from hf_nat.provenance import load_fingerprinted

    def load(folder: str):
        with open(os.path.join(folder, "config.json")) as handle:
            model_type = json.load(handle).get("model_type")
        auto = VisionEncoderDecoderModel if model_type == "vision-encoder-decoder" else AutoModelForSeq2SeqLM
        return auto.from_pretrained(folder).eval(), AutoProcessor.from_pretrained(folder)

    (model, processor), fingerprint = load_fingerprinted(path, load)
    if not hasattr(processor, "image_processor"):
        raise ValueError(f"{path} holds no image processor (preprocessor/processor config); is it a captioner?")
    return model, processor, fingerprint


def measure_caption_latency(model, pixels: torch.Tensor, setting: dict, warmup: int) -> dict[str, float]:
    """Batch-1 latency of ``generate()`` over the images ``pixels`` (N, C, H, W) after ``warmup``
    untimed images."""
    inputs = [{"pixel_values": pixels[row : row + 1]} for row in range(pixels.shape[0])]
    return measure_generate_latency(model, inputs, setting, warmup)


def run_caption_benchmark(
    models: Sequence[str],
    baseline: str,
    data: str,
    splits: Sequence[str],
    output_dir: str,
    threads: int = 1,
    batch_size: int = 64,
    latency_images: int = 100,
    warmup: int = 5,
    max_images: int | None = None,
    command: str | None = None,
) -> dict[str, Any]:
    """Benchmark ``baseline`` (AR, greedy and beam 5) and ``models`` (their families' settings) on
    ``splits`` of the captioning corpus ``data``; write ``results.json``, ``results.md`` and
    ``bleu_vs_speedup.png`` to ``output_dir`` and return the results."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    corpus = load_caption_corpus(data, splits)
    os.makedirs(output_dir, exist_ok=True)
    paths = [baseline] + [m for m in models if os.path.realpath(m) != os.path.realpath(baseline)]
    pixels: dict[str, torch.Tensor] = {}
    rows: list[dict[str, Any]] = []
    for index, path in enumerate(paths):
        model, processor, fingerprint = load_caption_model(path)
        is_nat = bool(getattr(model, "is_nat", False))
        if index == 0 and is_nat:
            raise ValueError(f"baseline {path} is a NAT model; it must be autoregressive")
        if not pixels:  # every model reads the baseline's pixels: one image processor for the run
            for split in splits:
                images = corpus[split]["image"][:max_images] if max_images else corpus[split]["image"]
                pixels[split] = image_pixels(images, processor.image_processor)
        settings = list(family_of(model.config.model_type).benchmark_settings or [{}]) if is_nat else AR_SETTINGS
        name = os.path.basename(os.path.dirname(os.path.normpath(path))) or path
        tokenizer = processor.tokenizer
        for setting in settings:
            label = source_setting_label(setting, is_nat)
            print(f"[caption benchmark] {name} | {label}", file=sys.stderr, flush=True)
            latency = measure_caption_latency(model, pixels[splits[0]][:latency_images], setting, warmup)
            row = {
                "model": name,
                "model_path": path,
                "model_fingerprint": fingerprint,
                "kind": "nat" if is_nat else "ar",
                "setting": setting,
                "label": label,
                "latency_ms_median": latency["median_ms"],
                "latency_ms_p90": latency["p90_ms"],
                "latency_images": latency["n"],
            }
            for split in splits:
                references = [list(r) for r in corpus[split]["references"][: pixels[split].shape[0]]]
                start = time.perf_counter()
                hyps = caption_pixels(model, tokenizer, pixels[split], batch_size, **setting)
                seconds = time.perf_counter() - start
                scores = caption_scores(hyps, references)
                tokens = tokenizer(hyps, add_special_tokens=False)["input_ids"]
                scores["repetition"] = 100 * repetition_rate(tokens, tokenizer.all_special_ids)
                hyps_file = f"hyps_{name}_{label.replace(' ', '_').replace('=', '')}_{split}.txt"
                write_text_atomic(os.path.join(output_dir, hyps_file), "".join(h + "\n" for h in hyps))
                row[split] = {**scores, "images_per_s": len(hyps) / seconds, "seconds": seconds, "hyps_file": hyps_file}
            rows.append(row)
        del model
    add_speed_ratios(rows, baseline, splits[0], "images_per_s")
    results = {
        "metadata": {
            **environment("cpu", "float32", threads, command),
            "data": data,
            "splits": list(splits),
            "images": {split: int(p.shape[0]) for split, p in pixels.items()},
            "batch_size": batch_size,
            "latency_images": min(latency_images, int(pixels[splits[0]].shape[0])),
            "warmup": warmup,
            "baseline": baseline,
            "baseline_setting": "greedy",
        },
        "rows": rows,
    }
    write_json_atomic(os.path.join(output_dir, "results.json"), results)
    write_text_atomic(os.path.join(output_dir, "results.md"), format_caption_markdown(results))
    plot_quality_vs_speedup(results, os.path.join(output_dir, "bleu_vs_speedup.png"), "bleu4", "BLEU-4")
    return results


_METRICS = (("bleu4", "BLEU-4"), ("cider", "CIDEr"), ("repetition", "rep %"))


def format_caption_markdown(results: dict[str, Any]) -> str:
    """The results as a markdown table: BLEU-4, CIDEr and repetition per split, latency and both speed ratios."""
    m = results["metadata"]
    splits = m["splits"]
    head = ["model", "decoding"] + [f"{title} {split}" for split in splits for _, title in _METRICS]
    head += ["batch-1 ms", "× AR greedy (batch 1)", f"images/s (batch {m['batch_size']})", "× AR greedy (batch)"]
    lines = [
        f"# Image captioning benchmark: {m['data']}",
        "",
        f"- command: `{m['command']}`",
        f"- commit {m['git_commit']}, {m['date']}, {m['cpu']}, {m['threads']} thread(s), {m['device']} {m['dtype']}",
        f"- images: {m['images']}; latency over the first {m['latency_images']} images of {splits[0]} "
        f"after {m['warmup']} warm-up images; throughput on {splits[0]}",
        f"- ratios are to {m['baseline']} {m['baseline_setting']} in the same run; pixels computed before timing",
        "- BLEU-4: sacreBLEU against all of an image's captions; CIDEr: CIDEr-D ×100; rep %: repeated adjacent tokens",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for r in results["rows"]:
        cells = [r["model"], r["label"]]
        cells += [f"{r[split][key]:.2f}" for split in splits for key, _ in _METRICS]
        cells += [f"{r['latency_ms_median']:.1f}", f"{r['speedup']:.2f}", f"{r[splits[0]]['images_per_s']:.1f}"]
        cells += [f"{r['throughput_ratio']:.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
