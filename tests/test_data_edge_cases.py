"""Edge cases of the data pipeline and of what ships with it: the models' source limits, odd corpus
files (byte order mark, truncated gzip, bad UTF-8, splits left empty) and the package's data."""

from __future__ import annotations

import gzip
import logging
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import datasets
import pytest
import torch

from hf_nat import (
    CMLMForConditionalGeneration,
    CTCNATConfig,
    CTCNATForConditionalGeneration,
    ImputerConfig,
    ImputerForConditionalGeneration,
)
from hf_nat.data import load_parallel_corpus, source_token_limit, tokenize_corpus
from hf_nat.translate import translate_corpus
from tests.toy import toy_ar_model, toy_config, toy_shape, toy_tokenizer

REPO = Path(__file__).resolve().parents[1]


# --- the model's own source limit ----------------------------------------------------------


def test_source_token_limit_follows_each_models_own_limit() -> None:
    tokenizer = toy_tokenizer()
    ctc = CTCNATForConditionalGeneration(CTCNATConfig(**toy_shape(tokenizer, upsample_ratio=3)))
    imputer = ImputerForConditionalGeneration(ImputerConfig(**toy_shape(tokenizer, upsample_ratio=4)))
    assert source_token_limit(ctc) == 32 // 3 == ctc.max_source_positions()
    assert source_token_limit(imputer) == 32 // 4
    assert source_token_limit(CMLMForConditionalGeneration(toy_config(tokenizer))) == 32
    assert source_token_limit(toy_ar_model(tokenizer, max_position_embeddings=48)) == 48  # AR: no method

    class DataParallelWrapper(torch.nn.Module):
        def __init__(self, module):
            super().__init__()
            self.module = module

    assert source_token_limit(DataParallelWrapper(ctc)) == 10
    assert source_token_limit(object(), default=7) == 7
    assert source_token_limit(object()) is None


def test_benchmark_truncates_sources_to_the_models_source_limit() -> None:
    # max_position_embeddings (and the tokenizer's model_max_length) are 32, but an upsampling CTC
    # model reads only 32 // 3 source tokens: a 13-token source must be cut to 10, not to 32.
    tokenizer = toy_tokenizer()
    torch.manual_seed(0)
    ctc = CTCNATForConditionalGeneration(CTCNATConfig(**toy_shape(tokenizer, upsample_ratio=3))).eval()
    sources = [" ".join(["w1"] * 12), "w2 w3"]
    result = translate_corpus(ctc, tokenizer, sources, {}, batch_size=2)
    assert len(result.hypotheses) == 2


# --- corpus files --------------------------------------------------------------------------


def _write_pair(folder: Path, split: str, source: bytes, target: bytes, compress: bool) -> None:
    """``{split}.xx`` / ``{split}.yy`` holding the given raw bytes (gzipped when ``compress``)."""
    for lang, data in (("xx", source), ("yy", target)):
        if compress:
            (folder / f"{split}.{lang}.gz").write_bytes(gzip.compress(data))
        else:
            (folder / f"{split}.{lang}").write_bytes(data)


@pytest.mark.parametrize("compress", [False, True])
def test_utf8_byte_order_mark_at_file_start_is_stripped(tmp_path: Path, compress: bool) -> None:
    bom = "\ufeff".encode("utf-8")
    _write_pair(tmp_path, "train", bom + b"Two dogs\nA cat\n", bom + b"Zwei Hunde\nEine Katze\n", compress)
    train = load_parallel_corpus(str(tmp_path), "xx", "yy")["train"]
    assert train["source"] == ["Two dogs", "A cat"]
    assert train["target"] == ["Zwei Hunde", "Eine Katze"]


def test_byte_order_mark_inside_a_line_is_text(tmp_path: Path) -> None:
    # Only a mark at the very start of a file is an encoding signature; anywhere else it is content.
    _write_pair(tmp_path, "train", "a\nb\ufeffc\n".encode("utf-8"), b"A\nB\n", compress=False)
    assert load_parallel_corpus(str(tmp_path), "xx", "yy")["train"]["source"] == ["a", "b\ufeffc"]


