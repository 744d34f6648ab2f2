"""transformers' "automatic-speech-recognition" pipeline, extended to hf_nat speech models.

For an hf_nat model (a CTC NAT or Imputer with ``source_modality="audio"``) the transcript comes
from the model's own ``generate()`` (one pass, or the Imputer's steps), decoding options pass
through, audio longer than the model's positions is cut into overlapping chunks whose transcripts
are merged, and a clip of no samples transcribes to "". Every other model gets transformers'
pipeline unchanged, apart from how the audio is read (below).

Audio is read without ffmpeg or torchaudio: a path or bytes through soundfile (WAV, FLAC, OGG,
MP3), multi-channel audio down-mixed, another sampling rate resampled with scipy, integer samples
scaled to [-1, 1]. Samples that are NaN or infinite, or float samples beyond [-1, 1] (an int16
recording passed as float, or clipped by a gain), are a clear error, as is a file that is not audio.

Imports only numpy, torch and transformers at load time, so an exported folder that copies this
file needs nothing else until audio must be decoded or resampled.
"""

import io
import math
import os

import numpy as np
import torch
from transformers import AutomaticSpeechRecognitionPipeline

__all__ = ["NATSpeechRecognitionPipeline", "merge_chunk_transcripts", "read_audio"]

# The shortest clip the feature extractors' 25 ms analysis window can read.
_MIN_SECONDS = 0.025


def read_audio(inputs, sampling_rate: int) -> np.ndarray:
    """A mono float32 waveform in [-1, 1] at ``sampling_rate`` from a file path, file bytes, an array
    or tensor (``(samples,)`` or ``(channels, samples)``, taken to be at ``sampling_rate``) or a dict
    ``{"array" or "raw": ..., "sampling_rate": rate}`` (datasets' ``Audio`` layout). Raises
    ``ValueError`` naming the problem (a file that is not audio, NaN samples, float samples beyond
    [-1, 1]) and ``ImportError`` naming the package when soundfile or scipy is needed and missing."""
    where = "the audio"
    rate = sampling_rate
    if isinstance(inputs, (str, os.PathLike)):
        where = str(inputs)
        if not os.path.isfile(where):
            raise FileNotFoundError(f"no audio file {where}")
        with open(where, "rb") as handle:
            inputs = handle.read()
    if isinstance(inputs, (bytes, bytearray)):
        samples, rate = _decode(bytes(inputs), where)
        samples = _as_float(samples, where)
    elif isinstance(inputs, dict):
        if "sampling_rate" not in inputs or not ({"array", "raw"} & set(inputs)):
            raise ValueError(f"an audio dict needs 'array' (or 'raw') and 'sampling_rate'; got keys {sorted(inputs)}")
        samples = inputs["array"] if "array" in inputs else inputs["raw"]
        rate = int(inputs["sampling_rate"])
        samples = _mono(_as_float(_as_array(samples, where), where), where)
    else:
        samples = _mono(_as_float(_as_array(inputs, where), where), where)
    if rate != sampling_rate and samples.size:
        samples = _resample(samples, rate, sampling_rate)
    return samples.astype(np.float32, copy=False)


def _as_array(samples, where: str) -> np.ndarray:
    if isinstance(samples, torch.Tensor):
        samples = samples.detach().cpu().numpy()
    if not isinstance(samples, np.ndarray):
        raise TypeError(
            f"{where} must be a path, bytes, a numpy array or tensor, or a dict; got {type(samples).__name__}"
        )
    return samples


def _mono(samples: np.ndarray, where: str) -> np.ndarray:
    """(samples,) or (channels, samples) → (samples,), channels averaged."""
    if samples.ndim == 1:
        return samples
    if samples.ndim == 2 and samples.shape[0] <= 2 <= samples.shape[1]:
        return samples.mean(axis=0)
    raise ValueError(
        f"{where} must be mono (samples,) or (channels, samples) with 1 or 2 channels; got shape "
        f"{tuple(samples.shape)} (transpose channels-last audio first)"
    )


def _as_float(samples: np.ndarray, where: str) -> np.ndarray:
    """Float samples, integer PCM scaled by its full range; NaN/inf or floats beyond ±1 raise."""
    if samples.dtype.kind in "iu":
        info = np.iinfo(samples.dtype)
        samples = (samples.astype(np.float64) - (info.max + 1 + info.min) / 2) / ((info.max - info.min + 1) / 2)
    elif samples.dtype.kind != "f":
        raise ValueError(f"{where} must hold float or integer samples, got dtype {samples.dtype}")
    if samples.size and not np.isfinite(samples).all():
        raise ValueError(f"{where} holds NaN or infinite samples")
    peak = float(np.abs(samples).max()) if samples.size else 0.0
    if peak > 1.0 + 1e-6:
        raise ValueError(
            f"{where} has float samples up to {peak:.3g}, beyond [-1, 1]: pass float audio in [-1, 1] "
            f"(int16 recordings: divide by 32768)"
        )
    return samples


def _decode(data: bytes, where: str) -> tuple[np.ndarray, int]:
    try:
        import soundfile
    except ImportError as error:
        raise ImportError("reading audio files needs soundfile: pip install soundfile") from error
    try:
        samples, rate = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, TypeError) as error:
        raise ValueError(f"{where} is not an audio file soundfile can read ({error})") from error
    return samples.mean(axis=1), int(rate)  # (frames, channels) → mono


