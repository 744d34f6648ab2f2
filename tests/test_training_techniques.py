"""Training techniques against repeated and missing words: each loss on a case computed by hand,
each trains the vanilla NAT, and the clear errors (unsupported family, bad teacher, empty n-grams)."""

import math

import pytest
import torch
from transformers import BertConfig, BertForMaskedLM

from hf_nat import (
    CMLMConfig,
    FertilityNATConfig,
    FertilityNATForConditionalGeneration,
    IterativeNATConfig,
    IterativeNATForConditionalGeneration,
)
from hf_nat.models.nat_training_techniques import (
    alignment_hint_loss,
    hidden_state_hint_loss,
    similarity_regularization,
)
from tests.toy import toy_ar_model, toy_batch, toy_sentences, toy_shape, toy_tokenizer

TECHNIQUES = {
    "similarity": {"similarity_weight": 1.0},
    "reconstruction": {"reconstruction_weight": 0.5},
    "bag_of_ngrams": {"bag_of_ngrams_weight": 0.5},
    "hints": {"hint_hidden_weight": 1.0, "hint_alignment_weight": 1.0},
}
LOSS_NAMES = {
    "similarity": {"similarity"},
    "reconstruction": {"reconstruction"},
    "bag_of_ngrams": {"bag_of_ngrams"},
    "hints": {"hint_hidden", "hint_alignment"},
}


def test_similarity_regularization_by_hand():
    # one sentence, three positions; states 0 and 1 equal, state 2 orthogonal to them
    hidden = torch.tensor([[[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]])
    # tokens 0 and 1 unrelated (cos 0): 1 + 1·(1 − 0) = 2; tokens 1 and 2 equal (cos 1): 1 + 0·(1 − 2) = 1
    embeds = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]]])
    keep = torch.tensor([[True, True, True]])
    assert similarity_regularization(hidden, embeds, keep).item() == pytest.approx(1.5)
    # the padded third position drops the second pair
    assert similarity_regularization(hidden, embeds, torch.tensor([[True, True, False]])).item() == pytest.approx(2.0)
    assert similarity_regularization(hidden, embeds, torch.tensor([[True, False, False]])).item() == 0.0


def test_hidden_state_hint_by_hand():
    student = torch.tensor([[[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]])  # cos: (0,1) = (1,2) = 1/√2, (0,2) = 0
    teacher = torch.eye(3)[None]  # every teacher pair dissimilar (cos 0)
    keep = torch.ones(1, 3, dtype=torch.bool)
    want = 2 * -math.log(1 - 1 / math.sqrt(2)) / 3  # two of three pairs are similar for the student only
    assert hidden_state_hint_loss(student, teacher, keep, 0.1, 0.9).item() == pytest.approx(want, rel=1e-5)
    # a teacher whose states are as similar as the student's gives no hint
    assert hidden_state_hint_loss(student, student, keep, 0.1, 0.5).item() == pytest.approx(0.0)


def test_alignment_hint_by_hand():
    teacher = torch.tensor([[[0.5, 0.5], [1.0, 0.0]]])
    student = torch.tensor([[[0.25, 0.75], [1.0, 0.0]]])
    keep = torch.tensor([[True, True]])
    want = (0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75) + 0.0) / 2
    assert alignment_hint_loss(student, teacher, keep).item() == pytest.approx(want, rel=1e-5)
    assert alignment_hint_loss(student, teacher, torch.tensor([[False, True]])).item() == pytest.approx(0.0)


def sharp_attention_teacher(tokenizer):
    """An untrained AR teacher whose cross-attention is far from uniform (its query and key
    projections scaled up), so the alignment hint has something to teach."""
    teacher = toy_ar_model(tokenizer, decoder_layers=2)
    with torch.no_grad():
        for layer in teacher.model.decoder.layers:
            layer.encoder_attn.q_proj.weight.mul_(8.0)
            layer.encoder_attn.k_proj.weight.mul_(8.0)
    return teacher


def vanilla_nat(tokenizer, **fields) -> FertilityNATForConditionalGeneration:
    """The vanilla NAT: fertility_nat with uniform copy."""
    torch.manual_seed(0)
    return FertilityNATForConditionalGeneration(
        FertilityNATConfig(**toy_shape(tokenizer, decoder_input="uniform_copy", **fields))
    )


def iterative_nat(tokenizer, **fields) -> IterativeNATForConditionalGeneration:
    """The iterative NAT, whose first pass is a vanilla NAT."""
    torch.manual_seed(0)
    return IterativeNATForConditionalGeneration(IterativeNATConfig(**toy_shape(tokenizer, **fields)))


FIRST_PASS_CE = {vanilla_nat: "tokens", iterative_nat: "first"}


