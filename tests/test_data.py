"""Tests for hf_nat.data: corpus loading, tokenizer, tokenization, batching and collation."""

from __future__ import annotations

import gzip
import itertools
import logging
from pathlib import Path

import datasets
import pytest
import torch
from transformers import AutoTokenizer

from hf_nat.data import (
    SPECIAL_TOKENS,
    Seq2SeqCollator,
    TokenBudgetBatchSampler,
    load_parallel_corpus,
    parallel_columns,
    special_token_ids,
    tokenize_corpus,
    train_joint_tokenizer,
)
from tests.conftest import MULTI30K  # noqa: E402

needs_multi30k = pytest.mark.skipif(not MULTI30K.is_dir(), reason="Multi30k data not available")


def _write(path: Path, lines: list[str], compress: bool = True) -> None:
    text = "".join(line + "\n" for line in lines)
    if compress:
        with gzip.open(path, "wt", encoding="utf-8") as handle:
            handle.write(text)
    else:
        path.write_text(text, encoding="utf-8")


def _read_gz(path: Path, n: int) -> list[str]:
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        return [line.strip() for line in itertools.islice(handle, n)]


@pytest.fixture
def corpus_dir(tmp_path: Path) -> Path:
    _write(tmp_path / "train.en.gz", ["a cat .", "two dogs", " three birds  "])
    _write(tmp_path / "train.de.gz", ["eine Katze .", "zwei Hunde", "drei Vögel"])
    _write(tmp_path / "val.en", ["one"], compress=False)
    _write(tmp_path / "val.de", ["eins"], compress=False)
    _write(tmp_path / "val.fr.gz", ["un"])  # no train.fr: fr exists only for val
    return tmp_path


# --- corpus -------------------------------------------------------------------------------


def test_load_local_corpus_all_splits(corpus_dir: Path) -> None:
    dsd = load_parallel_corpus(str(corpus_dir), "en", "de")
    assert sorted(dsd) == ["train", "val"]
    assert dsd["train"].column_names == ["source", "target"]
    assert dsd["train"]["source"] == ["a cat .", "two dogs", "three birds"]
    assert dsd["train"]["target"] == ["eine Katze .", "zwei Hunde", "drei Vögel"]
    assert dsd["val"]["source"] == ["one"] and dsd["val"]["target"] == ["eins"]


def test_load_local_corpus_reverse_direction_and_split_selection(corpus_dir: Path) -> None:
    dsd = load_parallel_corpus(str(corpus_dir), "fr", "en")
    assert list(dsd) == ["val"]
    assert dsd["val"][0] == {"source": "un", "target": "one"}
    only_train = load_parallel_corpus(str(corpus_dir), "de", "en", splits=["train"])
    assert list(only_train) == ["train"] and only_train["train"][0]["source"] == "eine Katze ."


def test_missing_split_language_and_directory(corpus_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"'test'.*\['train', 'val'\]"):
        load_parallel_corpus(str(corpus_dir), "en", "de", splits=["test"])
    with pytest.raises(FileNotFoundError, match=r"'cs'.*\['de', 'en', 'fr'\]"):
        load_parallel_corpus(str(corpus_dir), "en", "cs")
    missing = tmp_path / "does-not-exist"
    with pytest.raises(FileNotFoundError, match="does-not-exist"):
        load_parallel_corpus(str(missing), "en", "de")


def test_hub_path_errors_are_wrapped(monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(*args, **kwargs):
        raise ConnectionError("hub unreachable")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(FileNotFoundError, match="some-user/some-corpus.*hub unreachable"):
        load_parallel_corpus("some-user/some-corpus", "en", "de")


def test_misaligned_files_name_both_files_and_counts(tmp_path: Path) -> None:
    _write(tmp_path / "train.en.gz", ["a", "b", "c"])
    _write(tmp_path / "train.de.gz", ["a", "b"])
    with pytest.raises(ValueError) as info:
        load_parallel_corpus(str(tmp_path), "en", "de")
    message = str(info.value)
    assert "train.en.gz" in message and "train.de.gz" in message
    assert "3" in message and "2" in message


def test_empty_lines_filtered_with_count(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    _write(tmp_path / "train.en.gz", ["a", "", "c", "d"])
    _write(tmp_path / "train.de.gz", ["A", "B", "   ", "D"])
    with caplog.at_level(logging.WARNING, logger="hf_nat.data.corpus"):
        dsd = load_parallel_corpus(str(tmp_path), "en", "de")
    assert dsd["train"]["source"] == ["a", "d"] and dsd["train"]["target"] == ["A", "D"]
    assert any("2" in r.getMessage() and "'train'" in r.getMessage() for r in caplog.records)


def test_empty_lines_error_names_file_and_line(tmp_path: Path) -> None:
    _write(tmp_path / "train.en.gz", ["a", "b", "c"])
    _write(tmp_path / "train.de.gz", ["A", "B", " "])
    with pytest.raises(ValueError, match=r"train\.de\.gz.*line 3"):
        load_parallel_corpus(str(tmp_path), "en", "de", on_bad_lines="error")


def test_parallel_columns_translation_and_language_columns() -> None:
    translation = datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_dict(
                {"translation": [{"en": "hi ", "de": "hallo"}, {"en": "x", "de": ""}], "id": [0, 1]}
            )
        }
    )
    out = parallel_columns(translation, "en", "de")
    assert out["train"].column_names == ["source", "target"]
    assert out["train"][:] == {"source": ["hi"], "target": ["hallo"]}

    by_language = datasets.DatasetDict(
        {"test": datasets.Dataset.from_dict({"de": ["hallo"], "en": ["hi"], "other": [1]})}
    )
    assert parallel_columns(by_language, "de", "en")["test"][0] == {"source": "hallo", "target": "hi"}
    with pytest.raises(ValueError, match="columns present"):
        parallel_columns(by_language, "en", "fr")
    with pytest.raises(ValueError, match="languages present"):
        parallel_columns(translation, "en", "fr")


