"""The Imputer (Chan et al., 2020; Saharia et al., 2020): what makes this family different from CTC.

The decoder input is the upsampled source plus the embedding of a partially known alignment
(unknown positions hold the mask token). Training uses the alignment-distillation approximation
rather than the paper's dynamic-programming loss: the alignment is the best (Viterbi) path of the
target under the model's own fully masked pass, a uniformly drawn share of it is masked, and the
loss is cross-entropy on the masked positions plus the CTC loss of the fully masked pass (which
is what lets the alignments improve from scratch). Decoding splits the alignment into blocks of
``max_iterations`` positions and, at every step, commits the most confident open position of each
block; after ``max_iterations`` steps every position is known and the path is collapsed.
"""

import torch
import torch.nn.functional as F

from .configuration_imputer import ImputerConfig
from .ctc_alignment import best_alignment, collapse, ctc_feasible
from .modeling_ctc import CTCNATForConditionalGeneration, CTCNATModel, CTCNATPreTrainedModel
from .modeling_nat import NATSeq2SeqLMOutput, compact_targets
from .nat_generation import ITERATION_BOUNDS, DecoderState
from .nat_layers import EncoderState
from .nat_noise import random_positions, uniform_noise
from .nat_registry import register_family
from .nat_upsample import upsample, upsampled_keep

__all__ = ["ImputerForConditionalGeneration", "ImputerModel", "ImputerPreTrainedModel"]


class ImputerPreTrainedModel(CTCNATPreTrainedModel):
    """Base of the Imputer classes."""

    config_class = ImputerConfig


class ImputerModel(CTCNATModel):
    """The Imputer backbone (same as CTC's)."""

    config_class = ImputerConfig


