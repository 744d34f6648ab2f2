"""Decoding engines: the same saved model run by PyTorch (fp32, or bf16 autocast), by ONNX Runtime
(NAT models, fp32 or int8) or by CTranslate2 (the AR baseline, fp32 or int8).

Every engine yields an object with the ``generate()`` the translation loop calls, so one loop
(:mod:`hf_nat.translate`) decodes and times them all.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from hf_nat.loading import LoadedModel

__all__ = ["ENGINES", "Engine", "check_engines", "engine_context", "engines_for", "load_engine"]


@dataclass(frozen=True)
class Engine:
    """A way of running a saved model: which kinds of model it takes (``ar``, ``nat``)."""

    name: str
    kinds: frozenset


ENGINES = {
    e.name: e
    for e in (
        Engine("pytorch", frozenset({"ar", "nat"})),
        Engine("pytorch-bf16", frozenset({"ar", "nat"})),
        Engine("onnxruntime", frozenset({"nat"})),
        Engine("onnxruntime-int8", frozenset({"nat"})),
        Engine("ctranslate2", frozenset({"ar"})),
        Engine("ctranslate2-int8", frozenset({"ar"})),
    )
}


def check_engines(engines: Sequence[str]) -> list[str]:
    """``engines`` as a list, or a ValueError naming the unknown ones and the valid names."""
    unknown = [e for e in engines if e not in ENGINES]
    if unknown:
        raise ValueError(f"unknown engine(s) {unknown}; choose from {sorted(ENGINES)}")
    return list(dict.fromkeys(engines))


def engines_for(is_nat: bool, engines: Sequence[str]) -> list[str]:
    """The engines of ``engines`` that run a model of this kind, in the given order."""
    kind = "nat" if is_nat else "ar"
    return [e for e in check_engines(engines) if kind in ENGINES[e].kinds]


def load_engine(lm: LoadedModel, engine: str, threads: int, device: str = "cpu") -> LoadedModel:
    """``lm``'s model run by ``engine``: the same LoadedModel for the PyTorch engines, else a copy
    whose model is the ONNX Runtime or CTranslate2 one (loaded from ``lm.path``)."""
    check_engines([engine])
    if engine.startswith("pytorch"):
        return lm
    if engine.startswith("onnxruntime"):
        from hf_nat.runtime.onnx import ONNX_CONFIG_NAME, ORTNATModelForSeq2SeqLM, export_onnx

        if not os.path.isfile(os.path.join(lm.path, ONNX_CONFIG_NAME)):
            export_onnx(lm.path)
        model = ORTNATModelForSeq2SeqLM.from_pretrained(lm.path, quantized=engine.endswith("int8"), threads=threads)
    else:
        from hf_nat.runtime.ctranslate2 import CTranslate2ForSeq2SeqLM

        compute_type = "int8" if engine.endswith("int8") else "float32"
        model = CTranslate2ForSeq2SeqLM.from_pretrained(
            lm.path, compute_type=compute_type, threads=threads, device="cuda" if device.startswith("cuda") else "cpu"
        )
    return dataclasses.replace(lm, model=model)


def engine_context(engine: str, device: str = "cpu"):
    """The context decoding runs in: bf16 autocast for ``pytorch-bf16``, else nothing."""
    if engine == "pytorch-bf16":
        return torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
