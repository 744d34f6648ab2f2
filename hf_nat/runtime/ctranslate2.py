"""The AR baseline on CTranslate2, the engine practitioners deploy: conversion and a ``generate()``.

CTranslate2's Marian converter assumes OPUS-MT's layout, where transformers appended ``<pad>`` as
the last vocabulary entry and the decoder starts from a zero embedding; it drops that last row.
hf_nat's tokenizers put ``<pad>`` at id 0 and its Marian baseline starts the decoder from
``<s>`` (id 1), so the stock converter would drop a real token. :func:`convert_to_ctranslate2`
keeps the whole vocabulary and starts the decoder from the model's ``decoder_start_token_id``.

:class:`CTranslate2ForSeq2SeqLM` decodes with a ``generate()`` that takes and returns token ids
like transformers' (decoder start first, then the tokens, eos, padding), so the one translation
loop (:mod:`hf_nat.translate`) and the benchmark treat it like any AR model.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from hf_nat.optional import require
from hf_nat.provenance import model_fingerprint

__all__ = ["COMPUTE_TYPES", "CTranslate2ForSeq2SeqLM", "convert_to_ctranslate2"]

# CTranslate2 compute types the benchmark names (weights are converted to these on load).
COMPUTE_TYPES = ("float32", "int8")
_FINGERPRINT_FILE = "hf_nat_source.txt"


def _marian_loader():
    """A Marian loader for CTranslate2 that keeps every vocabulary row and the real start token."""
    from ctranslate2.converters.transformers import BartLoader, MarianMTLoader

    class KeepVocabularyMarianLoader(MarianMTLoader):
        def get_model_spec(self, model):
            model.config.normalize_before = False
            model.config.normalize_embedding = False
            return BartLoader.get_model_spec(self, model)

        def get_vocabulary(self, model, tokenizer):
            return BartLoader.get_vocabulary(self, model, tokenizer)

        def set_config(self, config, model, tokenizer):
            BartLoader.set_config(self, config, model, tokenizer)
            # CTranslate2 needs every special token as a string; a tokenizer without bos never uses it.
            config.bos_token = tokenizer.bos_token or tokenizer.eos_token

        def set_decoder(self, spec, decoder):
            BartLoader.set_decoder(self, spec, decoder)

    return KeepVocabularyMarianLoader()


def convert_to_ctranslate2(model_dir: str | os.PathLike, output_dir: str | os.PathLike) -> Path:
    """Convert the transformers Marian model saved in ``model_dir`` to a CTranslate2 folder
    (float32 weights; int8 is chosen at load time with ``compute_type``). The folder records the
    source's fingerprint; converting again over a folder of the same model is a no-op."""
    ctranslate2 = require("ctranslate2", "the CTranslate2 baseline")
    from ctranslate2.converters.converter import Converter
    from transformers import AutoTokenizer, MarianMTModel

    source, output = Path(model_dir), Path(output_dir)
    fingerprint = model_fingerprint(source)
    stamp = output / _FINGERPRINT_FILE
    if stamp.is_file() and stamp.read_text(encoding="utf-8").strip() == fingerprint:
        return output
    from hf_nat.files import read_json

    model_type = read_json(source / "config.json", "model config").get("model_type")
    if model_type != "marian":
        raise ValueError(
            f"{source} holds a {model_type!r} model; the CTranslate2 engine here converts Marian models "
            f"(the hf_nat baseline). Convert others with ct2-transformers-converter, "
            f"or leave out the ctranslate2 engines"
        )
    model = MarianMTModel.from_pretrained(source).float().eval()
    tokenizer = AutoTokenizer.from_pretrained(source)

    class _Converter(Converter):
        def _load(self):
            with torch.no_grad():
                return _marian_loader()(model, tokenizer)

    _Converter().convert(str(output), force=True)
    stamp.write_text(fingerprint + "\n", encoding="utf-8")
    del ctranslate2
    return output


