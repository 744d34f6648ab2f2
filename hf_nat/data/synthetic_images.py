"""A reproducible synthetic image–caption corpus: scenes of simple shapes drawn with Pillow.

No captioning corpus is reachable offline, so the captioning recipe draws its own: each image
shows two groups of objects, one to the left of, right of, above or below the other; a group is
one to three objects of the same shape, colour and size (small or large). Every image gets
several captions from distinct paraphrase templates ("two small red circles to the left of a
blue square", "a blue square with two little red circles on its left", ...), so an image has
many right answers, as in real captioning corpora. Background shade, positions, exact sizes,
rotation of the angular shapes, colour tints and pixel noise are all drawn from one seeded
generator, so a seed gives byte-identical files.

A seeded fifth of the (colour, shape) pairs never appears in ``train``, ``validation`` or
``test``; every image of ``test_unseen_combination`` holds at least one of them, which asks
whether a model composes colour and shape rather than memorising pairs.

The corpus is written in datasets' ``imagefolder`` layout: one folder per split holding PNG
files and a ``metadata.jsonl``, one row per image::

    {"file_name": "000123.png", "captions": ["two small red circles left of a blue square", ...],
     "objects": [{"colour": "red", "shape": "circle", "size": "small", "count": 2,
                  "boxes": [[x0, y0, x1, y1], [x0, y0, x1, y1]]},
                 {"colour": "blue", "shape": "square", "size": "large", "count": 1, "boxes": [...]}],
     "relation": "left"}

``relation`` is where the first group of ``objects`` lies from the second; ``boxes`` are each
object's pixel extent. ``load_caption_corpus`` reads it like any local captioning corpus. (So
does ``datasets.load_dataset("imagefolder", data_dir=...)``, except that it folds
``test_unseen_combination`` into ``test`` by the folder name; name the folders in ``data_files``.)
"""

from __future__ import annotations

import json
import math
import os
import shutil

import numpy as np
from PIL import Image, ImageDraw

from hf_nat.files import read_json, write_json_atomic

__all__ = [
    "COLOURS",
    "DEFAULT_SIZES",
    "RELATIONS",
    "SHAPES",
    "build_caption_corpus",
    "describe_scene",
    "held_out_combinations",
    "render_scene",
]

SHAPES = ("circle", "square", "triangle", "star", "diamond")
# Mid-saturation RGB per colour name; each object is tinted a little around it.
COLOURS = {
    "red": (205, 35, 35),
    "green": (40, 150, 50),
    "blue": (35, 70, 200),
    "yellow": (225, 195, 20),
    "purple": (130, 45, 160),
    "orange": (240, 125, 20),
}
OBJECT_SIZES = ("small", "large")
# "left": the first group is left of the second.
RELATIONS = ("left", "right", "above", "below")
SPLITS = ("train", "validation", "test", "test_unseen_combination")
DEFAULT_SIZES = {"train": 6000, "validation": 300, "test": 500, "test_unseen_combination": 500}
HELD_OUT_FRACTION = 0.2
MAX_CAPTION_WORDS = 15

# An object's extent as a fraction of the image side, before jitter; three large ones fit in a
# row or column of the image, and a large one fits in half of it.
_EXTENT = {"small": 0.14, "large": 0.25}
_SUPERSAMPLE = 4  # shapes are drawn this many times larger and downscaled, for smooth edges

_NUMBERS = {1: "one", 2: "two", 3: "three"}
_SIZE_WORDS = {"small": ("small", "little", "tiny"), "large": ("large", "big")}
_RELATION_PHRASES = {
    "left": ("to the left of", "left of", "on the left of"),
    "right": ("to the right of", "right of", "on the right of"),
    "above": ("above", "over"),
    "below": ("below", "under", "beneath"),
}
# Where the first group is, seen from the second ("a square with circles on its left").
_RELATIVE_PHRASES = {
    "left": ("on {its} left", "to {its} left"),
    "right": ("on {its} right", "to {its} right"),
    "above": ("above {it}", "over {it}"),
    "below": ("below {it}", "under {it}", "beneath {it}"),
}
_SIDES = {"left": "on the left", "right": "on the right", "above": "at the top", "below": "at the bottom"}
_CONVERSE = {"left": "right", "right": "left", "above": "below", "below": "above"}


