"""Training signals against the one-pass NAT's repeated and missing words, beside its token
cross-entropy: similarity and reconstruction regularisation (Wang et al., AAAI 2019), the
bag-of-n-grams loss (Shao et al., AAAI 2020, in ``nat_bag_of_ngrams``) and the hints of an AR
teacher (Li et al., EMNLP 2019).

Each is off by default and switched on by a weight in the config (``NATConfig``); a family that
decodes its target positions in one pass, aligned with the reference's positions, declares the
techniques it supports in its config's ``training_techniques``, and its ``forward`` adds
:meth:`TrainingTechniquesMixin._technique_losses` to its loss.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .nat_bag_of_ngrams import bag_of_ngrams_loss
from .nat_layers import DecoderLayer, EncoderState, TokenEmbedding

__all__ = [
    "HintTeacher",
    "SourceReconstructor",
    "TrainingTechniquesMixin",
    "alignment_hint_loss",
    "hidden_state_hint_loss",
    "similarity_regularization",
]

_LOG_FLOOR = 1e-9


def similarity_regularization(hidden: torch.Tensor, target_embeds: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Wang et al.'s similarity regulariser, averaged over adjacent target pairs:
    mean_t [1 + cos(h_t, h_{t+1}) · (1 − 2·cos(e_t, e_{t+1}))].

    Adjacent decoder states are pushed apart where their reference tokens differ (the weight tends
    to +1 for unrelated tokens) and together where they repeat (−1 for equal tokens), so two
    states emitting the same word must have a reason to.

    Args:
        hidden: (B, T, D) decoder states.
        target_embeds: (B, T, D) embeddings of the reference tokens (treated as constants).
        keep: (B, T) bool, True on real target positions.

    Returns:
        A scalar; 0 when no sentence has two target tokens.
    """
    pairs = keep[:, 1:] & keep[:, :-1]  # (B, T-1)
    states = F.cosine_similarity(hidden[:, :-1].float(), hidden[:, 1:].float(), dim=-1)  # (B, T-1)
    tokens = F.cosine_similarity(target_embeds[:, :-1].float(), target_embeds[:, 1:].float(), dim=-1).detach()
    term = 1.0 + states * (1.0 - 2.0 * tokens)
    return (term * pairs).sum() / pairs.sum().clamp(min=1)


def _cosine_matrix(states: torch.Tensor) -> torch.Tensor:
    """(B, T, T) cosine similarity between every two positions of (B, T, D) ``states``."""
    unit = F.normalize(states.float(), dim=-1)
    return unit @ unit.transpose(1, 2)


def hidden_state_hint_loss(
    student: torch.Tensor,
    teacher: torch.Tensor,
    keep: torch.Tensor,
    student_threshold: float,
    teacher_threshold: float,
) -> torch.Tensor:
    """Li et al.'s hidden-state hint for one layer: for every pair of target positions s < t whose
    student states are similar (cos ≥ ``student_threshold``) while the teacher's are not
    (cos ≤ ``teacher_threshold``), the penalty −log(1 − cos_student); averaged over all pairs.

    Args:
        student: (B, T, D) NAT decoder states.
        teacher: (B, T, D) AR decoder states at the same target positions (constants).
        keep: (B, T) bool, True on real target positions.

    Returns:
        A scalar; 0 when no sentence has two target tokens.
    """
    length = keep.shape[1]
    upper = torch.ones(length, length, dtype=torch.bool, device=keep.device).triu(1)
    pairs = keep[:, :, None] & keep[:, None, :] & upper  # (B, T, T)
    similar = _cosine_matrix(student)  # (B, T, T)
    reference = _cosine_matrix(teacher).detach()
    penalised = pairs & similar.ge(student_threshold) & reference.le(teacher_threshold)
    penalty = -torch.log((1.0 - similar).clamp(min=_LOG_FLOOR))
    return (penalty * penalised).sum() / pairs.sum().clamp(min=1)