@needs_multi30k
def test_real_multi30k_val_en_de_and_en_fr() -> None:
    for tgt in ("de", "fr"):
        dsd = load_parallel_corpus(str(MULTI30K), "en", tgt, splits=["val"])
        assert dsd["val"].num_rows == 1014
        assert dsd["val"][0]["source"] == "A group of men are loading cotton onto a truck"


# --- tokenizer ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def multi30k_sentences() -> dict[str, list[str]]:
    if not MULTI30K.is_dir():
        pytest.skip("Multi30k data not available")
    en = _read_gz(MULTI30K / "train.en.gz", 330)
    de = _read_gz(MULTI30K / "train.de.gz", 330)
    return {"train": en[:300] + de[:300], "held_out": en[300:] + de[300:]}


@pytest.fixture(scope="module")
def tokenizer(multi30k_sentences):
    return train_joint_tokenizer(multi30k_sentences["train"], vocab_size=1000)


def test_special_token_ids_are_fixed(tokenizer) -> None:
    assert special_token_ids(tokenizer) == {
        "pad": 0,
        "bos": 1,
        "eos": 2,
        "unk": 3,
        "mask": 4,
        "placeholder": 5,
        "blank": 6,
    }
    assert tokenizer.convert_ids_to_tokens(list(range(7))) == SPECIAL_TOKENS
    assert tokenizer.pad_token_id == 0 and tokenizer.eos_token_id == 2 and tokenizer.mask_token_id == 4
    assert len(tokenizer) == 1000


def test_round_trip_on_held_out_sentences(tokenizer, multi30k_sentences) -> None:
    alphabet = set("".join(multi30k_sentences["train"]))
    # Characters never seen in training are <unk> by design; compare only sentences without them.
    held_out = [s for s in multi30k_sentences["held_out"] if set(s) <= alphabet]
    assert len(held_out) >= 30
    for sentence in held_out + ["A man, in a red shirt, is walking. Ein Mann geht."]:
        ids = tokenizer(sentence)["input_ids"]
        assert ids[-1] == tokenizer.eos_token_id and tokenizer.unk_token_id not in ids
        assert tokenizer.decode(ids, skip_special_tokens=True) == sentence


def test_unknown_characters_become_unk(tokenizer) -> None:
    for char in ("☃", "猫"):
        ids = tokenizer(f"a {char} man")["input_ids"]
        assert tokenizer.unk_token_id in ids
    assert all(len(tokenizer.convert_ids_to_tokens([i])[0]) <= 20 for i in range(len(tokenizer)))


def test_text_target_labels_end_with_eos(tokenizer) -> None:
    encoded = tokenizer("A dog runs.", text_target="Ein Hund rennt.")
    assert encoded["input_ids"][-1] == 2 and encoded["labels"][-1] == 2
    assert encoded["labels"].count(2) == 1 and 1 not in encoded["labels"]  # no bos


def test_save_and_auto_tokenizer_round_trip(multi30k_sentences, tokenizer, tmp_path: Path) -> None:
    out = tmp_path / "tok"
    saved = train_joint_tokenizer(multi30k_sentences["train"], vocab_size=1000, output_dir=str(out))
    loaded = AutoTokenizer.from_pretrained(str(out))
    assert special_token_ids(loaded) == special_token_ids(saved)
    assert loaded.get_vocab() == saved.get_vocab() == tokenizer.get_vocab()
    assert set(loaded.all_special_tokens) == set(SPECIAL_TOKENS)
    assert loaded.padding_side == "right" and loaded.model_max_length == 256
    sentence = multi30k_sentences["held_out"][0]
    assert loaded(sentence)["input_ids"] == saved(sentence)["input_ids"]
    assert loaded.decode(loaded(sentence)["input_ids"], skip_special_tokens=True) == sentence


def test_special_token_ids_missing_token_is_clear(tokenizer) -> None:
    class NoBlank:
        def get_vocab(self) -> dict[str, int]:
            return {t: i for i, t in enumerate(SPECIAL_TOKENS[:-1])}

    with pytest.raises(ValueError, match="<blank>"):
        special_token_ids(NoBlank())


# --- preprocess ---------------------------------------------------------------------------