@pytest.mark.parametrize("build", [vanilla_nat, iterative_nat], ids=["fertility_nat", "iterative_nat"])
@pytest.mark.parametrize("technique", sorted(TECHNIQUES))
def test_each_technique_names_its_losses_and_trains(technique, build):
    tokenizer = toy_tokenizer()
    model = build(tokenizer, **TECHNIQUES[technique])
    if technique == "hints":
        model.attach_hint_teacher(sharp_attention_teacher(tokenizer))
    batch = toy_batch(tokenizer, toy_sentences(16, seed=1))
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    first = model(**batch)
    assert LOSS_NAMES[technique] <= set(first.losses) and {FIRST_PASS_CE[build], "length"} <= set(first.losses)
    assert all(torch.isfinite(value) for value in first.losses.values())
    for _ in range(30):
        optimizer.zero_grad()
        model(**batch).loss.backward()
        optimizer.step()
    last = model(**batch)
    for name in LOSS_NAMES[technique] | {FIRST_PASS_CE[build]}:
        if name != "hint_hidden":  # the hidden hint may be 0 from the start: nothing left to lower
            assert last.losses[name] < first.losses[name], name


def test_the_loss_is_the_weighted_sum_of_its_terms():
    tokenizer = toy_tokenizer()
    model = vanilla_nat(tokenizer, similarity_weight=0.3, bag_of_ngrams_weight=0.25, length_loss_weight=0.1).eval()
    out = model(**toy_batch(tokenizer, toy_sentences(4, seed=2)))
    terms = out.losses
    want = 0.75 * terms["tokens"] + 0.25 * terms["bag_of_ngrams"] + 0.3 * terms["similarity"] + 0.1 * terms["length"]
    assert out.loss.item() == pytest.approx(want.item(), rel=1e-5)


def test_bag_of_ngrams_on_targets_without_ngrams_trains_without_nan():
    tokenizer = toy_tokenizer()
    model = vanilla_nat(tokenizer, bag_of_ngrams_weight=1.0, bag_of_ngrams_order=3)
    batch = toy_batch(tokenizer, ["w1 w2", "w3"])  # no trigram anywhere
    out = model(**batch)
    assert out.losses["bag_of_ngrams"].item() == 0.0 and torch.isfinite(out.loss)
    out.loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


@pytest.mark.parametrize("build", [vanilla_nat, iterative_nat], ids=["fertility_nat", "iterative_nat"])
def test_a_reconstructing_model_saves_and_loads(tmp_path, build):
    tokenizer = toy_tokenizer()
    model = build(tokenizer, reconstruction_weight=1.0).eval()
    assert model.source_reconstructor.embed.embed_tokens is model.model.shared
    batch = toy_batch(tokenizer, toy_sentences(3, seed=3))
    model.save_pretrained(tmp_path)
    loaded = type(model).from_pretrained(tmp_path).eval()
    same_noise = [torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)]  # iterative_nat corrupts
    assert torch.allclose(model(**batch, generator=same_noise[0]).loss, loaded(**batch, generator=same_noise[1]).loss)
    source = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
    assert torch.equal(model.generate(**source), loaded.generate(**source))


def test_a_technique_on_a_family_without_it_is_a_config_error():
    with pytest.raises(ValueError, match="CMLMConfig.*does not support"):
        CMLMConfig(bag_of_ngrams_weight=0.5)
    for bad, match in [
        ({"bag_of_ngrams_weight": 1.5}, "in \\[0, 1\\]"),
        ({"similarity_weight": -1.0}, "≥ 0"),
        ({"bag_of_ngrams_order": 0}, "1..4"),
        ({"hint_teacher_threshold": 2.0}, "cosine"),
    ]:
        with pytest.raises(ValueError, match=match):
            FertilityNATConfig(decoder_input="uniform_copy", **bad)


def test_hints_need_a_fitting_teacher_before_training():
    tokenizer = toy_tokenizer()
    model = vanilla_nat(tokenizer, hint_alignment_weight=1.0).train()
    batch = toy_batch(tokenizer, toy_sentences(2, seed=4))
    with pytest.raises(ValueError, match="--hint_teacher"):
        model(**batch)
    with pytest.raises(ValueError, match="vocabulary"):
        model.attach_hint_teacher(toy_ar_model(tokenizer, vocab_size=len(tokenizer) + 5))
    encoder_only = BertForMaskedLM(
        BertConfig(
            vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64
        )
    )
    with pytest.raises(ValueError, match="cross-attention"):
        model.attach_hint_teacher(encoder_only)
    with pytest.raises(ValueError, match="only used with"):
        vanilla_nat(tokenizer).attach_hint_teacher(toy_ar_model(tokenizer))


def test_the_decoder_internals_match_its_plain_pass():
    tokenizer = toy_tokenizer()
    model = vanilla_nat(tokenizer).eval()
    batch = toy_batch(tokenizer, toy_sentences(3, seed=5))
    encoder = model.model.encode(batch["input_ids"], batch["attention_mask"])
    keep = batch["labels"].ne(-100) & batch["labels"].ne(tokenizer.eos_token_id)
    embeds = torch.randn(*keep.shape, model.config.d_model, generator=torch.Generator().manual_seed(0))
    plain = model.model.decoder(keep, encoder, inputs_embeds=embeds)
    final, states, attentions = model.model.decoder.forward_with_internals(keep, encoder, embeds)
    assert torch.allclose(plain, final, atol=1e-5)
    assert len(states) == len(attentions) == model.config.decoder_layers
    for attention in attentions:  # (B, H, T, S): distributions over the real source tokens only
        assert torch.allclose(attention.sum(-1), torch.ones(attention.shape[:-1]), atol=1e-5)
        assert attention.masked_select(~batch["attention_mask"].bool()[:, None, None, :]).abs().max() == 0
