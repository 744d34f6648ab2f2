"""Encoder front ends for sources that are not token ids: what turns a family's source into the
(B, S, D) states and (B, S) real-position mask that the shared encoder layers read.

Text sources keep :class:`nat_layers.TokenEmbedding`; an audio source is a sequence of log-mel
feature frames (what a transformers feature extractor such as ``Speech2TextFeatureExtractor``
returns as ``input_features``), shortened by strided convolutions before the encoder; an image
(``pixel_values`` from a transformers image processor) is encoded by a transformers vision model.

Imports only torch, transformers and the sibling ``nat_layers``, so a Hub checkpoint folder copies
it as it is.
"""

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoConfig, AutoModel

from .nat_layers import sinusoidal_positions

__all__ = ["SOURCE_INPUT_NAMES", "SpeechSubsampler", "VisionFrontEnd", "source_front_end", "subsampled_lengths"]

# The batch key of each source modality, as transformers names it.
SOURCE_INPUT_NAMES = {"text": "input_ids", "audio": "input_features", "image": "pixel_values"}


def source_front_end(config) -> nn.Module | None:
    """The encoder front end of ``config.source_modality``: None for text (the encoder embeds
    tokens itself), a :class:`SpeechSubsampler` for audio, a :class:`VisionFrontEnd` for images."""
    if config.source_modality == "audio":
        return SpeechSubsampler(config)
    if config.source_modality == "image":
        return VisionFrontEnd(config)
    return None


class VisionFrontEnd(nn.Module):
    """Pixels (B, C, H, W) → encoder input states (B, S, D): a transformers vision model built from
    ``config.vision_config`` (a ViT's patch states, or a CNN's last feature map read as h·w
    states), projected to ``d_model`` when its width differs, then dropout. Every state is real:
    the image processor resizes every image to one size, so nothing is padded.
    """

    def __init__(self, config):
        super().__init__()
        fields = dict(config.vision_config)
        self.vision = AutoModel.from_config(AutoConfig.for_model(fields.pop("model_type"), **fields))
        vision = self.vision.config
        width = getattr(vision, "hidden_size", None) or vision.hidden_sizes[-1]
        self.project = nn.Linear(width, config.d_model) if width != config.d_model else nn.Identity()
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, pixel_values: torch.Tensor, keep: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """States (B, S, D) and their mask (B, S), all True, of ``pixel_values`` (B, C, H, W);
        ``keep`` (B, 1) is the image-level mask the source check makes."""
        states = self.vision(pixel_values=pixel_values).last_hidden_state
        if states.dim() == 4:  # a CNN's feature map (B, C, h, w)
            states = states.flatten(2).transpose(1, 2)  # (B, h·w, C)
        x = self.dropout(self.project(states))  # (B, S, D)
        return x, torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)


def subsampled_lengths(lengths: torch.Tensor, layers: int) -> torch.Tensor:
    """Frames left of ``lengths`` (any shape, integer) after ``layers`` convolutions of stride 2
    that pad by half their (odd) kernel: each halves a length, rounding up."""
    for _ in range(layers):
        lengths = torch.div(lengths + 1, 2, rounding_mode="floor")
    return lengths


class SpeechSubsampler(nn.Module):
    """Log-mel frames (B, T, num_mel_bins) → encoder input states (B, ⌈T / 2^layers⌉, D).

    ``subsampling_conv_layers`` 1-D convolutions of stride 2, each followed by a GLU (the
    Speech2Text front end), then sinusoidal positions and dropout. Frames past a row's length are
    zeroed before every convolution, so a clip's states do not depend on how much padding its batch
    adds (batch invariance): a padded row sees exactly the zeros an unpadded row's convolution pads.
    """

    def __init__(self, config):
        super().__init__()
        kernel = config.subsampling_conv_kernel_size
        widths = [config.num_mel_bins] + [config.subsampling_conv_channels] * (config.subsampling_conv_layers - 1)
        outputs = widths[1:] + [config.d_model]
        self.convs = nn.ModuleList(
            nn.Conv1d(width, 2 * out, kernel, stride=2, padding=kernel // 2) for width, out in zip(widths, outputs)
        )
        self.scale = config.d_model**0.5 if config.scale_embedding else 1.0
        self.dropout = nn.Dropout(config.dropout)
        self.max_positions = config.max_position_embeddings

    @property
    def frames_per_state(self) -> int:
        """Input frames per output state."""
        return 2 ** len(self.convs)

    def forward(self, features: torch.Tensor, keep: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """States (B, S, D) and their real-position mask (B, S) of ``features`` (B, T, F) whose
        real frames ``keep`` (B, T) marks (right-padded)."""
        lengths = keep.sum(1)
        x = features.transpose(1, 2)  # (B, F, T)
        for conv in self.convs:
            real = torch.arange(x.shape[-1], device=x.device)[None, :] < lengths[:, None]  # (B, T_i)
            x = F.glu(conv(x * real[:, None, :].to(x.dtype)), dim=1)  # (B, C, ⌈T_i/2⌉)
            lengths = subsampled_lengths(lengths, 1)
        x = x.transpose(1, 2) * self.scale  # (B, S, D)
        if x.shape[1] > self.max_positions:
            raise ValueError(
                f"audio of {features.shape[1]} frames makes {x.shape[1]} encoder states, more than the model's "
                f"max_position_embeddings={self.max_positions}; cut the audio into chunks"
            )
        positions = sinusoidal_positions(x.shape[1], x.shape[-1], x.device, x.dtype)
        out_keep = torch.arange(x.shape[1], device=x.device)[None, :] < lengths[:, None]
        return self.dropout(x + positions), out_keep