def test_tokenize_corpus_filters_train_only(tokenizer, caplog: pytest.LogCaptureFixture) -> None:
    long_source = " ".join(["man"] * 40)
    rows = {
        "source": ["a man .", long_source, "a dog"],
        "target": ["ein Mann .", "ein Mann", "ein Hund"],
    }
    dsd = datasets.DatasetDict({"train": datasets.Dataset.from_dict(rows), "test": datasets.Dataset.from_dict(rows)})
    with caplog.at_level(logging.WARNING, logger="hf_nat.data.preprocess"):
        out = tokenize_corpus(dsd, tokenizer, max_source_length=10, max_target_length=10)
    assert out["train"].num_rows == 2 and out["test"].num_rows == 3
    assert set(out["train"].column_names) == {"source", "target", "input_ids", "labels"}
    assert out["train"]["source"] == ["a man .", "a dog"]
    assert all(ids[-1] == 2 for ids in list(out["test"]["input_ids"]) + list(out["test"]["labels"]))
    assert out["test"][0]["labels"] == tokenizer("ein Mann .")["input_ids"]
    assert any("Dropped 1" in r.getMessage() and "'train'" in r.getMessage() for r in caplog.records)


def test_tokenize_corpus_length_ratio(tokenizer) -> None:
    ds = datasets.Dataset.from_dict(
        {
            "source": ["a", "a man is walking down a street ."],
            "target": ["ein Mann geht eine Straße entlang .", "ein Mann"],
        }
    )
    assert tokenize_corpus(ds, tokenizer).num_rows == 2  # no split name: filtered, but no ratio limit
    assert tokenize_corpus(ds, tokenizer, max_length_ratio=1.5).num_rows == 0
    assert tokenize_corpus(ds, tokenizer, max_length_ratio=1.5, filter_splits=None).num_rows == 2


# --- batching -----------------------------------------------------------------------------


LENGTHS = [(i * 7919) % 37 + 1 for i in range(500)]


def test_sampler_covers_every_index_once_under_budget() -> None:
    sampler = TokenBudgetBatchSampler(LENGTHS + [300], max_tokens=120, seed=3)
    batches = list(sampler)
    assert len(batches) == len(sampler)
    flat = sorted(i for batch in batches for i in batch)
    assert flat == list(range(len(LENGTHS) + 1))
    for batch in batches:
        if batch != [len(LENGTHS)]:  # the over-long example travels alone
            assert max(LENGTHS[i] for i in batch) * len(batch) <= 120
    assert [len(LENGTHS)] in batches


def test_sampler_max_sentences_and_no_shuffle_sorted() -> None:
    sampler = TokenBudgetBatchSampler(LENGTHS, max_tokens=10_000, shuffle=False, max_sentences=16)
    batches = list(sampler)
    assert all(len(b) <= 16 for b in batches)
    flat = [i for b in batches for i in b]
    assert [LENGTHS[i] for i in flat] == sorted(LENGTHS)
    assert list(sampler) == batches


def test_sampler_deterministic_per_seed_and_epoch() -> None:
    def epoch_batches(seed: int, epoch: int) -> list[list[int]]:
        sampler = TokenBudgetBatchSampler(LENGTHS, max_tokens=100, seed=seed)
        sampler.set_epoch(epoch)
        return list(sampler)

    assert epoch_batches(0, 1) == epoch_batches(0, 1)
    assert epoch_batches(0, 1) != epoch_batches(0, 2)
    assert epoch_batches(0, 1) != epoch_batches(5, 1)


def test_sampler_ranks_disjoint_and_equal_count() -> None:
    ranks = [TokenBudgetBatchSampler(LENGTHS, max_tokens=100, seed=1, num_replicas=2, rank=r) for r in (0, 1)]
    for sampler in ranks:
        sampler.set_epoch(4)
    batches = [list(sampler) for sampler in ranks]
    assert len(batches[0]) == len(batches[1]) == len(ranks[0]) == len(ranks[1]) > 0
    seen = [{i for b in rank_batches for i in b} for rank_batches in batches]
    assert not seen[0] & seen[1]
    single = TokenBudgetBatchSampler(LENGTHS, max_tokens=100, seed=1)
    assert len(ranks[0]) == len(single) // 2


def test_sampler_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError):
        TokenBudgetBatchSampler(LENGTHS, max_tokens=0)
    with pytest.raises(ValueError):
        TokenBudgetBatchSampler(LENGTHS, max_tokens=100, num_replicas=2, rank=2)


def test_collator_pads_inputs_and_labels() -> None:
    collate = Seq2SeqCollator(pad_token_id=0)
    batch = collate(
        [
            {"input_ids": [5, 6, 2], "labels": [7, 2], "source": "ignored"},
            {"input_ids": [8, 2], "labels": [9, 10, 11, 2]},
        ]
    )
    assert set(batch) == {"input_ids", "attention_mask", "labels"}
    assert batch["input_ids"].tolist() == [[5, 6, 2], [8, 2, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 1, 0]]
    assert batch["labels"].tolist() == [[7, 2, -100, -100], [9, 10, 11, 2]]
    assert all(t.dtype == torch.long for t in batch.values())
    assert set(collate([{"input_ids": [1]}])) == {"input_ids", "attention_mask"}
