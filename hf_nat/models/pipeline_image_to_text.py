"""The "image-to-text" pipeline, extended to hf_nat captioners.

transformers 5 sends the task name "image-to-text" to "image-text-to-text"; hf_nat gives that
task this subclass as its implementation (the same as transformers' own for every other model),
and an exported folder carries it in ``custom_pipelines["image-to-text"]``. ``pipeline("image-to-text", model=...)``
returns ``[{"generated_text": ...}]`` for an image (a path, bytes, ``{"bytes"|"path"}`` or a PIL
image), and one such list per image for a list of them. Keywords other than the pipeline's own
(``batch_size``) go to ``generate()`` (e.g. ``max_iterations`` for CMLM).

Images are opened with Pillow and converted to RGB whatever their mode (:func:`open_image`); the
model's image processor resizes them, so a batch may mix sizes. Imports only numpy, torch, PIL
and transformers, so an exported folder that copies this file needs nothing else.
"""

import io
import os

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from transformers import ImageTextToTextPipeline, Pipeline

__all__ = ["MAX_IMAGE_SIDE", "NATImageToTextPipeline", "open_image"]

# Larger than any captioning photo; a bigger file is far more likely an error or a decompression bomb.
MAX_IMAGE_SIDE = 16384


def open_image(item) -> Image.Image:
    """``item`` (a file path, raw bytes, a ``{"bytes", "path"}`` dict or a PIL image) as an RGB image.

    Every mode becomes RGB: transparent images (RGBA, LA, PA, P with transparency) are composited
    on white, 16- and 32-bit grey is scaled to 8 bits, the rest (L, 1, P, CMYK, YCbCr, ...) is
    converted by PIL. A file's EXIF orientation is applied, as a viewer would.

    Raises:
        ValueError: the file is not an image, is corrupt or truncated, or has a side over
            :data:`MAX_IMAGE_SIDE` pixels (or is a decompression bomb); the message names the file.
        TypeError: ``item`` is none of the above.
    """
    if isinstance(item, Image.Image):
        return _to_rgb(item, "the image")
    if isinstance(item, dict):
        name = item.get("path") or "image bytes"
        source = io.BytesIO(item["bytes"]) if item.get("bytes") else item.get("path")
        if source is None:
            raise ValueError(f"image item {item!r} has neither bytes nor a path")
    elif isinstance(item, (bytes, bytearray)):
        name, source = "image bytes", io.BytesIO(item)
    elif isinstance(item, (str, os.PathLike)):
        name, source = os.fspath(item), item
    else:
        raise TypeError(f"cannot open {type(item).__name__} as an image; give a path, bytes, a dict or a PIL image")
    try:
        image = Image.open(source)
        if max(image.size) > MAX_IMAGE_SIDE:
            raise ValueError(
                f"{name} is {image.size[0]}x{image.size[1]} pixels, over {MAX_IMAGE_SIDE} a side; "
                "resize it before captioning"
            )
        image.load()
        image = ImageOps.exif_transpose(image)
    except FileNotFoundError:
        raise FileNotFoundError(f"image file {name} does not exist") from None
    except Image.DecompressionBombError as error:
        raise ValueError(f"{name} is too large to open safely (a decompression bomb?): {error}") from error
    except (UnidentifiedImageError, OSError, SyntaxError, EOFError) as error:
        raise ValueError(f"{name} is not a readable image (not an image, corrupt or truncated): {error}") from error
    return _to_rgb(image, name)


def _to_rgb(image: Image.Image, name: str) -> Image.Image:
    if image.mode == "RGB":
        return image
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    if image.mode.startswith("I;16") or image.mode in ("I", "F"):
        values = np.asarray(image, dtype=np.float64)
        if image.mode.startswith("I;16") or (image.mode == "I" and values.max(initial=0) > 255):
            values = values / 257  # the 16-bit range onto 8 bits
        elif image.mode == "F" and values.max(initial=0) <= 1:
            values = values * 255  # float grey in [0, 1]
        grey = Image.fromarray(np.clip(values, 0, 255).round().astype(np.uint8), "L")
        return grey.convert("RGB")
    try:
        return image.convert("RGB")
    except ValueError as error:
        raise ValueError(f"{name}: cannot convert image mode {image.mode!r} to RGB: {error}") from error


class NATImageToTextPipeline(ImageTextToTextPipeline):
    """Caption images: ``[{"generated_text": ...}]`` per image, a list of those for a list of images.

    For an hf_nat model the caption comes from the model's own ``generate()`` (keywords other than
    the pipeline's ``batch_size`` go to it, e.g. ``max_iterations``), with the tokenizer and image
    processor of the folder's processor. Every other model gets transformers' image-text-to-text
    pipeline unchanged.
    """

    def __init__(self, model, *args, **kwargs):
        self.is_nat = bool(getattr(model, "is_nat", False))
        if not self.is_nat:
            super().__init__(model, *args, **kwargs)
            return
        self._pipeline_calls_generate = False  # generate() gets the caller's options only, no AR defaults
        Pipeline.__init__(self, model, *args, **kwargs)
        processor = getattr(self, "processor", None)
        self.tokenizer = getattr(processor, "tokenizer", None) or self.tokenizer
        self.image_processor = getattr(processor, "image_processor", None) or self.image_processor
        if self.tokenizer is None or self.image_processor is None:
            raise ValueError("an hf_nat captioner needs its tokenizer and image processor (processor_config.json)")

    def __call__(self, images=None, text=None, **kwargs):
        """Caption ``images``: one image (a path, bytes, a ``{"bytes"|"path"}`` dict, a PIL image) or a list."""
        if not self.is_nat:
            return super().__call__(images, text=text, **kwargs)
        if text is not None:
            raise ValueError("hf_nat captioners take no text prompt")
        if isinstance(images, (list, tuple)) and not images:
            return []
        return Pipeline.__call__(self, images, **kwargs)

    def _sanitize_parameters(self, **kwargs):
        if not getattr(self, "is_nat", False):
            return super()._sanitize_parameters(**kwargs)
        return {}, kwargs, {}

    def preprocess(self, inputs=None, **kwargs):
        if not self.is_nat:
            return super().preprocess(inputs, **kwargs)
        return {"pixel_values": self.image_processor(images=open_image(inputs), return_tensors="pt")["pixel_values"]}

    def _forward(self, model_inputs, **generate_kwargs):
        if not self.is_nat:
            return super()._forward(model_inputs, **generate_kwargs)
        pixels = model_inputs["pixel_values"].to(self.model.device, self.model.dtype)
        return {"tokens": self.model.generate(pixel_values=pixels, **generate_kwargs).cpu()}

    def postprocess(self, model_outputs, **kwargs):
        if not self.is_nat:
            return super().postprocess(model_outputs, **kwargs)
        text = self.tokenizer.decode(model_outputs["tokens"][0], skip_special_tokens=True)
        return [{"generated_text": text.strip()}]