def held_out_combinations(seed: int = 0, colours=tuple(COLOURS), shapes=SHAPES) -> list[tuple[str, str]]:
    """The (colour, shape) pairs kept out of the seen splits: a seeded fifth of all pairs, spread so
    that no colour or shape loses more than its share (each is still seen with most partners)."""
    pairs = [(c, s) for c in colours for s in shapes]
    count = max(1, round(HELD_OUT_FRACTION * len(pairs)))
    per_colour, per_shape = math.ceil(count / len(colours)), math.ceil(count / len(shapes))
    rng = np.random.default_rng([seed, 1000])
    while True:
        chosen = [pairs[i] for i in sorted(rng.choice(len(pairs), count, replace=False))]
        if (
            max(sum(c == colour for c, _ in chosen) for colour in colours) <= per_colour
            and max(sum(s == shape for _, s in chosen) for shape in shapes) <= per_shape
        ):
            return chosen


def _noun_phrase(group: dict, rng: np.random.Generator, with_size: bool) -> str:
    count = group["count"]
    if count == 1:
        article = "one" if rng.random() < 0.2 else "a"
    else:
        article = _NUMBERS[count]
    words = [article]
    if with_size:
        words.append(str(rng.choice(_SIZE_WORDS[group["size"]])))
    words += [group["colour"], group["shape"] + ("s" if count > 1 else "")]
    if words[0] == "a" and words[1][0] in "aeiou":
        words[0] = "an"
    return " ".join(words)


def _be(group: dict) -> str:
    return "is" if group["count"] == 1 else "are"


# Each template words the scene "first group <relation> second group" differently; they take the
# two noun phrases, the relation and an rng for the choice of relation words.
def _plain(first, second, a, b, relation, rng):
    return f"{a} {rng.choice(_RELATION_PHRASES[relation])} {b}"


def _converse(first, second, a, b, relation, rng):
    return f"{b} {rng.choice(_RELATION_PHRASES[_CONVERSE[relation]])} {a}"


def _there_is(first, second, a, b, relation, rng):
    return f"there {_be(first)} {a} {rng.choice(_RELATION_PHRASES[relation])} {b}"


def _with_relative(first, second, a, b, relation, rng):
    pronouns = {"its": "its", "it": "it"} if second["count"] == 1 else {"its": "their", "it": "them"}
    return f"{b} with {a} {rng.choice(_RELATIVE_PHRASES[relation]).format(**pronouns)}"


def _with_relative_converse(first, second, a, b, relation, rng):
    pronouns = {"its": "its", "it": "it"} if first["count"] == 1 else {"its": "their", "it": "them"}
    return f"{a} with {b} {rng.choice(_RELATIVE_PHRASES[_CONVERSE[relation]]).format(**pronouns)}"


def _sentence(first, second, a, b, relation, rng):
    return f"{a} {_be(first)} {rng.choice(_RELATION_PHRASES[relation])} {b}"


def _sentence_converse(first, second, a, b, relation, rng):
    return f"{b} {_be(second)} {rng.choice(_RELATION_PHRASES[_CONVERSE[relation]])} {a}"


def _picture_of(first, second, a, b, relation, rng):
    opening = rng.choice(("a picture of", "an image of", "a drawing of"))
    return f"{opening} {a} {rng.choice(_RELATION_PHRASES[relation])} {b}"


def _sides(first, second, a, b, relation, rng):
    return f"{_SIDES[relation]} {_be(first)} {a} and {_SIDES[_CONVERSE[relation]]} {_be(second)} {b}"


_TEMPLATES = (
    _plain,
    _converse,
    _there_is,
    _with_relative,
    _with_relative_converse,
    _sentence,
    _sentence_converse,
    _picture_of,
    _sides,
)


