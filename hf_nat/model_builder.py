"""A fresh model of any hf_nat family (or the Marian AR baseline) from command-line sizes, and warm starts."""

from __future__ import annotations

import dataclasses
import os

import torch
from safetensors.torch import load_file as load_safetensors
from transformers import MarianConfig, MarianMTModel

from hf_nat.data import special_token_ids
from hf_nat.models.nat_registry import FAMILIES

__all__ = ["AR_MODEL_TYPES", "build_model", "check_config_overrides", "load_initial_weights"]

AR_MODEL_TYPES = {"marian"}


def build_model(args, tokenizer) -> torch.nn.Module:
    """A fresh model of ``args.model_type`` sized by ``args``, with ids from ``tokenizer``."""
    ids = special_token_ids(tokenizer)
    shape = dict(
        d_model=args.d_model,
        encoder_layers=args.layers,
        decoder_layers=args.layers,
        encoder_attention_heads=args.heads,
        decoder_attention_heads=args.heads,
        encoder_ffn_dim=args.ffn_dim,
        decoder_ffn_dim=args.ffn_dim,
        dropout=args.dropout,
        max_position_embeddings=args.max_positions,
        vocab_size=len(tokenizer),
    )
    if args.model_type == "marian":
        check_config_overrides(MarianConfig, args.config_overrides)
        config = MarianConfig(
            **shape,
            activation_function="relu",
            scale_embedding=True,
            pad_token_id=ids["pad"],
            eos_token_id=ids["eos"],
            bos_token_id=ids["bos"],
            decoder_start_token_id=ids["bos"],
            forced_eos_token_id=ids["eos"],
            share_encoder_decoder_embeddings=True,
            tie_word_embeddings=True,
            **args.config_overrides,
        )
        model = MarianMTModel(config)
        model.generation_config.update(num_beams=5, max_length=args.max_positions, bad_words_ids=None)
        return model
    if args.model_type not in FAMILIES:
        raise ValueError(f"unknown --model_type {args.model_type!r}; choose from {sorted(FAMILIES) + ['marian']}")
    head = FAMILIES[args.model_type].head_class
    check_config_overrides(head.config_class, args.config_overrides)
    config = head.config_class(
        **shape,
        label_smoothing=args.label_smoothing,
        pad_token_id=ids["pad"],
        bos_token_id=ids["bos"],
        eos_token_id=ids["eos"],
        unk_token_id=ids["unk"],
        mask_token_id=ids["mask"],
        placeholder_token_id=ids["placeholder"],
        blank_token_id=ids["blank"],
        decoder_start_token_id=ids["bos"],
        **args.config_overrides,
    )
    return head(config)


def check_config_overrides(config_class, overrides: dict) -> None:
    """Raise ``ValueError`` for ``--config_overrides`` keys that are not fields of ``config_class``
    (a misspelt field would otherwise be stored beside the real one, which keeps its default)."""
    fields = {field.name for field in dataclasses.fields(config_class)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(
            f"--config_overrides: {config_class.__name__} has no field(s) {unknown}; its fields are {sorted(fields)}"
        )


def load_initial_weights(model: torch.nn.Module, folder: str) -> dict:
    """Copy the safetensors weights of a saved model folder into ``model`` (a warm start).

    Every tensor of the folder must exist in ``model`` with the same shape; parameters the folder
    lacks keep their fresh initialisation. Returns how many tensors were loaded and left fresh.
    """
    path = os.path.join(folder, "model.safetensors")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"--init_from: no model.safetensors in {folder}")
    weights = load_safetensors(path)
    weights.pop("glancing_updates", None)  # a training-progress counter, not a weight: the new run starts at 0
    own = model.state_dict()
    unknown = sorted(set(weights) - set(own))
    mismatched = sorted(k for k in weights if k in own and weights[k].shape != own[k].shape)
    if unknown or mismatched:
        raise ValueError(
            f"--init_from {folder} does not fit this model: unknown tensors {unknown[:5]}, "
            f"shape mismatches {mismatched[:5]}"
        )
    missing = model.load_state_dict(weights, strict=False).missing_keys
    loaded_storage = {own[k].data_ptr() for k in weights}
    fresh = [k for k in missing if own[k].data_ptr() not in loaded_storage]  # tied copies were loaded
    return {"loaded": len(weights), "fresh": fresh}
