"""CTC NAT (Libovický & Helcl, 2018) with optional glancing training (GLAT, Qian et al., 2021):
what makes this family different.

The decoder reads the encoder output upsampled ``upsample_ratio`` times (a linear map to ratio × d,
split into ratio states per source token) and predicts a token or a blank at every position; the
CTC loss sums over all alignments of the target. Decoding is one pass: argmax at every position,
then merge repeats and drop blanks.
"""

import torch
import torch.nn.functional as F
from torch import nn

from .configuration_ctc import CTCNATConfig
from .ctc_alignment import best_alignment, collapse, ctc_feasible
from .modeling_nat import NATModel, NATPreTrainedModel, NATSeq2SeqLMOutput, compact_targets
from .nat_generation import CANDIDATE_BOUNDS, DecoderState, NATGenerationMixin
from .nat_glancing import GlancingMixin
from .nat_layers import EncoderState
from .nat_registry import register_family
from .nat_upsample import upsample, upsampler

__all__ = ["CTCNATForConditionalGeneration", "CTCNATModel", "CTCNATPreTrainedModel"]


class CTCNATPreTrainedModel(NATPreTrainedModel):
    """Base of the CTC NAT classes."""

    config_class = CTCNATConfig


class CTCNATModel(NATModel):
    """The backbone (embeddings, encoder, non-causal decoder); CTC predicts no length."""

    config_class = CTCNATConfig
    predicts_length = False


@register_family(base_class=CTCNATModel, benchmark_settings=[{"num_candidates": 1}])
class CTCNATForConditionalGeneration(CTCNATPreTrainedModel, GlancingMixin, NATGenerationMixin):
    """CTC NAT with its upsampler, output projection (blank included), CTC loss and one-pass
    ``generate()``.

    Decoding option: ``num_candidates`` (k). Candidate 1 is the argmax path; candidate j > 1
    swaps in the second-best token at the (j-1)-th least confident position. Without a rescorer
    the argmax path wins (it is the most likely path); with ``rescorer=`` an AR model picks.
    """

    _tied_weights_keys = {"lm_head.weight": "model.shared.weight"}
    nat_generation_defaults = {"num_candidates": 1}
    nat_option_bounds = {"num_candidates": CANDIDATE_BOUNDS}
    backbone_class = CTCNATModel

    def __init__(self, config: CTCNATConfig):
        super().__init__(config)
        self.model = self.backbone_class(config)
        self.upsample = upsampler(config.d_model, config.upsample_ratio)
        self.lm_head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        self._init_glancing()
        self.post_init()
        self.generation_config = self._nat_default_generation_config()

    def max_source_positions(self) -> int:
        """Sources are upsampled into the decoder's positions, so they get ``1/upsample_ratio`` of
        them (in tokens, or in feature frames for an audio source)."""
        return self.config.max_position_embeddings // self.config.upsample_ratio * self._frames_per_source_position()

    # --- shared pieces --------------------------------------------------------------------
    def _logits(self, encoder: EncoderState, inputs_embeds: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        return self.lm_head(self.model.decoder(keep, encoder, inputs_embeds=inputs_embeds))

    def _emission_log_probs(
        self, encoder: EncoderState, inputs_embeds: torch.Tensor, keep: torch.Tensor
    ) -> torch.Tensor:
        """Decoding log-probabilities (float32): a content token or blank, never another special."""
        logits = self._logits(encoder, inputs_embeds, keep).float()
        banned = [i for i in self.config.special_token_ids() if i != self.config.blank_token_id]
        logits[..., banned] = float("-inf")
        return logits.log_softmax(-1)

    # --- training -------------------------------------------------------------------------
    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        input_features: torch.Tensor | None = None,
        pixel_values: torch.Tensor | None = None,
        **kwargs,
    ) -> NATSeq2SeqLMOutput:
        """With ``labels``: the CTC loss (``losses``: ctc, infeasible = targets longer than the
        upsampled source, left out of the loss and counted; with glancing also the revealed share).
        Without: log-probabilities of every upsampled position. The source is ``input_ids``,
        ``input_features`` (audio) or ``pixel_values`` (images)."""
        source, attention_mask = self._check_inputs(input_ids, input_features, attention_mask, pixel_values)
        encoder = self.model.encode(source, attention_mask)
        inputs_embeds, keep = upsample(self.upsample, encoder.hidden, encoder.keep)
        if labels is None:
            logits = self._logits(encoder, inputs_embeds, keep)
            return NATSeq2SeqLMOutput(logits=logits, encoder_last_hidden_state=encoder.hidden)

        targets, lengths = compact_targets(labels, self.config)
        feasible = ctc_feasible(targets, lengths, keep.sum(1), self.config.pad_token_id)
        losses = {}
        if self.config.glancing and self.training:
            inputs_embeds, revealed = self._glance(encoder, inputs_embeds, keep, targets, lengths, feasible, generator)
            losses["revealed"] = (revealed.sum() / keep.sum().clamp(min=1)).detach()
        logits = self._logits(encoder, inputs_embeds, keep)
        ctc, _ = self._ctc_loss(logits, keep, targets, lengths, feasible)
        losses.update(ctc=ctc.detach(), infeasible=(~feasible).sum().detach().float())
        return NATSeq2SeqLMOutput(loss=ctc, logits=logits, losses=losses, encoder_last_hidden_state=encoder.hidden)

    def _ctc_loss(
        self,
        logits: torch.Tensor,
        keep: torch.Tensor,
        targets: torch.Tensor,
        lengths: torch.Tensor,
        feasible: torch.Tensor,
    ):
        """(CTC loss over the ``feasible`` rows, float log-probs). Targets longer than their
        upsampled source cannot be aligned: they are left out (and counted by the caller)."""
        input_lengths = keep.sum(1)
        log_probs = logits.float().log_softmax(-1)
        if feasible.any():
            ctc = F.ctc_loss(
                log_probs[feasible].transpose(0, 1),
                targets[feasible],
                input_lengths[feasible],
                lengths[feasible],
                blank=self.config.blank_token_id,
                reduction="mean",
                zero_infinity=True,
            )
        else:  # keep the graph: every parameter still gets a (zero) gradient
            ctc = log_probs.sum() * 0.0
        return ctc, log_probs

    def _glance(self, encoder, inputs_embeds, keep, targets, lengths, feasible, generator):
        """GLAT: reveal best-alignment tokens at ratio × (first-pass errors) random positions."""
        with torch.no_grad():
            log_probs = self._logits(encoder, inputs_embeds, keep).float().log_softmax(-1)
            path = best_alignment(log_probs, targets, keep.sum(1), lengths, self.config.blank_token_id)
            errors = (log_probs.argmax(-1).ne(path) & keep).sum(1)
            revealed = self._glancing_reveal(keep, errors, generator, allowed=feasible)
        shown = self.model.decoder.embed.token_embeds(path)
        return torch.where(revealed[..., None], shown.to(inputs_embeds.dtype), inputs_embeds), revealed

    # --- decoding hooks -------------------------------------------------------------------
    def _nat_candidates_per_source(self, options: dict) -> int:
        return int(options.get("num_candidates", 1))

    def _nat_initial_state(self, encoder: EncoderState, empty: torch.Tensor, options: dict) -> DecoderState:
        """The one decoding pass: best path and k-1 single-swap neighbours per source, collapsed."""
        inputs_embeds, keep = upsample(self.upsample, encoder.hidden, encoder.keep)
        top_scores, top_tokens = self._emission_log_probs(encoder, inputs_embeds, keep).topk(2, dim=-1)
        paths, path_scores = _single_swap_candidates(top_tokens, top_scores, keep, int(options["num_candidates"]))
        k = paths.shape[1]
        flat_keep = keep.repeat_interleave(k, dim=0)
        tokens = collapse(paths.flatten(0, 1), flat_keep, self.config.blank_token_id, self.config.pad_token_id)
        mean_score = path_scores.flatten() / flat_keep.sum(1).clamp(min=1)
        source_index = torch.arange(keep.shape[0], device=keep.device).repeat_interleave(k)
        return DecoderState(
            tokens=tokens,
            scores=torch.zeros(tokens.shape, device=tokens.device),
            source_index=source_index,
            extras={"path_score": mean_score},
        )

    def _nat_refine_step(self, encoder: EncoderState, state: DecoderState, step: int, options: dict) -> DecoderState:
        return state  # one pass: the initial state is the output

    def _nat_candidate_scores(self, state: DecoderState) -> torch.Tensor:
        return state.extras["path_score"]


