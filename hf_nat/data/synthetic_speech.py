"""A reproducible synthetic speech corpus: sentences spoken by the Debian speech synthesisers.

No real speech corpus is reachable offline, so the speech recipe speaks Multi30k's English
sentences with ``espeak-ng`` (formant voices and their variants) and ``flite`` (diphone and
clustergen voices), each utterance with its own voice, speaking rate, pitch, loudness and light
white noise, all drawn from one seeded generator. It is written in datasets' ``audiofolder``
layout: one folder per split holding 16 kHz FLAC files and a ``metadata.csv`` (``file_name``,
``transcription`` and how the clip was made), so ``load_speech_corpus`` or
``datasets.load_dataset("audiofolder", ...)`` reads it like any local speech corpus.

Transcripts are normalised the way ASR corpora usually are (:func:`normalise_transcript`):
lower case, punctuation dropped, apostrophes kept.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import os
import re
import shutil
import subprocess

import numpy as np

from hf_nat.files import write_json_atomic

__all__ = [
    "SEEN_VOICES",
    "UNSEEN_VOICE",
    "Voice",
    "build_speech_corpus",
    "check_synthesisers",
    "normalise_transcript",
    "speak",
]

SAMPLING_RATE = 16000


@dataclasses.dataclass(frozen=True)
class Voice:
    """A synthesiser voice: ``engine`` "espeak-ng" (``name`` a voice, optionally ``+variant``) or "flite"."""

    engine: str
    name: str

    def __str__(self) -> str:
        return f"{self.engine}:{self.name}"


# Voices heard in training (and in the seen-voice test); the unseen-voice test is spoken by a
# flite voice none of them is.
SEEN_VOICES = (
    Voice("espeak-ng", "en-us+m1"),
    Voice("espeak-ng", "en-us+f3"),
    Voice("espeak-ng", "en-gb+m3"),
    Voice("espeak-ng", "en-gb-scotland+f2"),
    Voice("espeak-ng", "en-029+m4"),
    Voice("flite", "slt"),
    Voice("flite", "awb"),
    Voice("flite", "kal16"),
)
UNSEEN_VOICE = Voice("flite", "rms")


def check_synthesisers(voices) -> None:
    """Raise ``RuntimeError`` naming the install command when an engine of ``voices`` is missing."""
    missing = sorted({v.engine for v in voices if shutil.which(v.engine) is None})
    if missing:
        raise RuntimeError(
            f"speech synthesiser(s) {missing} not found; install them with "
            "`apt-get update && apt-get install -y espeak-ng flite`"
        )


def normalise_transcript(text: str) -> str:
    """``text`` lower-cased with everything but letters, digits and inner apostrophes turned into
    single spaces: what a listener can write down from the audio alone."""
    text = re.sub(r"[^\w']+|_", " ", text.lower())
    text = re.sub(r"(?<!\w)'|'(?!\w)", " ", text)
    return " ".join(text.split())


def speak(text: str, voice: Voice, speed: float, pitch: float) -> tuple[np.ndarray, int]:
    """The waveform (float32 mono) and sampling rate of ``text`` spoken by ``voice``.

    ``speed`` scales the speaking rate (1 is the voice's own) and ``pitch`` in [0, 1] sets espeak's
    pitch (0.5 its default); flite voices take the rate only.
    """
    import soundfile

    if voice.engine == "espeak-ng":
        command = ["espeak-ng", "-v", voice.name, "-s", str(round(175 * speed)), "-p", str(round(99 * pitch))]
        command += ["--stdout", text]
        wav = subprocess.run(command, check=True, capture_output=True).stdout
    elif voice.engine == "flite":
        command = ["flite", "-voice", voice.name, "--setf", f"duration_stretch={1 / speed:.3f}", "-t", text]
        wav = subprocess.run([*command, "-o", "/dev/stdout"], check=True, capture_output=True).stdout
    else:
        raise ValueError(f"unknown speech engine {voice.engine!r}; use 'espeak-ng' or 'flite'")
    samples, rate = soundfile.read(io.BytesIO(wav), dtype="float32")
    return samples, rate


def _rendition(text: str, voice: Voice, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """One utterance of ``text`` by ``voice``: random rate, pitch, loudness and noise, at 16 kHz."""
    from scipy.signal import resample_poly

    speed, pitch = rng.uniform(0.85, 1.2), rng.uniform(0.3, 0.7)
    samples, rate = speak(text, voice, speed, pitch)
    if rate != SAMPLING_RATE:
        divisor = np.gcd(rate, SAMPLING_RATE)
        samples = resample_poly(samples, SAMPLING_RATE // divisor, rate // divisor).astype(np.float32)
    peak = float(np.abs(samples).max()) or 1.0
    gain = rng.uniform(0.3, 0.9) / peak
    snr_db = rng.uniform(25, 45)
    signal = samples * gain
    noise = rng.normal(0, 1, signal.size) * np.sqrt(np.mean(signal**2) / 10 ** (snr_db / 10))
    audio = np.clip(signal + noise, -1, 1).astype(np.float32)
    return audio, {"voice": str(voice), "speed": round(speed, 3), "pitch": round(pitch, 3), "snr_db": round(snr_db, 1)}


def _write_split(folder: str, sentences: list[str], voices_per_sentence, rng: np.random.Generator) -> dict:
    """Speak every sentence with each of its voices into ``folder`` (FLAC + metadata.csv)."""
    import soundfile

    tmp = folder + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    rows, seconds = [], 0.0
    for index, (sentence, voices) in enumerate(zip(sentences, voices_per_sentence)):
        for voice in voices:
            audio, made = _rendition(sentence, voice, rng)
            name = f"{len(rows):06d}.flac"
            soundfile.write(os.path.join(tmp, name), audio, SAMPLING_RATE, subtype="PCM_16")
            rows.append({"file_name": name, "transcription": normalise_transcript(sentence), "sentence": index, **made})
            seconds += audio.size / SAMPLING_RATE
    with open(os.path.join(tmp, "metadata.csv"), "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp, folder)
    return {"utterances": len(rows), "sentences": len(sentences), "hours": round(seconds / 3600, 3)}


def build_speech_corpus(
    sentences: dict[str, list[str]],
    output_dir: str,
    renditions: int = 2,
    seed: int = 0,
    seen_voices=SEEN_VOICES,
    unseen_voice: Voice = UNSEEN_VOICE,
) -> dict:
    """Write the synthetic corpus of ``sentences`` (``{"train"|"validation"|"test": [...]}``).

    Training sentences are spoken ``renditions`` times, by distinct seen voices; validation and
    test sentences once each by a seen voice; ``test_unseen_voice`` is the test sentences again,
    spoken by ``unseen_voice``. Sentences whose transcript occurs in an earlier split (train, then
    validation) are dropped from the later one, so the splits share no sentence. A split whose
    folder is complete is kept, so a killed build resumes; ``corpus_info.json`` records sizes,
    hours, voices and the seed. Returns that record.
    """
    if set(sentences) != {"train", "validation", "test"}:
        raise ValueError(f"sentences needs exactly the splits train, validation, test; got {sorted(sentences)}")
    if not 1 <= renditions <= len(seen_voices):
        raise ValueError(f"renditions must be between 1 and {len(seen_voices)} (the seen voices)")
    if unseen_voice in seen_voices:
        raise ValueError(f"the unseen voice {unseen_voice} is among the seen voices")
    check_synthesisers([*seen_voices, unseen_voice])
    seen_transcripts: set[str] = set()
    kept = {}
    for split in ("train", "validation", "test"):
        unique = {}
        for sentence in sentences[split]:
            transcript = normalise_transcript(sentence)
            if transcript and transcript not in seen_transcripts and transcript not in unique:
                unique[transcript] = sentence.strip()
        seen_transcripts |= set(unique)
        kept[split] = list(unique.values())
        if not kept[split]:
            raise ValueError(f"split {split!r} has no sentence left to speak")
    rng = np.random.default_rng(seed)
    plan = {
        split: [
            [seen_voices[i] for i in rng.choice(len(seen_voices), renditions if split == "train" else 1, replace=False)]
            for _ in kept[split]
        ]
        for split in ("train", "validation", "test")
    }
    plan["test_unseen_voice"] = [[unseen_voice] for _ in kept["test"]]
    kept["test_unseen_voice"] = kept["test"]
    info = {
        "seed": seed,
        "renditions": renditions,
        "sampling_rate": SAMPLING_RATE,
        "seen_voices": [str(v) for v in seen_voices],
        "unseen_voice": str(unseen_voice),
        "splits": {},
    }
    os.makedirs(output_dir, exist_ok=True)
    for index, split in enumerate(plan):
        folder = os.path.join(output_dir, split)
        split_rng = np.random.default_rng([seed, index])  # each split its own stream: resuming one redraws nothing else
        done = os.path.join(folder, "metadata.csv")
        if os.path.isfile(done):
            with open(done, encoding="utf-8") as handle:
                rows = list(csv.DictReader(handle))
            seconds = sum(_duration(os.path.join(folder, row["file_name"])) for row in rows)
            info["splits"][split] = {
                "utterances": len(rows),
                "sentences": len(kept[split]),
                "hours": round(seconds / 3600, 3),
            }
            continue
        info["splits"][split] = _write_split(folder, kept[split], plan[split], split_rng)
    info["hours"] = round(sum(s["hours"] for s in info["splits"].values()), 3)
    write_json_atomic(os.path.join(output_dir, "corpus_info.json"), info)
    return info


def _duration(path: str) -> float:
    import soundfile

    return soundfile.info(path).duration


def english_sentences(data_dir: str, sizes: dict[str, int], lang: str = "en") -> dict[str, list[str]]:
    """The first ``sizes[split]`` sentences of each split of a Multi30k-style folder
    (``train``, ``val`` → "validation", ``test_2016_flickr`` → "test"; ``{split}.{lang}[.gz]``)."""
    import gzip

    files = {"train": "train", "validation": "val", "test": "test_2016_flickr"}
    out = {}
    for split, n in sizes.items():
        stem = os.path.join(data_dir, f"{files[split]}.{lang}")
        path = stem + ".gz" if os.path.isfile(stem + ".gz") else stem
        if not os.path.isfile(path):
            raise FileNotFoundError(f"no {stem}[.gz] for the {split} sentences")
        opener = gzip.open if path.endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8") as handle:
            out[split] = [line.strip() for _, line in zip(range(n), handle)]
    return out