def describe_scene(scene: dict, rng: np.random.Generator, captions: int = 5) -> list[str]:
    """``captions`` distinct captions of ``scene`` (``{"objects": [first, second], "relation"}``),
    each from a different paraphrase template: lower case, numbers spelled out, no final
    punctuation, at most 15 words (size words are dropped from a longer one)."""
    if not 1 <= captions <= len(_TEMPLATES):
        raise ValueError(f"captions per image must be between 1 and {len(_TEMPLATES)} (the paraphrase templates)")
    first, second = scene["objects"]
    relation = scene["relation"]
    out = []
    for index in rng.choice(len(_TEMPLATES), captions, replace=False):
        template = _TEMPLATES[index]
        with_size = [rng.random() < 0.8, rng.random() < 0.8]
        while True:
            a, b = _noun_phrase(first, rng, with_size[0]), _noun_phrase(second, rng, with_size[1])
            caption = template(first, second, a, b, relation, rng)
            if len(caption.split()) <= MAX_CAPTION_WORDS or not any(with_size):
                break
            with_size[with_size.index(True)] = False
        out.append(caption)
    return out


def _random_scene(rng: np.random.Generator, allowed: list[tuple[str, str]], must_hold: list | None) -> dict:
    """Two groups of distinct (colour, shape) pairs from ``allowed``; one of them from ``must_hold``
    when given."""
    while True:
        pairs = [allowed[i] for i in rng.choice(len(allowed), 2, replace=True)]
        if must_hold is not None:
            pairs[int(rng.integers(2))] = must_hold[int(rng.integers(len(must_hold)))]
        if pairs[0] != pairs[1]:
            break
    groups = [
        {
            "colour": colour,
            "shape": shape,
            "size": OBJECT_SIZES[int(rng.integers(len(OBJECT_SIZES)))],
            "count": int(rng.integers(1, 4)),
        }
        for colour, shape in pairs
    ]
    return {"objects": groups, "relation": RELATIONS[int(rng.integers(len(RELATIONS)))]}


def _shape_points(shape: str, cx: float, cy: float, radius: float, angle: float) -> list[tuple[float, float]]:
    """The polygon of an angular ``shape`` centred at (cx, cy), fitting a circle of ``radius``, turned by ``angle``."""
    if shape == "square":
        corners = [(math.pi / 4 + k * math.pi / 2, radius * 0.8 * math.sqrt(2)) for k in range(4)]
    elif shape == "triangle":
        corners = [(-math.pi / 2 + k * 2 * math.pi / 3, radius) for k in range(3)]
    elif shape == "star":
        corners = [(-math.pi / 2 + k * math.pi / 5, radius if k % 2 == 0 else radius * 0.45) for k in range(10)]
    elif shape == "diamond":
        # Taller than wide, so that a turned square never looks like one.
        corners = [(-math.pi / 2, radius), (0.0, radius * 0.6), (math.pi / 2, radius), (math.pi, radius * 0.6)]
    else:
        raise ValueError(f"unknown shape {shape!r}; use one of {SHAPES}")
    return [(cx + r * math.cos(t + angle), cy + r * math.sin(t + angle)) for t, r in corners]


def _group_boxes(group: dict, region: tuple[float, float, float, float], along_x: bool, side: int, rng):
    """Centres and radii of a group's objects in ``region`` (x0, y0, x1, y1), laid out in cells along
    x (a row) or y (a column), each jittered within its cell."""
    x0, y0, x1, y1 = region
    count = group["count"]
    placed = []
    for k in range(count):
        radius = _EXTENT[group["size"]] * side * rng.uniform(0.9, 1.1) / 2
        if along_x:
            cell = (x0 + (x1 - x0) * k / count, y0, x0 + (x1 - x0) * (k + 1) / count, y1)
        else:
            cell = (x0, y0 + (y1 - y0) * k / count, x1, y0 + (y1 - y0) * (k + 1) / count)
        slack_x = max(0.0, (cell[2] - cell[0]) / 2 - radius)
        slack_y = max(0.0, (cell[3] - cell[1]) / 2 - radius)
        cx = (cell[0] + cell[2]) / 2 + rng.uniform(-slack_x, slack_x)
        cy = (cell[1] + cell[3]) / 2 + rng.uniform(-slack_y, slack_y)
        placed.append((cx, cy, radius))
    return placed


