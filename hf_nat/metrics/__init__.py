"""Offline metrics as local `evaluate` modules: translation (sacreBLEU, chrF), speech (WER, CER) and captioning
(BLEU-4 against all references, CIDEr-D).

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
    "cider": ("nat_cider", "cider"),
}

__all__ = [
    "caption_scores",
    "corpus_scores",
    "error_rates",
    "load_metric",
    "metric_path",
    "normalize_references",
    "pad_references",
]


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
    """Load the offline evaluate module of a metric in ``_CONFIGS`` (``"sacrebleu"``, ``"wer"``, ``"cider"``, ...)."""
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
    if not predictions:
        raise ValueError("no captions to score")
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


def pad_references(references: Sequence[str] | Sequence[Sequence[str]]) -> list[list[str | None]]:
    """Per-prediction reference lists padded with ``None`` to the longest, which sacreBLEU skips.

    sacreBLEU needs the same number of reference streams for every segment and drops ``None``
    entries segment by segment; an empty string would instead count as a reference of length 0
    (it can be the closest reference length and change the brevity penalty).
    """
    refs = normalize_references(references)
    width = max((len(r) for r in refs), default=0)
    return [r + [None] * (width - len(r)) for r in refs]


def caption_scores(predictions: list[str], references: list[str] | list[list[str]]) -> dict[str, float]:
    """Corpus captioning scores of ``predictions``: ``{"bleu4": .., "cider": ..}``, both on a 0-100 scale.

    ``references`` holds one string or one non-empty list of references per prediction (image);
    the counts may differ. ``bleu4`` is corpus sacreBLEU with default settings (13a tokenisation,
    cased, exp smoothing) against all references of each prediction. ``cider`` is corpus CIDEr-D
    as on MSCOCO (the ``nat_cider`` module, lower-cased, punctuation removed) times 100, the scale
    papers print ("CIDEr 112.3"); idf comes from this corpus's references, so score a whole test
    split at once, not in batches.
    """
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} references")
    if not predictions:
        raise ValueError("no captions to score")
    refs = normalize_references(references)
    if any(not r for r in refs):
        raise ValueError("every prediction needs at least one reference")
    preds = list(predictions)
    bleu = load_metric("sacrebleu").compute(predictions=preds, references=pad_references(refs))
    cider = load_metric("cider").compute(predictions=preds, references=refs)
    return {"bleu4": float(bleu["score"]), "cider": 100 * float(cider["score"])}
