"""Checks and helpers shared by the family test modules and the family contract test."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from hf_nat.data import Seq2SeqCollator


def decode(model, tokenizer, sentences: list[str], **options) -> list[str]:
    """The model's translations of ``sentences`` in one padded batch."""
    ids = model.generate(**tokenizer(sentences, return_tensors="pt", padding=True), **options)
    return tokenizer.batch_decode(ids, skip_special_tokens=True)


def assert_batch_size_invariant(model, tokenizer, sentences: list[str], singles: int = 8, **options) -> None:
    """Each of the first ``singles`` sentences translates the same alone as in the whole batch."""
    batched = decode(model, tokenizer, sentences, **options)
    assert [decode(model, tokenizer, [s], **options)[0] for s in sentences[:singles]] == batched[:singles]


def assert_insertion_penalty_lengthens(model, tokenizer, sentences: list[str]) -> None:
    """Edit families: a positive ``insertion_penalty`` makes "no insertion" less likely, so the
    outputs grow; a negative one shrinks them."""
    batch = tokenizer(sentences, return_tensors="pt", padding=True)

    def total_length(penalty: float) -> int:
        return int(model.generate(**batch, insertion_penalty=penalty).ne(model.config.pad_token_id).sum())

    assert total_length(-50.0) < total_length(0.0) < total_length(50.0)


def copy_task_batch(tokenizer, sentences: list[str]) -> dict:
    """Training batch of the copy task (target = source) with its word alignment as fertility
    labels (every source token copied once, eos never), collated like the training script does."""
    enc = tokenizer(sentences, text_target=sentences)
    rows = [
        {"input_ids": s, "labels": t, "fertility": [1] * (len(s) - 1) + [0]}
        for s, t in zip(enc["input_ids"], enc["labels"])
    ]
    return Seq2SeqCollator(tokenizer.pad_token_id)(rows)


# Runs in a fresh interpreter in which `import hf_nat` fails (it is installed editable, so a
# meta-path finder blocks it), and prints what the exported folder translates.
LOAD_WITHOUT_HF_NAT = r"""
import importlib.abc, json, sys

class BlockHfNat(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "hf_nat" or name.startswith("hf_nat."):
            raise ImportError(f"{name} is blocked in this test")

sys.meta_path.insert(0, BlockHfNat())
try:
    import hf_nat
except ImportError:
    pass
else:
    raise SystemExit("hf_nat is still importable")

import torch
from transformers import AutoModel, AutoModelForSeq2SeqLM, AutoTokenizer, pipeline

folder, sentences, options, card_code = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3]), sys.argv[4]
torch.set_num_threads(1)
exec(card_code, {})  # the model card's usage snippets, as a user would paste them
tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=True)
model = AutoModelForSeq2SeqLM.from_pretrained(folder, trust_remote_code=True).eval()
batch = tokenizer(sentences, return_tensors="pt", padding=True)
translator = pipeline("translation", model=folder, trust_remote_code=True)
result = {
    "model_module": type(model).__module__,
    "base_class": type(AutoModel.from_pretrained(folder, trust_remote_code=True)).__name__,
    "pipeline_class": type(translator).__name__,
    "defaults": tokenizer.batch_decode(model.generate(**batch), skip_special_tokens=True),
    "options": tokenizer.batch_decode(model.generate(**batch, **options), skip_special_tokens=True),
    "pipeline": [r["translation_text"] for r in translator(sentences, batch_size=len(sentences), **options)],
    "hf_nat_modules": sorted(m for m in sys.modules if m == "hf_nat" or m.startswith("hf_nat.")),
}
print("RESULT " + json.dumps(result))
"""


def run_without_hf_nat(exported: Path, sentences: list, options: dict, tmp_path: Path) -> dict:
    """Load ``exported`` in a fresh interpreter where hf_nat cannot be imported (running the card's
    own snippets too) and return what it translates."""
    card = (exported / "README.md").read_text()
    card_code = "\n".join(re.findall(r"```python\n(.*?)```", card, flags=re.S))
    card_code = card_code.replace(f"path/to/{exported.name}", str(exported))
    assert "trust_remote_code=True" in card_code and str(exported) in card_code
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_HOME": str(tmp_path / "hf_home"),
        "HF_MODULES_CACHE": str(tmp_path / "modules"),
        "OMP_NUM_THREADS": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    env.pop("PYTHONPATH", None)
    argv = [str(exported), json.dumps(sentences), json.dumps(options), card_code]
    proc = subprocess.run(
        [sys.executable, "-c", LOAD_WITHOUT_HF_NAT, *argv],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "custom code" not in proc.stdout + proc.stderr  # no interactive trust_remote_code prompt
    result = json.loads(next(line for line in proc.stdout.splitlines() if line.startswith("RESULT "))[7:])
    assert result["hf_nat_modules"] == []
    assert result["model_module"].startswith("transformers_modules.")
    return result
