"""The image–caption corpus: the synthetic shapes corpus and loading captioning data."""

import csv
import hashlib
import io
import json
import logging
import os

import numpy as np
import pytest
from PIL import Image

from hf_nat.data.captions import MAX_IMAGE_SIDE, load_caption_corpus, open_image
from hf_nat.data.synthetic_images import COLOURS, SHAPES, build_caption_corpus, held_out_combinations

SIZES = {"train": 20, "validation": 5, "test": 5, "test_unseen_combination": 5}


def _digest(root) -> dict[str, str]:
    """Every file under ``root`` (relative path) and the sha256 of its bytes."""
    out = {}
    for folder, _, files in os.walk(root):
        for name in files:
            path = os.path.join(folder, name)
            with open(path, "rb") as handle:
                out[os.path.relpath(path, root)] = hashlib.sha256(handle.read()).hexdigest()
    return out


def _rows(root, split) -> list[dict]:
    with open(os.path.join(root, split, "metadata.jsonl"), encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("captions") / "corpus"
    info = build_caption_corpus(str(root), sizes=SIZES, seed=3)
    return root, info


def test_corpus_sizes_layout_and_info(corpus):
    root, info = corpus
    for split, n in SIZES.items():
        rows = _rows(root, split)
        assert len(rows) == n == info["splits"][split]["images"]
        assert sorted(os.listdir(root / split)) == sorted([row["file_name"] for row in rows] + ["metadata.jsonl"])
        with Image.open(root / split / rows[0]["file_name"]) as image:
            assert (image.mode, image.size) == ("RGB", (64, 64))
    on_disk = json.loads((root / "corpus_info.json").read_text())
    assert on_disk == info
    assert info["seed"] == 3 and info["image_size"] == 64
    assert info["shapes"] == list(SHAPES) and info["colours"] == list(COLOURS)
    assert info["held_out_combinations"] == [list(p) for p in held_out_combinations(3)]
    assert len(info["held_out_combinations"]) == round(0.2 * len(SHAPES) * len(COLOURS))


def test_held_out_pairs_only_in_the_unseen_split(corpus):
    root, info = corpus
    held_out = {tuple(pair) for pair in info["held_out_combinations"]}
    for split in SIZES:
        for row in _rows(root, split):
            pairs = {(group["colour"], group["shape"]) for group in row["objects"]}
            if split == "test_unseen_combination":
                assert pairs & held_out, row
            else:
                assert not pairs & held_out, (split, row)


def test_several_distinct_captions_per_image(corpus):
    root, _ = corpus
    for row in _rows(root, "train"):
        captions = row["captions"]
        assert len(captions) == 5 == len(set(captions))
        for caption in captions:
            assert caption == caption.lower() and caption.strip() == caption
            assert caption[-1] not in ".!?" and not any(ch.isdigit() for ch in caption)
            assert 4 <= len(caption.split()) <= 15
        first, second = row["objects"]
        for group in (first, second):
            assert 1 <= group["count"] <= 3 and len(group["boxes"]) == group["count"]
            assert all(group["colour"] in caption and group["shape"] in caption for caption in captions)
        assert (first["colour"], first["shape"]) != (second["colour"], second["shape"])


def test_boxes_follow_the_relation(corpus):
    root, _ = corpus
    for row in _rows(root, "train"):
        first, second = (np.array(group["boxes"]) for group in row["objects"])
        relation = row["relation"]
        if relation == "left":
            assert first[:, 2].max() <= second[:, 0].min() + 1
        elif relation == "right":
            assert second[:, 2].max() <= first[:, 0].min() + 1
        elif relation == "above":
            assert first[:, 3].max() <= second[:, 1].min() + 1
        else:
            assert relation == "below" and second[:, 3].max() <= first[:, 1].min() + 1


def test_builds_are_byte_identical_and_resume(corpus, tmp_path):
    root, _ = corpus
    again = tmp_path / "again"
    build_caption_corpus(str(again), sizes=SIZES, seed=3)
    assert _digest(again) == _digest(root)
    os.remove(again / "validation" / "metadata.jsonl")
    os.remove(again / "validation" / "000000.png")
    before = os.path.getmtime(again / "train" / "metadata.jsonl")
    build_caption_corpus(str(again), sizes=SIZES, seed=3)
    assert _digest(again) == _digest(root)
    assert os.path.getmtime(again / "train" / "metadata.jsonl") == before  # the finished split was kept
    with pytest.raises(ValueError, match="seed"):
        build_caption_corpus(str(again), sizes=SIZES, seed=4)
    other = tmp_path / "other"
    build_caption_corpus(str(other), sizes={"train": 3, "validation": 1, "test": 1, "test_unseen_combination": 1})
    assert _digest(other / "train") != _digest(root / "train")


def test_loader_reads_the_synthetic_corpus(corpus):
    root, _ = corpus
    data = load_caption_corpus(str(root), ["train", "test_unseen_combination"])
    assert sorted(data) == ["test_unseen_combination", "train"]
    train = data["train"]
    assert len(train) == 20 and train.column_names == ["image", "references"]
    rows = _rows(root, "train")
    assert train[0]["image"] == os.path.join(str(root), "train", rows[0]["file_name"])
    assert train[0]["references"] == rows[0]["captions"]
    assert open_image(train[0]["image"]).size == (64, 64)


def _png(path, colour=(10, 20, 30), size=(4, 4)):
    Image.new("RGB", size, colour).save(path)


def test_loader_caption_columns_cells_and_dropped_rows(tmp_path, caplog):
    folder = tmp_path / "val"
    folder.mkdir()
    for name in ("a.png", "b.png", "c.png"):
        _png(folder / name)
    with open(folder / "metadata.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file_name", "caption_1", "caption_2", "caption_3"])
        writer.writerow(["a.png", " a dog ", "a brown dog", ""])
        writer.writerow(["b.png", "", "  ", ""])
        writer.writerow(["c.png", "a cat", "", "the cat sits"])
    with caplog.at_level(logging.WARNING, logger="hf_nat.data.captions"):
        data = load_caption_corpus(str(tmp_path), ["val"], caption_columns=["caption_1", "caption_2", "caption_3"])
    assert data["val"]["references"] == [["a dog", "a brown dog"], ["a cat", "the cat sits"]]
    assert [os.path.basename(p) for p in data["val"]["image"]] == ["a.png", "c.png"]
    assert "dropped 1 rows with no caption" in caplog.text

    rows = [
        {"file_name": "a.png", "captions": ["one", " two "], "extra": "x"},
        {"file_name": "b.png", "captions": [], "extra": "y"},
        {"file_name": "c.png", "captions": "just one", "extra": ["three", ""]},
    ]
    jsonl = tmp_path / "jsonl" / "train"
    jsonl.mkdir(parents=True)
    for name in ("a.png", "b.png", "c.png"):
        _png(jsonl / name)
    (jsonl / "metadata.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    data = load_caption_corpus(str(tmp_path / "jsonl"), ["train"])
    assert data["train"]["references"] == [["one", "two"], ["just one"]]
    data = load_caption_corpus(str(tmp_path / "jsonl"), ["train"], caption_columns=("captions", "extra"))
    assert data["train"]["references"] == [["one", "two", "x"], ["y"], ["just one", "three"]]
    (jsonl / "metadata.jsonl").write_text(json.dumps({"file_name": "a.png", "captions": [""]}) + "\n")
    with pytest.raises(ValueError, match="no row with a caption"):
        load_caption_corpus(str(tmp_path / "jsonl"), ["train"])


def test_loader_errors_name_what_is_missing(tmp_path):
    split = tmp_path / "train"
    split.mkdir()
    with pytest.raises(FileNotFoundError, match="no split folder 'test'"):
        load_caption_corpus(str(tmp_path), ["test"])
    with pytest.raises(FileNotFoundError, match="metadata"):
        load_caption_corpus(str(tmp_path), ["train"])
    (split / "metadata.jsonl").write_text(json.dumps({"file_name": "gone.png", "captions": ["x"]}) + "\n")
    with pytest.raises(FileNotFoundError, match="gone.png"):
        load_caption_corpus(str(tmp_path), ["train"])
    with pytest.raises(ValueError, match="caption_9"):
        load_caption_corpus(str(tmp_path), ["train"], caption_columns=["caption_9"])
    (split / "gone.png").write_text("not an image at all")
    with pytest.raises(ValueError, match="gone.png"):
        load_caption_corpus(str(tmp_path), ["train"])


def test_open_image_converts_every_mode_to_rgb(tmp_path):
    grey = Image.new("L", (3, 2), 100)
    assert open_image(grey).getpixel((0, 0)) == (100, 100, 100)
    rgba = Image.new("RGBA", (2, 2), (255, 0, 0, 0))
    assert open_image(rgba).getpixel((0, 0)) == (255, 255, 255)  # transparent on white
    assert open_image(Image.new("RGBA", (2, 2), (255, 0, 0, 255))).getpixel((0, 0)) == (255, 0, 0)
    assert open_image(Image.new("LA", (2, 2), (0, 0))).getpixel((0, 0)) == (255, 255, 255)
    cmyk = Image.new("CMYK", (2, 2), (0, 255, 255, 0))
    assert open_image(cmyk).getpixel((0, 0)) == (255, 0, 0)
    palette = Image.new("P", (2, 2), 0)
    palette.putpalette([0, 0, 255] * 256)
    assert open_image(palette).getpixel((0, 0)) == (0, 0, 255)
    assert open_image(Image.new("1", (2, 2), 1)).getpixel((0, 0)) == (255, 255, 255)
    deep = Image.fromarray(np.full((2, 2), 65535, dtype=np.uint16))
    assert deep.mode.startswith("I;16") and open_image(deep).getpixel((0, 0)) == (255, 255, 255)
    one = tmp_path / "one.png"
    Image.new("RGB", (1, 1), (1, 2, 3)).save(one)
    for item in (str(one), one, {"bytes": one.read_bytes(), "path": None}, {"bytes": None, "path": str(one)}):
        image = open_image(item)
        assert (image.mode, image.size, image.getpixel((0, 0))) == ("RGB", (1, 1), (1, 2, 3))
    for mode in ("L", "RGBA", "CMYK", "P"):
        path = tmp_path / f"saved_{mode}.{'jpg' if mode == 'CMYK' else 'png'}"
        Image.new(mode, (5, 5)).save(path)
        assert open_image(str(path)).mode == "RGB"


def test_open_image_rejects_bad_files(tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("hello")
    with pytest.raises(ValueError, match="notes.png"):
        open_image(str(text))
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), (9, 9, 9)).save(buffer, format="PNG")
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(buffer.getvalue()[:60])
    with pytest.raises(ValueError, match="truncated.png"):
        open_image(str(truncated))
    with pytest.raises(FileNotFoundError, match="absent.png"):
        open_image(str(tmp_path / "absent.png"))
    wide = tmp_path / "wide.png"
    Image.new("1", (MAX_IMAGE_SIDE + 1, 1)).save(wide)
    with pytest.raises(ValueError, match="wide.png.*16384"):
        open_image(str(wide))
    with pytest.raises(TypeError):
        open_image(42)


