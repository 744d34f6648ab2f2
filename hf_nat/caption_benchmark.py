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
from collections.abc import Sequence
from typing import Any

import torch

from hf_nat.data.captions import load_caption_corpus
from hf_nat.data.images import caption_pixels, image_pixels
from hf_nat.files import write_json_atomic, write_text_atomic
from hf_nat.metrics import caption_scores
from hf_nat.metrics.output_stats import repetition_rate
from hf_nat.run_info import environment
from hf_nat.source_benchmark import SourceTask, benchmark_rows, plot_quality_vs_speedup

__all__ = ["load_caption_model", "run_caption_benchmark"]


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

    def prepare(processor, split: str) -> torch.Tensor:
        images = corpus[split]["image"][:max_images] if max_images else corpus[split]["image"]
        return image_pixels(images, processor.image_processor)

    def one_by_one(pixels: torch.Tensor) -> list[dict]:
        return [{"pixel_values": pixels[row : row + 1]} for row in range(pixels.shape[0])]

    def decode(model, processor, pixels, setting: dict) -> list[str]:
        return caption_pixels(model, processor.tokenizer, pixels, batch_size, **setting)

    def score(hyps: list[str], split: str, processor) -> dict:
        scores = caption_scores(hyps, [list(r) for r in corpus[split]["references"][: len(hyps)]])
        tokens = processor.tokenizer(hyps, add_special_tokens=False)["input_ids"]
        return {**scores, "repetition": 100 * repetition_rate(tokens, processor.tokenizer.all_special_ids)}

    task = SourceTask("caption", "images", load_caption_model, prepare, one_by_one, decode, score)
    rows, pixels = benchmark_rows(task, models, baseline, splits, output_dir, latency_images, warmup)
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
