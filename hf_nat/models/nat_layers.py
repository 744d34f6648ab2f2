"""Building blocks shared by every hf_nat family: attention on SDPA, transformer layers,
embeddings, the encoder state, the encoder, the non-causal decoder and the length predictor.

Everything here imports only torch, so a Hub checkpoint folder that copies this file needs
nothing but torch and transformers.
"""

import math
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "Attention",
    "DecoderLayer",
    "EncoderLayer",
    "EncoderState",
    "FeedForward",
    "LengthPredictor",
    "NATDecoder",
    "NATEncoder",
    "TokenEmbedding",
    "padding_to_attn_mask",
    "sinusoidal_positions",
]

_ACTIVATIONS = {"relu": F.relu, "gelu": F.gelu, "silu": F.silu}


def padding_to_attn_mask(keep: torch.Tensor) -> torch.Tensor:
    """Turn a (B, S) bool "is a real token" mask into the (B, 1, 1, S) mask SDPA broadcasts."""
    return keep[:, None, None, :]


class Attention(nn.Module):
    """Multi-head attention on ``scaled_dot_product_attention``; self- or cross-attention.

    For cross-attention the key/value projections of the encoder output can be computed once
    (:meth:`project_kv`) and reused at every refinement step.
    """

    def __init__(self, d_model: int, num_heads: int, dropout: float = 0.0):
        super().__init__()
        if d_model % num_heads:
            raise ValueError(f"d_model={d_model} is not divisible by num_heads={num_heads}")
        self.num_heads = num_heads
        self.head_dim = d_model // num_heads
        self.dropout = dropout
        self.q_proj = nn.Linear(d_model, d_model)
        self.k_proj = nn.Linear(d_model, d_model)
        self.v_proj = nn.Linear(d_model, d_model)
        self.out_proj = nn.Linear(d_model, d_model)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, _ = x.shape
        return x.view(batch, length, self.num_heads, self.head_dim).transpose(1, 2)

    def project_kv(self, memory: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Key and value heads of ``memory`` (B, S, D) → two (B, H, S, D/H) tensors."""
        return self._split(self.k_proj(memory)), self._split(self.v_proj(memory))

    def forward(
        self,
        query: torch.Tensor,
        key_mask: torch.Tensor,
        memory: torch.Tensor | None = None,
        kv: tuple[torch.Tensor, torch.Tensor] | None = None,
        causal: bool = False,
        return_weights: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Attend from ``query`` (B, T, D) to ``memory`` (self-attention when None) or to
        precomputed ``kv``; ``key_mask`` (B, S) is True on real key positions; ``causal``: query t
        sees keys ≤ t only. With ``return_weights`` also the attention probabilities (B, H, T, S),
        computed explicitly (SDPA does not return them), with gradients."""
        if kv is None:
            kv = self.project_kv(query if memory is None else memory)
        q = self._split(self.q_proj(query))
        mask = padding_to_attn_mask(key_mask)
        if causal:
            length = q.shape[2]
            mask = mask & torch.ones(length, length, dtype=torch.bool, device=q.device).tril()
        weights = None
        if return_weights:
            scores = (q @ kv[0].transpose(-1, -2)) / math.sqrt(self.head_dim)  # (B, H, T, S)
            weights = scores.float().masked_fill(~mask, float("-inf")).softmax(-1).to(q.dtype)
            dropped = F.dropout(weights, self.dropout, self.training)
            out = dropped @ kv[1]  # (B, H, T, D/H)
        else:
            out = F.scaled_dot_product_attention(
                q, kv[0], kv[1], attn_mask=mask, dropout_p=self.dropout if self.training else 0.0
            )
        batch, _, length, _ = out.shape
        out = self.out_proj(out.transpose(1, 2).reshape(batch, length, -1))
        return (out, weights) if return_weights else out


class FeedForward(nn.Module):
    """Position-wise two-layer feed-forward block."""

    def __init__(self, d_model: int, ffn_dim: int, activation: str, dropout: float):
        super().__init__()
        self.fc1 = nn.Linear(d_model, ffn_dim)
        self.fc2 = nn.Linear(ffn_dim, d_model)
        self.activation = _ACTIVATIONS[activation]
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.dropout(self.activation(self.fc1(x))))


class EncoderLayer(nn.Module):
    """Pre-norm transformer encoder layer."""

    def __init__(self, config):
        super().__init__()
        d = config.d_model
        self.self_attn = Attention(d, config.encoder_attention_heads, config.attention_dropout)
        self.self_attn_layer_norm = nn.LayerNorm(d)
        self.ffn = FeedForward(d, config.encoder_ffn_dim, config.activation_function, config.activation_dropout)
        self.ffn_layer_norm = nn.LayerNorm(d)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        x = x + self.dropout(self.self_attn(self.self_attn_layer_norm(x), keep))
        return x + self.dropout(self.ffn(self.ffn_layer_norm(x)))


