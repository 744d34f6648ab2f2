"""Token-budget batching by length and padding of sequence-to-sequence examples."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import Sampler


class TokenBudgetBatchSampler(Sampler[list[int]]):
    """Yield batches of indices of similar length whose padded size stays under a token budget.

    Indices are sorted by length (ties broken by a permutation seeded with ``seed`` when
    ``shuffle``, by index otherwise) and consecutive runs are cut into batches such that
    ``max_len_in_batch * n_sentences <= max_tokens`` and ``n_sentences <= max_sentences``. An
    example longer than ``max_tokens`` gets a batch of its own; nothing is dropped. The batches
    are fixed; with ``shuffle`` their order is permuted each epoch with
    ``numpy.random.default_rng(seed + epoch)`` (call :meth:`set_epoch`).

    For data parallel training, rank ``r`` of ``num_replicas`` takes ``batches[r::num_replicas]``
    of the (epoch-permuted) order, truncated so that every rank gets the same number of batches;
    the few batches beyond that are skipped for the epoch.

    Args:
        lengths: length (e.g. ``max(len(source), len(target))`` in tokens) of each example.
        max_tokens: token budget per batch, padding included.
        shuffle: shuffle tie order once and batch order per epoch.
        seed: seed of every random choice; no global random state is used.
        num_replicas: number of data-parallel processes.
        rank: this process's rank in ``[0, num_replicas)``.
        max_sentences: optional cap on the number of examples per batch.
    """

    def __init__(
        self,
        lengths: Sequence[int],
        max_tokens: int,
        shuffle: bool = True,
        seed: int = 0,
        num_replicas: int = 1,
        rank: int = 0,
        max_sentences: int | None = None,
    ) -> None:
        if max_tokens <= 0:
            raise ValueError(f"max_tokens must be positive, got {max_tokens}")
        if max_sentences is not None and max_sentences <= 0:
            raise ValueError(f"max_sentences must be positive or None, got {max_sentences}")
        if num_replicas < 1 or not 0 <= rank < num_replicas:
            raise ValueError(f"Need num_replicas >= 1 and 0 <= rank < num_replicas, got {num_replicas=}, {rank=}")
        self.max_tokens = max_tokens
        self.max_sentences = max_sentences
        self.shuffle = shuffle
        self.seed = seed
        self.num_replicas = num_replicas
        self.rank = rank
        self.epoch = 0
        self.batches = self._make_batches(np.asarray(lengths, dtype=np.int64))
        if num_replicas > 1 and len(self.batches) < num_replicas:
            raise ValueError(f"Only {len(self.batches)} batches for {num_replicas} replicas; lower max_tokens")

    def _make_batches(self, lengths: np.ndarray) -> list[list[int]]:
        """Cut the length-sorted indices into batches under the token and sentence caps."""
        if self.shuffle:
            tiebreak = np.random.default_rng(self.seed).permutation(len(lengths))
        else:
            tiebreak = np.arange(len(lengths))
        order = np.lexsort((tiebreak, lengths))  # primary key: length; secondary: tiebreak
        batches: list[list[int]] = []
        batch: list[int] = []
        batch_max = 0
        for index in order.tolist():
            length = int(lengths[index])
            new_max = max(batch_max, length)
            full = (len(batch) + 1) * new_max > self.max_tokens or (
                self.max_sentences is not None and len(batch) >= self.max_sentences
            )
            if batch and full:
                batches.append(batch)
                batch, new_max = [], length
            batch.append(index)
            batch_max = new_max
        if batch:
            batches.append(batch)
        return batches

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch that seeds the batch order of the next iteration."""
        self.epoch = epoch

    def _epoch_batches(self) -> list[list[int]]:
        """This rank's batches for the current epoch, in order."""
        batches = self.batches
        if self.shuffle:
            permutation = np.random.default_rng(self.seed + self.epoch).permutation(len(batches))
            batches = [batches[i] for i in permutation.tolist()]
        if self.num_replicas > 1:
            per_rank = len(batches) // self.num_replicas
            batches = batches[self.rank :: self.num_replicas][:per_rank]
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        """Yield lists of dataset indices, one list per batch."""
        for batch in self._epoch_batches():
            yield list(batch)

    def __len__(self) -> int:
        """Number of batches this rank yields per epoch."""
        if self.num_replicas > 1:
            return len(self.batches) // self.num_replicas
        return len(self.batches)


@dataclass
class Seq2SeqCollator:
    """Right-pad ``input_ids`` (and ``labels`` if present) of a list of examples into tensors.

    Returns ``input_ids`` padded with ``pad_token_id``, an ``attention_mask`` of 1s and 0s and, if
    the examples have ``labels``, ``labels`` padded with ``label_pad_token_id`` (ignored by the
    loss); likewise every key of ``padded_label_keys`` all examples have. Other keys are ignored.
    """

    pad_token_id: int
    label_pad_token_id: int = -100
    # Other per-token label lists padded like ``labels`` when every example has them
    # (fertility_nat's per-source-token fertilities).
    padded_label_keys: tuple[str, ...] = ("fertility",)

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        """Collate ``features`` into a batch of ``torch.long`` tensors."""
        if not features:
            raise ValueError("Cannot collate an empty list of examples")
        input_ids = _pad([f["input_ids"] for f in features], self.pad_token_id)
        attention_mask = _pad([[1] * len(f["input_ids"]) for f in features], 0)
        batch = {"input_ids": input_ids, "attention_mask": attention_mask}
        with_labels = sum("labels" in f and f["labels"] is not None for f in features)
        if with_labels == len(features):
            batch["labels"] = _pad([f["labels"] for f in features], self.label_pad_token_id)
        elif with_labels:
            raise ValueError(f"Only {with_labels} of {len(features)} examples have labels")
        for key in self.padded_label_keys:
            if all(key in f for f in features):
                batch[key] = _pad([f[key] for f in features], self.label_pad_token_id)
        return batch


def _pad(sequences: list[Sequence[int]], value: int) -> torch.Tensor:
    """Right-pad integer sequences to a ``(batch, max_len)`` ``torch.long`` tensor."""
    width = max(len(seq) for seq in sequences)
    out = torch.full((len(sequences), width), value, dtype=torch.long)
    for row, seq in enumerate(sequences):
        if len(seq):
            out[row, : len(seq)] = torch.as_tensor(seq, dtype=torch.long)
    return out
