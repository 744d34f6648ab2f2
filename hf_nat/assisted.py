"""NAT-assisted decoding: a NAT model drafts, the AR model verifies, the output is the AR model's
own greedy decoding (speculative decoding with a NAT drafter, Xia et al., 2023; blockwise parallel
decoding, Stern et al., 2018).

Each round the NAT model drafts the whole continuation of every row's verified prefix in one pass
(up to ``draft_max_tokens``, with eos where the draft reaches the length the NAT predicts), and
the AR model reads prefix and draft in one teacher-forced forward. A row keeps the longest
drafted prefix that matches the AR model's own greedy choices, plus the AR model's next token, so
it advances by at least one token per round and by different amounts in one batch.

``assisted_generate(ar_model, **batch, assistant_model=nat_model)`` runs through
``ar_model.generate(custom_generate=...)``: transformers prepares the generation config, the
encoder pass, the logits processors and the stopping criteria, exactly as for its greedy search.
(``ar_model.generate(assistant_model=nat_model)`` itself cannot take a NAT drafter: transformers'
assisted decoding refuses batches of more than one row and builds its own AR candidate generators.)

The AR cache is one ``DynamicCache`` for the batch, so rows cannot hold caches of different
lengths; it keeps what every row has verified (the shortest row's prefix) and each row re-reads its
verified tokens beyond that in the next round. This needs nothing of the AR model but ``cache``,
``crop`` and ``batch_select_indices``, and keeps its positions exact for any architecture.
"""

import math
from dataclasses import dataclass

import torch
from transformers import GenerationConfig
from transformers.cache_utils import DynamicCache, EncoderDecoderCache
from transformers.generation import logits_process
from transformers.generation.stopping_criteria import EosTokenCriteria, MaxLengthCriteria
from transformers.modeling_outputs import BaseModelOutput
from transformers.utils import ModelOutput

from .models.nat_rescoring import check_rescorer

__all__ = ["NATAssistedOutput", "assisted_generate", "check_assistant", "nat_assisted_decoding"]

# Logits processors that read only their own row's tokens and length: they give the same result
# for a row whatever else is in the batch, so rows at different lengths can be processed together.
_ROW_LOCAL_PROCESSORS = tuple(
    getattr(logits_process, name)
    for name in (
        "ForcedBOSTokenLogitsProcessor",
        "ForcedEOSTokenLogitsProcessor",
        "InfNanRemoveLogitsProcessor",
        "MinLengthLogitsProcessor",
        "MinNewTokensLengthLogitsProcessor",
        "NoBadWordsLogitsProcessor",
        "NoRepeatNGramLogitsProcessor",
        "RepetitionPenaltyLogitsProcessor",
        "SequenceBiasLogitsProcessor",
        "SuppressTokensAtBeginLogitsProcessor",
        "SuppressTokensLogitsProcessor",
    )
)


@dataclass
class NATAssistedOutput(ModelOutput):
    """What ``assisted_generate(..., return_dict_in_generate=True)`` returns.

    ``sequences`` (B, L): what the AR model's greedy ``generate()`` returns (decoder start, tokens,
    eos, pad). Per row (B,): ``verifications`` (AR forward passes the row took part in),
    ``drafted_tokens`` (tokens the NAT model proposed), ``accepted_tokens`` (drafted tokens the AR
    model confirmed; each verification adds one token of the AR model's own on top).
    """

    sequences: torch.Tensor | None = None
    verifications: torch.Tensor | None = None
    drafted_tokens: torch.Tensor | None = None
    accepted_tokens: torch.Tensor | None = None


