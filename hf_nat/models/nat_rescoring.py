"""Rescoring NAT candidates with an autoregressive model (the scoring half of noisy parallel decoding).

Any transformers encoder-decoder that shares the NAT model's tokenizer can act as the scorer: the
candidates of every source are scored by its teacher-forced log-likelihood in one batched pass,
with the source encoded once per sentence rather than once per candidate, and a candidate that
occurs several times for the same source scored once.
"""

import torch
from transformers.modeling_outputs import BaseModelOutput

from .nat_sequences import distinct_per_source
from .nat_sources import SOURCE_INPUT_NAMES

__all__ = ["check_rescorer", "rescore_candidates", "with_eos"]

_LOGITS_PER_CHUNK = 2**26  # 256 MiB of float32 logits per scoring pass


def check_rescorer(rescorer, config) -> None:
    """Raise ``ValueError`` unless ``rescorer`` is a seq2seq model that can score ``config``'s tokens."""
    scorer_config = getattr(rescorer, "config", None)
    if scorer_config is None or not getattr(scorer_config, "is_encoder_decoder", False):
        raise ValueError(f"rescorer must be a transformers encoder-decoder model, got {type(rescorer).__name__}")
    if getattr(rescorer, "is_nat", False):
        raise ValueError(
            f"rescorer must be an autoregressive model (e.g. the distillation teacher); "
            f"{type(rescorer).__name__} is a non-autoregressive hf_nat model"
        )
    reads = getattr(rescorer, "main_input_name", "input_ids")
    wanted = SOURCE_INPUT_NAMES[getattr(config, "source_modality", "text")]
    if reads != wanted:
        raise ValueError(f"rescorer must read the model's sources ({wanted}); {type(rescorer).__name__} reads {reads}")
    for name in ("pad_token_id", "eos_token_id"):
        if getattr(scorer_config, name, None) != getattr(config, name):
            raise ValueError(
                f"rescorer must share the model's tokenizer: its {name} is "
                f"{getattr(scorer_config, name, None)}, the model's is {getattr(config, name)}"
            )
    vocab = rescorer.get_output_embeddings().weight.shape[0]
    if vocab < config.vocab_size:
        raise ValueError(
            f"rescorer must share the model's tokenizer: its vocabulary has {vocab} entries, "
            f"the model's {config.vocab_size}"
        )
    if getattr(scorer_config, "decoder_start_token_id", None) is None:
        raise ValueError("rescorer.config.decoder_start_token_id is not set")


def with_eos(tokens: torch.Tensor, pad_token_id: int, eos_token_id: int) -> torch.Tensor:
    """Content tokens (left-aligned, pad after) → content, eos, pad (one column wider)."""
    lengths = tokens.ne(pad_token_id).sum(1, keepdim=True)
    out = torch.nn.functional.pad(tokens, (0, 1), value=pad_token_id)
    return out.scatter(1, lengths, eos_token_id)


@torch.inference_mode()
def rescore_candidates(
    rescorer,
    source: torch.Tensor,
    attention_mask: torch.Tensor,
    candidates: torch.Tensor,
    source_index: torch.Tensor,
    pad_token_id: int,
    eos_token_id: int,
    length_penalty: float = 1.0,
) -> torch.Tensor:
    """Score each candidate by ``log p_AR(candidate + eos | source) / length ** length_penalty``.

    ``source``/``attention_mask`` (B, S) are the sources (token ids, (B, S, F) features for a
    speech rescorer, (B, C, H, W) pixels for a vision one: whatever its ``main_input_name`` reads),
    ``candidates`` (N, T) content tokens padded with pad and ``source_index`` (N,) the source of
    each candidate. The rescorer may live on another device or in another dtype; the (N,) float32
    scores come back on the candidates' device.
    """
    device = rescorer.device
    # Noisy parallel decoding often draws the same hypothesis many times: score each once.
    source_index, candidates, inverse = distinct_per_source(source_index, candidates)
    labels = with_eos(candidates, pad_token_id, eos_token_id).to(device)
    start = torch.full_like(labels[:, :1], rescorer.config.decoder_start_token_id)
    decoder_input_ids = torch.cat([start, labels[:, :-1]], dim=1)
    # The decoder is causal: pad after eos never influences the scored positions.
    source_mask = attention_mask.to(device)
    source_name = getattr(rescorer, "main_input_name", "input_ids")
    source = source.to(device, rescorer.dtype) if source.is_floating_point() else source.to(device)
    images = source_name == "pixel_values"  # a vision encoder takes no mask: images are not padded
    encoded = rescorer.get_encoder()(**{source_name: source}, **({} if images else {"attention_mask": source_mask}))
    index = source_index.to(device)
    scored = labels.ne(pad_token_id)
    total = torch.empty(labels.shape[0], device=device)
    # Candidates go through in chunks so that the (rows, length, vocabulary) logits stay within
    # _LOGITS_PER_CHUNK elements (e.g. 100 noisy-parallel-decoding samples × 64 sources).
    vocab = rescorer.get_output_embeddings().weight.shape[0]
    rows = max(1, _LOGITS_PER_CHUNK // max(labels.shape[1] * vocab, 1))
    for start in range(0, labels.shape[0], rows):
        part = slice(start, start + rows)
        encoder_outputs = BaseModelOutput(last_hidden_state=encoded.last_hidden_state.index_select(0, index[part]))
        mask = {} if images else {"attention_mask": source_mask.index_select(0, index[part])}
        logits = rescorer(
            encoder_outputs=encoder_outputs, decoder_input_ids=decoder_input_ids[part], **mask
        ).logits.float()
        token_logits = logits.gather(-1, labels[part].unsqueeze(-1)).squeeze(-1)
        total[part] = ((token_logits - logits.logsumexp(-1)) * scored[part]).sum(1)
    length = scored.sum(1).clamp(min=1).float()
    return (total / length.pow(length_penalty)).to(candidates.device, torch.float32)[inverse]
