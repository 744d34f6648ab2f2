"""The one corpus-translation loop: validation during training, distillation, benchmarks and sweeps.

Sources are tokenized (cut to what the model accepts), sorted by length into batches (a fixed
number of sentences, or a token budget), and decoded with the model's own ``generate()``; outputs
come back in the input order. Only generation and the copy of its output to the host are timed.
NAT and AR models are handled alike: an AR model's output loses its decoder start token and gets a
length cap of ``a · source length + b`` new tokens.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from hf_nat.data import TokenBudgetBatchSampler, source_token_limit

__all__ = ["DecodeResult", "generate_batch", "measure_latency", "tokenize_sources", "translate", "translate_corpus"]

# AR length cap: a · (longest source of the batch) + b new tokens; NAT models predict their length.
AR_LENGTH = (2.0, 10)


@dataclass
class DecodeResult:
    """Output of decoding a corpus, in the original sentence order."""

    hypotheses: list[str]
    token_ids: list[list[int]]
    iterations: list[int]
    seconds: float

    @property
    def sentences_per_second(self) -> float:
        """Sentences decoded per second of generation time."""
        return len(self.hypotheses) / self.seconds if self.seconds > 0 else float("inf")


def _pad_id(model, tokenizer) -> int:
    pad = tokenizer.pad_token_id
    if pad is None:
        pad = getattr(model.config, "pad_token_id", None)
    return int(pad) if pad is not None else 0


def _eos_id(model, tokenizer) -> int | None:
    eos = tokenizer.eos_token_id
    if eos is None:
        eos = getattr(model.generation_config, "eos_token_id", None)
        eos = eos[0] if isinstance(eos, list) else eos
    return eos


def _device(model) -> torch.device:
    try:
        return next(model.parameters()).device
    except (StopIteration, AttributeError, TypeError):
        return torch.device("cpu")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _ar_steps(sequences: torch.Tensor, eos_id: int | None, pad_id: int) -> torch.Tensor:
    """Decoder steps per sentence: up to and including the first eos."""
    not_pad = (sequences != pad_id).sum(dim=1)
    if eos_id is None:
        return not_pad
    is_eos = sequences == eos_id
    first_eos = is_eos.int().argmax(dim=1) + 1
    return torch.where(is_eos.any(dim=1), first_eos, not_pad)


def generate_batch(
    model,
    tokenizer,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    options: dict[str, Any],
    ar_length: tuple[float, int] = AR_LENGTH,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Decode one batch; return (output token ids (B, L), iterations or AR steps per sentence (B,)).

    AR outputs lose their decoder start token so both kinds look alike: tokens, then eos, then
    padding. An AR model gets ``a · S + b`` new tokens (S the batch's source width) unless
    ``options`` sets a length itself; the cap is given as ``max_length`` (decoder start + new tokens),
    which the model's own generation config usually sets too (giving both would warn every batch).
    """
    if getattr(model, "is_nat", False):
        out = model.generate(
            input_ids=input_ids, attention_mask=attention_mask, return_dict_in_generate=True, **options
        )
        return out.sequences, out.iterations
    kwargs = {"use_cache": True, **options}
    if "max_new_tokens" not in kwargs and "max_length" not in kwargs:
        kwargs["max_length"] = int(ar_length[0] * input_ids.shape[1] + ar_length[1]) + 1
    out = model.generate(input_ids=input_ids, attention_mask=attention_mask, **kwargs)
    sequences = (out if isinstance(out, torch.Tensor) else out.sequences)[:, 1:]
    return sequences, _ar_steps(sequences, _eos_id(model, tokenizer), _pad_id(model, tokenizer))


def tokenize_sources(model, tokenizer, sources: Sequence[str]) -> list[list[int]]:
    """Token ids of ``sources``, cut to the longest source the model accepts."""
    limit = source_token_limit(model, default=getattr(tokenizer, "model_max_length", None))
    truncate = limit is not None and limit < 1_000_000
    encoded = tokenizer(list(sources), truncation=truncate, max_length=limit if truncate else None)
    return [list(ids) for ids in encoded["input_ids"]]


