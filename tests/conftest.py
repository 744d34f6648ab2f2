"""Test setup: offline Hub, bounded threads, the shared corpus and a toy model."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
from pathlib import Path

import pytest
import torch

# OMP_NUM_THREADS, when set, wins: on a box busy with training, 2 threads per test oversubscribe it.
torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS") or min(2, os.cpu_count() or 1)))

# The shared corpus lies beside the checkout (../shared), as on developer machines and in CI.
MULTI30K = Path(__file__).resolve().parents[2] / "shared" / "data" / "multi30k"


@pytest.fixture(scope="session")
def toy():
    """A tiny CMLM trained once on the toy copy task, with its tokenizer (shared by tests)."""
    from tests.toy import train_toy_cmlm

    return train_toy_cmlm()


@pytest.fixture(scope="session")
def toy_dir(toy, tmp_path_factory):
    """The toy model saved as `hf-nat train` saves ``best/`` (weights, config, tokenizer)."""
    path = tmp_path_factory.mktemp("run") / "best"
    toy.model.save_pretrained(path)
    toy.tokenizer.save_pretrained(path)
    return path
