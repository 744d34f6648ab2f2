"""Loading a saved translation model (hf_nat family or transformers AR model) for decoding."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch

__all__ = ["DTYPES", "LoadedModel", "load_model", "torch_dtype"]

# The one spelling of a numeric precision across the command line and result files.
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def torch_dtype(name: str) -> torch.dtype:
    """The torch dtype named ``name`` (one of :data:`DTYPES`), or a ValueError listing them."""
    if name not in DTYPES:
        raise ValueError(f"unknown dtype {name!r}; choose from {sorted(DTYPES)}")
    return DTYPES[name]


@dataclass
class LoadedModel:
    """A model ready to decode, with its tokenizer, kind and the fingerprint of the folder it came from.

    ``fingerprint`` is None for a model that was not loaded from a saved folder.
    """

    name: str
    path: str
    model: Any
    tokenizer: Any
    is_nat: bool
    fingerprint: str | None = None


def load_model(path: str, device: str = "cpu", dtype: str = "float32") -> LoadedModel:
    """Load a seq2seq model folder (AR or NAT) and its tokenizer for inference, with its fingerprint."""
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    import hf_nat  # noqa: F401  (registers the NAT families with the Auto classes)
    from hf_nat.provenance import load_fingerprinted

    def load(folder: str) -> tuple[Any, Any]:
        return AutoTokenizer.from_pretrained(folder), AutoModelForSeq2SeqLM.from_pretrained(folder)

    (tokenizer, model), fingerprint = load_fingerprinted(path, load)
    model.to(device=device, dtype=torch_dtype(dtype)).eval()
    return LoadedModel(
        name=os.path.basename(os.path.normpath(path)),
        path=path,
        model=model,
        tokenizer=tokenizer,
        is_nat=bool(getattr(model, "is_nat", False)),
        fingerprint=fingerprint,
    )