def render_scene(scene: dict, rng: np.random.Generator, image_size: int = 64) -> tuple[Image.Image, list[list]]:
    """The RGB image of ``scene`` and each group's object boxes ``[x0, y0, x1, y1]`` in pixels.

    The first group takes the half of the image its relation names (left, right, top, bottom) and
    the second the other half, split a little off-centre; a group lies in a column beside the other
    group or in a row above or below it.
    """
    side = image_size
    margin = 0.03 * side
    split = side / 2 + rng.uniform(-0.04, 0.04) * side
    gap = 0.02 * side
    halves = {
        "left": (margin, margin, split - gap, side - margin),
        "right": (split + gap, margin, side - margin, side - margin),
        "above": (margin, margin, side - margin, split - gap),
        "below": (margin, split + gap, side - margin, side - margin),
    }
    relation = scene["relation"]
    along_x = relation in ("above", "below")
    first, second = scene["objects"]
    layouts = [
        _group_boxes(first, halves[relation], along_x, side, rng),
        _group_boxes(second, halves[_CONVERSE[relation]], along_x, side, rng),
    ]
    background = np.clip(rng.uniform(200, 240) + rng.uniform(-12, 12, 3), 0, 255).round().astype(int)
    scale = _SUPERSAMPLE
    canvas = Image.new("RGB", (side * scale, side * scale), tuple(int(v) for v in background))
    draw = ImageDraw.Draw(canvas)
    boxes = []
    for group, layout in zip(scene["objects"], layouts):
        base = np.array(COLOURS[group["colour"]], dtype=float)
        group_boxes = []
        for cx, cy, radius in layout:
            fill = tuple(int(v) for v in np.clip(base + rng.uniform(-15, 15, 3), 0, 255).round())
            if group["shape"] == "circle":
                r = radius * scale
                draw.ellipse((cx * scale - r, cy * scale - r, cx * scale + r, cy * scale + r), fill=fill)
            else:
                angle = math.radians(rng.uniform(-15, 15))
                draw.polygon(_shape_points(group["shape"], cx * scale, cy * scale, radius * scale, angle), fill=fill)
            group_boxes.append([round(cx - radius), round(cy - radius), round(cx + radius), round(cy + radius)])
        boxes.append(group_boxes)
    image = canvas.resize((side, side), Image.Resampling.BOX)
    noise = rng.normal(0, rng.uniform(2, 6), (side, side, 3))
    pixels = np.clip(np.asarray(image, dtype=float) + noise, 0, 255).round().astype(np.uint8)
    return Image.fromarray(pixels, "RGB"), boxes


def _write_split(folder: str, scenes: int, rng, allowed, must_hold, image_size: int, captions: int) -> dict:
    """Draw ``scenes`` images with their captions into ``folder`` (PNG + metadata.jsonl)."""
    tmp = folder + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    rows = []
    for index in range(scenes):
        scene = _random_scene(rng, allowed, must_hold)
        image, boxes = render_scene(scene, rng, image_size)
        name = f"{index:06d}.png"
        image.save(os.path.join(tmp, name), format="PNG")
        objects = [{**group, "boxes": group_boxes} for group, group_boxes in zip(scene["objects"], boxes)]
        rows.append(
            {
                "file_name": name,
                "captions": describe_scene(scene, rng, captions),
                "objects": objects,
                "relation": scene["relation"],
            }
        )
    with open(os.path.join(tmp, "metadata.jsonl"), "w", encoding="utf-8") as handle:
        handle.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp, folder)
    return {"images": len(rows), "captions": sum(len(row["captions"]) for row in rows)}


