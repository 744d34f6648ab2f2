"""The "translation" pipeline that transformers 5 removed, brought back for hf_nat models.

It works for every hf_nat family and for ordinary transformers seq2seq models (an AR baseline),
and passes decoding options (``max_iterations``, ``length_beam``, … or ``num_beams`` for AR
models) through to ``generate()``.
"""

import re
import warnings

import torch
from transformers import Pipeline

__all__ = ["NATTranslationPipeline"]


# Lone surrogates (e.g. from decoding bytes with errors="surrogateescape") cannot be tokenized.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


class NATTranslationPipeline(Pipeline):
    """Translate a string or a list of strings: ``[{"translation_text": ...}]``.

    ``truncation`` (default True) cuts sources longer than the model's positions with a warning;
    ``truncation=False`` raises a ValueError instead. Empty or whitespace-only sources translate
    to the empty string, an empty list to an empty list; characters that cannot be encoded (lone
    surrogates) are read as U+FFFD, i.e. unknown. ``src_lang``/``tgt_lang`` pick the direction of a
    model trained on several (``model.nat_language_options``). Every other keyword goes to
    ``generate()``.
    """

    _load_tokenizer = True
    _load_processor = False
    _load_image_processor = False
    _load_feature_extractor = False

    def _sanitize_parameters(self, truncation=None, src_lang=None, tgt_lang=None, **generate_kwargs):
        preprocess = {} if truncation is None else {"truncation": truncation}
        if src_lang is not None or tgt_lang is not None:
            if not hasattr(self.model, "nat_language_options"):
                raise ValueError(f"{type(self.model).__name__} takes no src_lang/tgt_lang")
            generate_kwargs = {**self.model.nat_language_options(src_lang, tgt_lang), **generate_kwargs}
        return preprocess, generate_kwargs, {}

    def __call__(self, inputs, **kwargs):
        """Translate ``inputs`` (a string or a list of strings)."""
        if isinstance(inputs, (list, tuple)) and not inputs:
            return []
        result = super().__call__(inputs, **kwargs)
        if isinstance(inputs, (list, tuple)):
            return [item[0] for item in result]
        return result

    def _max_source_tokens(self) -> int:
        limit = getattr(self.model, "max_source_positions", None)
        if callable(limit):
            return int(limit())
        return int(getattr(self.model.config, "max_position_embeddings", self.tokenizer.model_max_length))

    def preprocess(self, text, truncation: bool = True):
        if not isinstance(text, str):
            raise TypeError(f"translation input must be a string, got {type(text).__name__}")
        text = _LONE_SURROGATE.sub("\ufffd", text)
        encoded = self.tokenizer(text, return_tensors="pt")
        limit = self._max_source_tokens()
        length = encoded["input_ids"].shape[1]
        if length > limit:
            if not truncation:
                raise ValueError(
                    f"source has {length} tokens, more than the model's {limit} positions "
                    f"(pass truncation=True to cut it)"
                )
            warnings.warn(f"source of {length} tokens truncated to the model's {limit} positions", stacklevel=2)
            encoded = self.tokenizer(text, return_tensors="pt", truncation=True, max_length=limit)
        return {
            "input_ids": encoded["input_ids"],
            "attention_mask": encoded["attention_mask"],
            "source_is_empty": torch.tensor([not text.strip()]),
        }

    def _forward(self, model_inputs, **generate_kwargs):
        empty = model_inputs.pop("source_is_empty")
        output_ids = self.model.generate(**model_inputs, **generate_kwargs)
        if not isinstance(output_ids, torch.Tensor):
            output_ids = output_ids.sequences
        return {"output_ids": output_ids, "source_is_empty": empty}

    def postprocess(self, model_outputs):
        if bool(model_outputs["source_is_empty"].reshape(-1)[0]):
            return [{"translation_text": ""}]
        ids = model_outputs["output_ids"].reshape(-1)
        return [{"translation_text": self.tokenizer.decode(ids, skip_special_tokens=True)}]
