"""Load a sentence-aligned parallel corpus as a ``DatasetDict`` with ``source``/``target`` columns.

Three sources are supported:

* a local directory of one-sentence-a-line UTF-8 files named ``{split}.{lang}.gz`` or
  ``{split}.{lang}`` (the Multi30k layout; a byte order mark at the start of a file is dropped);
* a ``DatasetDict`` saved with ``save_to_disk`` (e.g. a distilled corpus from
  ``training/distill.py``), with ``source``/``target`` columns or a translation layout;
* a Hugging Face Hub dataset id, with either a ``translation`` column of ``{lang: text}`` dicts or
  one column per language code.
"""

from __future__ import annotations

import codecs
import gzip
import logging
import os
import zlib
from collections.abc import Mapping, Sequence, Sized
from pathlib import Path

import datasets

logger = logging.getLogger(__name__)

_BAD_LINE_POLICIES = ("filter", "error")


def load_parallel_corpus(
    source: str,
    src_lang: str,
    tgt_lang: str,
    splits: Sequence[str] | None = None,
    on_bad_lines: str = "filter",
) -> datasets.DatasetDict:
    """Load a parallel corpus as a ``DatasetDict`` with string columns ``source`` and ``target``.

    Args:
        source: a local directory holding ``{split}.{lang}[.gz]`` files or a saved ``DatasetDict``,
            or a Hub dataset id.
        src_lang: language code of the source side (e.g. ``"en"``).
        tgt_lang: language code of the target side (e.g. ``"de"``).
        splits: splits to load; ``None`` loads every split available for both languages.
        on_bad_lines: what to do with pairs where either side is empty or whitespace only:
            ``"filter"`` drops them (logging a warning with the count per split), ``"error"``
            raises a ``ValueError`` naming the file (or split) and the 1-based line number.

    Returns:
        One ``Dataset`` per split, columns exactly ``["source", "target"]``, text stripped of
        surrounding whitespace.

    Raises:
        FileNotFoundError: the directory, a requested split or a language is missing.
        ValueError: misaligned files, a bad line under ``on_bad_lines="error"``, a truncated or
            corrupt ``.gz`` file, bytes that are not UTF-8 (file and line named), bad arguments.
    """
    if on_bad_lines not in _BAD_LINE_POLICIES:
        raise ValueError(f"on_bad_lines must be one of {_BAD_LINE_POLICIES}, got {on_bad_lines!r}")
    if src_lang == tgt_lang:
        raise ValueError(f"src_lang and tgt_lang must differ, both are {src_lang!r}")
    if os.path.isfile(os.path.join(source, "dataset_dict.json")):
        return _load_saved(Path(source), src_lang, tgt_lang, splits, on_bad_lines)
    if os.path.isdir(source):
        return _load_local(Path(source), src_lang, tgt_lang, splits, on_bad_lines)
    return _load_hub(source, src_lang, tgt_lang, splits, on_bad_lines)


def parallel_columns(
    dataset_dict: datasets.DatasetDict,
    src_lang: str,
    tgt_lang: str,
    on_bad_lines: str = "filter",
) -> datasets.DatasetDict:
    """Map an already-loaded translation ``DatasetDict`` to ``source``/``target`` columns.

    Accepts either a ``translation`` column of ``{lang: text}`` dicts (the usual Hub layout) or
    separate columns named by the language codes. All other columns are dropped, text is stripped
    of surrounding whitespace and empty pairs are handled as in :func:`load_parallel_corpus`
    (line numbers are 1-based row numbers within the split).
    """
    if on_bad_lines not in _BAD_LINE_POLICIES:
        raise ValueError(f"on_bad_lines must be one of {_BAD_LINE_POLICIES}, got {on_bad_lines!r}")
    out = {}
    for split, ds in dataset_dict.items():
        sources, targets = _columns_of(ds, split, src_lang, tgt_lang)
        sources, targets = _clean_pairs(
            sources,
            targets,
            split=split,
            src_name=f"split {split!r} ({src_lang})",
            tgt_name=f"split {split!r} ({tgt_lang})",
            on_bad_lines=on_bad_lines,
        )
        out[split] = _to_dataset(sources, targets, split)
    return datasets.DatasetDict(out)


def require_pairs(corpus: Mapping[str, Sized], where: str) -> None:
    """Raise ``ValueError`` naming every split of ``corpus`` (split name -> rows) that holds no pair.

    A split left empty (empty files, every pair with an empty side, which the loader logs, or every
    pair over a length limit) otherwise surfaces deep inside training (no token columns to batch,
    or an endless loop over no batches) or only after it (scoring no sentences). ``where``
    completes the message: what was loaded, and how it was filtered.
    """
    empty = [split for split, rows in corpus.items() if len(rows) == 0]
    if empty:
        raise ValueError(f"no pairs in split(s) {empty} of {where}")