class CTranslate2ForSeq2SeqLM:
    """A CTranslate2 translator behind transformers' ``generate()`` contract for token ids.

    ``from_pretrained(model_dir, compute_type="int8")`` converts the transformers model saved in
    ``model_dir`` (once, into ``model_dir/ctranslate2``) and loads it. ``generate(input_ids,
    attention_mask, num_beams=1, max_length=...)`` returns (B, L) ids: decoder start, tokens, eos,
    padding. As with transformers' ``forced_eos_token_id``, an output cut by ``max_length`` ends
    with eos in the last place.
    """

    is_nat = False

    def __init__(self, translator, config, generation_config, vocabulary: list[str], compute_type: str):
        self.translator = translator
        self.config = config
        self.generation_config = generation_config
        self.compute_type = compute_type
        self._tokens = vocabulary
        self._ids = {token: i for i, token in enumerate(vocabulary)}

    @classmethod
    def from_pretrained(
        cls,
        model_dir: str | os.PathLike,
        compute_type: str = "int8",
        threads: int | None = None,
        device: str = "cpu",
        converted_dir: str | os.PathLike | None = None,
    ) -> CTranslate2ForSeq2SeqLM:
        """The transformers Marian model of ``model_dir`` on CTranslate2 (``compute_type`` e.g.
        ``float32``, ``int8``, ``int8_float16``, ``float16``), ``threads`` intra-op threads."""
        ctranslate2 = require("ctranslate2", "the CTranslate2 baseline")
        from transformers import AutoConfig, AutoTokenizer, GenerationConfig

        folder = convert_to_ctranslate2(model_dir, converted_dir or Path(model_dir) / "ctranslate2")
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
        vocabulary = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
        translator = ctranslate2.Translator(
            str(folder),
            device=device,
            compute_type=compute_type,
            intra_threads=int(threads or torch.get_num_threads()),
            inter_threads=1,
        )
        config = AutoConfig.from_pretrained(model_dir)
        return cls(translator, config, GenerationConfig.from_pretrained(model_dir), vocabulary, compute_type)

    def eval(self) -> CTranslate2ForSeq2SeqLM:
        return self

    def parameters(self):
        return iter(())

    def generate(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        num_beams: int = 1,
        max_length: int | None = None,
        max_new_tokens: int | None = None,
        length_penalty: float | None = None,
        use_cache: bool = True,
        **unsupported,
    ) -> torch.Tensor:
        """Decode a (B, S) batch of source ids (padding where ``attention_mask`` is 0) greedily
        (``num_beams=1``) or with beam search; ``max_length`` counts the decoder start token, as
        in transformers."""
        if unsupported:
            raise ValueError(f"CTranslate2ForSeq2SeqLM.generate() does not support {sorted(unsupported)}")
        config = self.config
        mask = input_ids.ne(config.pad_token_id) if attention_mask is None else attention_mask.bool()
        sources = [[self._tokens[i] for i in row[keep].tolist()] for row, keep in zip(input_ids, mask)]
        if max_new_tokens is None:
            max_new_tokens = (max_length or self.generation_config.max_length or 256) - 1
        penalty = length_penalty if length_penalty is not None else self.generation_config.length_penalty
        results = self.translator.translate_batch(
            sources,
            beam_size=int(num_beams),
            max_decoding_length=max(int(max_new_tokens) - 1, 1),
            length_penalty=1.0 if penalty is None else float(penalty),
            return_end_token=True,
        )
        eos, pad, start = config.eos_token_id, config.pad_token_id, config.decoder_start_token_id
        rows = []
        for result in results:
            ids = [self._ids[t] for t in result.hypotheses[0]]
            rows.append([start, *(ids if ids and ids[-1] == eos else [*ids, eos])])
        width = max((len(r) for r in rows), default=1)
        out = torch.full((len(rows), width), pad, dtype=torch.long)
        for i, row in enumerate(rows):
            out[i, : len(row)] = torch.tensor(row)
        return out