def _resample(samples: np.ndarray, rate: int, target: int) -> np.ndarray:
    try:
        from scipy.signal import resample_poly
    except ImportError as error:
        raise ImportError(f"resampling audio from {rate} Hz to {target} Hz needs scipy: pip install scipy") from error
    common = math.gcd(rate, target)
    return resample_poly(samples, target // common, rate // common).clip(-1.0, 1.0)


def merge_chunk_transcripts(pieces: list[list[int]]) -> list[int]:
    """One token sequence from the transcripts of consecutive overlapping chunks, in order.

    Each next piece is joined at the overlap k (its first k tokens against the last k so far) that
    agrees best: the highest share of equal positions, ties going to the longer overlap, and at
    least two equal positions (else the piece is appended whole).
    """
    merged: list[int] = list(pieces[0]) if pieces else []
    for piece in pieces[1:]:
        best, best_score = 0, 0.0
        for k in range(1, min(len(merged), len(piece)) + 1):
            matches = sum(a == b for a, b in zip(merged[-k:], piece[:k]))
            score = matches / k + k / 10000.0
            if matches > 1 and score > best_score:
                best, best_score = k, score
        merged.extend(piece[best:])
    return merged


class NATSpeechRecognitionPipeline(AutomaticSpeechRecognitionPipeline):
    """Transcribe audio: ``{"text": ...}`` for one input, a list of them for a list.

    An input is a file path, file bytes, a numpy array or tensor at the feature extractor's
    sampling rate, or ``{"array": ..., "sampling_rate": ...}``. For hf_nat models, keywords other
    than the pipeline's own (``chunk_length_s``, ``stride_length_s``, ``batch_size``) go to
    ``generate()`` (e.g. ``max_iterations`` for the Imputer); audio longer than the model's
    positions is chunked even without ``chunk_length_s``.
    """

    def __init__(self, model, *args, **kwargs):
        self.is_nat = bool(getattr(model, "is_nat", False))
        super().__init__(model, *args, **kwargs)
        if self.is_nat:
            # generate() returns token ids that the tokenizer decodes (the seq2seq path), and the
            # AR pipeline's default beam and length settings are no options of a NAT model.
            self.type = "seq2seq"
            self._generation_defaults = {}

    def __call__(self, inputs, **kwargs):
        """Transcribe ``inputs`` (one input or a list of them)."""
        if isinstance(inputs, (list, tuple)) and not inputs:
            return []
        return super().__call__(inputs, **kwargs)

    def _sanitize_parameters(self, chunk_length_s=None, ignore_warning=None, **kwargs):
        if self.is_nat and chunk_length_s is not None:
            ignore_warning = True  # chunks of a NAT model are merged on their overlapping tokens
        return super()._sanitize_parameters(chunk_length_s=chunk_length_s, ignore_warning=ignore_warning, **kwargs)

    def _max_seconds(self) -> float | None:
        """The longest clip the model reads in one piece, in seconds (None: no limit known)."""
        limit = getattr(self.model, "max_source_positions", None)
        hop = getattr(self.feature_extractor, "hop_length", None) or 160
        if not callable(limit):
            return None
        return limit() * hop / self.feature_extractor.sampling_rate

    def preprocess(self, inputs, chunk_length_s=0, stride_length_s=None):
        rate = self.feature_extractor.sampling_rate
        samples = read_audio(inputs, rate)
        if self.is_nat and samples.size == 0:
            bins = self.model.config.num_mel_bins
            yield {
                "is_last": True,
                "input_features": torch.zeros(1, 1, bins),
                "attention_mask": torch.zeros(1, 1, dtype=torch.long),
            }
            return
        if samples.size == 0:
            raise ValueError("the audio has no samples")
        shortest = math.ceil(_MIN_SECONDS * rate)
        if samples.size < shortest:  # shorter than one analysis window: pad with silence
            samples = np.pad(samples, (0, shortest - samples.size))
        longest = self._max_seconds() if self.is_nat else None
        if not chunk_length_s and longest is not None and samples.size > longest * rate:
            chunk_length_s = 0.8 * longest
        if chunk_length_s and stride_length_s is None:
            stride_length_s = chunk_length_s / 6
        yield from super().preprocess({"raw": samples, "sampling_rate": rate}, chunk_length_s, stride_length_s)

    def _forward(self, model_inputs, return_timestamps=False, return_language=None, **generate_kwargs):
        if not self.is_nat:
            return super()._forward(model_inputs, return_timestamps, return_language, **generate_kwargs)
        if return_timestamps or return_language:
            raise ValueError("hf_nat speech models return no timestamps or language")
        attention_mask = model_inputs.pop("attention_mask", None)
        model_inputs.pop("stride", None)  # chunks are merged on their tokens (postprocess)
        is_last = model_inputs.pop("is_last")
        features = model_inputs.pop("input_features").to(self.model.device, self.model.dtype)
        if attention_mask is not None:
            attention_mask = attention_mask.to(self.model.device)
        tokens = self.model.generate(input_features=features, attention_mask=attention_mask, **generate_kwargs)
        return {"is_last": is_last, "tokens": tokens.cpu(), **model_inputs}

    def postprocess(self, model_outputs, **kwargs):
        if not self.is_nat:
            return super().postprocess(model_outputs, **kwargs)
        special = set(self.tokenizer.all_special_ids)
        pieces = [[t for t in out["tokens"][0].tolist() if t not in special] for out in model_outputs]
        return {"text": self.tokenizer.decode(merge_chunk_transcripts(pieces), skip_special_tokens=True)}