class DecoderLayer(nn.Module):
    """Pre-norm non-causal decoder layer: bidirectional self-attention, cross-attention, FFN."""

    def __init__(self, config):
        super().__init__()
        d = config.d_model
        self.self_attn = Attention(d, config.decoder_attention_heads, config.attention_dropout)
        self.self_attn_layer_norm = nn.LayerNorm(d)
        self.cross_attn = Attention(d, config.decoder_attention_heads, config.attention_dropout)
        self.cross_attn_layer_norm = nn.LayerNorm(d)
        self.ffn = FeedForward(d, config.decoder_ffn_dim, config.activation_function, config.activation_dropout)
        self.ffn_layer_norm = nn.LayerNorm(d)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x, keep, memory_keep, memory_kv, causal: bool = False, return_cross_attention: bool = False):
        """The layer's output (B, T, D); with ``return_cross_attention`` also its cross-attention
        probabilities (B, H, T, S). ``causal`` masks the self-attention to earlier positions (the
        autoregressive decoders built from this layer)."""
        x = x + self.dropout(self.self_attn(self.self_attn_layer_norm(x), keep, causal=causal))
        attended = self.cross_attn(
            self.cross_attn_layer_norm(x), memory_keep, kv=memory_kv, return_weights=return_cross_attention
        )
        attended, weights = attended if return_cross_attention else (attended, None)
        x = x + self.dropout(attended)
        x = x + self.dropout(self.ffn(self.ffn_layer_norm(x)))
        return (x, weights) if return_cross_attention else x


