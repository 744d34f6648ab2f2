"""The pretrained-model base and the encoder-decoder backbone shared by hf_nat families."""

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from torch import nn
from transformers import PreTrainedModel
from transformers.utils import ModelOutput

from .configuration_nat import NATConfig
from .nat_layers import EncoderState, LengthPredictor, NATDecoder, NATEncoder
from .nat_sequences import left_align
from .nat_sources import SOURCE_INPUT_NAMES, source_front_end

__all__ = ["NATModel", "NATModelOutput", "NATPreTrainedModel", "NATSeq2SeqLMOutput", "compact_targets", "length_loss"]


@dataclass
class NATModelOutput(ModelOutput):
    """Backbone output: decoder states, length logits and the encoder output."""

    last_hidden_state: torch.Tensor | None = None
    length_logits: torch.Tensor | None = None
    encoder_last_hidden_state: torch.Tensor | None = None


@dataclass
class NATSeq2SeqLMOutput(ModelOutput):
    """Output of a family's ``forward``: the total loss, its named parts, and the logits.

    ``logits`` covers only the positions the family scores (e.g. CMLM's masked positions, in
    row-major order) when labels are given, and every position otherwise.
    """

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    length_logits: torch.Tensor | None = None
    losses: dict | None = None
    encoder_last_hidden_state: torch.Tensor | None = None


_INTEGER_DTYPES = (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8)


