"""Files written so that a killed process never leaves half of one, and JSON read with clear errors."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

__all__ = ["read_json", "replace_folder", "write_json_atomic", "write_text_atomic"]


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file beside it, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_json_atomic(path: str | os.PathLike, obj: Any, indent: int | None = 2) -> None:
    """Write ``obj`` as JSON to ``path`` atomically (see :func:`write_text_atomic`)."""
    write_text_atomic(path, json.dumps(obj, indent=indent, ensure_ascii=False) + "\n")


def replace_folder(staging: str | os.PathLike, final: str | os.PathLike) -> None:
    """Move the finished folder ``staging`` to ``final``, replacing what was there."""
    shutil.rmtree(final, ignore_errors=True)
    os.replace(staging, final)


def read_json(path: str | os.PathLike, what: str) -> dict:
    """Read a JSON object, with an error naming the file and what it should hold."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise FileNotFoundError(f"{what} file {path} does not exist") from None
    except (OSError, ValueError) as error:
        raise ValueError(f"{what} file {path} is not valid JSON: {error}") from error
    if not isinstance(data, dict):
        raise ValueError(f"{what} file {path} holds {type(data).__name__}, expected a JSON object")
    return data