def _single_swap_candidates(
    top_tokens: torch.Tensor, top_scores: torch.Tensor, keep: torch.Tensor, k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, k, L) paths and (B, k) path log-probs: the argmax path, then one swap to the runner-up
    token at each of the k-1 positions with the smallest best-vs-second margin."""
    best, best_scores = top_tokens[..., 0], top_scores[..., 0].masked_fill(~keep, 0.0)
    total = best_scores.sum(1)
    if k == 1:
        return best[:, None], total[:, None]
    margin = (top_scores[..., 0] - top_scores[..., 1]).masked_fill(~keep, float("inf"))
    swaps = min(k - 1, keep.shape[1])
    margins, where = margin.topk(swaps, dim=1, largest=False)  # (B, swaps)
    paths = best[:, None, :].repeat(1, swaps + 1, 1)
    rows = torch.arange(best.shape[0], device=best.device)[:, None]
    runner_up = top_tokens[..., 1].gather(1, where)
    paths[rows, torch.arange(1, swaps + 1, device=best.device)[None, :], where] = runner_up
    scores = torch.cat([total[:, None], total[:, None] - margins], dim=1)
    if swaps + 1 < k:  # fewer positions than candidates: repeat the best path
        paths = torch.cat([paths, best[:, None, :].expand(-1, k - swaps - 1, -1)], dim=1)
        scores = torch.cat([scores, total[:, None].expand(-1, k - swaps - 1)], dim=1)
    # A swap at a padding position (margin inf) must never win: score it -inf.
    return paths, scores.masked_fill(scores.isinf(), float("-inf"))