@register_family(base_class=ImputerModel, benchmark_settings=[{"max_iterations": t} for t in (1, 2, 4, 8)])
class ImputerForConditionalGeneration(CTCNATForConditionalGeneration):
    """Imputer with alignment-masking training and block-wise ``generate()`` in ``max_iterations`` steps."""

    config_class = ImputerConfig
    nat_generation_defaults = {"max_iterations": 4, "adaptive": False}
    nat_option_bounds = {"max_iterations": ITERATION_BOUNDS}
    backbone_class = ImputerModel
    supports_glancing = False  # its masked-alignment training already shows part of the answer

    def _alignment_embeds(self, upsampled: torch.Tensor, path: torch.Tensor) -> torch.Tensor:
        """Decoder input: upsampled source plus the (partially masked) alignment's embeddings."""
        return upsampled + self.model.decoder.embed.token_embeds(path).to(upsampled.dtype)

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
        """With ``labels``: CTC loss of the fully masked pass + cross-entropy of the masked
        alignment positions (``losses``: ctc, impute, infeasible). Without: logits of the
        fully masked pass. The source is ``input_ids``, ``input_features`` (audio) or ``pixel_values``."""
        source, attention_mask = self._check_inputs(input_ids, input_features, attention_mask, pixel_values)
        encoder = self.model.encode(source, attention_mask)
        upsampled, keep = upsample(self.upsample, encoder.hidden, encoder.keep)
        all_masked = torch.full(keep.shape, self.config.mask_token_id, device=keep.device)
        logits = self._logits(encoder, self._alignment_embeds(upsampled, all_masked), keep)
        if labels is None:
            return NATSeq2SeqLMOutput(logits=logits, encoder_last_hidden_state=encoder.hidden)

        targets, lengths = compact_targets(labels, self.config)
        feasible = ctc_feasible(targets, lengths, keep.sum(1), self.config.pad_token_id)
        ctc, log_probs = self._ctc_loss(logits, keep, targets, lengths, feasible)
        path = best_alignment(log_probs.detach(), targets, keep.sum(1), lengths, self.config.blank_token_id)
        masked = self._random_mask(keep & feasible[:, None], generator)
        partial = path.masked_fill(masked, self.config.mask_token_id)
        impute_logits = self._logits(encoder, self._alignment_embeds(upsampled, partial), keep)
        if masked.any():
            impute = F.cross_entropy(
                impute_logits[masked].float(), path[masked], label_smoothing=self.config.label_smoothing
            )
        else:
            impute = impute_logits.sum() * 0.0
        loss = ctc + impute
        return NATSeq2SeqLMOutput(
            loss=loss,
            logits=impute_logits,
            encoder_last_hidden_state=encoder.hidden,
            losses={"ctc": ctc.detach(), "impute": impute.detach(), "infeasible": (~feasible).sum().detach().float()},
        )

    @staticmethod
    def _random_mask(keep: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """Mask ⌈r·n⌉ random positions of each row of n real positions, r ~ Uniform(0, 1]."""
        u = uniform_noise(keep.shape, generator, keep.device)
        r = uniform_noise(keep.shape[0], generator, keep.device)
        return random_positions(keep, torch.ceil((1.0 - r) * keep.sum(1)).long(), u)

    # --- decoding hooks -------------------------------------------------------------------
    def _nat_initial_state(self, encoder: EncoderState, empty: torch.Tensor, options: dict) -> DecoderState:
        """A fully masked alignment per source; nothing committed yet."""
        keep = upsampled_keep(encoder.keep, self.config.upsample_ratio)
        path = torch.full(keep.shape, self.config.mask_token_id, device=keep.device)
        tokens = torch.full((keep.shape[0], 1), self.config.pad_token_id, device=keep.device)
        return DecoderState(
            tokens=tokens,
            scores=torch.zeros(tokens.shape, device=keep.device),
            source_index=torch.arange(keep.shape[0], device=keep.device),
            extras={"path": path, "committed": ~keep, "path_score": torch.zeros(keep.shape[0], device=keep.device)},
        )

    def _nat_refine_step(self, encoder: EncoderState, state: DecoderState, step: int, options: dict) -> DecoderState:
        """Commit the most confident open position of every block of ``max_iterations`` positions."""
        steps = int(options["max_iterations"])
        path, committed = state.extras["path"], state.extras["committed"]
        upsampled, keep = upsample(self.upsample, encoder.hidden, encoder.keep)
        scores, tokens = self._emission_log_probs(encoder, self._alignment_embeds(upsampled, path), keep).max(-1)
        if step == steps - 1:
            chosen = ~committed  # the last step fills whatever is still open
        else:
            chosen = _best_open_per_block(scores, committed, steps)
        path = torch.where(chosen, tokens, path)
        committed = committed | chosen
        path_score = state.extras["path_score"] + (scores * (chosen & keep)).sum(1)
        visible = path.masked_fill(~committed, self.config.blank_token_id)
        out = collapse(visible, keep, self.config.blank_token_id, self.config.pad_token_id)
        return DecoderState(
            tokens=out,
            scores=torch.zeros(out.shape, device=out.device),
            source_index=state.source_index,
            extras={"path": path, "committed": committed, "path_score": path_score},
        )

    def _nat_candidate_scores(self, state: DecoderState) -> torch.Tensor:
        keep = state.extras["path"].ne(self.config.mask_token_id)
        return state.extras["path_score"] / keep.sum(1).clamp(min=1)


def _best_open_per_block(scores: torch.Tensor, committed: torch.Tensor, block: int) -> torch.Tensor:
    """(N, L) bool: in every block of ``block`` consecutive positions, the open position with the
    highest score (none where the block is fully committed)."""
    rows, length = scores.shape
    width = -(-length // block) * block
    open_scores = F.pad(scores.masked_fill(committed, float("-inf")), (0, width - length), value=float("-inf"))
    blocks = open_scores.view(rows, -1, block)
    best = blocks.argmax(-1, keepdim=True)
    chosen = torch.zeros_like(blocks, dtype=torch.bool).scatter(-1, best, True)
    chosen &= blocks.gather(-1, best) > float("-inf")
    return chosen.view(rows, width)[:, :length]
