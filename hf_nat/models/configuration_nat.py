"""Configuration shared by every hf_nat family: the encoder/decoder shape and the special tokens."""

import dataclasses
import difflib
import math
import numbers
import types
import typing

from transformers import PretrainedConfig

__all__ = ["NATConfig"]

# Keywords that are no config field but that transformers passes to a config or writes into
# config.json: bookkeeping of from_pretrained/save_pretrained, remote code and the Hub export,
# and the loading options PretrainedConfig.__post_init__ consumes itself.
_TRANSFORMERS_KEYWORDS = frozenset(
    {
        "model_type",
        "auto_map",
        "custom_pipelines",
        "_name_or_path",
        "name_or_path",
        "_commit_hash",
        "torch_dtype",
        "attn_implementation",
        "experts_implementation",
        "output_attentions",
        "num_labels",
        "per_layer_config",
        "_attn_implementation_internal",
        "_experts_implementation_internal",
        "use_cache",  # transformers' Trainer switches the KV cache off on the config it saves
    }
)


class NATConfig(PretrainedConfig):
    """Base configuration of a non-autoregressive encoder-decoder.

    Family configurations subclass it and add only their own fields. The special-token ids default
    to the layout of :func:`hf_nat.data.train_joint_tokenizer` (pad 0, bos 1, eos 2, unk 3, mask 4,
    placeholder 5, blank 6). ``max_position_embeddings`` bounds both the source and the target.
    """

    model_type = "nat"
    keys_to_ignore_at_inference = ["encoder_last_hidden_state"]
    attribute_map = {
        "hidden_size": "d_model",
        "num_attention_heads": "encoder_attention_heads",
        "num_hidden_layers": "encoder_layers",
    }

    vocab_size: int = 8000
    d_model: int = 256
    encoder_layers: int = 3
    decoder_layers: int = 3
    encoder_attention_heads: int = 4
    decoder_attention_heads: int = 4
    encoder_ffn_dim: int = 1024
    decoder_ffn_dim: int = 1024
    activation_function: str = "relu"
    dropout: float = 0.1
    attention_dropout: float = 0.0
    activation_dropout: float = 0.0
    max_position_embeddings: int = 256
    scale_embedding: bool = True
    init_std: float = 0.02
    label_smoothing: float = 0.1
    length_loss_weight: float = 0.1
    is_encoder_decoder: bool = True
    tie_word_embeddings: bool = True
    pad_token_id: int | None = 0
    bos_token_id: int | None = 1
    eos_token_id: int | None = 2
    unk_token_id: int | None = 3
    mask_token_id: int | None = 4
    placeholder_token_id: int | None = 5
    blank_token_id: int | None = 6
    decoder_start_token_id: int | None = 1
    # Glancing training (GLAT) for the one-pass families that support it (see nat_glancing.py).
    glancing: bool = False
    glancing_ratio_start: float = 0.5
    glancing_ratio_end: float = 0.3
    glancing_anneal_steps: int = 4000
    # Training techniques against repeated and missing words (nat_training_techniques.py), each
    # off at weight 0; a family lists those it supports in ``training_techniques``.
    similarity_weight: float = 0.0
    reconstruction_weight: float = 0.0
    reconstruction_layers: int = 1
    bag_of_ngrams_weight: float = 0.0
    bag_of_ngrams_order: int = 2
    hint_hidden_weight: float = 0.0
    hint_alignment_weight: float = 0.0
    hint_student_threshold: float = 0.1
    hint_teacher_threshold: float = 0.9
    # What the source is (nat_sources.py): token ids ("text"), log-mel feature frames ("audio")
    # that strided convolutions shorten 2**subsampling_conv_layers times before the encoder, or
    # pixels ("image") that a transformers vision model of ``vision_config`` (a config dict with
    # its model_type, e.g. a ViT's) encodes. A family lists the modalities it reads in
    # ``source_modalities``.
    source_modality: str = "text"
    num_mel_bins: int = 80
    subsampling_conv_layers: int = 2
    subsampling_conv_kernel_size: int = 5
    subsampling_conv_channels: int = 256
    vision_config: dict | None = None

    # technique name → the weight fields that switch it on; a family's config sets the names it supports
    TECHNIQUE_WEIGHTS = {
        "similarity": ("similarity_weight",),
        "reconstruction": ("reconstruction_weight",),
        "bag_of_ngrams": ("bag_of_ngrams_weight",),
        "hints": ("hint_hidden_weight", "hint_alignment_weight"),
    }
    training_techniques = ()
    source_modalities = ("text",)

    def __post_init__(self, **kwargs):
        self._check_known_fields(kwargs)
        super().__post_init__(**kwargs)
        self._check_field_types()
        self._check_training_techniques()
        self._check_source_modality()

    def _check_source_modality(self) -> None:
        """Raise ``ValueError`` for a source modality this family does not read, or an audio or
        image front end that cannot be built."""
        if self.source_modality not in self.source_modalities:
            raise ValueError(
                f"source_modality={self.source_modality!r}: {type(self).__name__} (model_type "
                f"{self.model_type!r}) reads {list(self.source_modalities)} sources"
            )
        if self.source_modality == "image" and not (self.vision_config or {}).get("model_type"):
            raise ValueError(
                "source_modality='image' needs vision_config: a transformers vision config as a dict "
                "with its model_type (e.g. ViTConfig(...).to_dict())"
            )
        for name in ("num_mel_bins", "subsampling_conv_layers", "subsampling_conv_channels"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be ≥ 1, got {getattr(self, name)}")
        if self.subsampling_conv_kernel_size < 1 or self.subsampling_conv_kernel_size % 2 == 0:
            raise ValueError(
                f"subsampling_conv_kernel_size must be odd (a centred kernel), got {self.subsampling_conv_kernel_size}"
            )

    def _check_training_techniques(self) -> None:
        """Raise ``ValueError`` for a technique this family does not support, or a weight or order
        out of range."""
        for technique, fields in self.TECHNIQUE_WEIGHTS.items():
            for name in fields:
                weight = getattr(self, name)
                if weight < 0:
                    raise ValueError(f"{name} must be ≥ 0, got {weight}")
                if weight > 0 and technique not in self.training_techniques:
                    supported = list(self.training_techniques) or "none"
                    raise ValueError(
                        f"{name} > 0 asks for {technique!r} training, which {type(self).__name__} "
                        f"(model_type {self.model_type!r}) does not support; it supports: {supported}"
                    )
        if self.bag_of_ngrams_weight > 1:
            raise ValueError(
                "bag_of_ngrams_weight mixes the loss with the cross-entropy: it must lie in [0, 1], "
                f"got {self.bag_of_ngrams_weight}"
            )
        if not 1 <= self.bag_of_ngrams_order <= 4:
            raise ValueError(f"bag_of_ngrams_order must lie in 1..4, got {self.bag_of_ngrams_order}")
        if self.reconstruction_layers < 1:
            raise ValueError(f"reconstruction_layers must be ≥ 1, got {self.reconstruction_layers}")
        for name in ("hint_student_threshold", "hint_teacher_threshold"):
            if not -1.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} is a cosine similarity: it must lie in [-1, 1], got {getattr(self, name)}")

    def _check_known_fields(self, extra: dict) -> None:
        """Raise ``ValueError`` for keywords that are no field of this config (a misspelt field,
        e.g. ``draft_nosie_prob``, would otherwise be stored and silently ignored), listing the
        valid fields. What transformers itself passes or writes is accepted."""
        unknown = sorted(set(extra) - set(self.attribute_map) - _TRANSFORMERS_KEYWORDS)
        if unknown:
            fields = sorted(field.name for field in dataclasses.fields(self) if not field.name.startswith("_"))
            close = {name: difflib.get_close_matches(name, fields, n=1) for name in unknown}
            hints = "".join(f" ({name}: did you mean {match[0]!r}?)" for name, match in close.items() if match)
            raise ValueError(
                f"{type(self).__name__} (model_type {self.model_type!r}) got unknown field(s) "
                f"{unknown}{hints}; its fields are {fields}"
            )

    def _check_field_types(self) -> None:
        """Raise ``ValueError`` for a field of this config or a family's whose value does not have
        the declared type (e.g. ``"encoder_layers": "2"`` in a hand-edited config.json)."""
        for cls in type(self).__mro__:
            if not (isinstance(cls, type) and issubclass(cls, NATConfig)):
                continue
            for name, annotation in vars(cls).get("__annotations__", {}).items():
                value = getattr(self, name, None)
                allowed = typing.get_args(annotation) if isinstance(annotation, types.UnionType) else (annotation,)
                if value is None and type(None) in allowed:
                    continue
                if not any(_has_type(value, kind) for kind in allowed):
                    names = " or ".join(getattr(kind, "__name__", str(kind)) for kind in allowed)
                    raise ValueError(f"{type(self).__name__}.{name} must be {names}, got {value!r}")

    def special_token_ids(self) -> list[int]:
        """Ids a decoder never emits as content: pad, bos, eos, mask, placeholder, blank (unk stays allowed)."""
        ids = [
            self.pad_token_id,
            self.bos_token_id,
            self.eos_token_id,
            self.mask_token_id,
            self.placeholder_token_id,
            self.blank_token_id,
        ]
        return sorted({i for i in ids if i is not None})


def _has_type(value, kind) -> bool:
    """Whether a config value fits a declared field type (an int is a valid float, a bool is no number)."""
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:
        return isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if kind is float:
        return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if kind is type(None):
        return value is None
    return isinstance(value, kind) if isinstance(kind, type) else True