def alignment_hint_loss(student: torch.Tensor, teacher: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Li et al.'s word-alignment hint: KL(teacher ‖ student) between the two models'
    encoder-decoder attention distributions over the source, mean over real target positions.

    Args:
        student: (B, T, S) NAT cross-attention probabilities (averaged over layers and heads).
        teacher: (B, T, S) the AR teacher's at the same target positions (constants).
        keep: (B, T) bool, True on real target positions.
    """
    teacher = teacher.float().detach()
    divergence = teacher * (teacher.clamp(min=_LOG_FLOOR).log() - student.float().clamp(min=_LOG_FLOOR).log())
    per_position = divergence.sum(-1)  # (B, T)
    return (per_position * keep).sum() / keep.sum().clamp(min=1)


class SourceReconstructor(nn.Module):
    """Wang et al.'s backward model: a small autoregressive decoder that reads the NAT decoder's
    states as its memory and predicts the source left to right, so those states must keep all the
    source's content. It shares the NAT's token embedding and output projection; it is used in
    training only."""

    def __init__(self, config, embed_tokens: nn.Embedding):
        super().__init__()
        self.embed = TokenEmbedding(config, embed_tokens)
        self.layers = nn.ModuleList(DecoderLayer(config) for _ in range(config.reconstruction_layers))
        self.layer_norm = nn.LayerNorm(config.d_model)
        self.start_token_id = config.bos_token_id

    def forward(
        self, source: torch.Tensor, source_keep: torch.Tensor, states: torch.Tensor, keep: torch.Tensor, lm_head
    ) -> torch.Tensor:
        """Mean cross-entropy of ``source`` (B, S) given the NAT states (B, T, D) (``keep``: real
        target positions): teacher forcing, the start token then ``source[:, :-1]`` as inputs."""
        start = source.new_full((source.shape[0], 1), self.start_token_id)
        inputs = torch.cat([start, source[:, :-1]], dim=1)  # (B, S)
        inputs_keep = torch.cat([source_keep.new_ones(source.shape[0], 1), source_keep[:, :-1]], dim=1)
        x = self.embed(inputs)
        for layer in self.layers:
            x = layer(x, inputs_keep, keep, layer.cross_attn.project_kv(states), causal=True)
        logits = lm_head(self.layer_norm(x)[source_keep])
        return F.cross_entropy(logits.float(), source[source_keep])


class HintTeacher:
    """An AR transformers seq2seq teacher that gives hints: its decoder states and its averaged
    cross-attention at every reference position, teacher-forced, under ``torch.no_grad()``.

    The student's sources and references are fed to it as they are, so it must share the
    student's tokenizer (checked here against the vocabulary sizes; the trainer also compares the
    tokenizers) and return cross-attentions.
    """

    def __init__(self, model, student_config):
        if not getattr(model.config, "is_encoder_decoder", False):
            raise ValueError(
                f"the hint teacher must be an encoder-decoder with cross-attention, got {type(model).__name__}"
            )
        if not hasattr(model, "prepare_decoder_input_ids_from_labels"):
            raise ValueError(
                f"the hint teacher {type(model).__name__} cannot build decoder inputs from labels "
                "(no prepare_decoder_input_ids_from_labels): use a seq2seq LM such as MarianMTModel"
            )
        if model.config.vocab_size != student_config.vocab_size:
            raise ValueError(
                f"the hint teacher's vocabulary ({model.config.vocab_size} tokens) is not the student's "
                f"({student_config.vocab_size}): hints need the same tokenizer"
            )
        model.config._attn_implementation = "eager"  # SDPA kernels do not return attention probabilities
        self.model = model.eval().requires_grad_(False)
        self.pad_token_id = student_config.pad_token_id
        self.eos_token_id = student_config.eos_token_id

    @torch.no_grad()
    def hints(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, targets: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[tuple[torch.Tensor, ...], torch.Tensor]:
        """(every decoder layer's states, each (B, T, D); cross-attention averaged over layers and
        heads (B, T, S)) for the content ``targets`` (B, T) of ``lengths``: state t is the one that
        predicts target token t."""
        device = next(self.model.parameters()).device
        batch, width = targets.shape
        labels = torch.cat([targets, targets.new_full((batch, 1), self.pad_token_id)], dim=1)
        labels[torch.arange(batch), lengths] = self.eos_token_id  # reference + eos, as the teacher was trained
        decoder_input_ids = self.model.prepare_decoder_input_ids_from_labels(labels=labels)
        out = self.model(
            input_ids=input_ids.to(device),
            attention_mask=attention_mask.to(device),
            decoder_input_ids=decoder_input_ids.to(device),
            output_hidden_states=True,
            output_attentions=True,
        )
        if not out.cross_attentions or out.cross_attentions[0] is None:
            raise ValueError(f"the hint teacher {type(self.model).__name__} returns no cross-attentions")
        states = tuple(h[:, :width].float().to(targets.device) for h in out.decoder_hidden_states[1:])
        attention = torch.stack(out.cross_attentions).float().mean((0, 2))[:, :width]  # (B, T, S)
        return states, attention.to(targets.device)


class TrainingTechniquesMixin:
    """Adds the config's training techniques to a one-pass family's loss. The family calls
    :meth:`_init_training_techniques` in ``__init__`` (after its backbone, before ``post_init``),
    merges :data:`TECHNIQUE_TIED_WEIGHTS` into its ``_tied_weights_keys``, and in ``forward`` runs
    its decoder through :meth:`_decode_for_training` and adds :meth:`_token_loss` and
    :meth:`_technique_losses`."""

    TECHNIQUE_TIED_WEIGHTS = {"source_reconstructor.embed.embed_tokens.weight": "model.shared.weight"}

    def _init_training_techniques(self) -> None:
        config = self.config
        self.source_reconstructor = (
            SourceReconstructor(config, self.model.shared) if config.reconstruction_weight > 0 else None
        )
        self._hint_teacher = None

    @property
    def uses_decoder_internals(self) -> bool:
        """Whether a technique reads decoder layers or cross-attention (the hints)."""
        return self.config.hint_hidden_weight > 0 or self.config.hint_alignment_weight > 0

    def attach_hint_teacher(self, teacher) -> None:
        """Give the AR teacher whose hints the training uses (a transformers seq2seq model with the
        student's tokenizer; it is not part of this model's weights)."""
        if not self.uses_decoder_internals:
            raise ValueError("a hint teacher is only used with hint_hidden_weight or hint_alignment_weight > 0")
        self._hint_teacher = HintTeacher(teacher, self.config)

    def _technique_losses(
        self,
        encoder: EncoderState,
        source_mask: torch.Tensor,
        targets: torch.Tensor,
        lengths: torch.Tensor,
        hidden: torch.Tensor,
        internals: tuple | None,
    ) -> dict[str, tuple[float, torch.Tensor]]:
        """{loss name: (weight, value)} of the enabled techniques other than bag-of-n-grams.

        ``hidden`` (B, T, D) are the final decoder states over ``targets`` (B, T); ``internals``
        (layer states, cross-attentions) from ``NATDecoder.forward_with_internals`` when
        :attr:`uses_decoder_internals`."""
        config, keep, out = self.config, targets.ne(self.config.pad_token_id), {}
        if config.similarity_weight > 0:
            embeds = self.model.shared(targets)
            out["similarity"] = (config.similarity_weight, similarity_regularization(hidden, embeds, keep))
        if config.reconstruction_weight > 0:
            source = encoder.input_ids
            rec = self.source_reconstructor(source, source_mask.bool(), hidden, keep, self.lm_head)
            out["reconstruction"] = (config.reconstruction_weight, rec)
        if self.uses_decoder_internals and self.training:
            if self._hint_teacher is None:
                raise ValueError(
                    "hint_hidden_weight / hint_alignment_weight > 0 train with an AR teacher's hints: "
                    "pass `--hint_teacher PATH` to training (or call model.attach_hint_teacher(teacher))"
                )
            hints = self._hint_teacher.hints(encoder.input_ids, source_mask, targets, lengths)
            teacher_states, teacher_attention = hints
            student_states, student_attentions = internals
            if config.hint_hidden_weight > 0:
                hint = torch.stack(
                    [
                        hidden_state_hint_loss(
                            student_states[layer],
                            teacher_states[_matching_layer(layer, len(student_states), len(teacher_states))],
                            keep,
                            config.hint_student_threshold,
                            config.hint_teacher_threshold,
                        )
                        for layer in range(len(student_states))
                    ]
                ).mean()
                out["hint_hidden"] = (config.hint_hidden_weight, hint)
            if config.hint_alignment_weight > 0:
                student_attention = torch.stack(student_attentions).float().mean((0, 2))  # (B, T, S)
                align = alignment_hint_loss(student_attention, teacher_attention, keep)
                out["hint_alignment"] = (config.hint_alignment_weight, align)
        return out

    def _token_loss(
        self, hidden: torch.Tensor, targets: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[dict[str, tuple[float, torch.Tensor]], torch.Tensor]:
        """({name: (weight, value)} of the token losses, logits (N, V) of the N real target
        positions) for decoder states ``hidden`` (B, T, D): the cross-entropy, mixed with the
        bag-of-n-grams loss by ``bag_of_ngrams_weight`` (which needs every position's logits)."""
        config, keep = self.config, targets.ne(self.config.pad_token_id)
        weight = config.bag_of_ngrams_weight
        full = self.lm_head(hidden) if weight > 0 else None  # (B, T, V)
        logits = full[keep] if full is not None else self.lm_head(hidden[keep])
        cross_entropy = F.cross_entropy(logits.float(), targets[keep], label_smoothing=config.label_smoothing)
        if weight <= 0:
            return {"tokens": (1.0, cross_entropy)}, logits
        log_probs = full.float().log_softmax(-1)
        per_sentence, has = bag_of_ngrams_loss(log_probs, targets, lengths, config.bag_of_ngrams_order)
        bon = (per_sentence * has).sum() / has.sum().clamp(min=1)
        return {"tokens": (1.0 - weight, cross_entropy), "bag_of_ngrams": (weight, bon)}, logits

    def _decode_for_training(self, keep: torch.Tensor, encoder: EncoderState, embeds: torch.Tensor):
        """(final decoder states (B, T, D), internals or None): the internals (every layer's
        states and cross-attentions) only when a hint needs them."""
        if self.uses_decoder_internals and self.training:
            hidden, states, attentions = self.model.decoder.forward_with_internals(keep, encoder, embeds)
            return hidden, (states, attentions)
        return self.model.decoder(keep, encoder, inputs_embeds=embeds), None


def _matching_layer(layer: int, student_layers: int, teacher_layers: int) -> int:
    """The teacher layer at the same relative depth as student ``layer`` (the last with the last)."""
    return min(teacher_layers - 1, ((layer + 1) * teacher_layers + student_layers - 1) // student_layers - 1)
