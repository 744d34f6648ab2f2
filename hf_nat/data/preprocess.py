"""Tokenize a ``source``/``target`` corpus into ``input_ids``/``labels`` and length-filter it by the
limits of the model it is meant for (:func:`source_token_limit`)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TypeVar

import datasets

logger = logging.getLogger(__name__)

CorpusT = TypeVar("CorpusT", datasets.Dataset, datasets.DatasetDict)


def source_token_limit(model, default: int | None = None) -> int | None:
    """The longest source, in tokens (eos included), that ``model`` accepts.

    hf_nat models state it with ``max_source_positions()``: CTC and the Imputer upsample the source
    into the decoder's positions, so they accept only ``max_position_embeddings // upsample_ratio``
    tokens. Other models (e.g. the Marian AR baseline) are bounded by
    ``config.max_position_embeddings``. A wrapper with a ``.module`` (DDP) is looked through.
    Returns ``default`` when the model states neither.
    """
    model = getattr(model, "module", model)
    stated = getattr(model, "max_source_positions", None)
    if callable(stated):
        return int(stated())
    positions = getattr(getattr(model, "config", None), "max_position_embeddings", None)
    return int(positions) if positions is not None else default


def tokenize_corpus(
    dataset: CorpusT,
    tokenizer,
    max_source_length: int = 128,
    max_target_length: int = 128,
    max_length_ratio: float | None = None,
    num_proc: int | None = None,
    filter_splits: Sequence[str] | None = ("train",),
) -> CorpusT:
    """Add ``input_ids`` (source) and ``labels`` (target) token id columns, both ending in eos.

    The ``source`` and ``target`` text columns are kept. Sequences are never truncated. In the
    splits named by ``filter_splits`` pairs are dropped (and the count logged) when the source is
    longer than ``max_source_length`` tokens, the target longer than ``max_target_length``, or,
    if ``max_length_ratio`` is given, ``max(len) / min(len)`` of the two exceeds it (lengths
    count the eos). Other splits are kept whole so that evaluation never loses a sentence.

    A bare ``Dataset`` is treated as the split named by its ``split`` attribute (set by
    ``load_parallel_corpus`` on every split it returns); if it has none it is filtered whenever
    ``filter_splits`` is non-empty, and logged as ``'dataset'``.

    Args:
        dataset: a ``DatasetDict`` of splits or a single ``Dataset`` with ``source``/``target``.
        tokenizer: a tokenizer whose encoding appends eos (see ``train_joint_tokenizer``).
        max_source_length: maximum source length in tokens, eos included.
        max_target_length: maximum target length in tokens, eos included.
        max_length_ratio: optional maximum ratio between the longer and shorter side.
        num_proc: worker processes for ``Dataset.map``/``filter``.
        filter_splits: splits to length-filter; ``None`` or empty filters none.

    Returns:
        The same container type with ``input_ids`` and ``labels`` added.

    Raises:
        ValueError: a split has no rows (an empty split would come back without the new columns).
    """
    filter_splits = tuple(filter_splits or ())
    if isinstance(dataset, datasets.DatasetDict):
        return datasets.DatasetDict(
            {
                split: _tokenize_split(
                    ds,
                    split,
                    split in filter_splits,
                    tokenizer,
                    max_source_length,
                    max_target_length,
                    max_length_ratio,
                    num_proc,
                )
                for split, ds in dataset.items()
            }
        )
    split = str(dataset.split) if dataset.split is not None else None
    do_filter = split in filter_splits if split is not None else bool(filter_splits)
    return _tokenize_split(
        dataset,
        split or "dataset",
        do_filter,
        tokenizer,
        max_source_length,
        max_target_length,
        max_length_ratio,
        num_proc,
    )


def _tokenize_split(
    ds: datasets.Dataset,
    split: str,
    do_filter: bool,
    tokenizer,
    max_source_length: int,
    max_target_length: int,
    max_length_ratio: float | None,
    num_proc: int | None,
) -> datasets.Dataset:
    """Tokenize one split and, if ``do_filter``, drop pairs outside the length limits."""
    if ds.num_rows == 0:  # map() would add no columns: fail here rather than at the first use of input_ids
        raise ValueError(f"split {split!r} has no pairs to tokenize")

    def encode(batch: dict[str, list[str]]) -> dict[str, list[list[int]]]:
        return {
            "input_ids": tokenizer(batch["source"])["input_ids"],
            "labels": tokenizer(batch["target"])["input_ids"],
        }

    def within_limits(batch: dict[str, list[list[int]]]) -> list[bool]:
        keep = []
        for src, tgt in zip(batch["input_ids"], batch["labels"]):
            ok = len(src) <= max_source_length and len(tgt) <= max_target_length
            if ok and max_length_ratio is not None:
                longer, shorter = max(len(src), len(tgt)), max(min(len(src), len(tgt)), 1)
                ok = longer / shorter <= max_length_ratio
            keep.append(ok)
        return keep

    tokenized = ds.map(encode, batched=True, num_proc=num_proc, desc=f"Tokenizing {split}")
    if not do_filter:
        return tokenized
    filtered = tokenized.filter(within_limits, batched=True, num_proc=num_proc, desc=f"Filtering {split}")
    dropped = tokenized.num_rows - filtered.num_rows
    if dropped:
        logger.warning(
            "Dropped %d of %d pairs over the length limits in split %r (source <= %d, target <= %d%s)",
            dropped,
            tokenized.num_rows,
            split,
            max_source_length,
            max_target_length,
            f", ratio <= {max_length_ratio}" if max_length_ratio is not None else "",
        )
    return filtered
