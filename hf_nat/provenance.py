"""Fingerprints of saved model folders, so that measured numbers can be traced to the model measured.

``hf-nat benchmark`` records the fingerprint of every folder it decodes next to its numbers;
``hf-nat export`` fingerprints the folder it exports and refuses numbers recorded for another one.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

__all__ = [
    "CONFIG_BOOKKEEPING_KEYS",
    "FingerprintChangedError",
    "load_fingerprinted",
    "model_fingerprint",
    "weight_files",
]

# config.json entries that say how a folder was saved or which code loads it, not what the network
# computes: export adds auto_map and custom_pipelines, and every save_pretrained rewrites the version.
CONFIG_BOOKKEEPING_KEYS = frozenset({"transformers_version", "_name_or_path", "auto_map", "custom_pipelines"})
_CHUNK_BYTES = 1 << 20
_WEIGHT_PATTERNS = ("model*.safetensors", "pytorch_model*.bin")

Loaded = TypeVar("Loaded")


class FingerprintChangedError(RuntimeError):
    """A model folder changed while it was being loaded, so no fingerprint describes what was loaded."""


def weight_files(model_dir: str | os.PathLike) -> list[Path]:
    """The weight files of a ``save_pretrained`` folder, sorted: ``model*.safetensors`` (one file or
    the shards), else ``pytorch_model*.bin``, the precedence in which transformers loads them.

    Raises FileNotFoundError when the folder holds neither.
    """
    folder = Path(model_dir)
    for pattern in _WEIGHT_PATTERNS:
        files = sorted(path for path in folder.glob(pattern) if path.is_file())
        if files:
            return files
    raise FileNotFoundError(f"no weights in {folder} (expected {' or '.join(_WEIGHT_PATTERNS)})")


def _model_config_bytes(config_path: Path) -> bytes:
    """config.json without its bookkeeping entries, serialized canonically (sorted keys, no spaces)."""
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except ValueError as error:
        raise ValueError(f"unreadable config.json in {config_path.parent}: {error}") from error
    if not isinstance(config, dict):
        raise ValueError(f"config.json in {config_path.parent} holds {type(config).__name__}, expected an object")
    relevant = {key: value for key, value in config.items() if key not in CONFIG_BOOKKEEPING_KEYS}
    return json.dumps(relevant, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def model_fingerprint(model_dir: str | os.PathLike) -> str:
    """Content fingerprint of the model saved in ``model_dir``: ``"sha256:<64 hex digits>"``.

    Contract:

    - It hashes what fixes the network's outputs: the bytes of every weight file
      (:func:`weight_files`; each preceded by its name and size, streamed in 1 MiB chunks, so memory
      stays flat for any model size) and config.json without :data:`CONFIG_BOOKKEEPING_KEYS`
      (canonical JSON, so key order and whitespace do not matter).
    - Equal fingerprints mean equal weights and architecture; any changed weight byte or model
      setting changes it. The folder's path, its modification times and the bookkeeping keys do not:
      a copy of the folder has the fingerprint of the original, and so has its ``hf-nat export``
      export (which adds ``auto_map`` and ``custom_pipelines``) as long as ``save_pretrained`` writes
      the weights byte for byte as before, as it does within one transformers version.
    - The tokenizer files and ``generation_config.json`` are left out: ``save_pretrained`` rewrites
      them with version-dependent bookkeeping (an export's tokenizer_config.json differs from its
      source's), the benchmark records the decoding options beside each number, and the weights of
      two trainings never coincide, so weights and config already tell models apart.

    Raises FileNotFoundError without config.json or weights, ValueError for an unreadable config.json.
    """
    folder = Path(model_dir)
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(
            f"{folder} is not a model folder: no config.json there "
            f"(expected the output of save_pretrained, e.g. runs/<name>/best)"
        )
    model_config = _model_config_bytes(config_path)
    digest = hashlib.sha256()
    for path in weight_files(folder):
        # Name and size delimit the files, so moving bytes from one shard to another changes the hash.
        digest.update(f"{path.name}\0{path.stat().st_size}\0".encode())
        with open(path, "rb") as f:
            while chunk := f.read(_CHUNK_BYTES):
                digest.update(chunk)
    digest.update(b"config.json\0" + model_config)
    return f"sha256:{digest.hexdigest()}"


def load_fingerprinted(model_dir: str | os.PathLike, load: Callable[[str | os.PathLike], Loaded]) -> tuple[Loaded, str]:
    """``(load(model_dir), fingerprint)``, where the fingerprint is that of the files ``load`` read.

    The folder is fingerprinted before and after loading; if the two differ (a training run saved
    a new ``best/`` meanwhile), FingerprintChangedError is raised instead of recording a fingerprint
    that may not be the loaded model's.
    """
    before = model_fingerprint(model_dir)
    loaded = load(model_dir)
    after = model_fingerprint(model_dir)
    if after != before:
        raise FingerprintChangedError(
            f"{model_dir} changed while it was being loaded (fingerprint {before} "
            f"before, {after} after); load it again once nothing writes to it"
        )
    return loaded, before
