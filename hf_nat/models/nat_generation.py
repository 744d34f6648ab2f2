"""The decoding protocol every hf_nat family implements, driven by one ``generate()``.

encode once → the family's initial hypotheses (several candidates per source) → the family's
refinement step, repeated up to ``max_iterations`` with each row stopping once a step leaves it
unchanged → the best candidate per source by the family's score → token ids.

A family subclasses :class:`NATGenerationMixin` and implements three hooks:
``_nat_initial_state``, ``_nat_refine_step`` and ``_nat_candidate_scores``; it lists its decoding
options and their defaults in ``nat_generation_defaults``. Every step works on whole batches:
there is no Python loop over sentences or positions.
"""

import math
import numbers
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from transformers import GenerationConfig, GenerationMixin
from transformers.utils import ModelOutput

from .nat_layers import EncoderState, LengthPredictor
from .nat_rescoring import check_rescorer, rescore_candidates, with_eos

__all__ = [
    "CANDIDATE_BOUNDS",
    "ITERATION_BOUNDS",
    "POSITIVE",
    "DecoderState",
    "NATGenerateOutput",
    "NATGenerationMixin",
    "OptionBounds",
    "best_content_tokens",
    "best_tokens_of_states",
    "draft_layout",
    "length_aware_scores",
    "length_beam_state",
    "mean_token_scores",
]


