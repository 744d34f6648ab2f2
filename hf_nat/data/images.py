"""Images as model inputs: pixels from an image processor, training batches, captioning a set of images."""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["CaptionCollator", "caption_pixels", "image_pixels", "image_states"]


def image_pixels(images: Sequence, image_processor, batch_size: int = 256) -> torch.Tensor:
    """``pixel_values`` (N, C, H, W) float32 of ``images`` (anything :func:`captions.open_image`
    opens: paths, bytes dicts, PIL images), each converted to RGB and resized by ``image_processor``."""
    from hf_nat.data.captions import open_image

    if not len(images):
        raise ValueError("no images to process")
    parts = []
    for start in range(0, len(images), batch_size):
        opened = [open_image(item) for item in images[start : start + batch_size]]
        parts.append(image_processor(images=opened, return_tensors="pt")["pixel_values"].float())
    return torch.cat(parts)


def image_states(vision_config: dict) -> int:
    """Encoder states per image of a ViT-like ``vision_config`` (patches, plus a class token),
    or 1 for a vision model without patches: what a token budget counts per image."""
    size, patch = vision_config.get("image_size"), vision_config.get("patch_size")
    if not (size and patch):
        return 1
    height, width = (size, size) if isinstance(size, int) else size
    return (height // patch) * (width // patch) + 1


class CaptionCollator:
    """Stacks a list of ``{"pixel_values": (C, H, W), "labels": [ids]}`` into a batch:
    ``pixel_values`` (batch, C, H, W) and ``labels`` (batch, tokens) padded with -100."""

    def __call__(self, examples: list[dict]) -> dict[str, torch.Tensor]:
        tokens = max(len(e["labels"]) for e in examples)
        labels = torch.full((len(examples), tokens), -100, dtype=torch.long)
        for row, example in enumerate(examples):
            labels[row, : len(example["labels"])] = torch.tensor(example["labels"])
        return {"pixel_values": torch.stack([e["pixel_values"] for e in examples]), "labels": labels}


@torch.inference_mode()
def caption_pixels(model, tokenizer, pixels: torch.Tensor, batch_size: int = 64, **generate_kwargs) -> list[str]:
    """The model's captions (hf_nat or transformers) of ``pixels`` (N, C, H, W), in order."""
    model.eval()
    device = next(model.parameters()).device
    out: list[str] = []
    for start in range(0, pixels.shape[0], batch_size):
        batch = pixels[start : start + batch_size].to(device)
        tokens = model.generate(pixel_values=batch, **generate_kwargs)
        out += [text.strip() for text in tokenizer.batch_decode(tokens, skip_special_tokens=True)]
    return out
