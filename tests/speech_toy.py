"""A toy speech task small enough to learn in seconds: every word of the toy vocabulary is a chord
of two tones of its own, spoken at a jittered pace and loudness over light noise."""

import numpy as np
from transformers import Speech2TextFeatureExtractor

from tests.toy import WORDS, toy_sentences, toy_shape

RATE = 16000
MEL_BINS = 40


def toy_feature_extractor() -> Speech2TextFeatureExtractor:
    """Log-mel features as the speech recipe computes them (means normalised per clip, not
    variances: a silent clip stays finite)."""
    return Speech2TextFeatureExtractor(
        feature_size=MEL_BINS, num_mel_bins=MEL_BINS, sampling_rate=RATE, normalize_vars=False
    )


def speak(sentence: str, seed: int) -> np.ndarray:
    """The toy waveform of a sentence of WORDS (float32 in [-1, 1], 16 kHz), seeded."""
    rng = np.random.default_rng(seed)
    pieces = [np.zeros(int(RATE * rng.uniform(0.02, 0.06)))]
    for word in sentence.split():
        i = WORDS.index(word)
        t = np.arange(int(RATE * rng.uniform(0.09, 0.13))) / RATE
        chord = np.sin(2 * np.pi * (250 + 55 * i) * t) + np.sin(2 * np.pi * (1400 + 130 * i) * t)
        pieces += [rng.uniform(0.15, 0.35) * chord * np.hanning(t.size), np.zeros(int(RATE * rng.uniform(0.02, 0.05)))]
    audio = np.concatenate(pieces)
    return (audio + rng.normal(0, 0.003, audio.size)).astype(np.float32)


def speech_batch(extractor, tokenizer, sentences: list[str], seeds) -> dict:
    """input_features, attention_mask and labels of the sentences spoken with ``seeds``."""
    clips = [speak(s, seed) for s, seed in zip(sentences, seeds)]
    features = extractor(clips, sampling_rate=RATE, padding=True, return_attention_mask=True, return_tensors="pt")
    labels = tokenizer(sentences, padding=True, return_tensors="pt")["input_ids"]
    labels = labels.masked_fill(labels.eq(tokenizer.pad_token_id), -100)
    return {
        "input_features": features["input_features"],
        "attention_mask": features["attention_mask"],
        "labels": labels,
    }


def speech_shape(tokenizer, **overrides) -> dict:
    """Config fields of an audio model small enough to train on CPU in seconds."""
    audio = dict(
        source_modality="audio",
        num_mel_bins=MEL_BINS,
        subsampling_conv_channels=64,
        max_position_embeddings=64,
        upsample_ratio=1,
    )
    return toy_shape(tokenizer, **{**audio, **overrides})


def transcribe(model, extractor, tokenizer, sentences: list[str], seeds, **generate_kwargs) -> list[str]:
    """The model's transcripts of the sentences spoken with ``seeds``."""
    batch = speech_batch(extractor, tokenizer, sentences, seeds)
    out = model.generate(
        input_features=batch["input_features"], attention_mask=batch["attention_mask"], **generate_kwargs
    )
    return tokenizer.batch_decode(out, skip_special_tokens=True)


def held_out(n: int = 24) -> tuple[list[str], list[int]]:
    """Sentences and speaking seeds the toy trainings never see."""
    return toy_sentences(n, seed=999, min_len=2, max_len=5), list(range(10_000, 10_000 + n))


def word_accuracy(hypotheses: list[str], references: list[str]) -> float:
    """Share of transcripts equal to their reference."""
    return sum(h == r for h, r in zip(hypotheses, references)) / len(references)


def make_training_batches(extractor, tokenizer, batch_size: int = 32):
    """``make_batch(step)`` for tests.toy.train_toy_model: fresh sentences and voices every step."""

    def make_batch(step: int) -> dict:
        sentences = toy_sentences(batch_size, seed=step, min_len=2, max_len=5)
        return speech_batch(extractor, tokenizer, sentences, [step * batch_size + i for i in range(batch_size)])

    return make_batch
