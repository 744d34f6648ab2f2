"""KERMIT (Chan et al., 2019): what makes this family different.

One Transformer, without encoder and without causal mask, reads the canvas
``[bos] x [eos] [bos] y [eos]`` of both sides of a sentence pair (a side embedding tells them
apart). Every slot between two adjacent tokens of a side predicts a token or "no insertion", as
in the Insertion Transformer, whose slot loss it shares. Training mixes what is asked of each
pair: one side given whole and the other partial (p(y|x), p(x|y)), both partial (p(x, y)), or one
side alone (p(x), p(y)); so the same weights translate both ways and generate either side or a
pair from nothing. Decoding inserts into every slot of the generated side whose best token beats
"no insertion", in parallel, until nothing is inserted.
"""

import torch
from torch import nn

from .configuration_kermit import KermitConfig, parse_training_modes
from .modeling_nat import NATModelOutput, NATPreTrainedModel, NATSeq2SeqLMOutput, compact_targets
from .nat_edit_mixin import EDIT_DECODING_DEFAULTS, EDIT_OPTION_BOUNDS, BoundedEditsMixin
from .nat_edits import add_boundaries, bounded_scores, cap_insertions, insert_into_slots, length_caps, slot_states
from .nat_generation import DecoderState, NATGenerationMixin
from .nat_layers import EncoderLayer, EncoderState, NATEncoder
from .nat_noise import random_subsequence, uniform_noise
from .nat_registry import register_family
from .nat_sequences import left_align
from .nat_slot_loss import slot_insertion_loss

__all__ = [
    "KermitForConditionalGeneration",
    "KermitModel",
    "KermitPreTrainedModel",
    "CanvasEncoder",
    "canvas_sides",
    "kermit_canvas",
    "side_slots",
]

DIRECTIONS = ("y|x", "x|y")


def kermit_canvas(
    x: torch.Tensor, y: torch.Tensor, pad_token_id: int, bos_token_id: int, eos_token_id: int
) -> torch.Tensor:
    """The canvas (B, L) of content rows ``x`` (B, Tx) and ``y`` (B, Ty) (left-aligned, pad
    after): bos, x, eos, bos, y, eos, pad after."""
    bounded_x = add_boundaries(x, pad_token_id, bos_token_id, eos_token_id)
    bounded_y = add_boundaries(y, pad_token_id, bos_token_id, eos_token_id)
    both = torch.cat([bounded_x, bounded_y], 1)
    return left_align(both, both.ne(pad_token_id), pad_token_id)


def canvas_sides(canvas: torch.Tensor, bos_token_id: int) -> torch.Tensor:
    """(B, L) the side of every canvas position: 0 up to x's eos, 1 from y's bos on (padding too).
    A pure function of the canvas, so the side embedding needs no input of its own."""
    return (canvas.eq(bos_token_id).long().cumsum(1) >= 2).long()


def side_slots(values: torch.Tensor, canvas: torch.Tensor, side: int, pad_token_id: int, bos_token_id: int):
    """The per-slot ``values`` (B, L - 1, ...) of a canvas (B, L) restricted to the slots of one
    ``side``, in order: (B, S, ...) with S the most slots a row's side has (slot 0 follows the
    side's bos). Rows with fewer slots are padded with their last slot's values."""
    real = canvas.ne(pad_token_id)
    sides = canvas_sides(canvas, bos_token_id)
    mine = real[:, :-1] & real[:, 1:] & sides[:, :-1].eq(side) & sides[:, 1:].eq(side)  # (B, L - 1)
    order = (~mine).to(torch.int8).argsort(dim=1, stable=True)
    width = max(int(mine.sum(1).max()), 1)
    order = order[:, :width]
    index = order.view(*order.shape, *([1] * (values.dim() - 2))).expand(-1, -1, *values.shape[2:])
    return values.gather(1, index)


class CanvasEncoder(NATEncoder):
    """The encoder stack run over a whole canvas: token, position and side embeddings, then
    ``encoder_layers + decoder_layers`` bidirectional layers (an encoder-decoder's depth)."""

    def __init__(self, config: KermitConfig, embed_tokens: nn.Embedding):
        super().__init__(config, embed_tokens)
        self.layers.extend(EncoderLayer(config) for _ in range(config.decoder_layers))
        self.side_embed = nn.Embedding(2, config.d_model)
        self.bos_token_id = config.bos_token_id

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """States (B, L, D) of a canvas ``input_ids`` (B, L) and their real-position mask (B, L)
        (``attention_mask``: the encoder contract of :class:`NATEncoder`)."""
        keep = attention_mask.bool()
        sides = canvas_sides(input_ids, self.bos_token_id)
        x = self.embed(inputs_embeds=self.embed.token_embeds(input_ids) + self.side_embed(sides))
        for layer in self.layers:
            x = layer(x, keep)
        return self.layer_norm(x), keep