def test_open_image_rejects_decompression_bombs(tmp_path, monkeypatch):
    path = tmp_path / "bomb.png"
    Image.new("RGB", (10, 10)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10)
    with pytest.raises(ValueError, match="bomb.png.*too large"):
        open_image(str(path))


def test_loader_reads_a_hub_dataset(tmp_path, monkeypatch):
    import datasets

    path = tmp_path / "x.png"
    _png(path, colour=(7, 8, 9))
    table = datasets.Dataset.from_dict(
        {"picture": [str(path), str(path)], "caption": [["a red box", " "], [""]], "alt": ["the box", None]}
    ).cast_column("picture", datasets.Image())
    asked = []
    monkeypatch.setattr(datasets, "load_dataset", lambda name, split: asked.append((name, split)) or table)
    data = load_caption_corpus("someone/boxes", ["test"], image_column="picture", caption_columns=["caption", "alt"])
    assert asked == [("someone/boxes", "test")]
    assert len(data["test"]) == 1 and data["test"]["references"] == [["a red box", "the box"]]
    image = data["test"][0]["image"]
    assert set(image) == {"bytes", "path"} and open_image(image).getpixel((0, 0)) == (7, 8, 9)
    with pytest.raises(ValueError, match="no column 'captions'"):
        load_caption_corpus("someone/boxes", ["test"], image_column="picture")