def _load_saved(
    directory: Path,
    src_lang: str,
    tgt_lang: str,
    splits: Sequence[str] | None,
    on_bad_lines: str,
) -> datasets.DatasetDict:
    """Load a ``save_to_disk`` folder; ``source``/``target`` columns are taken as they are."""
    loaded = datasets.load_from_disk(str(directory))
    loaded = _select_splits(loaded, splits, f"Saved dataset {directory}", FileNotFoundError)
    if all({"source", "target"} <= set(ds.column_names) for ds in loaded.values()):
        loaded = datasets.DatasetDict(
            {
                split: ds.select_columns(["source", "target"]).rename_columns({"source": src_lang, "target": tgt_lang})
                for split, ds in loaded.items()
            }
        )
    return parallel_columns(loaded, src_lang, tgt_lang, on_bad_lines=on_bad_lines)


def _select_splits(loaded, splits: Sequence[str] | None, where: str, error: type) -> datasets.DatasetDict:
    """``loaded`` as a ``DatasetDict`` (a bare ``Dataset`` is "train") restricted to ``splits``;
    a missing split raises ``error`` naming ``where``."""
    if not isinstance(loaded, datasets.DatasetDict):
        loaded = datasets.DatasetDict({"train": loaded})
    if splits is None:
        return loaded
    missing = [s for s in splits if s not in loaded]
    if missing:
        raise error(f"{where} has no split(s) {missing}; available: {sorted(loaded)}")
    return datasets.DatasetDict({s: loaded[s] for s in splits})


def _columns_of(ds: datasets.Dataset, split: str, src_lang: str, tgt_lang: str) -> tuple[list, list]:
    """Extract the raw source and target text lists from one split, whatever its layout."""
    columns = ds.column_names
    if "translation" in columns:
        pairs = list(ds["translation"])
        first = pairs[0] if pairs else {}
        missing = [lang for lang in (src_lang, tgt_lang) if pairs and lang not in first]
        if missing:
            raise ValueError(
                f"Split {split!r}: 'translation' column has no language(s) {missing}; "
                f"languages present: {sorted(first)}"
            )
        return [pair[src_lang] for pair in pairs], [pair[tgt_lang] for pair in pairs]
    if src_lang in columns and tgt_lang in columns:
        return list(ds[src_lang]), list(ds[tgt_lang])
    raise ValueError(
        f"Split {split!r} has neither a 'translation' column nor columns {src_lang!r} and "
        f"{tgt_lang!r}; columns present: {columns}"
    )


def _load_hub(
    dataset_id: str,
    src_lang: str,
    tgt_lang: str,
    splits: Sequence[str] | None,
    on_bad_lines: str,
) -> datasets.DatasetDict:
    """Load ``dataset_id`` from the Hub (or the local datasets cache) and normalise its columns."""
    try:
        loaded = datasets.load_dataset(dataset_id)
    except Exception as err:  # offline, typo'd local path, missing repo: all reported alike
        raise FileNotFoundError(
            f"{dataset_id!r} is not an existing local directory and could not be loaded as a "
            f"Hugging Face Hub dataset ({type(err).__name__}: {err})"
        ) from err
    loaded = _select_splits(loaded, splits, f"Hub dataset {dataset_id!r}", ValueError)
    return parallel_columns(loaded, src_lang, tgt_lang, on_bad_lines=on_bad_lines)


def _discover(directory: Path) -> dict[str, dict[str, Path]]:
    """Map split -> language -> file for every ``{split}.{lang}[.gz]`` file in ``directory``."""
    found: dict[str, dict[str, Path]] = {}
    for path in sorted(directory.iterdir()):
        if not path.is_file():
            continue
        name = path.name[: -len(".gz")] if path.name.endswith(".gz") else path.name
        split, dot, lang = name.rpartition(".")
        if not dot or not split or not lang:
            continue
        langs = found.setdefault(split, {})
        # Prefer the compressed file if both exist; they are assumed to hold the same text.
        if lang not in langs or path.name.endswith(".gz"):
            langs[lang] = path
    return found