def _complete_split(folder: str, scenes: int) -> dict | None:
    """The record of a finished split of ``scenes`` images, or ``None`` when it must be drawn."""
    done = os.path.join(folder, "metadata.jsonl")
    if not os.path.isfile(done):
        return None
    with open(done, encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle if line.strip()]
    if len(rows) != scenes or not all(os.path.isfile(os.path.join(folder, row["file_name"])) for row in rows):
        return None
    return {"images": len(rows), "captions": sum(len(row["captions"]) for row in rows)}


def build_caption_corpus(
    output_dir: str,
    sizes: dict[str, int] | None = None,
    seed: int = 0,
    image_size: int = 64,
    captions_per_image: int = 5,
) -> dict:
    """Write the synthetic captioning corpus to ``output_dir`` and return its ``corpus_info.json`` record.

    Args:
        output_dir: the corpus root; one folder per split (``train``, ``validation``, ``test``,
            ``test_unseen_combination``) of PNG files and a ``metadata.jsonl``.
        sizes: images per split; missing splits take :data:`DEFAULT_SIZES` (6000, 300, 500, 500).
        seed: drives everything drawn; the same seed gives byte-identical files.
        image_size: the side of the square RGB images, in pixels (at least 16).
        captions_per_image: distinct captions per image, each from its own template (1 to 9).

    A split whose folder holds a metadata file with the requested number of images is kept, so a
    killed build resumes (each split draws from its own seeded stream, so a redrawn split is the
    same as before); the metadata is written last and the folder moved into place whole.
    ``corpus_info.json`` records the seed, image size, shapes, colours, held-out (colour, shape)
    pairs and each split's images and captions; a folder built with other settings is refused.
    """
    unknown = set(sizes or {}) - set(SPLITS)
    if unknown:
        raise ValueError(f"unknown split(s) {sorted(unknown)}; the splits are {list(SPLITS)}")
    sizes = {**DEFAULT_SIZES, **(sizes or {})}
    if any(n < 1 for n in sizes.values()):
        raise ValueError(f"every split needs at least one image; got {sizes}")
    if image_size < 16:
        raise ValueError(f"image_size must be at least 16 pixels; got {image_size}")
    if not 1 <= captions_per_image <= len(_TEMPLATES):
        raise ValueError(f"captions_per_image must be between 1 and {len(_TEMPLATES)} (the paraphrase templates)")
    held_out = held_out_combinations(seed)
    seen = [(c, s) for c in COLOURS for s in SHAPES if (c, s) not in held_out]
    settings = {
        "seed": seed,
        "image_size": image_size,
        "captions_per_image": captions_per_image,
        "shapes": list(SHAPES),
        "colours": list(COLOURS),
        "object_sizes": list(OBJECT_SIZES),
        "relations": list(RELATIONS),
        "held_out_combinations": [list(pair) for pair in held_out],
    }
    info_path = os.path.join(output_dir, "corpus_info.json")
    if os.path.isfile(info_path):
        earlier = read_json(info_path, "corpus info")
        changed = sorted(key for key, value in settings.items() if earlier.get(key) != value)
        if changed:
            raise ValueError(f"{output_dir} holds a corpus built with other {changed}; use another output_dir")
    os.makedirs(output_dir, exist_ok=True)
    # Written before drawing, so a resumed build can tell it continues the same corpus.
    write_json_atomic(info_path, {**settings, "splits": {}})
    info = {**settings, "splits": {}}
    for index, split in enumerate(SPLITS):
        folder = os.path.join(output_dir, split)
        record = _complete_split(folder, sizes[split])
        if record is None:
            # Each split its own stream: redrawing one on resume changes no other.
            split_rng = np.random.default_rng([seed, index])
            must_hold = held_out if split == "test_unseen_combination" else None
            record = _write_split(folder, sizes[split], split_rng, seen, must_hold, image_size, captions_per_image)
        info["splits"][split] = record
    write_json_atomic(info_path, info)
    return info