def check_assistant(ar_model, assistant_model) -> None:
    """Raise ``ValueError`` unless ``ar_model`` is a seq2seq model that can verify the drafts of
    ``assistant_model``, an hf_nat family that drafts, over the same vocabulary and special tokens."""
    if not getattr(ar_model.config, "is_encoder_decoder", False) or not hasattr(ar_model, "get_encoder"):
        raise ValueError(
            f"the verifier must be an encoder-decoder (seq2seq) model such as MarianMTModel; got "
            f"{type(ar_model).__name__}"
        )
    if getattr(ar_model, "is_nat", False):
        raise ValueError(f"the verifier must be an autoregressive model; {type(ar_model).__name__} is an hf_nat model")
    if not getattr(assistant_model, "is_nat", False):
        raise ValueError(
            f"assistant_model must be an hf_nat model that drafts (e.g. CMLM), got {type(assistant_model).__name__}"
        )
    if not assistant_model.supports_drafting:
        raise ValueError(
            f"{type(assistant_model).__name__} cannot draft the continuation of a prefix; families that can: "
            f"those implementing _nat_draft (CMLM, fertility NAT)"
        )
    check_rescorer(ar_model, assistant_model.config)
    vocab = ar_model.get_output_embeddings().weight.shape[0]
    if vocab != assistant_model.config.vocab_size:
        raise ValueError(
            f"the verifier and the drafter must share one tokenizer: the verifier's vocabulary has {vocab} "
            f"entries, the drafter's {assistant_model.config.vocab_size}"
        )
    if ar_model.device != assistant_model.device:
        raise ValueError(
            f"the verifier is on {ar_model.device} and the drafter on {assistant_model.device}: put both on one device"
        )


def assisted_generate(
    ar_model,
    input_ids: torch.Tensor | None = None,
    attention_mask: torch.Tensor | None = None,
    *,
    assistant_model,
    draft_max_tokens: int | None = None,
    draft_options: dict | None = None,
    **generate_kwargs,
):
    """``ar_model``'s greedy ``generate()``, token for token, in few sequential steps: the hf_nat
    ``assistant_model`` drafts, ``ar_model`` verifies (see the module docstring).

    Takes what ``ar_model.generate`` takes (``num_beams`` must resolve to 1 and ``do_sample`` to
    False: greedy is what is reproduced). ``draft_max_tokens`` caps a draft (None: the whole
    continuation the NAT model predicts). ``draft_options``: the drafter's own drafting options
    (its ``nat_draft_defaults``, e.g. CMLM's ``draft_iterations``). Returns the ``sequences`` tensor, or with
    ``return_dict_in_generate=True`` a :class:`NATAssistedOutput`.
    """
    check_assistant(ar_model, assistant_model)
    if draft_max_tokens is not None and (
        isinstance(draft_max_tokens, bool) or not isinstance(draft_max_tokens, int) or draft_max_tokens < 1
    ):
        raise ValueError(f"draft_max_tokens must be a positive integer or None, got {draft_max_tokens!r}")
    if "assistant_model" in generate_kwargs or "custom_generate" in generate_kwargs:
        raise ValueError("assisted_generate sets assistant_model and custom_generate itself")
    return ar_model.generate(
        input_ids=input_ids,
        attention_mask=attention_mask,
        custom_generate=nat_assisted_decoding,
        nat_assistant=assistant_model,
        nat_draft_max_tokens=draft_max_tokens,
        nat_draft_options=assistant_model.nat_draft_options(draft_options),
        **generate_kwargs,
    )


def _check_generation(generation_config: GenerationConfig, stopping_criteria, streamer) -> tuple[int, torch.Tensor]:
    """The max length and eos ids of a greedy search; anything else this loop does not reproduce is an error."""
    if (generation_config.num_beams or 1) != 1 or generation_config.do_sample:
        raise ValueError(
            f"assisted decoding reproduces greedy search: pass num_beams=1 and do_sample=False (the generation "
            f"config asks for num_beams={generation_config.num_beams}, do_sample={generation_config.do_sample})"
        )
    unsupported = [
        name
        for name in ("output_scores", "output_logits", "output_attentions", "output_hidden_states")
        if getattr(generation_config, name, False)
    ]
    if unsupported or streamer is not None:
        raise ValueError(f"assisted decoding does not return {unsupported or ['a stream']}")
    max_length, eos = None, generation_config._eos_token_tensor
    for criterion in stopping_criteria:
        if isinstance(criterion, MaxLengthCriteria):
            max_length = criterion.max_length
        elif not isinstance(criterion, EosTokenCriteria):
            raise ValueError(
                f"assisted decoding supports max_length and eos stopping only, not {type(criterion).__name__}"
            )
    if max_length is None or eos is None:
        raise ValueError("assisted decoding needs a max_length and an eos_token_id")
    return max_length, eos.reshape(-1)