def _pad_batch(ids: Sequence[Sequence[int]], pad_id: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(x) for x in ids)
    input_ids = torch.full((len(ids), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(ids), width), dtype=torch.long)
    for i, x in enumerate(ids):
        input_ids[i, : len(x)] = torch.tensor(x, dtype=torch.long)
        mask[i, : len(x)] = 1
    return input_ids.to(device), mask.to(device)


def _batches(
    lengths: list[int], batch_size: int | None, max_tokens: int | None, max_sentences: int | None
) -> list[list[int]]:
    """Indices in batches of similar length: under a token budget (shortest first), else
    ``batch_size`` sentences at a time (longest first, so memory errors show up at once)."""
    if max_tokens is not None:
        return list(TokenBudgetBatchSampler(lengths, max_tokens=max_tokens, shuffle=False, max_sentences=max_sentences))
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


@torch.inference_mode()
def translate_corpus(
    model,
    tokenizer,
    sources: Sequence[str],
    options: dict[str, Any] | None = None,
    batch_size: int | None = 64,
    max_tokens: int | None = None,
    max_sentences: int | None = None,
    ar_length: tuple[float, int] = AR_LENGTH,
) -> DecodeResult:
    """Decode all ``sources`` in length-sorted batches with ``generate(**options)``; outputs keep the
    input order. Batches hold ``batch_size`` sentences, or, with ``max_tokens``, at most that many
    padded source tokens (and ``max_sentences`` sentences). Only generation is timed."""
    model.eval()
    options = dict(options or {})
    device = _device(model)
    token_ids = tokenize_sources(model, tokenizer, sources)
    batches = _batches([len(ids) for ids in token_ids], batch_size, max_tokens, max_sentences)
    pad = _pad_id(model, tokenizer)
    outputs: list[list[int]] = [[] for _ in sources]
    iterations = [0] * len(sources)
    seconds = 0.0
    for index in batches:
        input_ids, mask = _pad_batch([token_ids[i] for i in index], pad, device)
        _sync(device)
        start = time.perf_counter()
        sequences, steps = generate_batch(model, tokenizer, input_ids, mask, options, ar_length)
        sequences, steps = sequences.cpu(), steps.cpu()
        seconds += time.perf_counter() - start
        for row, i in enumerate(index):
            outputs[i] = sequences[row].tolist()
            iterations[i] = int(steps[row])
    hypotheses = tokenizer.batch_decode(outputs, skip_special_tokens=True) if outputs else []
    return DecodeResult(hypotheses=hypotheses, token_ids=outputs, iterations=iterations, seconds=seconds)


def translate(model, tokenizer, sources: Sequence[str], batch_size: int = 64, **options) -> list[str]:
    """The translations of ``sources`` (in order) by ``model.generate(**options)``."""
    return translate_corpus(model, tokenizer, sources, options, batch_size=batch_size).hypotheses


@torch.inference_mode()
def measure_latency(
    model,
    tokenizer,
    sources: Sequence[str],
    options: dict[str, Any],
    warmup: int = 5,
    ar_length: tuple[float, int] = AR_LENGTH,
) -> dict[str, float]:
    """Batch-1 latency over ``sources`` after ``warmup`` untimed sentences: ``{"median_ms", "p90_ms", "n"}``."""
    model.eval()
    device = _device(model)
    pad = _pad_id(model, tokenizer)
    inputs = [_pad_batch([ids], pad, device) for ids in tokenize_sources(model, tokenizer, sources)]
    for input_ids, mask in inputs[:warmup]:
        generate_batch(model, tokenizer, input_ids, mask, options, ar_length)
    times = []
    for input_ids, mask in inputs:
        _sync(device)
        start = time.perf_counter()
        sequences, _ = generate_batch(model, tokenizer, input_ids, mask, options, ar_length)
        sequences.cpu()
        times.append(time.perf_counter() - start)
    ms = np.asarray(times) * 1000.0
    return {"median_ms": float(np.median(ms)), "p90_ms": float(np.percentile(ms, 90)), "n": len(times)}
