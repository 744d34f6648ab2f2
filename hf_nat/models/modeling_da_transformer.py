"""DA-Transformer (Huang et al., ICML 2022) with optional glancing training: what makes this
family different.

The decoder reads the encoder output upsampled into the L = λ·|x| vertices of a directed acyclic
graph (as the CTC upsampler does). Every vertex i predicts a token distribution P_i and a
transition distribution E[i, j] over the later vertices j > i. A target [bos] y [eos] is emitted
along a path from the first vertex to the last; training maximises log P(y | x), summed over every
path by the forward algorithm of :mod:`nat_dag`. Decoding is one pass: a path by greedy,
lookahead or joint-Viterbi search, its vertices' tokens with consecutive repeats merged.

Transition scores are multi-head: heads of query/key projections of the vertex states plus learned
vertex positions, masked to forward edges, a softmax over j per head, mixed by a gate over heads
that each vertex predicts.
"""

import math

import torch
from torch import nn

from .configuration_da_transformer import DATransformerConfig
from .modeling_nat import NATModel, NATPreTrainedModel, NATSeq2SeqLMOutput, compact_targets
from .nat_dag import (
    dag_best_path,
    dag_log_likelihood,
    dag_lookahead_path,
    dag_path_output,
    dag_viterbi_paths,
)
from .nat_generation import CANDIDATE_BOUNDS, DecoderState, NATGenerationMixin, OptionBounds, best_tokens_of_states
from .nat_glancing import GlancingMixin
from .nat_layers import EncoderState
from .nat_registry import register_family
from .nat_upsample import upsample, upsampler

__all__ = [
    "DATransformerForConditionalGeneration",
    "DATransformerModel",
    "DATransformerPreTrainedModel",
    "DAGTransitions",
]

DECODE_STRATEGIES = ("greedy", "lookahead", "viterbi")


class DATransformerPreTrainedModel(NATPreTrainedModel):
    """Base of the DA-Transformer classes."""

    config_class = DATransformerConfig


class DATransformerModel(NATModel):
    """The backbone (embeddings, encoder, non-causal decoder); the graph's size follows the source."""

    config_class = DATransformerConfig
    predicts_length = False


class DAGTransitions(nn.Module):
    """log E[i, j]: multi-head transition scores between the vertices of a graph, owning its
    learned vertex positions and the gate that mixes its heads."""

    # A finite "no edge" score: the last vertex and padding have no successor, and a softmax over
    # nothing but -inf would be NaN (nat_dag ignores these rows; their gradient is zero there).
    NO_EDGE = -1e9

    def __init__(self, d_model: int, heads: int, max_vertices: int):
        super().__init__()
        self.heads = heads
        self.head_dim = d_model // heads
        self.positions = nn.Embedding(max_vertices, d_model)
        self.query = nn.Linear(d_model, d_model)
        self.key = nn.Linear(d_model, d_model)
        self.gate = nn.Linear(d_model, heads)

    def forward(self, states: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """(B, L, L) float32 log E[i, j] of vertex ``states`` (B, L, D); ``keep`` (B, L) marks real
        vertices. Entries with j <= i or j not real hold ``NO_EDGE``."""
        batch, graph, _ = states.shape
        x = states + self.positions.weight[:graph]  # (B, L, D)
        q = self.query(x).float().view(batch, graph, self.heads, self.head_dim).transpose(1, 2)  # (B, H, L, Dh)
        k = self.key(x).float().view(batch, graph, self.heads, self.head_dim).transpose(1, 2)  # (B, H, L, Dh)
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.head_dim)  # (B, H, L, L)
        vertex_ids = torch.arange(graph, device=states.device)
        edge = (vertex_ids[:, None] < vertex_ids[None, :])[None, None] & keep.bool()[:, None, None, :]
        per_head = scores.masked_fill(~edge, self.NO_EDGE).log_softmax(-1)  # (B, H, L, L)
        gate = self.gate(x).float().log_softmax(-1).transpose(1, 2)  # (B, H, L)
        mixed = (per_head + gate[..., None]).logsumexp(1)  # (B, L, L)
        return mixed.masked_fill(~edge[:, 0], self.NO_EDGE)