def _processed_scores(processors, candidates: torch.Tensor, lengths: torch.Tensor, logits: torch.Tensor):
    """Greedy's processed scores at every verified position.

    ``candidates`` (A, T): each row's tokens so far, then its draft; ``lengths`` (A, J): the length
    of the row's sequence when position j is scored (-1 where unused); ``logits`` (A, J, V).
    The processors see, for each scored position, the row's tokens before it, as in greedy search;
    those that depend on the length alone are applied to every position at once.
    """
    for processor in processors:
        if not isinstance(processor, _ROW_LOCAL_PROCESSORS):
            raise ValueError(f"assisted decoding does not support the logits processor {type(processor).__name__}")
    if len(processors) == 0:
        return logits
    out = logits.clone()
    for processor in processors:
        if isinstance(processor, logits_process.ForcedEOSTokenLogitsProcessor):
            forced = lengths.eq(processor.max_length - 1)
            if forced.any():
                eos = torch.zeros(out.shape[-1], dtype=torch.bool, device=out.device)
                eos[processor.eos_token_id.to(out.device)] = True
                out[forced] = torch.where(eos, 0.0, -math.inf).to(out.dtype)
            continue
        if isinstance(processor, logits_process.MinLengthLogitsProcessor):
            short = lengths.ge(0) & lengths.lt(processor.min_length)
            if short.any():
                rows, positions = short.nonzero(as_tuple=True)
                out[rows, positions] = out[rows, positions].index_fill(
                    -1, processor.eos_token_id.to(out.device), -math.inf
                )
            continue
        for length in lengths.unique().tolist():
            if length < 0:
                continue
            rows, positions = lengths.eq(length).nonzero(as_tuple=True)
            out[rows, positions] = processor(candidates[rows, :length], out[rows, positions])
    return out


def _leading_matches(draft: torch.Tensor, verified: torch.Tensor, draft_lengths: torch.Tensor) -> torch.Tensor:
    """(A,) how many leading draft tokens (``draft`` (A, D)) equal the verifier's choices
    (``verified`` (A, D+1): its token after each prefix), within ``draft_lengths`` (A,)."""
    width = draft.shape[1]
    inside = torch.arange(width, device=draft.device)[None, :] < draft_lengths[:, None]
    match = draft.eq(verified[:, :width]) & inside
    return match.long().cumprod(1).sum(1)


def _columns(x: torch.Tensor) -> torch.Tensor:
    """(1, T): the column index of every column of ``x`` (B, T)."""
    return torch.arange(x.shape[1], device=x.device)[None, :]