class KermitPreTrainedModel(NATPreTrainedModel):
    """Base of the KERMIT classes."""

    config_class = KermitConfig


class KermitModel(KermitPreTrainedModel):
    """The shared token embedding and the canvas encoder: the whole Transformer."""

    _tied_weights_keys = {"encoder.embed.embed_tokens.weight": "shared.weight"}

    def __init__(self, config: KermitConfig):
        super().__init__(config)
        self.shared = nn.Embedding(config.vocab_size, config.d_model, config.pad_token_id)
        self.encoder = CanvasEncoder(config, self.shared)
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.shared

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.shared = value
        self.encoder.embed.embed_tokens = value

    def states(self, canvas: torch.Tensor) -> torch.Tensor:
        """(B, L, D) states of a ``canvas`` (B, L) (see :func:`kermit_canvas`)."""
        return self.encoder(canvas, canvas.ne(self.config.pad_token_id))[0]

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, **kwargs) -> NATModelOutput:
        """The states of a canvas (``input_ids``)."""
        return NATModelOutput(last_hidden_state=self.states(input_ids))


@register_family(base_class=KermitModel, benchmark_settings=[{"max_iterations": 10}])
class KermitForConditionalGeneration(KermitPreTrainedModel, BoundedEditsMixin, NATGenerationMixin):
    """KERMIT with its slot heads, mixed-mode slot-loss training and parallel-insertion decoding.

    ``forward(input_ids=x side, labels=y side)`` trains on a pair. Decoding options: ``direction``
    (``"y|x"``: ``input_ids`` is an x-side sentence, the output its y side; ``"x|y"`` the
    reverse; the pipeline's ``src_lang``/``tgt_lang`` set it), and the Insertion Transformer's
    ``max_iterations``, ``adaptive``, ``insertion_penalty``, ``max_length_ratio``.
    :meth:`generate_pairs` samples pairs from an empty canvas.
    """

    _tied_weights_keys = {"lm_head.weight": "model.shared.weight"}
    nat_generation_defaults = {**EDIT_DECODING_DEFAULTS, "direction": "y|x"}
    nat_option_bounds = EDIT_OPTION_BOUNDS
    nat_has_encoder = False

    def __init__(self, config: KermitConfig):
        super().__init__(config)
        self.model = KermitModel(config)
        self.slot_proj = nn.Linear(2 * config.d_model, config.d_model)
        self.lm_head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        self.no_insertion_head = nn.Linear(config.d_model, 1)
        self.post_init()
        self.generation_config = self._nat_default_generation_config()

    def max_source_positions(self) -> int:
        """The given side and the generated one share the canvas's positions (and its four
        boundary tokens): half each."""
        return (self.config.max_position_embeddings - 4) // 2

    def _slot_log_probs(self, canvas: torch.Tensor) -> torch.Tensor:
        """(B, L - 1, V + 1) per canvas slot: log-probabilities of each token, and of "no insertion" last."""
        slots = self.slot_proj(slot_states(self.model.states(canvas)))
        return torch.cat([self.lm_head(slots), self.no_insertion_head(slots)], -1).float().log_softmax(-1)

    def _side_content(self, ids: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        """The content tokens (B, T) of a side's ids (specials and -100 dropped, left-aligned)."""
        content, _ = compact_targets(ids if keep is None else ids.masked_fill(~keep.bool(), -100), self.config)
        return content

    # --- training -------------------------------------------------------------------------
    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        **kwargs,
    ) -> NATSeq2SeqLMOutput:
        """With ``labels`` (the y side of the pairs whose x side is ``input_ids``): the slot loss
        of a mode drawn per pair from ``config.training_modes`` (``losses``: insertion, and the
        share of scored slots that are complete). Without: the slot logits (B, L - 1, V + 1) of
        the canvas of ``input_ids`` and an empty y side."""
        input_ids, attention_mask = self._check_source(input_ids, attention_mask)
        c = self.config
        x = self._side_content(input_ids, attention_mask)
        if labels is None:
            canvas = kermit_canvas(x, x[:, :0], c.pad_token_id, c.bos_token_id, c.eos_token_id)
            return NATSeq2SeqLMOutput(logits=self._slot_log_probs(canvas))
        y = self._side_content(labels)
        width = x.ne(c.pad_token_id).sum(1) + y.ne(c.pad_token_id).sum(1) + 4
        if int(width.max()) > c.max_position_embeddings:
            raise ValueError(
                f"a pair of {int(width.max())} canvas tokens exceeds max_position_embeddings="
                f"{c.max_position_embeddings}; filter the corpus by length"
            )
        weights = parse_training_modes(c.training_modes)
        modes = list(weights)
        probabilities = torch.tensor([weights[m] for m in modes])
        drawn = torch.multinomial(probabilities, x.shape[0], replacement=True, generator=generator).to(x.device)

        def mode_in(*names) -> torch.Tensor:
            ids = [modes.index(n) for n in names if n in modes]
            return torch.isin(drawn, torch.tensor(ids, dtype=torch.long, device=x.device))

        sides_data = []  # a side is given whole when the other is predicted from it, absent in the other's marginal
        for side, given, absent, scored in ((x, "y|x", "y", ("x|y", "xy", "x")), (y, "x|y", "x", ("y|x", "xy", "y"))):
            real = side.ne(c.pad_token_id)
            _, partial = random_subsequence(side, real, generator, c.pad_token_id)
            kept = torch.where(mode_in(given)[:, None], real, partial & ~mode_in(absent)[:, None])
            sides_data.append((side, real, kept, mode_in(*scored)))
        (x, x_real, x_kept, x_scored), (y, y_real, y_kept, y_scored) = sides_data
        canvas = kermit_canvas(
            left_align(x, x_kept, c.pad_token_id),
            left_align(y, y_kept, c.pad_token_id),
            c.pad_token_id,
            c.bos_token_id,
            c.eos_token_id,
        )
        log_probs = self._slot_log_probs(canvas)
        total, complete, slots = log_probs.sum() * 0.0, 0, 0  # zero loss keeps every parameter in the graph
        for side_index, (side, real, kept, scored) in enumerate(sides_data):
            if not scored.any():
                continue
            side_log_probs = side_slots(log_probs, canvas, side_index, c.pad_token_id, c.bos_token_id)
            loss, side_complete, side_slots_mask = slot_insertion_loss(
                side_log_probs[scored], side[scored], real[scored], kept[scored], c.insertion_loss, c.tree_temperature
            )
            total = total + loss * side_slots_mask.sum()
            complete, slots = complete + side_complete.sum(), slots + side_slots_mask.sum()
        loss = total / max(int(slots), 1)
        return NATSeq2SeqLMOutput(
            loss=loss,
            losses={"insertion": loss.detach(), "complete_slots": torch.as_tensor(complete / max(int(slots), 1))},
        )

    # --- decoding -------------------------------------------------------------------------
    def nat_language_options(self, src_lang: str | None, tgt_lang: str | None) -> dict:
        """``{"direction": ...}`` translating ``src_lang`` → ``tgt_lang`` (either may be left out);
        a language neither side holds is an error."""
        c = self.config
        sides = {c.x_language: "x", c.y_language: "y"}
        for name, language in (("src_lang", src_lang), ("tgt_lang", tgt_lang)):
            if language is not None and language not in sides:
                raise ValueError(
                    f"{name}={language!r}: this model's sides are {c.x_language!r} (x) and {c.y_language!r} (y)"
                )
        source = sides[src_lang] if src_lang is not None else ("y" if sides.get(tgt_lang) == "x" else "x")
        target = sides[tgt_lang] if tgt_lang is not None else ("y" if source == "x" else "x")
        if source == target:
            raise ValueError(f"src_lang and tgt_lang are both {src_lang or tgt_lang!r}")
        return {"direction": f"{target}|{source}"}

    def _nat_check_options(self, options: dict) -> None:
        super()._nat_check_options(options)
        direction = options["direction"]
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
        if parse_training_modes(self.config.training_modes).get(direction, 0.0) <= 0:
            raise ValueError(
                f"direction {direction!r} was not trained (config.training_modes={self.config.training_modes!r})"
            )

    def _nat_initial_state(self, encoder: EncoderState, empty: torch.Tensor, options: dict) -> DecoderState:
        """The empty hypothesis of the generated side."""
        tokens = torch.full((empty.shape[0], 1), self.config.pad_token_id, dtype=torch.long, device=empty.device)
        return DecoderState(
            tokens=tokens,
            scores=torch.zeros(tokens.shape, device=tokens.device),
            source_index=torch.arange(empty.shape[0], device=empty.device),
        )

    def _nat_refine_step(self, encoder: EncoderState, state: DecoderState, step: int, options: dict) -> DecoderState:
        """One round of parallel insertion into the generated side, the given side fixed."""
        c = self.config
        given = self._side_content(encoder.input_ids, encoder.keep)
        generated_side = 1 if options["direction"] == "y|x" else 0
        x, y = (given, state.tokens) if generated_side else (state.tokens, given)
        canvas = kermit_canvas(x, y, c.pad_token_id, c.bos_token_id, c.eos_token_id)
        log_probs = side_slots(self._slot_log_probs(canvas), canvas, generated_side, c.pad_token_id, c.bos_token_id)
        room = c.max_position_embeddings - given.ne(c.pad_token_id).sum(1) - 4
        caps = torch.minimum(
            length_caps(encoder.keep, float(options["max_length_ratio"]), c.max_position_embeddings), room
        )
        return self._insert(state, log_probs, caps, float(options["insertion_penalty"]))

    def _insert(
        self, state: DecoderState, log_probs: torch.Tensor, caps: torch.Tensor, penalty: float, sampler=None
    ) -> DecoderState:
        """Insert into the slots of ``state``'s bounded rows: each slot's best token where it beats
        "no insertion" less ``penalty`` (or, with ``sampler``, what it draws), at most ``caps``
        (B,) content tokens per row. ``log_probs`` (B, S, V + 1) are the rows' slot log-probabilities."""
        c = self.config
        bounded = self._bounded(state.tokens)
        real = bounded.ne(c.pad_token_id)
        slots = bounded.shape[1] - 1  # padding columns of the state give slots no row has: never inserted into
        log_probs = torch.cat([log_probs, log_probs[:, -1:].expand(-1, max(slots - log_probs.shape[1], 0), -1)], 1)
        log_probs = log_probs[:, :slots]
        token_log_probs = log_probs[..., :-1].clone()
        token_log_probs[..., c.special_token_ids()] = float("-inf")
        if sampler is None:
            best_scores, best_tokens = token_log_probs.max(-1)
            insert = best_scores > log_probs[..., -1] - penalty
        else:
            best_tokens, insert = sampler(torch.cat([token_log_probs, log_probs[..., -1:]], -1))
            best_scores = token_log_probs.gather(-1, best_tokens.clamp(max=c.vocab_size - 1)[..., None])[..., 0]
        insert = insert & real[:, :-1] & real[:, 1:]
        counts = cap_insertions(insert.long(), self._content(bounded).sum(1), caps)
        chosen = counts.bool()
        tokens, _ = insert_into_slots(bounded, real, counts, c.placeholder_token_id, c.pad_token_id)
        scores, _ = insert_into_slots(bounded_scores(state.scores), real, counts, 0.0, 0.0)
        new = tokens.eq(c.placeholder_token_id)  # new tokens appear in slot order, like `chosen`
        tokens = tokens.masked_scatter(new, best_tokens[chosen])
        scores = scores.masked_scatter(new, best_scores[chosen])
        return self._unbounded_state(tokens, scores, state)

    @torch.inference_mode()
    def generate_pairs(
        self,
        num_pairs: int,
        max_iterations: int = 20,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Sample ``num_pairs`` sentence pairs from p(x, y), starting from an empty canvas: each
        round every slot of both sides draws a token or "no insertion" from its distribution
        (scaled by 1 / ``temperature``), in parallel, until no slot inserts or after
        ``max_iterations`` rounds. Returns (x, y) content tokens (num_pairs, T), pad after. Needs
        a model trained with the ``xy`` mode."""
        c = self.config
        if parse_training_modes(c.training_modes).get("xy", 0.0) <= 0:
            raise ValueError(
                f"joint generation needs the 'xy' training mode (config.training_modes={c.training_modes!r})"
            )
        if num_pairs < 1 or max_iterations < 1 or not temperature > 0:
            raise ValueError("generate_pairs needs num_pairs >= 1, max_iterations >= 1 and temperature > 0")
        device = self.lm_head.weight.device
        empty = torch.full((num_pairs, 1), c.pad_token_id, dtype=torch.long, device=device)
        rows = torch.arange(num_pairs, device=device)
        x = y = DecoderState(tokens=empty, scores=torch.zeros(empty.shape, device=device), source_index=rows)

        def draw(log_probs: torch.Tensor):
            noise = uniform_noise(log_probs.shape, generator, device).clamp(min=1e-20)
            choice = (log_probs / temperature - (-noise.log()).log()).argmax(-1)  # Gumbel-max sampling
            return choice.clamp(max=c.vocab_size - 1), choice.ne(c.vocab_size)

        for _ in range(max_iterations):
            canvas = kermit_canvas(x.tokens, y.tokens, c.pad_token_id, c.bos_token_id, c.eos_token_id)
            log_probs = self._slot_log_probs(canvas)
            room = torch.full((num_pairs,), (c.max_position_embeddings - 4) // 2, device=device)
            new_x = self._insert(x, side_slots(log_probs, canvas, 0, c.pad_token_id, c.bos_token_id), room, 0.0, draw)
            new_y = self._insert(y, side_slots(log_probs, canvas, 1, c.pad_token_id, c.bos_token_id), room, 0.0, draw)
            unchanged = new_x.tokens.shape == x.tokens.shape and new_y.tokens.shape == y.tokens.shape
            if unchanged and torch.equal(new_x.tokens, x.tokens) and torch.equal(new_y.tokens, y.tokens):
                break
            x, y = new_x, new_y
        return x.tokens, y.tokens
