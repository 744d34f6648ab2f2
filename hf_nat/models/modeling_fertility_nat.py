"""Vanilla NAT with fertility and noisy parallel decoding (Gu et al., 2018): what makes this family
different.

The encoder predicts a fertility for every source token; the decoder reads the source embeddings
copied by fertility and predicts every target token in one pass. Training uses the aligner's
fertilities (teacher forcing) and, optionally, REINFORCE on the fertility predictor with the
decoder's likelihood of the target as reward. Noisy parallel decoding (NPD) samples fertility
sequences, decodes them all in one batched pass and keeps the best (by an AR rescorer when one is
given). With ``decoder_input`` = uniform/soft copy the same family is the "vanilla NAT" of later
work, with a length predictor instead of fertilities.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

from .configuration_fertility_nat import FertilityNATConfig
from .modeling_nat import NATModel, NATPreTrainedModel, NATSeq2SeqLMOutput, compact_targets, length_loss
from .nat_copy import copied_by_length, copyable_source, fertility_copy_index, gather_positions
from .nat_generation import (
    CANDIDATE_BOUNDS,
    POSITIVE,
    DecoderState,
    NATGenerationMixin,
    OptionBounds,
    best_tokens_of_states,
    draft_layout,
    length_aware_scores,
    length_beam_state,
    mean_token_scores,
)
from .nat_glancing import GlancingMixin
from .nat_layers import EncoderState, LengthPredictor
from .nat_noise import random_prefix, uniform_noise
from .nat_registry import register_family
from .nat_sequences import distinct_per_source, left_align
from .nat_training_techniques import TrainingTechniquesMixin

__all__ = ["FertilityNATForConditionalGeneration", "FertilityNATModel", "FertilityNATPreTrainedModel"]


class FertilityNATPreTrainedModel(NATPreTrainedModel):
    """Base of the fertility NAT classes."""

    config_class = FertilityNATConfig


class FertilityNATModel(NATModel):
    """The backbone; a length predictor only for the copy variants (fertilities set the length otherwise)."""

    config_class = FertilityNATConfig

    @property
    def predicts_length(self) -> bool:
        return self.config.decoder_input != "fertility"


@register_family(base_class=FertilityNATModel, benchmark_settings=[{"npd_samples": 1}])
class FertilityNATForConditionalGeneration(
    FertilityNATPreTrainedModel, GlancingMixin, TrainingTechniquesMixin, NATGenerationMixin
):
    """Vanilla NAT with a fertility predictor, one-pass ``generate()`` and noisy parallel decoding.

    Decoding options: ``npd_samples`` (s: candidates per source; the first uses the argmax
    fertilities, the others fertilities sampled at ``npd_temperature``; the samples depend only on
    the sentence and ``npd_seed``, so results do not change with the batch), ``length_beam``
    (copy variants: candidates of the top predicted lengths). Candidates are ranked by their mean
    token log-probability (plus the length's log-probability for the copy variants), or by
    ``rescorer=`` (an AR model) as the paper does.
    """

    _tied_weights_keys = {"lm_head.weight": "model.shared.weight", **TrainingTechniquesMixin.TECHNIQUE_TIED_WEIGHTS}
    nat_generation_defaults = {"npd_samples": 1, "npd_temperature": 1.0, "npd_seed": 0, "length_beam": 1}
    nat_option_bounds = {
        "npd_samples": OptionBounds(1, 1000),
        "npd_temperature": POSITIVE,
        "npd_seed": OptionBounds(0, 2**62),
        "length_beam": CANDIDATE_BOUNDS,
    }

    def __init__(self, config: FertilityNATConfig):
        super().__init__(config)
        self.model = FertilityNATModel(config)
        self.lm_head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        self.fertility_head = (
            nn.Linear(config.d_model, config.max_fertility + 1) if config.decoder_input == "fertility" else None
        )
        self._init_glancing()
        self._init_training_techniques()
        self.post_init()
        self.generation_config = self._nat_default_generation_config()

    @property
    def uses_fertility(self) -> bool:
        return self.config.decoder_input == "fertility"

    def _soft_temperature(self) -> float | None:
        return self.config.soft_copy_temperature if self.config.decoder_input == "soft_copy" else None

    def _fertility_logits(self, encoder: EncoderState) -> torch.Tensor:
        return self.fertility_head(encoder.hidden).float()

    # --- training -------------------------------------------------------------------------
    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        fertility: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        **kwargs,
    ) -> NATSeq2SeqLMOutput:
        """With ``labels``: token cross-entropy plus the fertility (or length) loss, the enabled
        training techniques and the REINFORCE term when configured (``losses``: tokens,
        fertility|length[, bag_of_ngrams, similarity, reconstruction, hint_hidden, hint_alignment,
        reinforce]).
        ``fertility`` (B, S) holds the aligner's fertility of every source token (-100 or 0 on
        padding and eos). Without labels: the predicted fertility (or length) logits."""
        input_ids, attention_mask = self._check_source(input_ids, attention_mask)
        encoder = self.model.encode(input_ids, attention_mask)
        aux_logits = self._fertility_logits(encoder) if self.uses_fertility else self.model.length_predictor(encoder)
        if labels is None:
            return NATSeq2SeqLMOutput(
                logits=aux_logits if self.uses_fertility else None,
                length_logits=None if self.uses_fertility else aux_logits,
                encoder_last_hidden_state=encoder.hidden,
            )
        targets, lengths = compact_targets(labels, self.config)
        keep = targets.ne(self.config.pad_token_id)
        losses = {}
        if self.uses_fertility:
            gold = self._gold_fertility(fertility, encoder, lengths)
            index, _ = fertility_copy_index(gold, targets.shape[1])
            embeds = gather_positions(self.model.decoder.embed.token_embeds(encoder.input_ids), index)
            content = copyable_source(encoder, self.config)
            aux = F.cross_entropy(aux_logits[content], gold[content].clamp(max=self.config.max_fertility))
            losses["fertility"] = aux
            aux_weight = self.config.fertility_loss_weight
        else:
            embeds = copied_by_length(
                self.model.decoder.embed, encoder, self.config, lengths, targets.shape[1], self._soft_temperature()
            )
            aux = length_loss(aux_logits, lengths)
            losses["length"] = aux
            aux_weight = self.config.length_loss_weight
        if self.config.glancing and self.training:
            embeds = self._glance(encoder, keep, targets, embeds, generator)
        if self.config.draft_prefix_prob > 0 and self.training:
            _, prefix = random_prefix(keep, self.config.draft_prefix_prob, generator)
            gold = self.model.decoder.embed.token_embeds(targets).to(embeds.dtype)
            embeds = torch.where(prefix[..., None], gold, embeds)
        hidden, internals = self._decode_for_training(keep, encoder, embeds)
        terms, logits = self._token_loss(hidden, targets, lengths)
        terms.update(self._technique_losses(encoder, attention_mask, targets, lengths, hidden, internals))
        losses.update({name: value for name, (_, value) in terms.items()})
        loss = sum(weight * value for weight, value in terms.values()) + aux_weight * aux
        if self.uses_fertility and self.config.fertility_reinforce_weight > 0 and self.training:
            reinforce = self._reinforce_loss(encoder, aux_logits, targets, lengths, generator)
            losses["reinforce"] = reinforce
            loss = loss + self.config.fertility_reinforce_weight * reinforce
        return NATSeq2SeqLMOutput(
            loss=loss,
            logits=logits,
            losses={k: v.detach() for k, v in losses.items()},
            encoder_last_hidden_state=encoder.hidden,
        )

    def _gold_fertility(
        self, fertility: torch.Tensor | None, encoder: EncoderState, lengths: torch.Tensor
    ) -> torch.Tensor:
        """The aligner's fertilities, checked against the source shape and the target lengths."""
        if fertility is None:
            raise ValueError(
                "decoder_input='fertility' trains on fertility labels: compute them with "
                "`hf-nat align` and pass them to `hf-nat train --fertility DIR` "
                "(or use decoder_input='uniform_copy')"
            )
        if fertility.shape != encoder.input_ids.shape:
            raise ValueError(
                f"fertility has shape {tuple(fertility.shape)} but input_ids "
                f"{tuple(encoder.input_ids.shape)}: they were computed with another tokenizer"
            )
        gold = fertility.clamp(min=0).masked_fill(~copyable_source(encoder, self.config), 0)
        wrong = gold.sum(1).ne(lengths)
        if wrong.any():
            raise ValueError(
                f"fertilities of {int(wrong.sum())} sentence(s) do not sum to their target length: "
                f"they were computed for other targets or another tokenizer"
            )
        return gold

    def _glance(
        self,
        encoder: EncoderState,
        keep: torch.Tensor,
        targets: torch.Tensor,
        embeds: torch.Tensor,
        generator: torch.Generator | None,
    ) -> torch.Tensor:
        """GLAT: replace ratio × (first-pass errors) copied inputs by the gold tokens' embeddings."""
        with torch.no_grad():
            predicted = self.lm_head(self.model.decoder(keep, encoder, inputs_embeds=embeds)).argmax(-1)
            errors = (predicted.ne(targets) & keep).sum(1)
        reveal = self._glancing_reveal(keep, errors, generator)
        gold = self.model.decoder.embed.token_embeds(targets).to(embeds.dtype)
        return torch.where(reveal[..., None], gold, embeds)

    def _reinforce_loss(
        self,
        encoder: EncoderState,
        fertility_logits: torch.Tensor,
        targets: torch.Tensor,
        lengths: torch.Tensor,
        generator: torch.Generator | None,
    ) -> torch.Tensor:
        """REINFORCE on the fertility predictor (Gu et al., 2018, §4.3).

        For each sentence ``reinforce_samples`` fertility sequences f are sampled; the reward is
        the decoder's mean log-likelihood of the target given f. A sample whose fertilities do not
        sum to the target length gives the target probability 0, so its reward is the floor
        log(1/vocab) (chance level) instead of -inf. The baseline is the mean reward of the
        sentence's samples.
        """
        samples = self.config.reinforce_samples
        content = copyable_source(encoder, self.config)
        log_probs = fertility_logits.log_softmax(-1)
        rows = torch.arange(targets.shape[0], device=targets.device).repeat_interleave(samples)
        noise = uniform_noise((rows.shape[0],) + log_probs.shape[1:], generator, log_probs.device)
        sampled = (log_probs[rows].detach() + _gumbel(noise)).argmax(-1).masked_fill(~content[rows], 0)
        chosen = log_probs[rows].gather(-1, sampled[..., None]).squeeze(-1).masked_fill(~content[rows], 0.0).sum(1)
        with torch.no_grad():
            floor = -math.log(self.config.vocab_size)
            reward = torch.full((rows.shape[0],), floor, device=targets.device)
            match = sampled.sum(1).eq(lengths[rows]).nonzero().squeeze(1)
            if match.numel():
                reward[match] = self._target_log_likelihood(
                    encoder.select(rows[match]), sampled[match], targets[rows[match]]
                ).clamp(min=floor)
            advantage = reward - reward.view(-1, samples).mean(1).repeat_interleave(samples)
        return -(advantage * chosen).mean()

    def _target_log_likelihood(
        self, encoder: EncoderState, fertility: torch.Tensor, targets: torch.Tensor
    ) -> torch.Tensor:
        """Mean log-probability of ``targets`` by the decoder reading the source copied by ``fertility``."""
        index, keep = fertility_copy_index(fertility, targets.shape[1])
        embeds = gather_positions(self.model.decoder.embed.token_embeds(encoder.input_ids), index)
        log_probs = self.lm_head(self.model.decoder(keep, encoder, inputs_embeds=embeds)).float().log_softmax(-1)
        token = log_probs.gather(-1, targets[:, : keep.shape[1], None]).squeeze(-1).masked_fill(~keep, 0.0)
        return token.sum(1) / keep.sum(1).clamp(min=1)

    # --- decoding hooks -------------------------------------------------------------------
    def _nat_check_options(self, options: dict) -> None:
        super()._nat_check_options(options)
        if int(options["npd_samples"]) > 1 and not self.uses_fertility:
            raise ValueError(
                f"npd_samples samples fertilities, but this model uses decoder_input="
                f"{self.config.decoder_input!r}: use length_beam for several candidates"
            )
        if int(options["length_beam"]) > 1 and self.uses_fertility:
            raise ValueError(
                "length_beam ranks predicted lengths, but this model copies the source by its predicted "
                "fertilities (decoder_input='fertility'): use npd_samples for several candidates"
            )

    def _nat_candidates_per_source(self, options: dict) -> int:
        return int(options["npd_samples"] if self.uses_fertility else options["length_beam"])

    def _nat_initial_state(self, encoder: EncoderState, empty: torch.Tensor, options: dict) -> DecoderState:
        """The one decoding pass over every candidate (fertility samples or predicted lengths)."""
        if self.uses_fertility:
            fertility = self._decoding_fertilities(encoder, options)
            samples = fertility.shape[0] // empty.shape[0]
            source_index = torch.arange(empty.shape[0], device=empty.device).repeat_interleave(samples)
            if samples > 1:
                # Samples often repeat a fertility sequence; each distinct one is decoded once.
                sources, distinct, inverse = distinct_per_source(source_index, fertility)
                return self._decode_fertilities(encoder.select(sources), distinct, sources).select(inverse)
            return self._decode_fertilities(encoder, fertility, source_index)
        state = length_beam_state(
            self.model.length_predictor(encoder),
            int(options["length_beam"]),
            empty,
            self.config.mask_token_id,
            self.config.pad_token_id,
        )
        source_index = state.source_index
        rows = encoder.select(source_index) if state.tokens.shape[0] != empty.shape[0] else encoder
        keep = state.tokens.ne(self.config.pad_token_id)
        embeds = copied_by_length(
            self.model.decoder.embed, rows, self.config, keep.sum(1), keep.shape[1], self._soft_temperature()
        )
        return self._decode(rows, keep, embeds, source_index, state.extras)

    def _decode_fertilities(
        self, rows: EncoderState, fertility: torch.Tensor, source_index: torch.Tensor
    ) -> DecoderState:
        """Decode the source of each row of ``rows`` copied by its ``fertility`` row."""
        index, keep = fertility_copy_index(fertility, self.config.max_position_embeddings)
        embeds = gather_positions(self.model.decoder.embed.token_embeds(rows.input_ids), index)
        return self._decode(rows, keep, embeds, source_index, None)

    def _decode(
        self,
        rows: EncoderState,
        keep: torch.Tensor,
        embeds: torch.Tensor,
        source_index: torch.Tensor,
        extras: dict | None,
    ) -> DecoderState:
        """One non-causal decoder pass over ``embeds``; the best token at every kept position."""
        hidden = self.model.decoder(keep, rows, inputs_embeds=embeds)
        scores, tokens = best_tokens_of_states(hidden, self.lm_head, self.config.special_token_ids())
        return DecoderState(
            tokens=tokens.masked_fill(~keep, self.config.pad_token_id),
            scores=scores.masked_fill(~keep, 0.0),
            source_index=source_index,
            extras=extras,
        )

    def _decoding_fertilities(self, encoder: EncoderState, options: dict) -> torch.Tensor:
        """(B·s, S) fertilities: the argmax first, then s-1 samples per source (at least 1 token each)."""
        log_probs = self._fertility_logits(encoder).log_softmax(-1)
        content = copyable_source(encoder, self.config)
        samples = int(options["npd_samples"])
        best = log_probs.argmax(-1)[:, None]
        if samples > 1:
            noise = _sentence_noise(
                encoder.input_ids, content, samples - 1, log_probs.shape[-1], int(options["npd_seed"])
            )
            drawn = (log_probs[:, None] / float(options["npd_temperature"]) + _gumbel(noise)).argmax(-1)
            best = torch.cat([best, drawn], 1)
        fertility = best.masked_fill(~content[:, None], 0).flatten(0, 1)
        # A source must produce at least one token: give it to the token least likely to have none.
        none = fertility.sum(1).eq(0)
        if none.any():
            likely = log_probs[:, :, 0].masked_fill(~content, float("inf")).argmin(1).repeat_interleave(samples)
            fertility[none, likely[none]] = 1
        return fertility

    def _nat_refine_step(self, encoder: EncoderState, state: DecoderState, step: int, options: dict) -> DecoderState:
        return state  # one pass: the initial state is the output

    def _nat_draft_length(self, encoder: EncoderState) -> torch.Tensor:
        if self.uses_fertility:
            fertility = self._decoding_fertilities(encoder, {"npd_samples": 1})
            return fertility.sum(1).clamp(max=self.config.max_position_embeddings)
        return LengthPredictor.top_lengths(self.model.length_predictor(encoder), 1)[:, 0]

    def _nat_draft(
        self, encoder: EncoderState, prefix: torch.Tensor, draft_lengths: torch.Tensor, options: dict
    ) -> torch.Tensor:
        """The decoder reads the prefix's token embeddings, then the source copied for the whole
        length (by the argmax fertilities, positions past their sum reading the last copied
        token; or uniformly); one pass predicts the draft positions."""
        tokens, keep, draft = draft_layout(prefix, draft_lengths, self.config.pad_token_id)
        lengths, width = keep.sum(1), keep.shape[1]
        if self.uses_fertility:
            fertility = self._decoding_fertilities(encoder, {"npd_samples": 1})
            index, copied = fertility_copy_index(fertility, self.config.max_position_embeddings)
            index = _pad_to_width(index, width)
            last = (copied.sum(1) - 1).clamp(min=0)
            positions = torch.arange(width, device=index.device)[None, :]
            index = index.gather(1, torch.minimum(positions, last[:, None]))
            embeds = gather_positions(self.model.decoder.embed.token_embeds(encoder.input_ids), index)
        else:
            embeds = copied_by_length(
                self.model.decoder.embed, encoder, self.config, lengths, width, self._soft_temperature()
            )
        shown = keep & ~draft
        gold = self.model.decoder.embed.token_embeds(tokens).to(embeds.dtype)
        embeds = torch.where(shown[..., None], gold, embeds)
        hidden = self.model.decoder(keep, encoder, inputs_embeds=embeds)
        _, best = best_tokens_of_states(hidden[draft], self.lm_head, self.config.special_token_ids())
        tokens = tokens.masked_scatter(draft, best)
        return left_align(tokens, draft, self.config.pad_token_id)[:, : max(int(draft_lengths.max()), 0)]

    def _nat_candidate_scores(self, state: DecoderState) -> torch.Tensor:
        if state.extras is None:  # fertility candidates: the length is part of what is sampled
            return mean_token_scores(state, self.config.pad_token_id)
        return length_aware_scores(state, self.config.pad_token_id)


