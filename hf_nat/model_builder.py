"""A fresh model of any hf_nat family (or an AR baseline: Marian for text, Speech2Text for speech,
a VisionEncoderDecoder for captioning) from command-line sizes, and warm starts."""

from __future__ import annotations

import dataclasses
import os

import torch
from safetensors.torch import load_file as load_safetensors
from transformers import (
    AutoConfig,
    AutoModel,
    MarianConfig,
    MarianMTModel,
    Speech2TextConfig,
    Speech2TextForConditionalGeneration,
    TrOCRConfig,
    VisionEncoderDecoderConfig,
    VisionEncoderDecoderModel,
)

from hf_nat.data import special_token_ids
from hf_nat.models.nat_registry import FAMILIES

__all__ = ["AR_MODEL_TYPES", "build_model", "check_config_overrides", "load_initial_weights"]

# AR baseline → the source modality it reads, and the task that trains it
AR_MODEL_TYPES = {"marian": ("text", "translation"), "speech2text": ("audio", "speech"),
                  "vision_encoder_decoder": ("image", "captioning")}  # fmt: skip


def build_model(args, tokenizer, task_fields: dict | None = None) -> torch.nn.Module:
    """A fresh model of ``args.model_type`` sized by ``args``, with ids from ``tokenizer``.

    ``task_fields`` are config fields the corpus decides (for speech: ``source_modality="audio"``,
    ``num_mel_bins``, ``subsampling_conv_layers``; for captioning ``source_modality="image"``, the
    ``vision_config`` of the image encoder and ``encoder_layers=0``, as the vision model is the
    encoder); ``args.config_overrides`` may not contradict them. With ``args.vision_encoder`` the
    image encoder starts from that pretrained model's weights.
    """
    task_fields = dict(task_fields or {})
    clashes = sorted(
        k for k in task_fields if k in args.config_overrides and args.config_overrides[k] != task_fields[k]
    )
    if clashes:
        raise ValueError(f"--config_overrides sets {clashes}, which the corpus decides ({task_fields})")
    modality = task_fields.get("source_modality", "text")
    if args.model_type in AR_MODEL_TYPES and AR_MODEL_TYPES[args.model_type][0] != modality:
        reads, task = AR_MODEL_TYPES[args.model_type]
        if modality == "text":
            raise ValueError(f"--model_type {args.model_type} reads {reads}: train it with --task {task}")
        baseline = next(name for name, (source, _) in AR_MODEL_TYPES.items() if source == modality)
        task = AR_MODEL_TYPES[baseline][1]
        raise ValueError(f"--model_type {args.model_type} reads {reads}; the AR baseline for {task} is '{baseline}'")
    ctc_weight = getattr(args, "ctc_weight", 0.0)
    if ctc_weight and args.model_type != "speech2text":
        raise ValueError(
            f"--ctc_weight trains the encoder of the AR speech baseline (speech2text), not {args.model_type!r}"
        )
    if not 0.0 <= ctc_weight < 1.0:
        raise ValueError(f"--ctc_weight must lie in [0, 1), got {ctc_weight}")
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
            **_ar_fields(ids),
            forced_eos_token_id=ids["eos"],
            share_encoder_decoder_embeddings=True,
            tie_word_embeddings=True,
            **args.config_overrides,
        )
        model = MarianMTModel(config)
        model.generation_config.update(num_beams=5, max_length=args.max_positions, bad_words_ids=None)
        return model
    if args.model_type == "speech2text":
        return _speech2text(args, shape, ids, task_fields["num_mel_bins"], task_fields["subsampling_conv_layers"])
    if args.model_type == "vision_encoder_decoder":
        return _vision_encoder_decoder(args, shape, ids, task_fields["vision_config"])
    if args.model_type not in FAMILIES:
        raise ValueError(
            f"unknown --model_type {args.model_type!r}; choose from {sorted([*FAMILIES, *AR_MODEL_TYPES])}"
        )
    head = FAMILIES[args.model_type].head_class
    check_config_overrides(head.config_class, args.config_overrides)
    fields = dict(
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
    )
    config = head.config_class(**{**fields, **args.config_overrides, **task_fields})
    model = head(config)
    if getattr(args, "vision_encoder", None):
        model.model.encoder.embed.vision.load_state_dict(_pretrained_vision(args.vision_encoder).state_dict())
    return model