@register_family(
    base_class=DATransformerModel,
    benchmark_settings=[
        {"decode_strategy": "greedy"},
        {"decode_strategy": "lookahead"},
        {"decode_strategy": "viterbi"},
    ],
)
class DATransformerForConditionalGeneration(DATransformerPreTrainedModel, GlancingMixin, NATGenerationMixin):
    """DA-Transformer with its upsampler, transition and token heads, the path-summed loss and
    one-pass ``generate()``.

    Decoding options:

    - ``decode_strategy``: ``"greedy"`` (from each vertex the most likely next vertex),
      ``"lookahead"`` (argmax_j log E[i, j] + β · max log P_j) or ``"viterbi"`` (joint Viterbi:
      the path and output maximising log P(A, Y | x) / |Y|^β).
    - ``decode_beta`` (β): the lookahead weight, or Viterbi's length penalty.
    - ``merge_repeats``: merge consecutive identical tokens of a path into one (as the paper
      does: two vertices that both emit a word are usually one word predicted twice; a real
      repeat such as "very very" is lost with it).
    - ``num_candidates`` (k, Viterbi only): the Viterbi paths of the k best lengths, ranked by
      their normalised score, or by the AR model given as ``rescorer=``.
    """

    _tied_weights_keys = {"lm_head.weight": "model.shared.weight"}
    nat_generation_defaults = {
        "decode_strategy": "lookahead",
        "decode_beta": 1.0,
        "num_candidates": 1,
        "merge_repeats": True,
    }
    nat_option_bounds = {"decode_beta": OptionBounds(0, 10), "num_candidates": CANDIDATE_BOUNDS}
    backbone_class = DATransformerModel

    def __init__(self, config: DATransformerConfig):
        super().__init__(config)
        self.model = self.backbone_class(config)
        self.upsample = upsampler(config.d_model, config.upsample_ratio)
        self.transitions = DAGTransitions(config.d_model, config.transition_heads, config.max_position_embeddings)
        self.lm_head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        self._init_glancing()
        self.post_init()
        self.generation_config = self._nat_default_generation_config()

    def max_source_positions(self) -> int:
        """Each source token becomes ``upsample_ratio`` vertices, and vertices are decoder positions."""
        return self.config.max_position_embeddings // self.config.upsample_ratio

    def _vertex_states(self, encoder: EncoderState, inputs_embeds: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        return self.model.decoder(keep, encoder, inputs_embeds=inputs_embeds)

    # --- training -------------------------------------------------------------------------
    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        **kwargs,
    ) -> NATSeq2SeqLMOutput:
        """With ``labels``: −log P(y | x) summed over paths, per target token (``losses``: dag,
        infeasible = targets with more tokens than their graph has vertices, left out of the loss
        and counted; with glancing also the revealed share). Without: every vertex's token logits
        (``logits`` (B, L, V)) and the graph's log E (``length_logits`` is None)."""
        input_ids, attention_mask = self._check_source(input_ids, attention_mask)
        encoder = self.model.encode(input_ids, attention_mask)
        inputs_embeds, keep = upsample(self.upsample, encoder.hidden, encoder.keep)
        if labels is None:
            states = self._vertex_states(encoder, inputs_embeds, keep)
            return NATSeq2SeqLMOutput(logits=self.lm_head(states), encoder_last_hidden_state=encoder.hidden)

        targets, lengths = self._wrapped_targets(labels)
        vertices = keep.sum(1)
        feasible = lengths <= vertices
        losses = {}
        if self.config.glancing and self.training:
            inputs_embeds, revealed = self._glance(encoder, inputs_embeds, keep, targets, lengths, feasible, generator)
            losses["revealed"] = (revealed.sum() / (lengths - 2).clamp(min=1).sum()).detach()
        states = self._vertex_states(encoder, inputs_embeds, keep)
        logits = self.lm_head(states)
        if feasible.any():
            emissions = self._emissions(logits[feasible], targets[feasible])
            transitions = self.transitions(states[feasible], keep[feasible])
            log_likelihood = dag_log_likelihood(transitions, emissions, vertices[feasible], lengths[feasible])
            loss = -log_likelihood.sum() / lengths[feasible].sum()
        else:  # keep the graph: every parameter still gets a (zero) gradient
            loss = (logits.float().sum() + self.transitions(states, keep).sum()) * 0.0
        losses.update(dag=loss.detach(), infeasible=(~feasible).sum().detach().float())
        return NATSeq2SeqLMOutput(loss=loss, logits=logits, losses=losses, encoder_last_hidden_state=encoder.hidden)

    def _wrapped_targets(self, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(targets (B, n + 2): bos, content, eos, pad after; lengths (B,) = content + 2): the
        first and last vertex of every path emit bos and eos."""
        content, lengths = compact_targets(labels, self.config)
        pad, bos, eos = self.config.pad_token_id, self.config.bos_token_id, self.config.eos_token_id
        batch = content.shape[0]
        wrapped = torch.cat([content.new_full((batch, 1), bos), content, content.new_full((batch, 1), pad)], 1)
        rows = torch.arange(batch, device=labels.device)
        wrapped[rows, lengths + 1] = eos
        return wrapped, lengths + 2

    @staticmethod
    def _emissions(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """(B, L, T) float32 log P_i(y_t) of every vertex i and target position t."""
        log_probs = logits.float().log_softmax(-1)  # (B, L, V)
        return log_probs.gather(2, targets[:, None, :].expand(-1, log_probs.shape[1], -1))

    def _glance(self, encoder, inputs_embeds, keep, targets, lengths, feasible, generator):
        """GLAT on the graph: the best path of the reference under the first pass; reveal
        ratio × (its errors) content tokens at their vertices."""
        with torch.no_grad():
            states = self._vertex_states(encoder, inputs_embeds, keep)
            logits = self.lm_head(states)
            vertices = keep.sum(1)
            path_lengths = torch.where(feasible, lengths, 1)  # infeasible rows: no path, nothing revealed
            _, path = dag_best_path(
                self.transitions(states, keep), self._emissions(logits, targets), vertices, path_lengths
            )
            positions = torch.arange(targets.shape[1], device=targets.device)[None, :]
            content = (positions >= 1) & (positions < lengths[:, None] - 1) & feasible[:, None]  # (B, T)
            predicted = logits.argmax(-1).gather(1, path.clamp(min=0))  # (B, T)
            errors = (predicted.ne(targets) & content).sum(1)
            shown = self._glancing_reveal(content, errors, generator, allowed=feasible)  # (B, T)
            revealed = torch.zeros_like(keep, dtype=torch.bool)
            revealed.scatter_(1, path.clamp(min=0), shown)  # a position's vertex is unique along a path
            tokens = torch.zeros_like(keep, dtype=torch.long).scatter_(1, path.clamp(min=0), targets)
            tokens = tokens.masked_fill(~revealed, self.config.pad_token_id)
        shown_embeds = self.model.decoder.embed.token_embeds(tokens)
        return torch.where(revealed[..., None], shown_embeds.to(inputs_embeds.dtype), inputs_embeds), revealed

    # --- decoding hooks -------------------------------------------------------------------
    def _nat_check_options(self, options: dict) -> None:
        super()._nat_check_options(options)
        if options["decode_strategy"] not in DECODE_STRATEGIES:
            raise ValueError(f"decode_strategy must be one of {DECODE_STRATEGIES}, got {options['decode_strategy']!r}")
        if options["num_candidates"] > 1 and options["decode_strategy"] != "viterbi":
            raise ValueError(
                "num_candidates > 1 needs decode_strategy='viterbi' (its candidates are the best paths "
                f"of the k best lengths); got decode_strategy={options['decode_strategy']!r}"
            )

    def _nat_candidates_per_source(self, options: dict) -> int:
        return int(options["num_candidates"])

    def _nat_initial_state(self, encoder: EncoderState, empty: torch.Tensor, options: dict) -> DecoderState:
        """The one decoding pass: a path per candidate through each source's graph, read out."""
        inputs_embeds, keep = upsample(self.upsample, encoder.hidden, encoder.keep)
        states = self._vertex_states(encoder, inputs_embeds, keep)
        transitions = self.transitions(states, keep)
        token_scores, tokens = best_tokens_of_states(states, self.lm_head, self.config.special_token_ids())  # (B, L)
        vertices = keep.sum(1).clamp(min=1)  # an all-padding row (an empty source) still gets a path
        strategy, beta, k = options["decode_strategy"], float(options["decode_beta"]), int(options["num_candidates"])
        if strategy == "viterbi":
            paths, lengths, path_scores = dag_viterbi_paths(transitions, token_scores, vertices, beta, k)
            paths, lengths, path_scores = paths.flatten(0, 1), lengths.flatten(), path_scores.flatten()
        else:
            paths, lengths = dag_lookahead_path(
                transitions, token_scores, vertices, beta if strategy == "lookahead" else 0.0
            )
            path_scores = _path_log_prob(transitions, token_scores, paths) / lengths
        source_index = torch.arange(keep.shape[0], device=keep.device).repeat_interleave(k)
        out_tokens, out_scores = dag_path_output(
            paths,
            lengths,
            tokens[source_index],
            token_scores[source_index],
            self.config.pad_token_id,
            merge_repeats=options["merge_repeats"],
        )
        return DecoderState(
            tokens=out_tokens, scores=out_scores, source_index=source_index, extras={"path_score": path_scores}
        )

    def _nat_refine_step(self, encoder: EncoderState, state: DecoderState, step: int, options: dict) -> DecoderState:
        return state  # one pass: the initial state is the output

    def _nat_candidate_scores(self, state: DecoderState) -> torch.Tensor:
        return state.extras["path_score"]


def _path_log_prob(transitions: torch.Tensor, token_scores: torch.Tensor, paths: torch.Tensor) -> torch.Tensor:
    """log P(A, Y | x) (B,) of ``paths`` (B, P; vertex indices, -1 beyond) with each vertex's best
    token: its tokens' ``token_scores`` (B, L) and its edges' ``transitions`` (B, L, L)."""
    on_path = paths.ge(0)
    index = paths.clamp(min=0)
    tokens = (token_scores.gather(1, index) * on_path).sum(1)
    rows = torch.arange(paths.shape[0], device=paths.device)[:, None]
    steps = transitions[rows, index[:, :-1], index[:, 1:]] * on_path[:, 1:]  # (B, P - 1)
    return tokens + steps.sum(1)