def _load_local(
    directory: Path,
    src_lang: str,
    tgt_lang: str,
    splits: Sequence[str] | None,
    on_bad_lines: str,
) -> datasets.DatasetDict:
    """Load ``{split}.{lang}[.gz]`` files from ``directory``."""
    found = _discover(directory)
    languages = sorted({lang for langs in found.values() for lang in langs})
    for lang in (src_lang, tgt_lang):
        if lang not in languages:
            raise FileNotFoundError(
                f"No files for language {lang!r} in {directory} (expected '{{split}}.{lang}.gz' or "
                f"'{{split}}.{lang}'); languages found: {languages}"
            )
    complete = sorted(s for s, langs in found.items() if src_lang in langs and tgt_lang in langs)
    if splits is None:
        if not complete:
            raise FileNotFoundError(
                f"No split in {directory} has files for both {src_lang!r} and {tgt_lang!r}; "
                f"splits found: {sorted(found)}"
            )
        splits = complete
    else:
        missing = [s for s in splits if s not in complete]
        if missing:
            raise FileNotFoundError(
                f"Split(s) {missing} missing for {src_lang}-{tgt_lang} in {directory}; "
                f"splits with both languages: {complete}"
            )
    out = {}
    for split in splits:
        src_path, tgt_path = found[split][src_lang], found[split][tgt_lang]
        sources, targets = _read_lines(src_path), _read_lines(tgt_path)
        if len(sources) != len(targets):
            raise ValueError(
                f"Misaligned split {split!r}: {src_path} has {len(sources)} lines but "
                f"{tgt_path} has {len(targets)} lines"
            )
        sources, targets = _clean_pairs(
            sources,
            targets,
            split=split,
            src_name=str(src_path),
            tgt_name=str(tgt_path),
            on_bad_lines=on_bad_lines,
        )
        out[split] = _to_dataset(sources, targets, split)
    return datasets.DatasetDict(out)


def _read_lines(path: Path) -> list[str]:
    """Read a (possibly gzipped) UTF-8 text file into lines, without their line terminators.

    A UTF-8 byte order mark at the start of the file is dropped (it is an encoding signature, not
    text). Raises ``ValueError`` naming the file for a truncated or corrupt gzip stream, and naming
    the file and 1-based line for bytes that are not UTF-8.
    """
    opener = gzip.open if path.name.endswith(".gz") else open
    lines = []
    try:
        # Bytes split on b"\n" only (str.splitlines() would also split on U+2028, U+0085, ... and
        # silently misalign the two sides), and each line is decoded alone to know where a bad byte is.
        with opener(path, "rb") as handle:
            for number, raw in enumerate(handle, start=1):
                if number == 1 and raw.startswith(codecs.BOM_UTF8):
                    raw = raw[len(codecs.BOM_UTF8) :]
                try:
                    lines.append(raw.decode("utf-8").rstrip("\r\n"))
                except UnicodeDecodeError as error:
                    raise ValueError(
                        f"{path} line {number} is not valid UTF-8 (byte {raw[error.start]:#04x} at byte "
                        f"{error.start + 1} of the line); convert the file to UTF-8"
                    ) from error
    except (EOFError, zlib.error, gzip.BadGzipFile) as error:
        raise ValueError(
            f"{path} is truncated or corrupt after {len(lines)} lines ({error}); download or copy it again"
        ) from error
    return lines


def _clean_pairs(
    sources: list,
    targets: list,
    split: str,
    src_name: str,
    tgt_name: str,
    on_bad_lines: str,
) -> tuple[list[str], list[str]]:
    """Strip surrounding whitespace and drop (or reject) pairs where either side is empty."""
    kept_src: list[str] = []
    kept_tgt: list[str] = []
    for number, (src, tgt) in enumerate(zip(sources, targets), start=1):
        src = (src or "").strip()
        tgt = (tgt or "").strip()
        if src and tgt:
            kept_src.append(src)
            kept_tgt.append(tgt)
            continue
        if on_bad_lines == "error":
            where = src_name if not src else tgt_name
            raise ValueError(f"Empty or whitespace-only line in {where} at line {number}")
    dropped = len(sources) - len(kept_src)
    if dropped:
        logger.warning("Dropped %d of %d pairs with an empty side in split %r", dropped, len(sources), split)
    return kept_src, kept_tgt


def _to_dataset(sources: list[str], targets: list[str], split: str) -> datasets.Dataset:
    """Build a ``Dataset`` with string columns ``source`` and ``target`` that knows its split name.

    The name travels with the bare ``Dataset`` (``dataset.split``), so code handed one split, such
    as :func:`~hf_nat.data.tokenize_corpus`, reports and filters it under its real name.
    """
    string = datasets.Value("string")
    features = datasets.Features({"source": string, "target": string})
    # A plain string: NamedSplit() would reject file-derived names such as "test-2016".
    return datasets.Dataset.from_dict({"source": sources, "target": targets}, features=features, split=split)
