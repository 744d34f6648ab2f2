"""Optional dependencies: each comes with an extra of the package, named in the error when missing."""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["EXTRAS", "require"]

# module -> the extra of setup.cfg that installs it
EXTRAS = {
    "accelerate": "train",
    "datasets": "train",
    "evaluate": "train",
    "sacrebleu": "train",
    "tqdm": "train",
    "rapidfuzz": "train",
    "jinja2": "export",
    "eflomal": "align",
    "matplotlib": "plot",
    "onnx": "deploy",
    "onnxruntime": "deploy",
    "ctranslate2": "deploy",
}


def require(module: str, purpose: str) -> ModuleType:
    """Import ``module``, or raise an ImportError that names the extra installing it and ``purpose``."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        extra = EXTRAS.get(module.split(".")[0])
        hint = f'pip install "hf_nat[{extra}]"' if extra else f"pip install {module.split('.')[0]}"
        raise ImportError(f"{purpose} needs {module.split('.')[0]}, which is not installed: {hint}") from error
