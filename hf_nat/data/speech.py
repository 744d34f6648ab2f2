"""Speech corpora for training: audio and transcripts in, log-mel features and token ids out.

A corpus is a Hub dataset id with an audio column (datasets' ``Audio`` feature) and a transcript
column, or a local folder in datasets' ``audiofolder`` layout: one sub-folder per split holding the
audio files and a ``metadata.csv`` or ``metadata.jsonl`` whose ``file_name`` column names them.
Audio is kept undecoded (``Audio(decode=False)``) and read with soundfile (``read_audio``), so
neither torchcodec nor ffmpeg is needed, and resampled to the feature extractor's rate.
"""

from __future__ import annotations

import csv
import json
import logging
import os
from collections.abc import Sequence

import datasets
import numpy as np
import torch

from hf_nat.models.pipeline_speech_recognition import read_audio

__all__ = ["SpeechCollator", "load_speech_corpus", "speech_features", "transcribe"]

logger = logging.getLogger(__name__)

# The feature extractors' 25 ms analysis window needs at least this many samples at 16 kHz.
_MIN_SAMPLES = 400


def load_speech_corpus(
    source: str,
    splits: Sequence[str],
    audio_column: str = "audio",
    text_column: str = "transcription",
) -> datasets.DatasetDict:
    """The ``splits`` of a speech corpus as a ``DatasetDict`` with columns ``audio`` (a path, or
    ``{"bytes", "path"}`` for Hub data) and ``target`` (the transcript, stripped).

    Rows with an empty or whitespace-only transcript are dropped, with a warning counting them.

    Raises:
        FileNotFoundError: a local split folder, its metadata file or an audio file it names is missing.
        ValueError: the audio or transcript column is missing, or a split holds no row.
    """
    corpus = {}
    for split in splits:
        if os.path.isdir(source):
            audio, text = _read_audiofolder_split(source, split, text_column)
        else:
            audio, text = _read_hub_split(source, split, audio_column, text_column)
        keep = [i for i, t in enumerate(text) if t is not None and str(t).strip()]
        if len(keep) < len(text):
            logger.warning("%s/%s: dropped %d rows with an empty transcript", source, split, len(text) - len(keep))
        if not keep:
            raise ValueError(f"{source}: split {split!r} has no row with a transcript")
        corpus[split] = datasets.Dataset.from_dict(
            {"audio": [audio[i] for i in keep], "target": [str(text[i]).strip() for i in keep]}
        )
    return datasets.DatasetDict(corpus)


def _read_audiofolder_split(root: str, split: str, text_column: str) -> tuple[list, list]:
    folder = os.path.join(root, split)
    if not os.path.isdir(folder):
        available = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
        raise FileNotFoundError(f"{root}: no split folder {split!r}; it has {available}")
    rows = None
    if os.path.isfile(os.path.join(folder, "metadata.csv")):
        with open(os.path.join(folder, "metadata.csv"), encoding="utf-8", newline="") as handle:
            rows = list(csv.DictReader(handle))
        where = os.path.join(folder, "metadata.csv")
    elif os.path.isfile(os.path.join(folder, "metadata.jsonl")):
        where = os.path.join(folder, "metadata.jsonl")
        with open(where, encoding="utf-8") as handle:
            rows = [json.loads(line) for line in handle if line.strip()]
    if rows is None:
        raise FileNotFoundError(f"{folder}: no metadata.csv or metadata.jsonl (the audiofolder layout)")
    if rows and ("file_name" not in rows[0] or text_column not in rows[0]):
        raise ValueError(f"{where}: needs columns 'file_name' and {text_column!r}; has {sorted(rows[0])}")
    paths = [os.path.join(folder, row["file_name"]) for row in rows]
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        raise FileNotFoundError(f"{where} names {len(missing)} missing audio files, e.g. {missing[0]}")
    return paths, [row[text_column] for row in rows]


def _read_hub_split(source: str, split: str, audio_column: str, text_column: str) -> tuple[list, list]:
    data = datasets.load_dataset(source, split=split)
    for column in (audio_column, text_column):
        if column not in data.column_names:
            raise ValueError(f"{source}/{split} has no column {column!r}; columns: {data.column_names}")
    data = data.cast_column(audio_column, datasets.Audio(decode=False))
    audio = [{"bytes": a["bytes"], "path": a["path"]} for a in data[audio_column]]
    return audio, list(data[text_column])


def _read(item, sampling_rate: int) -> np.ndarray:
    if isinstance(item, dict):
        if item.get("bytes"):
            return read_audio(item["bytes"], sampling_rate)
        return read_audio(item["path"], sampling_rate)
    return read_audio(item, sampling_rate)


def speech_features(audio: Sequence, feature_extractor, max_frames: int | None = None) -> list[np.ndarray | None]:
    """Log-mel features ``(frames, mel_bins)`` float32 of every clip (paths, bytes or ``{"bytes",
    "path"}``), read at the extractor's sampling rate. A clip shorter than the analysis window is
    padded with silence; a clip longer than ``max_frames`` frames gives ``None`` (the caller drops it)."""
    rate = feature_extractor.sampling_rate
    features = []
    for item in audio:
        samples = _read(item, rate)
        if samples.size < _MIN_SAMPLES:
            samples = np.pad(samples, (0, _MIN_SAMPLES - samples.size))
        frames = feature_extractor(samples, sampling_rate=rate, return_tensors="np")["input_features"][0]
        features.append(frames.astype(np.float32) if max_frames is None or len(frames) <= max_frames else None)
    return features


class SpeechCollator:
    """Pads a list of ``{"input_features": (frames, bins), "labels": [ids]}`` into a batch:
    ``input_features`` (batch, frames, bins) zero-padded on the right, ``attention_mask`` (batch,
    frames) and ``labels`` (batch, tokens) padded with -100."""

    def __call__(self, examples: list[dict]) -> dict[str, torch.Tensor]:
        frames = max(len(e["input_features"]) for e in examples)
        bins = examples[0]["input_features"].shape[1]
        features = torch.zeros(len(examples), frames, bins)
        mask = torch.zeros(len(examples), frames, dtype=torch.long)
        tokens = max(len(e["labels"]) for e in examples)
        labels = torch.full((len(examples), tokens), -100, dtype=torch.long)
        for row, example in enumerate(examples):
            n = len(example["input_features"])
            features[row, :n] = torch.from_numpy(example["input_features"])
            mask[row, :n] = 1
            labels[row, : len(example["labels"])] = torch.tensor(example["labels"])
        return {"input_features": features, "attention_mask": mask, "labels": labels}


@torch.inference_mode()
def transcribe(model, tokenizer, features: Sequence[np.ndarray], batch_size: int = 32, **generate_kwargs) -> list[str]:
    """The model's transcripts of precomputed features ``(frames, bins)``, batched by length (so a
    batch pads little) and returned in input order."""
    model.eval()
    device = next(model.parameters()).device
    order = sorted(range(len(features)), key=lambda i: len(features[i]))
    collate = SpeechCollator()
    out: list[str] = [""] * len(features)
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        batch = collate([{"input_features": features[i], "labels": [0]} for i in rows])
        ids = model.generate(
            input_features=batch["input_features"].to(device),
            attention_mask=batch["attention_mask"].to(device),
            **generate_kwargs,
        )
        for i, text in zip(rows, tokenizer.batch_decode(ids, skip_special_tokens=True)):
            out[i] = text.strip()
    return out
