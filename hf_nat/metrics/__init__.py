"""Offline translation metrics (sacreBLEU, chrF) as local `evaluate` modules.

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

_MODULE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "nat_sacrebleu")
# metric name -> config of the one local module
_CONFIGS = {"sacrebleu": "bleu", "bleu": "bleu", "chrf": "chrf"}

__all__ = ["corpus_scores", "load_metric", "metric_path", "normalize_references"]


def metric_path(name: str) -> str:
    """Return the local directory of the evaluate module that scores metric ``name``."""
    _config(name)
    return _MODULE_DIR


def _config(name: str) -> str:
    key = name.lower()
    if key not in _CONFIGS:
        raise ValueError(f"unknown metric {name!r}; available: {sorted(_CONFIGS)}")
    return _CONFIGS[key]


@functools.cache
def _load_cached(config_name: str) -> evaluate.EvaluationModule:
    return evaluate.load(_MODULE_DIR, config_name=config_name)


def load_metric(name: str) -> evaluate.EvaluationModule:
    """Load the offline evaluate module for ``"sacrebleu"``/``"bleu"`` or ``"chrf"``."""
    return _load_cached(_config(name))


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