@dataclass(frozen=True)
class OptionBounds:
    """Allowed range of a numeric decoding option: ``low <= value <= high`` (``low < value`` when
    ``low_open``); None leaves that side open. Every numeric option must also be finite."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False

    def check(self, name: str, value) -> None:
        """Raise ``ValueError`` unless ``value`` lies within these bounds."""
        too_low = self.low is not None and (value <= self.low if self.low_open else value < self.low)
        if too_low or (self.high is not None and value > self.high):
            low = "" if self.low is None else f"{self.low} {'<' if self.low_open else '<='} "
            high = "" if self.high is None else f" <= {self.high}"
            raise ValueError(f"{name} must satisfy {low}{name}{high}, got {value!r}")


# Bounds families share for their own options (each family declares which of its options they bound).
# Upper bounds keep a mistyped value from asking for unbounded work.
ITERATION_BOUNDS = OptionBounds(1, 1000)
CANDIDATE_BOUNDS = OptionBounds(1, 256)
POSITIVE = OptionBounds(0, None, low_open=True)

# Options every family accepts. ``rescorer`` (an AR seq2seq model sharing the tokenizer) replaces
# the family's own candidate ranking by the AR log-likelihood divided by length**penalty.
_COMMON_OPTIONS = {
    "return_dict_in_generate": False,
    "output_history": False,
    "rescorer": None,
    "rescore_length_penalty": 1.0,
}
_COMMON_BOUNDS = {"rescore_length_penalty": OptionBounds()}

# GenerationConfig fields that carry no decoding option: the special tokens and bookkeeping.
_GENERATION_CONFIG_BOOKKEEPING = {
    "pad_token_id",
    "bos_token_id",
    "eos_token_id",
    "decoder_start_token_id",
    "transformers_version",
    "_from_model_config",
}

# Sources × candidates × source tokens decoded in one pass; larger batches go through in chunks of
# sources, so decoding's working memory does not grow with the batch or the candidate count.
_CANDIDATE_TOKENS_PER_PASS = 2**16


@dataclass(frozen=True)
class DecoderState:
    """Hypotheses under refinement: one row per candidate.

    ``tokens`` (N, T) holds content tokens left-aligned and padded with pad; ``scores`` (N, T) the
    log-probability of each token (0 on padding); ``source_index`` (N,) the source row each
    candidate belongs to. Families may attach extra tensors through ``extras``.
    """

    tokens: torch.Tensor
    scores: torch.Tensor
    source_index: torch.Tensor
    extras: dict | None = None

    def select(self, index: torch.Tensor) -> "DecoderState":
        """The rows ``index`` of this state."""
        extras = None if self.extras is None else {k: v[index] for k, v in self.extras.items()}
        return replace(
            self,
            tokens=self.tokens[index],
            scores=self.scores[index],
            source_index=self.source_index[index],
            extras=extras,
        )

    def with_rows(self, index: torch.Tensor, rows: "DecoderState", pad_token_id: int) -> "DecoderState":
        """A copy whose rows ``index`` are replaced by ``rows`` (widths may differ)."""
        width = max(self.tokens.shape[1], rows.tokens.shape[1])

        def merge(old, new, fill):
            old, new = _pad_to(old, width, fill), _pad_to(new, width, fill)
            return old.index_copy(0, index, new)

        tokens = merge(self.tokens, rows.tokens, pad_token_id)
        scores = merge(self.scores, rows.scores, 0.0)
        extras = None
        if self.extras is not None:
            extras = {k: v.index_copy(0, index, rows.extras[k]) for k, v in self.extras.items()}
        used = max(_used_width(tokens, pad_token_id), 1)
        return replace(self, tokens=tokens[:, :used], scores=scores[:, :used], extras=extras)


_UNSET_GENERATION_FIELDS = GenerationConfig().__dict__


def _fields_set(config: GenerationConfig) -> set:
    """The public fields ``config`` sets away from transformers' defaults (what ``to_diff_dict``
    lists, without its copies: this runs on every ``generate()`` call)."""
    unset = _UNSET_GENERATION_FIELDS
    return {k for k, v in vars(config).items() if not k.startswith("_") and (k not in unset or unset[k] != v)}


def _pad_to(x: torch.Tensor, width: int, fill) -> torch.Tensor:
    return x if x.shape[1] == width else F.pad(x, (0, width - x.shape[1]), value=fill)


@dataclass
class NATGenerateOutput(ModelOutput):
    """What ``generate(..., return_dict_in_generate=True)`` returns.

    ``sequences`` (B, L): content tokens, then eos, then pad. ``sequences_scores`` (B,): the
    family's score of the chosen candidate. ``iterations`` (B,): refinement steps the chosen
    candidate went through. ``history``: with ``output_history=True``, the chosen candidates'
    tokens after each step (a tuple of (B, T) tensors).
    """

    sequences: torch.Tensor | None = None
    sequences_scores: torch.Tensor | None = None
    iterations: torch.Tensor | None = None
    history: tuple | None = None


class NATGenerationMixin(GenerationMixin):
    """``generate()`` for non-autoregressive families (see the module docstring)."""

    nat_generation_defaults: dict = {}
    # Whether the family encodes the source separately (encoder-decoder) or reads it in the same
    # Transformer as its output (``_nat_encode`` then hands the steps the source tokens).
    nat_has_encoder: bool = True
    # Ranges of the family's numeric options (name -> OptionBounds); types follow the defaults.
    nat_option_bounds: dict = {}
    # Per-call inputs that are options but never generation-config defaults (e.g. a draft to refine).
    nat_call_options: dict = {}

    def _nat_default_generation_config(self) -> GenerationConfig:
        """A generation config carrying the family's decoding defaults."""
        config = GenerationConfig(
            pad_token_id=self.config.pad_token_id,
            eos_token_id=self.config.eos_token_id,
            bos_token_id=self.config.bos_token_id,
            decoder_start_token_id=self.config.decoder_start_token_id,
        )
        for name, value in self.nat_generation_defaults.items():
            setattr(config, name, value)
        return config

    def _nat_options(self, generation_config: GenerationConfig | None, kwargs: dict) -> dict:
        """Resolve decoding options: call kwargs, then the generation config, then the defaults.

        Unknown keyword arguments, and transformers options set on the generation config that have
        no meaning for this family (``num_beams``, ``max_length``, ``do_sample`` …), are errors.
        """
        base = generation_config or self.generation_config
        defaults = {**_COMMON_OPTIONS, **self.nat_generation_defaults, **self.nat_call_options}
        unknown = sorted(set(kwargs) - set(defaults))
        if unknown:
            raise ValueError(
                f"{type(self).__name__}.generate() got unsupported option(s) {unknown}; "
                f"its options are {sorted(defaults)}"
            )
        foreign = sorted(_fields_set(base) - set(defaults) - _GENERATION_CONFIG_BOOKKEEPING)
        if foreign:
            raise ValueError(
                f"the generation config sets {foreign}, which {type(self).__name__}.generate() does "
                f"not support (a NAT model predicts its output length and decodes in parallel); "
                f"its options are {sorted(defaults)}"
            )
        options = {}
        for name, default in defaults.items():
            value = kwargs.get(name)
            value = getattr(base, name, None) if value is None else value
            options[name] = default if value is None else value  # None means "not set" (transformers' convention)
        return options

    def _nat_check_options(self, options: dict) -> None:
        """Validate option values: the type of each follows its default (a bool must be a bool, a
        count an integer, a real a finite number), ranges come from ``nat_option_bounds``.
        Families extend this for checks that involve their config."""
        defaults = {**_COMMON_OPTIONS, **self.nat_generation_defaults}
        bounds = {**_COMMON_BOUNDS, **self.nat_option_bounds}
        for name, default in defaults.items():
            value = options[name]
            if default is None:
                continue
            if isinstance(default, bool):
                if not isinstance(value, bool):
                    raise ValueError(f"{name} must be True or False, got {value!r}")
                continue
            if isinstance(default, numbers.Integral):
                if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                    raise ValueError(f"{name} must be an integer, got {value!r}")
            elif isinstance(default, numbers.Real):
                if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
                    raise ValueError(f"{name} must be a finite number, got {value!r}")
            if name in bounds:
                bounds[name].check(name, value)
        if options.get("rescorer") is not None:
            check_rescorer(options["rescorer"], self.config)

    def _nat_candidates_per_source(self, options: dict) -> int:
        """How many candidates each source decodes at once (families with a length beam or
        samples override this); it sets how many sources share one pass."""
        return 1

    def _nat_source_is_empty(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """True for sources holding no content token (empty or whitespace-only text) or, for
        audio features (B, T, F), no frame."""
        content = attention_mask.bool()
        if input_ids.is_floating_point():
            return ~content.any(1)
        for token in (self.config.pad_token_id, self.config.bos_token_id, self.config.eos_token_id):
            if token is not None:
                content = content & input_ids.ne(token)
        return ~content.any(1)

    @torch.inference_mode()
    def generate(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        generation_config: GenerationConfig | None = None,
        custom_generate=None,
        input_features: torch.Tensor | None = None,
        pixel_values: torch.Tensor | None = None,
        **kwargs,
    ):
        """Translate (or, from ``input_features``, transcribe; from ``pixel_values``, caption) a
        batch of sources in parallel.

        Options (per call, else ``generation_config``, else the family's defaults) are listed in
        the family's ``nat_generation_defaults`` plus ``return_dict_in_generate`` and
        ``output_history``. Returns the ``sequences`` tensor, or a :class:`NATGenerateOutput`.
        Empty sources get an empty translation, a batch of no sources an empty result; left-padded
        sources decode as right-padded ones. Large batches are decoded in chunks of sources, with
        the same result. ``custom_generate`` goes to transformers' generate.
        """
        if custom_generate is not None:
            return GenerationMixin.generate(
                self,
                input_ids=input_ids,
                attention_mask=attention_mask,
                generation_config=generation_config,
                custom_generate=custom_generate,
                **kwargs,
            )
        options = self._nat_options(generation_config, kwargs)
        self._nat_check_options(options)
        source, attention_mask = self._check_inputs(input_ids, input_features, attention_mask, pixel_values)
        tokens_per_source = self._nat_candidates_per_source(options) * max(source.shape[1], 1)
        chunk = max(1, _CANDIDATE_TOKENS_PER_PASS // tokens_per_source)
        outputs = [
            self._nat_generate_chunk(source[i : i + chunk], attention_mask[i : i + chunk], options)
            for i in range(0, max(source.shape[0], 1), chunk)
        ]
        output = outputs[0] if len(outputs) == 1 else _concatenate_outputs(outputs, self.config.pad_token_id)
        if not options["return_dict_in_generate"]:
            return output.sequences
        return output if options["output_history"] else replace(output, history=None)

    def _nat_generate_chunk(
        self, source: torch.Tensor, attention_mask: torch.Tensor, options: dict
    ) -> "NATGenerateOutput":
        """Decode one chunk of (checked, right-padded) sources (token ids or features): the whole protocol."""
        empty = self._nat_source_is_empty(source, attention_mask)
        if empty.all():  # nothing to translate (also a batch of no rows or of zero length)
            nothing = torch.full((source.shape[0], 0), self.config.pad_token_id, device=source.device)
            sequences = self._nat_append_eos(nothing)
            zeros = torch.zeros(source.shape[0], device=source.device)
            return NATGenerateOutput(sequences=sequences, sequences_scores=zeros, iterations=zeros.long(), history=())
        source_encoder = self._nat_encode(source, attention_mask)

        state = self._nat_initial_state(source_encoder, empty, options)
        one_each = state.source_index.numel() == source.shape[0] and bool(
            state.source_index.eq(torch.arange(source.shape[0], device=source.device)).all()
        )
        encoder = source_encoder if one_each else source_encoder.select(state.source_index)  # skip a no-op gather
        rows = state.tokens.shape[0]
        active = torch.ones(rows, dtype=torch.bool, device=source.device)
        iterations = torch.zeros(rows, dtype=torch.long, device=source.device)
        history = []
        for step in range(int(options.get("max_iterations", 1))):
            index = active.nonzero().squeeze(1)
            if index.numel() == 0:
                break
            # Rows are refined in parts of at most _CANDIDATE_TOKENS_PER_PASS tokens (long
            # predicted lengths × many candidates must not hold all their activations at once).
            parts = index.split(max(1, _CANDIDATE_TOKENS_PER_PASS // max(state.tokens.shape[1], 1)))
            for part in parts:
                every_row = part.numel() == rows  # skip the gathers (cross-attention caches are big)
                before = state if every_row else state.select(part)
                after = self._nat_refine_step(encoder if every_row else encoder.select(part), before, step, options)
                if options.get("adaptive", True):
                    active[part] = _rows_changed(before.tokens, after.tokens, self.config.pad_token_id)
                state = after if every_row else state.with_rows(part, after, self.config.pad_token_id)
            iterations[index] += 1
            if options["output_history"]:
                history.append(state.tokens)

        if options["rescorer"] is not None:
            candidate_scores = rescore_candidates(
                options["rescorer"],
                source,
                attention_mask,
                state.tokens,
                state.source_index,
                self.config.pad_token_id,
                self.config.eos_token_id,
                options["rescore_length_penalty"],
            )
        else:
            candidate_scores = self._nat_candidate_scores(state)
        best = _best_per_source(candidate_scores, source.shape[0])
        tokens = _trim_padding(
            state.tokens[best].masked_fill(empty[:, None], self.config.pad_token_id), self.config.pad_token_id
        )
        scores = candidate_scores[best].masked_fill(empty, 0.0)
        chosen_history = tuple(
            _trim_padding(h[best].masked_fill(empty[:, None], self.config.pad_token_id), self.config.pad_token_id)
            for h in history
        )
        return NATGenerateOutput(
            sequences=self._nat_append_eos(tokens),
            sequences_scores=scores,
            iterations=iterations[best].masked_fill(empty, 0),
            history=chosen_history,
        )

    def _nat_encode(self, source: torch.Tensor, attention_mask: torch.Tensor) -> EncoderState:
        """What every decoding step reads of the source: the encoder output with the decoder's
        cross-attention keys and values cached or, for a family without an encoder
        (``nat_has_encoder = False``: one Transformer over source and output together), the
        source tokens alone."""
        if not self.nat_has_encoder:
            return EncoderState(hidden=None, keep=attention_mask.bool(), input_ids=source)
        return self.model.encode(source, attention_mask, cache_cross_kv=True)

    def nat_language_options(self, src_lang: str | None, tgt_lang: str | None) -> dict:
        """The ``generate()`` options that translate ``src_lang`` → ``tgt_lang`` (what the
        translation pipeline's ``src_lang``/``tgt_lang`` ask for). A family that translates the one
        direction it was trained on has none: asking for a direction is an error; a family
        trained on several directions overrides this."""
        raise ValueError(
            f"{type(self).__name__} translates the one direction it was trained on; src_lang/tgt_lang "
            f"(got {src_lang!r} → {tgt_lang!r}) choose a direction only for a model trained on several"
        )

    def _nat_append_eos(self, tokens: torch.Tensor) -> torch.Tensor:
        """Content tokens (left-aligned, pad after) → content, eos, pad."""
        return with_eos(tokens, self.config.pad_token_id, self.config.eos_token_id)

    # Drafting for an AR verifier (``hf_nat.assisted_generate``): families that can continue a
    # given target prefix implement both hooks below and list their drafting options (and the
    # options' bounds) in ``nat_draft_defaults`` / ``nat_draft_bounds``.
    nat_draft_defaults: dict = {}
    nat_draft_bounds: dict = {}

    @property
    def supports_drafting(self) -> bool:
        """Whether this family drafts continuations of a verified prefix (see ``_nat_draft``)."""
        return type(self)._nat_draft is not NATGenerationMixin._nat_draft

    def nat_draft_options(self, options: dict | None) -> dict:
        """The drafting options: ``options`` over ``nat_draft_defaults``; unknown names, values of
        another type than the default's and values out of bounds are errors."""
        options = dict(options or {})
        unknown = sorted(set(options) - set(self.nat_draft_defaults))
        if unknown:
            raise ValueError(
                f"{type(self).__name__} drafts with the option(s) {sorted(self.nat_draft_defaults)}, got {unknown}"
            )
        resolved = {**self.nat_draft_defaults, **options}
        for name, value in resolved.items():
            default = self.nat_draft_defaults[name]
            if isinstance(default, numbers.Integral) and (
                isinstance(value, bool) or not isinstance(value, numbers.Integral)
            ):
                raise ValueError(f"{name} must be an integer, got {value!r}")
            if name in self.nat_draft_bounds:
                self.nat_draft_bounds[name].check(name, value)
        return resolved

    def _nat_draft_length(self, encoder: EncoderState) -> torch.Tensor:
        """(B,) the whole output length the family predicts for each source (its one-best)."""
        raise NotImplementedError(f"{type(self).__name__} does not draft continuations")

    def _nat_draft(
        self, encoder: EncoderState, prefix: torch.Tensor, draft_lengths: torch.Tensor, options: dict
    ) -> torch.Tensor:
        """(B, M) content tokens continuing each row's ``prefix`` (B, P; content tokens, pad after)
        at ``draft_lengths`` (B,) positions; pad beyond a row's draft, M = max(draft_lengths).
        ``options``: the resolved drafting options (:meth:`nat_draft_options`)."""
        raise NotImplementedError(f"{type(self).__name__} does not draft continuations")

    # Hooks each family implements.
    def _nat_initial_state(self, encoder: EncoderState, empty: torch.Tensor, options: dict) -> DecoderState:
        raise NotImplementedError(f"{type(self).__name__} must implement _nat_initial_state")

    def _nat_refine_step(self, encoder: EncoderState, state: DecoderState, step: int, options: dict) -> DecoderState:
        raise NotImplementedError(f"{type(self).__name__} must implement _nat_refine_step")

    def _nat_candidate_scores(self, state: DecoderState) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} must implement _nat_candidate_scores")


def _used_width(tokens: torch.Tensor, pad_token_id: int) -> int:
    """The most non-pad tokens in a row of left-aligned ``tokens`` (B, T); 0 for no rows."""
    return int(tokens.ne(pad_token_id).sum(1).max()) if tokens.numel() else 0


def _trim_padding(tokens: torch.Tensor, pad_token_id: int) -> torch.Tensor:
    """``tokens`` (B, T) without the trailing columns that are padding in every row."""
    return tokens[:, : _used_width(tokens, pad_token_id)]


def _concatenate_outputs(outputs: list, pad_token_id: int) -> "NATGenerateOutput":
    """One :class:`NATGenerateOutput` from those of consecutive chunks of sources: sequences
    padded to the widest, histories as long as the longest (a chunk that stopped early keeps its
    last tokens, as its rows would have in one batch)."""

    def stack(tensors):
        width = max(t.shape[1] for t in tensors)
        return torch.cat([_pad_to(t, width, pad_token_id) for t in tensors])

    steps = max(len(o.history) for o in outputs)
    history = tuple(
        stack([o.history[min(step, len(o.history) - 1)] if o.history else o.sequences[:, :0] for o in outputs])
        for step in range(steps)
    )
    return NATGenerateOutput(
        sequences=stack([o.sequences for o in outputs]),
        sequences_scores=torch.cat([o.sequences_scores for o in outputs]),
        iterations=torch.cat([o.iterations for o in outputs]),
        history=history,
    )


def _best_per_source(candidate_scores: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Row index of the best-scoring candidate of each source (candidates are grouped by source)."""
    scores = candidate_scores.view(batch_size, -1)
    return torch.arange(batch_size, device=scores.device) * scores.shape[1] + scores.argmax(1)


def _rows_changed(before: torch.Tensor, after: torch.Tensor, pad_token_id: int) -> torch.Tensor:
    """True for rows whose tokens differ (rows of different widths are compared padded)."""
    width = max(before.shape[1], after.shape[1])
    return _pad_to(before, width, pad_token_id).ne(_pad_to(after, width, pad_token_id)).any(1)


def mean_token_scores(state: DecoderState, pad_token_id: int) -> torch.Tensor:
    """Average log-probability of each candidate's tokens (the usual NAT ranking score)."""
    keep = state.tokens.ne(pad_token_id)
    return (state.scores * keep).sum(1) / keep.sum(1).clamp(min=1)


def length_beam_state(
    length_logits: torch.Tensor, beam: int, empty: torch.Tensor, fill_token_id: int, pad_token_id: int
) -> DecoderState:
    """Candidates of the top-``beam`` predicted lengths of each source, filled with ``fill_token_id``.

    Empty sources get length 1 (their output is blanked at the end); sources whose length
    classes run out repeat their best length. ``extras["length_score"]`` holds each candidate's
    length log-probability.
    """
    lengths = LengthPredictor.top_lengths(length_logits, beam)
    if lengths.shape[1] < beam:
        lengths = torch.cat([lengths, lengths[:, :1].expand(-1, beam - lengths.shape[1])], 1)
    length_scores = length_logits.float().log_softmax(-1).gather(1, lengths).reshape(-1)
    lengths = lengths.masked_fill(empty[:, None], 1).reshape(-1)
    width = int(lengths.max())
    positions = torch.arange(width, device=lengths.device)
    tokens = torch.full((lengths.shape[0], width), fill_token_id, device=lengths.device)
    tokens = tokens.masked_fill(positions[None, :] >= lengths[:, None], pad_token_id)
    source_index = torch.arange(empty.shape[0], device=lengths.device).repeat_interleave(beam)
    return DecoderState(
        tokens=tokens,
        scores=torch.zeros(tokens.shape, device=tokens.device),
        source_index=source_index,
        extras={"length_score": length_scores},
    )


def length_aware_scores(state: DecoderState, pad_token_id: int) -> torch.Tensor:
    """Mean token log-probability plus the length's log-probability: ranks candidates of different
    lengths when a shorter one can be as confident per token (e.g. a copy that skips a word)."""
    return mean_token_scores(state, pad_token_id) + state.extras["length_score"]


def best_content_tokens(
    logits: torch.Tensor, special_token_ids: list[int], overwrite: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """(log-probabilities, tokens) of the best non-special token at every position of ``logits``
    (normalised over the non-special tokens). ``logits`` is left as it is unless ``overwrite``
    says it is a temporary of the caller's (float32 logits are then masked in place, which saves
    a copy of the whole (…, vocabulary) tensor: a tenth of a one-pass ``generate()`` at batch 64)."""
    content_logits = logits.float() if overwrite else logits.to(torch.float32, copy=True)
    content_logits[..., special_token_ids] = float("-inf")
    return content_logits.log_softmax(-1).max(-1)


_LOGITS_PER_CHUNK = 2**26  # 256 MiB of float32 logits at a time


def best_tokens_of_states(
    hidden: torch.Tensor, output_projection, special_token_ids: list[int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`best_content_tokens` of ``output_projection(hidden)``, hidden (N, T, D) or (N, D),
    computed in row chunks so that many candidates (e.g. 100 fertility samples per source) never
    hold all their (N, [T,] vocabulary) logits at once."""
    vocab = output_projection.weight.shape[0]
    positions_per_row = hidden[0].numel() // hidden.shape[-1] if hidden.shape[0] else 1
    rows = max(1, _LOGITS_PER_CHUNK // max(positions_per_row * vocab, 1))
    parts = [
        best_content_tokens(output_projection(hidden[i : i + rows]), special_token_ids, overwrite=True)
        for i in range(0, max(hidden.shape[0], 1), rows)
    ]  # no rows: one empty part
    return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])


def draft_layout(prefix: torch.Tensor, draft_lengths: torch.Tensor, pad_token_id: int) -> tuple[torch.Tensor, ...]:
    """Where a draft goes: ``prefix`` (B, P; content tokens, pad after) followed by
    ``draft_lengths`` (B,) positions to fill. Returns (tokens (B, W): the prefix then pad,
    keep (B, W): prefix and draft positions, draft (B, W): the draft positions)."""
    prefix_lengths = prefix.ne(pad_token_id).sum(1)
    ends = prefix_lengths + draft_lengths
    width = max(int(ends.max()), 1) if ends.numel() else 1
    positions = torch.arange(width, device=prefix.device)[None, :]
    tokens = _pad_to(prefix, max(width, prefix.shape[1]), pad_token_id)[:, :width]
    keep = positions < ends[:, None]
    return tokens, keep, keep & (positions >= prefix_lengths[:, None])