def _pretrained_vision(name: str) -> torch.nn.Module:
    """The vision model of ``--vision_encoder`` (a folder or Hub id), from safetensors weights only."""
    return AutoModel.from_pretrained(name, use_safetensors=True)


def _vision_encoder_decoder(args, shape: dict, ids: dict, vision_config: dict) -> torch.nn.Module:
    """transformers' VisionEncoderDecoder of the NAT's size: the same image encoder as the NAT's
    (``vision_config``, or ``--vision_encoder``'s pretrained weights), then a TrOCR decoder with
    ``args.layers`` layers of the NAT's width."""
    check_config_overrides(TrOCRConfig, args.config_overrides)
    fields = dict(vision_config)
    encoder_config = AutoConfig.for_model(fields.pop("model_type"), **fields)
    decoder_config = TrOCRConfig(
        **{
            **dict(
                vocab_size=shape["vocab_size"],
                d_model=shape["d_model"],
                decoder_layers=shape["decoder_layers"],
                decoder_attention_heads=shape["decoder_attention_heads"],
                decoder_ffn_dim=shape["decoder_ffn_dim"],
                dropout=shape["dropout"],
                max_position_embeddings=shape["max_position_embeddings"],
                use_learned_position_embeddings=True,  # its sinusoidal table is not restored by from_pretrained
                layernorm_embedding=False,
                tie_word_embeddings=True,
                **_ar_fields(ids),
            ),
            **args.config_overrides,
        }
    )
    config = VisionEncoderDecoderConfig.from_encoder_decoder_configs(encoder_config, decoder_config)
    config.pad_token_id, config.eos_token_id = ids["pad"], ids["eos"]
    config.decoder_start_token_id = ids["bos"]
    encoder = _pretrained_vision(args.vision_encoder) if getattr(args, "vision_encoder", None) else None
    model = VisionEncoderDecoderModel(config=config, encoder=encoder)
    model.generation_config.update(
        num_beams=1,
        max_length=shape["max_position_embeddings"],
        pad_token_id=ids["pad"],
        eos_token_id=ids["eos"],
        decoder_start_token_id=ids["bos"],
        bos_token_id=ids["bos"],
    )
    return model


def _ar_fields(ids: dict) -> dict:
    """Config fields both AR baselines share: ReLU, scaled embeddings, the tokenizer's special ids."""
    return dict(
        activation_function="relu",
        scale_embedding=True,
        pad_token_id=ids["pad"],
        bos_token_id=ids["bos"],
        eos_token_id=ids["eos"],
        decoder_start_token_id=ids["bos"],
    )


def _speech2text(args, shape: dict, ids: dict, num_mel_bins: int, conv_layers: int) -> torch.nn.Module:
    """transformers' Speech2Text of the NAT's size: the same ``conv_layers`` stride-2 convolutions
    (kernel 5) and channels as the NAT speech front end, then ``args.layers`` encoder and decoder layers."""
    check_config_overrides(Speech2TextConfig, args.config_overrides)
    front_end = {"num_conv_layers", "conv_kernel_sizes", "input_feat_per_channel", "input_channels"}
    if front_end & set(args.config_overrides):
        raise ValueError(
            f"--config_overrides sets {sorted(front_end & set(args.config_overrides))}: the speech front end "
            "follows --subsampling_conv_layers and --num_mel_bins, as the NAT's does"
        )
    shape = dict(shape)
    positions = shape.pop("max_position_embeddings")
    fields = dict(
        **shape,
        max_source_positions=positions,  # after the subsampling, as the NAT's positions count states
        max_target_positions=positions,
        num_conv_layers=conv_layers,
        conv_kernel_sizes=[5] * conv_layers,
        conv_channels=256,
        input_feat_per_channel=num_mel_bins,
        input_channels=1,
        **_ar_fields(ids),
        tie_word_embeddings=True,
    )
    config = Speech2TextConfig(**{**fields, **args.config_overrides})
    model = Speech2TextForConditionalGeneration(config)
    model.generation_config.update(num_beams=1, max_length=positions)
    return model


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
