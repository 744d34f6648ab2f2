"""What a training run keeps on disk: resumable checkpoints, model folders and its log.

A checkpoint (``checkpoints/step_N``) is Accelerate state plus :class:`TrainState`, written to a
temporary folder and renamed, so a killed run resumes from the last complete one and loses at most
one checkpoint interval. Model folders (``best/``, ``final/``) are replaced atomically too.
"""

from __future__ import annotations

import contextlib
import filecmp
import json
import logging
import os
import shutil
from dataclasses import dataclass

import torch

from hf_nat.files import replace_folder, write_json_atomic, write_text_atomic

__all__ = [
    "TrainState",
    "checkpoint_dirs",
    "drop_log_records_after",
    "quiet_tied_weight_dedupe",
    "resume",
    "save_checkpoint",
    "save_model",
    "share_identical_weights",
]


@dataclass
class TrainState:
    """Progress of a run, saved with every checkpoint so ``--resume`` continues bit-identically."""

    generator: torch.Generator
    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    best_score: float = float("-inf")  # the best validation score: BLEU, or minus WER for speech
    train_seconds: float = 0.0
    target_tokens: int = 0

    def state_dict(self) -> dict:
        return {
            "generator": self.generator.get_state(),
            "step": self.step,
            "epoch": self.epoch,
            "batch_in_epoch": self.batch_in_epoch,
            "best_score": self.best_score,
            "train_seconds": self.train_seconds,
            "target_tokens": self.target_tokens,
        }

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
        if "best_bleu" in state:  # checkpoints written before speech validation named the score after BLEU
            state = {**state, "best_score": state["best_bleu"]}
        for key in ("step", "epoch", "batch_in_epoch", "best_score", "train_seconds", "target_tokens"):
            setattr(self, key, state[key])


def save_model(model, tokenizer, path: str, extra: dict | None = None) -> None:
    """``save_pretrained`` model, tokenizer and generation config into ``path`` (replaced atomically)."""
    tmp = path + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    if extra:
        write_json_atomic(os.path.join(tmp, "training_info.json"), extra)
    replace_folder(tmp, path)


def share_identical_weights(best: str, final: str) -> bool:
    """When ``final``'s weights file holds the same bytes as ``best``'s (the last model was the
    best), make it a hard link to ``best``'s so the run keeps one copy. Returns whether it did."""
    paths = [os.path.join(folder, "model.safetensors") for folder in (best, final)]
    if not all(os.path.isfile(p) for p in paths) or os.path.samefile(*paths):
        return False
    if os.path.getsize(paths[0]) != os.path.getsize(paths[1]) or not filecmp.cmp(*paths, shallow=False):
        return False
    tmp = paths[1] + ".link"
    os.link(paths[0], tmp)
    os.replace(tmp, paths[1])
    return True


def checkpoint_dirs(output_dir: str) -> list[str]:
    """Complete checkpoints under ``output_dir/checkpoints``, oldest first."""
    root = os.path.join(output_dir, "checkpoints")
    if not os.path.isdir(root):
        return []
    names = [n for n in os.listdir(root) if n.startswith("step_") and n[5:].isdigit()]
    return [os.path.join(root, n) for n in sorted(names, key=lambda n: int(n[5:]))]


def save_checkpoint(accelerator, state: TrainState, output_dir: str, keep: int) -> None:
    """Write a resumable checkpoint (written to a temp folder, then renamed) and keep the last ``keep``."""
    final = os.path.join(output_dir, "checkpoints", f"step_{state.step}")
    tmp = final + ".tmp"
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
    accelerator.wait_for_everyone()
    with quiet_tied_weight_dedupe():
        accelerator.save_state(tmp)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        replace_folder(tmp, final)
        for old in checkpoint_dirs(output_dir)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()


def resume(accelerator, output_dir: str) -> None:
    """Load the latest checkpoint; a clear error names the folder when it is missing or broken."""
    found = checkpoint_dirs(output_dir)
    if not found:
        raise FileNotFoundError(f"--resume: no checkpoint under {os.path.join(output_dir, 'checkpoints')}")
    try:
        accelerator.load_state(found[-1])
    except Exception as error:  # accelerate/torch raise many kinds; name the folder for the user
        raise RuntimeError(
            f"--resume: checkpoint {found[-1]} could not be loaded ({error}); delete it to resume from the one before"
        ) from error
    accelerator.print(f"resumed from {found[-1]}")


def drop_log_records_after(log_path: str, step: int) -> None:
    """Rewrite the JSON-lines log without the records of steps after ``step`` (atomically).

    A resumed run repeats the updates made after its checkpoint; without this their records from
    the interrupted run would stay, and the log would show those steps twice. A line the kill cut
    short is dropped as well.
    """
    if not os.path.isfile(log_path):
        return
    kept = []
    with open(log_path) as f:
        for line in f:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if record["step"] <= step:
                kept.append(line if line.endswith("\n") else line + "\n")
    write_text_atomic(log_path, "".join(kept))


def _not_tied_weight_dedupe_notice(record: logging.LogRecord) -> bool:
    """Logging filter: False for accelerate's notice that it stored tied tensors once."""
    message = record.getMessage()
    return not ("Removed shared tensor" in message and "while saving" in message)


@contextlib.contextmanager
def quiet_tied_weight_dedupe():
    """Inside the block, drop accelerate's "Removed shared tensor ... while saving" notice.

    The models tie their embeddings (and output projection) on purpose; accelerate stores a tied
    tensor once and says so at every checkpoint. Only that message is dropped: other records of
    accelerate's logger still pass.
    """
    accelerate_logger = logging.getLogger("accelerate.utils.other")
    accelerate_logger.addFilter(_not_tied_weight_dedupe_notice)
    try:
        yield
    finally:
        accelerate_logger.removeFilter(_not_tied_weight_dedupe_notice)