@torch.inference_mode()
def nat_assisted_decoding(
    model,
    input_ids: torch.Tensor,
    logits_processor,
    stopping_criteria,
    generation_config: GenerationConfig,
    synced_gpus: bool = False,
    streamer=None,
    inputs_tensor: torch.Tensor | None = None,
    nat_assistant=None,
    nat_draft_max_tokens: int | None = None,
    nat_draft_options: dict | None = None,
    **model_kwargs,
):
    """The decoding loop behind :func:`assisted_generate`, in the form of transformers'
    ``custom_generate`` callables: ``model`` is the AR verifier, ``input_ids`` (B, L0) its decoder
    prompt (the decoder start), ``inputs_tensor`` (B, S) the source, ``model_kwargs`` holds the
    encoder outputs and the source mask that ``generate()`` prepared."""
    if nat_assistant is None:
        raise ValueError("nat_assisted_decoding needs nat_assistant= (an hf_nat model that drafts)")
    check_assistant(model, nat_assistant)
    draft_options = nat_assistant.nat_draft_options(nat_draft_options)
    max_length, eos = _check_generation(generation_config, stopping_criteria, streamer)
    pad = generation_config._pad_token_tensor
    pad_id = int(pad) if pad is not None else int(eos[0])
    device = input_ids.device
    batch, prompt = input_ids.shape
    source_mask = model_kwargs.get("attention_mask")
    encoder_outputs = model_kwargs["encoder_outputs"]
    cache = model_kwargs.get("cache")
    if not isinstance(cache, EncoderDecoderCache) or cache.get_seq_length() != 0:
        cache = EncoderDecoderCache(DynamicCache(), DynamicCache())

    # The drafter's view of the source; its encoder runs once.
    nat_ids, nat_mask = nat_assistant._check_source(inputs_tensor, source_mask)
    draft_encoder = nat_assistant.model.encode(nat_ids, nat_mask, cache_cross_kv=True)
    draft_total = nat_assistant._nat_draft_length(draft_encoder).to(device)
    draft_total = draft_total.masked_fill(nat_assistant._nat_source_is_empty(nat_ids, nat_mask).to(device), 0)
    specials = torch.tensor(nat_assistant.config.special_token_ids(), device=device)
    draft_positions = nat_assistant.config.max_position_embeddings

    sequences = torch.full((batch, max_length), pad_id, dtype=input_ids.dtype, device=device)
    sequences[:, :prompt] = input_ids
    lengths = torch.full((batch,), prompt, dtype=torch.long, device=device)
    verifications, drafted, accepted = (torch.zeros(batch, dtype=torch.long, device=device) for _ in range(3))
    alive = torch.arange(batch, device=device)[lengths < max_length]
    cached = 0  # decoder positions in the cache, verified for every alive row
    if alive.numel() < batch:
        cache.batch_select_indices(alive)
    hidden_states = encoder_outputs.last_hidden_state
    encoder_alive, mask_alive, draft_alive = hidden_states[alive], None, draft_encoder.select(alive)
    if source_mask is not None:
        mask_alive = source_mask[alive]
    while alive.numel():
        known = lengths[alive]  # (A,) tokens of each row, decoder start included
        prefix_lengths = known - prompt
        # Draft lengths: the rest of the NAT's predicted length (at least one token), within the
        # caps; eos is proposed where the draft reaches the predicted length.
        room = max_length - known - 1  # draft tokens whose verification stays within max_length
        remaining = draft_total[alive] - prefix_lengths
        content = remaining.clamp(min=1)
        if nat_draft_max_tokens is not None:
            content = content.clamp(max=nat_draft_max_tokens)
        # The drafter cannot see past its own positions: beyond them the verifier goes on alone.
        content = torch.minimum(content, torch.minimum(room, draft_positions - prefix_lengths).clamp(min=0))
        content = content.masked_fill(draft_total[alive].eq(0), 0)
        width = int(prefix_lengths.max())
        columns = torch.arange(max(width, 1), device=device)[None, :]
        prefix = sequences[alive, prompt : prompt + max(width, 1)].masked_fill(
            columns >= prefix_lengths[:, None], pad_id
        )
        if int(content.max()) > 0:
            draft = nat_assistant._nat_draft(draft_alive, prefix[:, :width], content, draft_options).to(device)
        else:
            draft = prefix.new_full((alive.numel(), 0), pad_id)
        # A drafter is never trusted: a draft ends at its first special token or at the requested length.
        columns = torch.arange(draft.shape[1], device=device)[None, :]
        clean = (~torch.isin(draft, specials) & (columns < content[:, None])).long().cumprod(1).sum(1)
        ends_draft = remaining.eq(content) & clean.eq(content) & (content + 1 <= room) & content.gt(0)
        draft = torch.nn.functional.pad(draft, (0, 1), value=pad_id)
        draft = draft.masked_fill(_columns(draft) >= clean[:, None], pad_id)
        draft = draft.scatter(1, clean[:, None], torch.where(ends_draft, eos[0], pad_id)[:, None])
        draft_lengths = clean + ends_draft.long()
        draft_width = int(draft_lengths.max())
        draft = draft[:, :draft_width]

        # One teacher-forced pass: the tokens each row has beyond the cache, then its draft.
        refeed = known - cached  # >= 1: the last known token is never in the cache
        block_width = int((refeed + draft_lengths).max())
        block_columns = torch.arange(block_width, device=device)[None, :]
        from_sequence = sequences[alive, cached : cached + block_width] if block_width else sequences[alive, :0]
        from_sequence = torch.nn.functional.pad(from_sequence, (0, block_width - from_sequence.shape[1]), value=pad_id)
        draft_index = (block_columns - refeed[:, None]).clamp(min=0, max=max(draft_width - 1, 0))
        from_draft = draft.gather(1, draft_index) if draft_width else from_sequence
        in_draft = (block_columns >= refeed[:, None]) & (block_columns < (refeed + draft_lengths)[:, None])
        block = torch.where(in_draft, from_draft, from_sequence)
        block = block.masked_fill(block_columns >= (refeed + draft_lengths)[:, None], pad_id)
        outputs = model(
            encoder_outputs=BaseModelOutput(last_hidden_state=encoder_alive),
            attention_mask=mask_alive,
            decoder_input_ids=block,
            cache=cache,
            use_cache=True,
        )
        cache = outputs.cache if getattr(outputs, "cache", None) is not None else outputs.past_key_values
        # Scores at the last known token and after each draft token: (A, D+1, V).
        score_columns = (refeed - 1)[:, None] + torch.arange(draft_width + 1, device=device)[None, :]
        score_columns = score_columns.clamp(max=block_width - 1)
        logits = outputs.logits.gather(1, score_columns[..., None].expand(-1, -1, outputs.logits.shape[-1])).float()
        candidates = _place_drafts(sequences[alive], known, draft, draft_lengths, pad_id)
        used = torch.arange(draft_width + 1, device=device)[None, :] <= draft_lengths[:, None]
        score_lengths = torch.where(used, known[:, None] + torch.arange(draft_width + 1, device=device)[None, :], -1)
        verified = _processed_scores(logits_processor, candidates, score_lengths, logits).argmax(-1)

        matches = _leading_matches(draft, verified, draft_lengths)  # (A,)
        new_tokens = torch.where(
            torch.arange(draft_width + 1, device=device)[None, :] < matches[:, None],
            torch.nn.functional.pad(draft, (0, 1), value=pad_id),
            verified,
        )  # the accepted draft, then the verifier's own token
        count = matches + 1
        is_eos = torch.isin(new_tokens, eos) & (torch.arange(draft_width + 1, device=device)[None, :] < count[:, None])
        first_eos = torch.where(is_eos.any(1), is_eos.long().argmax(1) + 1, count)
        count = torch.minimum(count, first_eos)
        write = torch.arange(draft_width + 1, device=device)[None, :] < count[:, None]
        rows = alive[:, None].expand_as(write)[write]
        cols = (known[:, None] + torch.arange(draft_width + 1, device=device)[None, :])[write]
        sequences[rows, cols] = new_tokens[write]
        lengths[alive] = known + count
        verifications[alive] += 1
        drafted[alive] += draft_lengths
        accepted[alive] += torch.minimum(matches, count)

        finished = is_eos.any(1) | lengths[alive].ge(max_length)
        still = (~finished).nonzero().squeeze(1)
        if still.numel() == 0:
            break
        new_cached = int((lengths[alive][still] - 1).min())
        cache.crop(new_cached - cache.get_seq_length())
        if still.numel() < alive.numel():
            cache.batch_select_indices(still)
            alive, encoder_alive = alive[still], encoder_alive[still]
            mask_alive = None if mask_alive is None else mask_alive[still]
            draft_alive = draft_alive.select(still)
        cached = new_cached

    sequences = sequences[:, : int(lengths.max())]
    if generation_config.return_dict_in_generate:
        return NATAssistedOutput(
            sequences=sequences, verifications=verifications, drafted_tokens=drafted, accepted_tokens=accepted
        )
    return sequences


def _place_drafts(
    sequences: torch.Tensor, known: torch.Tensor, draft: torch.Tensor, draft_lengths: torch.Tensor, pad_id: int
) -> torch.Tensor:
    """(A, T): each row's ``known`` (A,) tokens of ``sequences`` (A, L), then its draft (``draft``
    (A, D), ``draft_lengths`` (A,)), then pad."""
    width = int((known + draft_lengths).max())
    columns = torch.arange(width, device=sequences.device)[None, :]
    base = sequences[:, :width]
    base = torch.nn.functional.pad(base, (0, width - base.shape[1]), value=pad_id)
    offset = (columns - known[:, None]).clamp(min=0, max=max(draft.shape[1] - 1, 0))
    drafted = draft.gather(1, offset) if draft.shape[1] else base
    in_draft = (columns >= known[:, None]) & (columns < (known + draft_lengths)[:, None])
    out = torch.where(in_draft, drafted, base)
    return out.masked_fill(columns >= (known + draft_lengths)[:, None], pad_id)
