"""Joint CTC-attention training of an AR speech baseline (Kim, Hori & Watanabe 2017).

An attention decoder alone learns to align speech slowly: early on it writes fluent sentences
that ignore the audio. A CTC loss on the encoder states forces a monotonic alignment from the
first updates. The CTC head exists only during training: what is saved and decoded is the plain
transformers model, decoded by attention alone.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from hf_nat.models.ctc_alignment import ctc_feasible
from hf_nat.models.modeling_nat import compact_targets

__all__ = ["AuxiliaryCTC"]


class AuxiliaryCTC(torch.nn.Module):
    """A transformers speech seq2seq ``model`` (Speech2Text) plus a linear CTC head on its encoder
    output, trained on ``(1 - weight) * cross-entropy + weight * CTC``.

    ``deployed_model`` is the wrapped model alone: validation decodes it and training saves it,
    so the head never reaches a saved folder.
    """

    def __init__(self, model: torch.nn.Module, weight: float, blank_token_id: int):
        super().__init__()
        if not 0.0 < weight < 1.0:
            raise ValueError(f"the auxiliary CTC weight must lie in (0, 1), got {weight}")
        self.deployed_model = model
        self.weight = weight
        self.blank_token_id = blank_token_id
        self.ctc_head = torch.nn.Linear(model.config.d_model, model.config.vocab_size)

    def forward(self, input_features, attention_mask, labels, label_smoothing: float = 0.0):
        """(loss, named parts) for a batch of the speech collator: ``input_features`` (batch,
        frames, bins), ``attention_mask`` (batch, frames), ``labels`` (batch, tokens) padded with -100."""
        out = self.deployed_model(input_features=input_features, attention_mask=attention_mask, labels=labels)
        tokens = F.cross_entropy(
            out.logits.float().flatten(0, 1), labels.flatten(), ignore_index=-100, label_smoothing=label_smoothing
        )
        states = out.encoder_last_hidden_state  # (batch, states, d_model)
        state_lengths = self.deployed_model._get_feat_extract_output_lengths(attention_mask.sum(-1))
        state_lengths = state_lengths.clamp(max=states.shape[1]).long()
        targets, target_lengths = compact_targets(labels, self.deployed_model.config)
        feasible = ctc_feasible(targets, target_lengths, state_lengths, self.deployed_model.config.pad_token_id)
        log_probs = self.ctc_head(states).float().log_softmax(-1)  # (batch, states, vocab)
        if feasible.any():
            ctc = F.ctc_loss(
                log_probs[feasible].transpose(0, 1),
                targets[feasible],
                state_lengths[feasible],
                target_lengths[feasible],
                blank=self.blank_token_id,
                reduction="mean",
                zero_infinity=True,
            )
        else:  # every parameter still gets a (zero) gradient
            ctc = log_probs.sum() * 0.0
        loss = (1.0 - self.weight) * tokens + self.weight * ctc
        return loss, {"tokens": tokens.detach(), "ctc": ctc.detach(), "infeasible": (~feasible).sum().float()}
