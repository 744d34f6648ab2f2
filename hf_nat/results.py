"""The rows of a benchmark's ``results.json``, as one typed record that writers and readers share."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Row"]


@dataclass
class Row:
    """One (model, decoding setting) result line of ``results.json``."""

    model: str
    model_path: str
    model_fingerprint: str | None
    kind: str
    setting: dict[str, Any]
    label: str
    n_sentences: int
    bleu: float
    chrf: float
    latency_ms_median: float
    latency_ms_p90: float
    latency_sentences: int
    sents_per_s: float
    decode_seconds: float
    mean_iterations: float
    iterations_unit: str
    repetition_rate: float
    leftover_special_tokens: int = 0
    speedup: float = float("nan")
    throughput_ratio: float = float("nan")
    engine: str = "pytorch"
    # Ratios to the baseline's CTranslate2 int8 greedy decoding; None when the run did not measure it.
    ct2_speedup: float | None = None
    ct2_throughput_ratio: float | None = None
    # Words of the outputs over words of the references (None in files written before it existed).
    length_ratio: float | None = None
    hyps_file: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, row: Mapping[str, Any]) -> Row:
        """A row read back from ``results.json``; fields an older file lacks get their defaults
        (``model_fingerprint`` None), unknown keys are a ValueError."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(row) - names)
        if unknown:
            raise ValueError(f"benchmark row has unknown field(s) {unknown}; its fields are {sorted(names)}")
        values = dict(row)
        values.setdefault("model_fingerprint", None)
        try:
            return cls(**values)
        except TypeError as error:
            raise ValueError(f"benchmark row lacks fields: {error}") from error

    @property
    def is_nat(self) -> bool:
        """Whether the row measured a NAT model (else the AR baseline or another AR model)."""
        return self.kind == "nat"