class NATPreTrainedModel(PreTrainedModel):
    """Base class of every hf_nat model: config class, weight init, checkpoint conventions."""

    config_class = NATConfig
    base_model_prefix = "model"
    main_input_name = "input_ids"
    _supports_sdpa = True
    is_nat = True
    # Losses are per-batch means: transformers' Trainer must scale them for gradient accumulation
    # and data parallelism itself (it would skip that for models taking **kwargs).
    accepts_loss_kwargs = False

    def __init__(self, config, *args, **kwargs):
        super().__init__(config, *args, **kwargs)
        if config.source_modality != "text":
            # What transformers' pipelines and Trainer read to find the source in a batch.
            self.main_input_name = SOURCE_INPUT_NAMES[config.source_modality]

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        """``PreTrainedModel.from_pretrained``, strict: a corrupt weights file raises an OSError
        naming it, and weights that do not fit this family (tensors missing or of another shape,
        tensors left over unless a part such as the backbone is loaded from the whole model, a
        config.json naming another family than the saved class's) raise a ValueError."""
        wants_info = kwargs.pop("output_loading_info", False)
        try:
            model, info = super().from_pretrained(
                pretrained_model_name_or_path, *args, output_loading_info=True, **kwargs
            )
        except SafetensorError as error:
            raise OSError(
                f"corrupt or unreadable weights in {pretrained_model_name_or_path} (model.safetensors): {error}"
            ) from error
        saved_by = [c for c in _subclasses(NATPreTrainedModel) if c.__name__ in (model.config.architectures or [])]
        for saved_class in saved_by:
            if saved_class.config_class.model_type != model.config.model_type:
                raise ValueError(
                    f"{pretrained_model_name_or_path}/config.json says model_type "
                    f"{model.config.model_type!r}, but its weights were saved by {saved_class.__name__} "
                    f"(model_type {saved_class.config_class.model_type!r})"
                )
        kinds = ["missing_keys", "mismatched_keys"]
        if not any(saved_class is not cls for saved_class in saved_by):
            kinds.append(
                "unexpected_keys"
            )  # a part (e.g. AutoModel's backbone) loaded from a whole model skips the rest
        misfits = {kind: sorted(info.get(kind) or []) for kind in kinds}
        if any(misfits.values()):
            raise ValueError(
                f"the weights in {pretrained_model_name_or_path} do not fit "
                f"{cls.__name__} (model_type {model.config.model_type!r}): "
                + "; ".join(f"{kind.replace('_', ' ')} {keys[:5]}" for kind, keys in misfits.items() if keys)
            )
        return (model, info) if wants_info else model

    def post_init(self):
        """``PreTrainedModel.post_init``, after dropping the weight ties of optional submodules
        that this configuration leaves out (attributes set to None)."""
        if self._tied_weights_keys:
            self._tied_weights_keys = {
                target: source for target, source in self._tied_weights_keys.items() if self._has_parameter(target)
            }
        super().post_init()

    def _has_parameter(self, path: str) -> bool:
        """Whether the dotted parameter ``path`` exists (a part left out is None or another module)."""
        module = self
        for name in path.split("."):
            module = getattr(module, name, None)
            if module is None:
                return False
        return True

    def get_input_embeddings(self) -> nn.Embedding:
        """The shared token embedding (of the backbone under ``self.model``)."""
        return self.model.get_input_embeddings()

    def max_source_positions(self) -> int:
        """The longest source the model accepts, in the source's own positions: tokens, or for an
        audio source feature frames."""
        return self.config.max_position_embeddings * self._frames_per_source_position()

    def _frames_per_source_position(self) -> int:
        """Feature frames per encoder state of an audio source (1 for text)."""
        if self.config.source_modality == "audio":
            return 2**self.config.subsampling_conv_layers
        return 1

    def _check_inputs(
        self,
        input_ids: torch.Tensor | None,
        input_features: torch.Tensor | None,
        attention_mask: torch.Tensor | None,
        pixel_values: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The checked source of the config's modality: (input_ids, mask) as :meth:`_check_source`
        gives them for text, (input_features, mask) as :meth:`_check_features` for audio,
        (pixel_values, mask) as :meth:`_check_pixels` for images. Passing another modality's input
        is an error that names the right one."""
        modality = self.config.source_modality
        given = {"input_ids": input_ids, "input_features": input_features, "pixel_values": pixel_values}
        wanted = SOURCE_INPUT_NAMES[modality]
        others = [name for name, value in given.items() if value is not None and name != wanted]
        if others:
            raise ValueError(f"{type(self).__name__} reads {modality} sources ({wanted}), got {others[0]}")
        if given[wanted] is None:
            raise ValueError(f"{type(self).__name__} needs {wanted}")
        if modality == "audio":
            return self._check_features(input_features, attention_mask)
        if modality == "image":
            return self._check_pixels(pixel_values, attention_mask)
        return self._check_source(input_ids, attention_mask)

    def _check_pixels(
        self, pixel_values: torch.Tensor, attention_mask: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Validate a batch of images (B, C, H, W) at the vision model's size (what the model's
        image processor makes); return (pixel_values, mask (B, 1) of ones). Images have no
        padding, so an ``attention_mask`` is an error, as are non-finite pixels."""
        vision = self.config.vision_config
        channels = vision.get("num_channels", 3)
        if not isinstance(pixel_values, torch.Tensor) or not pixel_values.is_floating_point():
            kind = pixel_values.dtype if isinstance(pixel_values, torch.Tensor) else type(pixel_values).__name__
            raise TypeError(f"pixel_values must be a float tensor (batch, {channels}, height, width), got {kind}")
        size = vision.get("image_size")
        size = (size, size) if isinstance(size, int) else tuple(size) if size else None
        if pixel_values.dim() != 4 or pixel_values.shape[1] != channels or (size and pixel_values.shape[2:] != size):
            expected = f"(batch, {channels}, {size[0]}, {size[1]})" if size else f"(batch, {channels}, height, width)"
            raise ValueError(
                f"pixel_values must be {expected} (the model's image processor resizes images to it), "
                f"got shape {tuple(pixel_values.shape)}"
            )
        if attention_mask is not None:
            raise ValueError("images take no attention_mask: every image is resized to one size, nothing is padded")
        if not torch.isfinite(pixel_values).all():
            raise ValueError("pixel_values hold NaN or infinite values")
        return pixel_values, torch.ones(pixel_values.shape[0], 1, dtype=torch.long, device=pixel_values.device)

    def _check_features(
        self, input_features: torch.Tensor, attention_mask: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Validate a batch of audio features (B, T, num_mel_bins), right-padded, real frames marked
        by ``attention_mask`` (B, T) (every frame when absent); return (features, mask) with
        all-padding frames dropped. Non-finite features (NaN or inf samples upstream) are an error."""
        bins = self.config.num_mel_bins
        if not isinstance(input_features, torch.Tensor) or not input_features.is_floating_point():
            kind = input_features.dtype if isinstance(input_features, torch.Tensor) else type(input_features).__name__
            raise TypeError(f"input_features must be a float tensor (batch, frames, {bins}), got {kind}")
        if input_features.dim() != 3 or input_features.shape[-1] != bins:
            raise ValueError(
                f"input_features must be (batch, frames, {bins}) log-mel features (the model's feature "
                f"extractor makes them), got shape {tuple(input_features.shape)}"
            )
        if attention_mask is None:
            keep = torch.ones(input_features.shape[:2], dtype=torch.bool, device=input_features.device)
        else:
            if not isinstance(attention_mask, torch.Tensor) or attention_mask.shape != input_features.shape[:2]:
                shape = tuple(attention_mask.shape) if isinstance(attention_mask, torch.Tensor) else attention_mask
                raise ValueError(
                    f"attention_mask must be (batch, frames) {tuple(input_features.shape[:2])}, got {shape}"
                )
            keep = attention_mask.bool()
            if keep.shape[1] > 1 and (keep[:, 1:] & ~keep[:, :-1]).any():
                raise ValueError("attention_mask of audio features must mark a prefix of each row (right padding)")
        if not torch.isfinite(input_features[keep]).all():
            raise ValueError(
                "input_features hold NaN or infinite values: the audio had NaN/inf samples (or the feature "
                "extractor normalised a silent clip by zero variance)"
            )
        return self._trim_padding_columns(
            input_features,
            keep,
            attention_mask,
            lambda used, limit: (
                f"audio of {used} frames exceeds the model's {limit} frames; "
                f"cut it into chunks (the speech pipeline does: chunk_length_s)"
            ),
        )

    def _trim_padding_columns(self, source, keep, attention_mask, too_long) -> tuple[torch.Tensor, torch.Tensor]:
        """(source, mask) without the columns that are padding in every row; a source longer than
        :meth:`max_source_positions` raises ``ValueError(too_long(used, limit))``. The mask keeps
        the given ``attention_mask``'s dtype (long when none was given)."""
        used = int(keep.sum(1).max()) if keep.numel() else 0
        source, keep = source[:, :used], keep[:, :used]
        if used > self.max_source_positions():
            raise ValueError(too_long(used, self.max_source_positions()))
        return source, keep.to(attention_mask.dtype if attention_mask is not None else torch.long)

    def _check_source(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Validate a source batch; return (input_ids, attention_mask) with every row's tokens
        moved to the front (left padding, or any mask with holes, becomes right padding) and
        all-padding columns dropped. The mask is derived from pad when absent."""
        if not isinstance(input_ids, torch.Tensor):
            raise TypeError(
                f"input_ids must be a torch.Tensor of token ids (batch, length), got "
                f"{type(input_ids).__name__}; tokenize with return_tensors='pt'"
            )
        if input_ids.dtype not in _INTEGER_DTYPES:
            raise TypeError(f"input_ids must hold integer token ids, got dtype {input_ids.dtype}")
        if input_ids.dim() != 2:
            raise ValueError(f"input_ids must be (batch, length), got shape {tuple(input_ids.shape)}")
        if input_ids.numel() and (int(input_ids.min()) < 0 or int(input_ids.max()) >= self.config.vocab_size):
            raise ValueError(
                f"input_ids must lie in [0, {self.config.vocab_size}) (the vocabulary), got values in "
                f"[{int(input_ids.min())}, {int(input_ids.max())}]"
            )
        if attention_mask is None:
            keep = input_ids.ne(self.config.pad_token_id)
        else:
            if not isinstance(attention_mask, torch.Tensor) or attention_mask.shape != input_ids.shape:
                shape = (
                    tuple(attention_mask.shape) if isinstance(attention_mask, torch.Tensor) else type(attention_mask)
                )
                raise ValueError(
                    f"attention_mask must be a tensor of the shape of input_ids {tuple(input_ids.shape)}, got {shape}"
                )
            if (
                attention_mask.is_floating_point()
                or attention_mask.is_complex()
                or (attention_mask.numel() and not attention_mask.eq(0).logical_or(attention_mask.eq(1)).all())
            ):
                raise ValueError("attention_mask must hold 0/1 or True/False")
            keep = attention_mask.bool()
        if keep.shape[1] > 1 and (keep[:, 1:] & ~keep[:, :-1]).any():  # a real token after padding
            input_ids = left_align(input_ids, keep, self.config.pad_token_id)
            keep = left_align(keep, keep, False)
        return self._trim_padding_columns(
            input_ids,
            keep,
            attention_mask,
            lambda used, limit: (
                f"source of {used} tokens exceeds the model's {limit} source positions; tokenize with truncation=True"
            ),
        )


def _subclasses(cls: type) -> list[type]:
    """Every class derived from ``cls`` that has been imported."""
    found = []
    for sub in cls.__subclasses__():
        found += [sub, *_subclasses(sub)]
    return found


class NATModel(NATPreTrainedModel):
    """Shared token embedding, encoder, non-causal decoder and length predictor."""

    _tied_weights_keys = {
        "encoder.embed.embed_tokens.weight": "shared.weight",
        "decoder.embed.embed_tokens.weight": "shared.weight",
    }
    # Families whose output length follows from something else (CTC: the upsampled source) set
    # this to False: a parameter without gradient would break data-parallel training.
    predicts_length = True

    def __init__(self, config: NATConfig):
        super().__init__(config)
        self.shared = nn.Embedding(config.vocab_size, config.d_model, config.pad_token_id)
        self.encoder = NATEncoder(config, self.shared, source_front_end(config))
        self.decoder = NATDecoder(config, self.shared)
        self.length_predictor = (
            LengthPredictor(config.d_model, config.max_position_embeddings) if self.predicts_length else None
        )
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.shared

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.shared = value
        if self.encoder.reads_tokens:
            self.encoder.embed.embed_tokens = value
        self.decoder.embed.embed_tokens = value

    def encode(self, source: torch.Tensor, attention_mask: torch.Tensor, cache_cross_kv: bool = False) -> EncoderState:
        """Run the encoder over a checked source (token ids (B, S), audio features (B, T, F) with
        ``attention_mask`` (B, T), or pixels (B, C, H, W)); with ``cache_cross_kv`` also precompute the decoder's
        cross-attention keys/values. The state keeps the source tokens of a text source."""
        hidden, keep = self.encoder(source, attention_mask)
        kv = self.decoder.cross_kv(hidden) if cache_cross_kv else None
        tokens = source if self.encoder.reads_tokens else None
        return EncoderState(hidden=hidden, keep=keep, cross_kv=kv, input_ids=tokens)

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        decoder_input_ids: torch.Tensor | None = None,
        input_features: torch.Tensor | None = None,
        pixel_values: torch.Tensor | None = None,
        **kwargs,
    ) -> NATModelOutput:
        """Encode the source, predict its target length and, given decoder ids, decode them."""
        source, attention_mask = self._check_inputs(input_ids, input_features, attention_mask, pixel_values)
        encoder = self.encode(source, attention_mask)
        hidden = None
        if decoder_input_ids is not None:
            hidden = self.decoder(decoder_input_ids.ne(self.config.pad_token_id), encoder, decoder_input_ids)
        length_logits = self.length_predictor(encoder) if self.length_predictor is not None else None
        return NATModelOutput(
            last_hidden_state=hidden, length_logits=length_logits, encoder_last_hidden_state=encoder.hidden
        )


def compact_targets(labels: torch.Tensor, config: NATConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Strip specials from ``labels`` and left-align what remains.

    Labels follow transformers' convention (padding = -100, eos appended, maybe a bos); NAT
    families predict only the content tokens. Returns (targets padded with pad, lengths).
    """
    drop = {-100, config.pad_token_id, config.bos_token_id, config.eos_token_id}
    content = torch.ones_like(labels, dtype=torch.bool)
    for token in drop:
        if token is not None:
            content &= labels.ne(token)
    return left_align(labels, content, config.pad_token_id), content.sum(1)


def length_loss(length_logits: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the length predictor; lengths beyond its range count as the last class."""
    return F.cross_entropy(length_logits.float(), lengths.clamp(max=length_logits.shape[-1] - 1))