def _pad_to_width(index: torch.Tensor, width: int) -> torch.Tensor:
    """``index`` (B, T) cut or padded (repeating its last column) to ``width`` columns."""
    if index.shape[1] >= width:
        return index[:, :width]
    return torch.cat([index, index[:, -1:].expand(-1, width - index.shape[1])], 1)


def _gumbel(uniform: torch.Tensor) -> torch.Tensor:
    """Gumbel(0, 1) noise from uniform noise in [0, 1)."""
    return -torch.log(-torch.log(uniform.clamp(1e-9, 1 - 1e-9)))


_MODULUS = 2**31 - 1


def _mix(x: torch.Tensor) -> torch.Tensor:
    """A hash of non-negative int64 values below 2**31 into the same range (no overflow)."""
    for _ in range(3):
        x = (x * 48271 + 11) % _MODULUS
        x = x ^ (x >> 13)
    return x


def _sentence_noise(
    input_ids: torch.Tensor, content: torch.Tensor, samples: int, classes: int, seed: int
) -> torch.Tensor:
    """Uniform noise (B, samples, S, classes) that depends only on each sentence's tokens, the
    position, the sample, the class and ``seed``: the same sentence gets the same samples in any batch."""
    positions = torch.arange(input_ids.shape[1], device=input_ids.device)
    token_keys = _mix((input_ids % _MODULUS) * 1009 + positions) * content
    sentence = _mix((token_keys.sum(1) + seed) % _MODULUS)
    key = sentence[:, None, None, None]
    key = _mix((key * 31 + torch.arange(samples, device=key.device)[None, :, None, None]) % _MODULUS)
    key = _mix((key * 31 + positions[None, None, :, None]) % _MODULUS)
    key = _mix((key * 31 + torch.arange(classes, device=key.device)[None, None, None, :]) % _MODULUS)
    return ((key.double() + 0.5) / _MODULUS).float()
