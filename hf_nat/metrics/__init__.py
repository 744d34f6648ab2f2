"""Offline metrics as local `evaluate` modules: translation (sacreBLEU, chrF) and speech (WER, CER).

The Hub versions of these metrics need network access even when the
scoring code (sacrebleu) is installed; the modules shipped next to this file
load from disk, so they work with ``HF_HUB_OFFLINE=1``.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from typing import Any

import evaluate

_HERE = os.path.dirname(os.path.abspath(__file__))
# metric name -> (local module folder, its config)
_CONFIGS = {
    "sacrebleu": ("nat_sacrebleu", "bleu"),
    "bleu": ("nat_sacrebleu", "bleu"),
    "chrf": ("nat_sacrebleu", "chrf"),
    "wer": ("nat_wer", "wer"),
    "cer": ("nat_wer", "cer"),
}

__all__ = ["corpus_scores", "error_rates", "load_metric", "metric_path", "normalize_references"]


def metric_path(name: str) -> str:
    """Return the local directory of the evaluate module that scores metric ``name``."""
    return os.path.join(_HERE, _config(name)[0])


def _config(name: str) -> tuple[str, str]:
    key = name.lower()
    if key not in _CONFIGS:
        raise ValueError(f"unknown metric {name!r}; available: {sorted(_CONFIGS)}")
    return _CONFIGS[key]


@functools.cache
def _load_cached(module: str, config_name: str) -> evaluate.EvaluationModule:
    return evaluate.load(os.path.join(_HERE, module), config_name=config_name)


def load_metric(name: str) -> evaluate.EvaluationModule:
    """Load the offline evaluate module for ``"sacrebleu"``/``"bleu"``, ``"chrf"``, ``"wer"`` or ``"cer"``."""
    return _load_cached(*_config(name))


def normalize_references(
    references: Sequence[str] | Sequence[Sequence[str]],
) -> list[list[str]]:
    """Wrap a flat list of references (one per prediction) into lists of one."""
    return [[ref] if isinstance(ref, str) else list(ref) for ref in references]


def corpus_scores(
    predictions: list[str],
    references: list[str] | list[list[str]],
    **bleu_kwargs: Any,
) -> dict[str, float]:
    """Corpus sacreBLEU and chrF of ``predictions``: ``{"bleu": .., "chrf": ..}``.

    ``references`` is either one string per prediction or one list of
    references per prediction (all lists the same length). Extra keyword
    arguments go to sacreBLEU (e.g. ``tokenize="intl"``).
    """
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} references")
    refs = normalize_references(references)
    preds = list(predictions)
    bleu = load_metric("sacrebleu").compute(predictions=preds, references=refs, **bleu_kwargs)
    chrf = load_metric("chrf").compute(predictions=preds, references=refs)
    return {"bleu": float(bleu["score"]), "chrf": float(chrf["score"])}


def error_rates(predictions: list[str], references: list[str]) -> dict[str, float]:
    """Corpus WER and CER of ``predictions`` in percent, jiwer's definitions: ``{"wer": .., "cer": ..}``."""
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} references")
    preds, refs = list(predictions), list(references)
    return {
        name: 100 * float(load_metric(name).compute(predictions=preds, references=refs)["score"])
        for name in ("wer", "cer")
    }