def sinusoidal_positions(length: int, dim: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """Fixed sinusoidal position encodings (length, dim): sines in the first half, cosines in the second."""
    half = dim // 2
    frequencies = torch.exp(
        torch.arange(half, device=device, dtype=torch.float32) * (-math.log(10000.0) / max(half - 1, 1))
    )
    angles = torch.arange(length, device=device, dtype=torch.float32)[:, None] * frequencies[None, :]
    table = torch.cat([angles.sin(), angles.cos()], dim=1)
    if dim % 2:
        table = F.pad(table, (0, 1))
    return table.to(dtype)


class TokenEmbedding(nn.Module):
    """Scaled token embedding plus sinusoidal positions, then dropout.

    Fixed positions keep the same scale as the sqrt(d)-scaled token embeddings from the first
    update, which the non-causal decoder needs to align target with source positions.
    """

    def __init__(self, config, embed_tokens: nn.Embedding):
        super().__init__()
        self.embed_tokens = embed_tokens
        self.scale = config.d_model**0.5 if config.scale_embedding else 1.0
        self.dropout = nn.Dropout(config.dropout)
        self.max_positions = config.max_position_embeddings

    def token_embeds(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Scaled token embeddings (B, T, D) of ``input_ids`` (B, T), without positions: what
        decoder inputs built from tokens elsewhere (glancing, alignments, copied source) add up."""
        return self.embed_tokens(input_ids) * self.scale

    def forward(self, input_ids: torch.Tensor | None = None, inputs_embeds: torch.Tensor | None = None):
        """Embed ids (B, T), or add positions to given token embeddings (B, T, D)."""
        if inputs_embeds is None:
            inputs_embeds = self.token_embeds(input_ids)
        length = inputs_embeds.shape[1]
        if length > self.max_positions:
            raise ValueError(
                f"sequence of {length} tokens is longer than the model's "
                f"max_position_embeddings={self.max_positions}; truncate the input"
            )
        positions = sinusoidal_positions(length, inputs_embeds.shape[-1], inputs_embeds.device, inputs_embeds.dtype)
        return self.dropout(inputs_embeds + positions)


@dataclass(frozen=True)
class EncoderState:
    """Encoder output reused by every refinement step (for a family without an encoder, only the
    source tokens: ``hidden`` None).

    ``cross_kv`` holds each decoder layer's key/value projections of ``hidden``, so refinement
    steps never recompute them. ``input_ids`` keeps the source tokens for families whose decoder
    input copies source embeddings. ``select`` gathers rows (length beam, active hypotheses).
    """

    hidden: torch.Tensor | None
    keep: torch.Tensor
    cross_kv: tuple[tuple[torch.Tensor, torch.Tensor], ...] | None = None
    input_ids: torch.Tensor | None = None

    def select(self, index: torch.Tensor) -> "EncoderState":
        """The rows ``index`` of this state (with repetition allowed)."""
        kv = None if self.cross_kv is None else tuple((k[index], v[index]) for k, v in self.cross_kv)
        ids = None if self.input_ids is None else self.input_ids[index]
        hidden = None if self.hidden is None else self.hidden[index]
        return replace(self, hidden=hidden, keep=self.keep[index], cross_kv=kv, input_ids=ids)


class NATEncoder(nn.Module):
    """Transformer encoder over the source: token ids through a :class:`TokenEmbedding`, or any
    other source through a ``front_end`` module mapping (source, keep (B, T)) to (states (B, S, D),
    keep (B, S)) (see nat_sources.py)."""

    def __init__(self, config, embed_tokens: nn.Embedding, front_end: nn.Module | None = None):
        super().__init__()
        self.reads_tokens = front_end is None
        self.embed = TokenEmbedding(config, embed_tokens) if front_end is None else front_end
        self.layers = nn.ModuleList(EncoderLayer(config) for _ in range(config.encoder_layers))
        self.layer_norm = nn.LayerNorm(config.d_model)

    def forward(self, source: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Encoder states (B, S, D) and their real-position mask (B, S) of ``source`` (B, T) token
        ids or (B, T, F) features whose real positions ``attention_mask`` (B, T) marks."""
        keep = attention_mask.bool()
        if self.reads_tokens:
            x = self.embed(source)
        else:
            x, keep = self.embed(source, keep)
        for layer in self.layers:
            x = layer(x, keep)
        return self.layer_norm(x), keep


class NATDecoder(nn.Module):
    """Non-causal transformer decoder: every target position sees every other one."""

    def __init__(self, config, embed_tokens: nn.Embedding):
        super().__init__()
        self.embed = TokenEmbedding(config, embed_tokens)
        self.layers = nn.ModuleList(DecoderLayer(config) for _ in range(config.decoder_layers))
        self.layer_norm = nn.LayerNorm(config.d_model)

    def cross_kv(self, memory: torch.Tensor) -> tuple[tuple[torch.Tensor, torch.Tensor], ...]:
        """Each layer's cross-attention key/value heads of the encoder output."""
        return tuple(layer.cross_attn.project_kv(memory) for layer in self.layers)

    def forward(
        self,
        keep: torch.Tensor,
        encoder: EncoderState,
        input_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Decoder states (B, T, D) for target ids or embeddings; ``keep`` (B, T) marks real positions."""
        x = self.embed(input_ids, inputs_embeds)
        kvs = encoder.cross_kv if encoder.cross_kv is not None else self.cross_kv(encoder.hidden)
        for layer, kv in zip(self.layers, kvs):
            x = layer(x, keep, encoder.keep, kv)
        return self.layer_norm(x)

    def forward_with_internals(
        self, keep: torch.Tensor, encoder: EncoderState, inputs_embeds: torch.Tensor
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...], tuple[torch.Tensor, ...]]:
        """What training signals on the decoder's inside read: the final states (B, T, D) as
        :meth:`forward` gives them, every layer's output states (each (B, T, D)) and every layer's
        cross-attention probabilities (each (B, H, T, S))."""
        x = self.embed(inputs_embeds=inputs_embeds)
        kvs = encoder.cross_kv if encoder.cross_kv is not None else self.cross_kv(encoder.hidden)
        states, attentions = [], []
        for layer, kv in zip(self.layers, kvs):
            x, weights = layer(x, keep, encoder.keep, kv, return_cross_attention=True)
            states.append(x)
            attentions.append(weights)
        return self.layer_norm(x), tuple(states), tuple(attentions)


class LengthPredictor(nn.Module):
    """Predicts the target length (0..max_length-1) from the mean-pooled encoder output."""

    def __init__(self, d_model: int, max_length: int):
        super().__init__()
        self.proj = nn.Linear(d_model, max_length)

    def forward(self, encoder: EncoderState) -> torch.Tensor:
        """Length logits (B, max_length)."""
        keep = encoder.keep.unsqueeze(-1).to(encoder.hidden.dtype)
        pooled = (encoder.hidden * keep).sum(1) / keep.sum(1).clamp(min=1)
        return self.proj(pooled)

    @staticmethod
    def top_lengths(logits: torch.Tensor, k: int, min_length: int = 1) -> torch.Tensor:
        """The ``k`` most likely lengths ≥ ``min_length`` per row, best first: (B, k)."""
        logits = logits.clone()
        logits[:, :min_length] = float("-inf")
        return logits.topk(min(k, logits.shape[-1] - min_length), dim=-1).indices