def test_truncated_gzip_is_a_clear_error_naming_the_file(tmp_path: Path) -> None:
    _write_pair(tmp_path, "train", b"a b c\n" * 200, b"A B C\n" * 200, compress=True)
    cut = tmp_path / "train.yy.gz"
    cut.write_bytes(cut.read_bytes()[:-12])  # drops the end-of-stream marker: a download cut short
    with pytest.raises(ValueError, match=r"train\.yy\.gz.*(truncated|corrupt)"):
        load_parallel_corpus(str(tmp_path), "xx", "yy")


@pytest.mark.parametrize("compress", [False, True])
def test_invalid_utf8_names_the_file_and_line(tmp_path: Path, compress: bool) -> None:
    _write_pair(tmp_path, "train", b"one\ntwo\nthr\xe9e\nfour\n", b"1\n2\n3\n4\n", compress)
    suffix = r"\.gz" if compress else ""
    with pytest.raises(ValueError, match=rf"train\.xx{suffix}.* line 3.*UTF-8"):
        load_parallel_corpus(str(tmp_path), "xx", "yy")


def test_windows_line_ends_and_unicode_line_separators_still_read_as_before(tmp_path: Path) -> None:
    # Lines end at "\n" only: a U+2028 inside a sentence must not split it (and misalign the sides).
    _write_pair(tmp_path, "train", "a\r\nb\u2028c\r\n".encode("utf-8"), b"A\r\nB\r\n", compress=True)
    train = load_parallel_corpus(str(tmp_path), "xx", "yy")["train"]
    assert train["source"] == ["a", "b\u2028c"] and train["target"] == ["A", "B"]


def test_length_filter_log_names_the_split_of_a_loaded_dataset(tmp_path: Path, caplog) -> None:
    # train.py tokenizes the bare training Dataset, not a DatasetDict: the log must still say 'train'.
    long = " ".join(["w1"] * 12)
    _write_pair(tmp_path, "train", f"w1 w2\n{long}\n".encode(), f"w1 w2\n{long}\n".encode(), compress=False)
    train = load_parallel_corpus(str(tmp_path), "xx", "yy")["train"]
    with caplog.at_level(logging.WARNING, logger="hf_nat.data.preprocess"):
        kept = tokenize_corpus(train, toy_tokenizer(), max_source_length=5, filter_splits=["train"])
    assert kept["source"] == ["w1 w2"]
    messages = [r.getMessage() for r in caplog.records if "Dropped" in r.getMessage()]
    assert len(messages) == 1 and "split 'train'" in messages[0] and "'dataset'" not in messages[0]


def test_tokenizing_an_empty_split_is_a_clear_error() -> None:
    empty = datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_dict({"source": ["w1"], "target": ["w1"]}),
            "val": datasets.Dataset.from_dict({"source": [], "target": []}),
        }
    )
    with pytest.raises(ValueError, match=r"split 'val'.*no pairs"):
        tokenize_corpus(empty, toy_tokenizer())


# --- packaging -----------------------------------------------------------------------------


def test_wheel_builds_quietly_and_ships_the_offline_metric_module(tmp_path: Path) -> None:
    # The metric module is a folder that evaluate loads by path (no __init__.py): setuptools must
    # ship it without its 35-line "Package would be ignored" BuildBackendWarning.
    source = tmp_path / "source"
    source.mkdir()
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    shutil.copytree(REPO / "hf_nat", source / "hf_nat", ignore=shutil.ignore_patterns("__pycache__"))
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-v",
            ".",
            "-w",
            str(tmp_path / "dist"),
        ],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert build.returncode == 0, build.stdout + build.stderr
    output = build.stdout + build.stderr
    assert "BuildBackendWarning" not in output and "would be ignored" not in output, output
    (wheel,) = (tmp_path / "dist").glob("hf_nat-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "hf_nat/metrics/nat_sacrebleu/nat_sacrebleu.py" in names
    assert "hf_nat/metrics/__init__.py" in names and not any("__pycache__" in n for n in names)
