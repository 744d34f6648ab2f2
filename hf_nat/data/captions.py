"""Image–caption corpora for training: images and their reference captions in, RGB images out.

A corpus is a Hub dataset id with an image column (datasets' ``Image`` feature) and one or more
caption columns, or a local folder in datasets' ``imagefolder`` layout: one sub-folder per split
holding the image files and a ``metadata.csv`` or ``metadata.jsonl`` whose ``file_name`` column
names them. A caption cell is one caption or a list of them; an image's references are all its
non-empty captions over all caption columns. Images are kept undecoded (paths, or
``Image(decode=False)``'s ``{"bytes", "path"}``) and opened with :func:`open_image` when needed.
"""

from __future__ import annotations

import csv
import json
import logging
import os
from collections.abc import Sequence

import datasets
from PIL import Image, UnidentifiedImageError

from hf_nat.models.pipeline_image_to_text import MAX_IMAGE_SIDE, open_image

__all__ = ["MAX_IMAGE_SIDE", "load_caption_corpus", "open_image"]

logger = logging.getLogger(__name__)


def load_caption_corpus(
    data: str,
    splits: Sequence[str],
    image_column: str = "image",
    caption_columns: Sequence[str] = ("captions",),
) -> datasets.DatasetDict:
    """The ``splits`` of an image–caption corpus as a ``DatasetDict`` with columns ``image`` (a
    file path, or ``{"bytes", "path"}`` for Hub data) and ``references`` (the row's captions).

    ``caption_columns`` name one or several columns; each cell is a caption or a list of captions,
    and ``references`` holds every non-empty one, stripped. A local folder's image is its
    ``file_name`` resolved against the split folder (``image_column`` names the Hub column).
    Rows left with no caption are dropped, with a warning counting them.

    Raises:
        FileNotFoundError: a local split folder, its metadata file or an image file it names is missing.
        ValueError: the image or a caption column is missing, a cell is neither text nor a list of
            text, a local file is no image, or a split holds no row with a caption.
    """
    if isinstance(caption_columns, str):
        caption_columns = [caption_columns]
    if not caption_columns:
        raise ValueError("caption_columns is empty; name at least one caption column")
    corpus = {}
    for split in splits:
        if os.path.isdir(data):
            images, cells = _read_imagefolder_split(data, split, caption_columns)
        else:
            images, cells = _read_hub_split(data, split, image_column, caption_columns)
        references = [_references(row, f"{data}/{split}") for row in cells]
        keep = [i for i, refs in enumerate(references) if refs]
        if len(keep) < len(references):
            logger.warning("%s/%s: dropped %d rows with no caption", data, split, len(references) - len(keep))
        if not keep:
            raise ValueError(f"{data}: split {split!r} has no row with a caption in {list(caption_columns)}")
        corpus[split] = datasets.Dataset.from_dict(
            {"image": [images[i] for i in keep], "references": [references[i] for i in keep]},
            features=datasets.Features(
                {
                    "image": _image_feature(images),
                    "references": datasets.List(datasets.Value("string")),
                }
            ),
        )
    return datasets.DatasetDict(corpus)


def _image_feature(images: list):
    if images and isinstance(images[0], dict):
        return {"bytes": datasets.Value("binary"), "path": datasets.Value("string")}
    return datasets.Value("string")


def _references(cells: list, where: str) -> list[str]:
    """The non-empty stripped captions of one row's caption cells (each text, a list of text or empty)."""
    out = []
    for cell in cells:
        if cell is None:
            continue
        if isinstance(cell, str):
            cell = [cell]
        elif not isinstance(cell, (list, tuple)):
            raise ValueError(f"{where}: a caption cell holds {type(cell).__name__} {cell!r}; expected text or a list")
        for caption in cell:
            if caption is None:
                continue
            if not isinstance(caption, str):
                raise ValueError(f"{where}: a caption list holds {type(caption).__name__} {caption!r}; expected text")
            if caption.strip():
                out.append(caption.strip())
    return out


def _read_imagefolder_split(root: str, split: str, caption_columns: Sequence[str]) -> tuple[list, list]:
    folder = os.path.join(root, split)
    if not os.path.isdir(folder):
        available = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
        raise FileNotFoundError(f"{root}: no split folder {split!r}; it has {available}")
    rows = None
    if os.path.isfile(os.path.join(folder, "metadata.csv")):
        where = os.path.join(folder, "metadata.csv")
        with open(where, encoding="utf-8", newline="") as handle:
            rows = list(csv.DictReader(handle))
    elif os.path.isfile(os.path.join(folder, "metadata.jsonl")):
        where = os.path.join(folder, "metadata.jsonl")
        with open(where, encoding="utf-8") as handle:
            try:
                rows = [json.loads(line) for line in handle if line.strip()]
            except json.JSONDecodeError as error:
                raise ValueError(f"{where}: not valid JSON lines: {error}") from error
    if rows is None:
        raise FileNotFoundError(f"{folder}: no metadata.csv or metadata.jsonl (the imagefolder layout)")
    present = set().union(*rows) if rows else set()
    needed = ["file_name", *caption_columns]
    if rows and not set(needed) <= present:
        raise ValueError(f"{where}: needs columns {needed}; has {sorted(present)}")
    paths = []
    for row in rows:
        if not row.get("file_name"):
            raise ValueError(f"{where}: a row has no file_name: {row}")
        paths.append(os.path.join(folder, row["file_name"]))
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        raise FileNotFoundError(f"{where} names {len(missing)} missing image files, e.g. {missing[0]}")
    for path in paths:
        _check_header(path)
    return paths, [[row.get(column) for column in caption_columns] for row in rows]


def _check_header(path: str) -> None:
    """Fail now, naming the file, when ``path`` is no image PIL reads (only its header is read)."""
    try:
        with Image.open(path):
            pass
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise ValueError(f"{path} is not an image file PIL can read: {error}") from error


def _read_hub_split(data: str, split: str, image_column: str, caption_columns: Sequence[str]) -> tuple[list, list]:
    table = datasets.load_dataset(data, split=split)
    for column in (image_column, *caption_columns):
        if column not in table.column_names:
            raise ValueError(f"{data}/{split} has no column {column!r}; columns: {table.column_names}")
    table = table.cast_column(image_column, datasets.Image(decode=False))
    images = [{"bytes": item["bytes"], "path": item["path"]} for item in table[image_column]]
    columns = [table[column] for column in caption_columns]
    return images, [list(cells) for cells in zip(*columns)]
