"""Sequence-level knowledge distillation for captioning: a corpus whose training images carry one
caption each, the AR teacher's, instead of their several human ones.

One image with many right captions is the multi-modality a non-autoregressive decoder handles
worst (it mixes them); the teacher's single caption per image removes it, as distillation does for
translation (:mod:`hf_nat.distillation`). The result is an imagefolder corpus: the training split's
images are hard-linked (copied across file systems) beside a ``metadata.jsonl`` of the teacher's
captions (an image the teacher gives an empty caption keeps its human ones, counted), and the
other splits keep their references, so validation and tests still score
against human captions. Each split is written to a temporary folder and moved into place whole;
finished splits are kept when the command runs again.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import torch

from hf_nat.data.captions import load_caption_corpus
from hf_nat.data.images import caption_pixels, image_pixels
from hf_nat.files import write_json_atomic

__all__ = ["distill_caption_corpus"]


def distill_caption_corpus(
    teacher: str,
    data: str,
    output_dir: str,
    splits: Sequence[str] = ("train",),
    copy_splits: Sequence[str] = ("validation", "test", "test_unseen_combination"),
    num_beams: int = 1,
    batch_size: int = 64,
    image_column: str = "image",
    caption_columns: Sequence[str] = ("captions",),
) -> dict:
    """Caption the images of ``splits`` of ``data`` with the AR ``teacher`` folder (a
    VisionEncoderDecoder saved with its processor) and write the corpus to ``output_dir``;
    ``copy_splits`` are written with their references. Returns what ``distillation_info.json`` records."""
    from hf_nat.caption_benchmark import load_caption_model

    model, processor, fingerprint = load_caption_model(teacher)
    if getattr(model, "is_nat", False):
        raise ValueError(f"teacher {teacher} is a NAT model; distil from the autoregressive baseline")
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    corpus = load_caption_corpus(data, [*splits, *copy_splits], image_column, caption_columns)
    kept_human = {}
    for split in [*splits, *copy_splits]:
        if (out / split / "metadata.jsonl").is_file():
            continue
        images, references = corpus[split]["image"], corpus[split]["references"]
        if split in splits:
            with torch.inference_mode():
                pixels = image_pixels(images, processor.image_processor)
                captions = caption_pixels(model, processor.tokenizer, pixels, batch_size, num_beams=num_beams)
            # An image the teacher captions with nothing keeps its human captions rather than vanish.
            kept_human[split] = sum(not caption for caption in captions)
            references = [[caption] if caption else list(refs) for caption, refs in zip(captions, references)]
        _write_split(out / split, images, references)
    info = {"teacher": teacher, "teacher_fingerprint": fingerprint, "data": data, "splits": list(splits),
            "copy_splits": list(copy_splits), "num_beams": num_beams,
            "empty_teacher_captions_kept_human": kept_human}  # fmt: skip
    write_json_atomic(str(out / "distillation_info.json"), info)
    return info


def _write_split(folder: Path, images: Sequence, references: Sequence[Sequence[str]]) -> None:
    """An imagefolder split: the image files linked in under their own names, then metadata.jsonl."""
    staging = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    with open(staging / "metadata.jsonl", "w") as handle:
        for index, (image, captions) in enumerate(zip(images, references)):
            name = _place_image(image, staging, index)
            handle.write(json.dumps({"file_name": name, "captions": list(captions)}) + "\n")
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(staging, folder)


def _place_image(image, folder: Path, index: int) -> str:
    """Put one corpus image (a path, or a Hub ``{"bytes", "path"}`` dict) into ``folder``; its file name."""
    path = image if isinstance(image, str) else image.get("path") if isinstance(image, dict) else None
    if path and os.path.isfile(path):
        name = f"{index:06d}{Path(path).suffix}"
        try:
            os.link(path, folder / name)
        except OSError:
            shutil.copyfile(path, folder / name)
        return name
    if isinstance(image, dict) and image.get("bytes"):
        name = f"{index:06d}.img"
        (folder / name).write_bytes(image["bytes"])
        return name
    raise ValueError(f"image {index} has neither a readable path nor bytes")
