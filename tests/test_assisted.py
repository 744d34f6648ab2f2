"""NAT-assisted decoding: the AR model's own greedy output, token for token, at any batch size and
whatever the drafter proposes; fewer AR passes when the drafts are good; clear errors."""

import pytest
import torch

from hf_nat import CMLMForConditionalGeneration, FertilityNATConfig, FertilityNATForConditionalGeneration
from hf_nat.assisted import _leading_matches, _place_drafts, assisted_generate
from hf_nat.models.nat_generation import draft_layout
from hf_nat.models.nat_noise import random_prefix
from tests.toy import toy_ar_model, toy_config, toy_sentences, toy_shape, toy_tokenizer, train_toy_ar

SOURCES = toy_sentences(6, seed=11) + ["", "   ", " ".join(["w3", "w4"] * 12)]


@pytest.fixture(scope="module")
def verifier():
    return train_toy_ar()


def random_cmlm(seed: int = 0) -> CMLMForConditionalGeneration:
    torch.manual_seed(seed)
    return CMLMForConditionalGeneration(toy_config(toy_tokenizer())).eval()


def random_fertility_nat(decoder_input: str) -> FertilityNATForConditionalGeneration:
    torch.manual_seed(0)
    config = FertilityNATConfig(**toy_shape(toy_tokenizer(), decoder_input=decoder_input))
    return FertilityNATForConditionalGeneration(config).eval()


class OracleDrafter(CMLMForConditionalGeneration):
    """Drafts the verifier's own greedy output (set in ``reference``: (B, L) sequences)."""

    reference = None
    proposals = None  # what to return instead, when a test wants a misbehaving drafter

    def _nat_draft_length(self, encoder):
        content = self.reference[:, 1:].ne(0) & self.reference[:, 1:].ne(2)
        return content.sum(1)

    def _nat_draft(self, encoder, prefix, draft_lengths, options=None):
        if self.proposals is not None:
            return self.proposals(prefix, draft_lengths)
        start = prefix.ne(0).sum(1)
        width = int(draft_lengths.max())
        columns = start[:, None] + 1 + torch.arange(width)[None, :]
        tokens = self.reference.gather(1, columns.clamp(max=self.reference.shape[1] - 1))
        tokens = tokens.masked_fill(columns >= self.reference.shape[1], 0)
        tokens = tokens.masked_fill(tokens.eq(2), 0)  # content only: the loop proposes eos itself
        return tokens.masked_fill(torch.arange(width)[None, :] >= draft_lengths[:, None], 0)


def oracle(reference: torch.Tensor, proposals=None) -> OracleDrafter:
    torch.manual_seed(0)
    model = OracleDrafter(toy_config(toy_tokenizer())).eval()
    model.reference, model.proposals = reference, proposals
    return model


def greedy(verifier, sources, **kwargs):
    batch = toy_tokenizer()(sources, return_tensors="pt", padding=True)
    return batch, verifier.generate(**batch, num_beams=1, **kwargs)


def assert_exact(verifier, drafter, sources, **kwargs):
    """Assisted output == greedy output, in one batch and one sentence at a time; returns the batch output."""
    batch, reference = greedy(verifier, sources, **kwargs)
    out = assisted_generate(
        verifier, **batch, assistant_model=drafter, num_beams=1, return_dict_in_generate=True, **kwargs
    )
    assert torch.equal(out.sequences, reference)
    for i in range(len(sources)):
        one, expected = greedy(verifier, sources[i : i + 1], **kwargs)
        assert torch.equal(assisted_generate(verifier, **one, assistant_model=drafter, num_beams=1, **kwargs), expected)
    return out, reference


@pytest.mark.parametrize("draft_max_tokens", [None, 2])
def test_random_drafter_gives_greedy_output_exactly(verifier, draft_max_tokens):
    out, reference = assert_exact(verifier, random_cmlm(), SOURCES, max_length=40)
    lengths = reference.ne(0).sum(1) - 1  # tokens after the decoder start
    assert (out.verifications >= 1).all() and (out.verifications <= lengths).all()
    capped = assisted_generate(
        verifier,
        **toy_tokenizer()(SOURCES, return_tensors="pt", padding=True),
        assistant_model=random_cmlm(),
        num_beams=1,
        max_length=40,
        draft_max_tokens=draft_max_tokens,
    )
    assert torch.equal(capped, reference)


@pytest.mark.parametrize("decoder_input", ["fertility", "uniform_copy", "soft_copy"])
def test_fertility_nat_drafts_give_greedy_output_exactly(verifier, decoder_input):
    assert_exact(verifier, random_fertility_nat(decoder_input), SOURCES, max_length=40)


def test_trained_drafter_gives_greedy_output_exactly(verifier, toy):
    out, reference = assert_exact(verifier, toy.model, SOURCES + toy.test_sentences[:8])
    assert (out.verifications <= reference.ne(0).sum(1) - 1).all()


def counting_ar_passes(verifier, drafter, batch, **kwargs):
    """(assisted output, how many times the verifier's decoder ran)."""
    passes = []
    hook = verifier.model.decoder.register_forward_pre_hook(lambda *_: passes.append(1))
    try:
        out = assisted_generate(
            verifier, **batch, assistant_model=drafter, num_beams=1, return_dict_in_generate=True, **kwargs
        )
    finally:
        hook.remove()
    return out, len(passes)


def test_perfect_drafter_needs_one_ar_pass_per_sentence(verifier):
    batch, reference = greedy(verifier, SOURCES, max_length=40)
    out, passes = counting_ar_passes(verifier, oracle(reference), batch, max_length=40)
    assert torch.equal(out.sequences, reference)
    # Rows that end with eos within max_length get it proposed (empty sources get no draft at all).
    ended = reference.eq(2).any(1) & torch.tensor([bool(s.strip()) for s in SOURCES])
    assert out.verifications[ended].eq(1).all()
    assert passes == int(out.verifications.max())  # one batched pass per round


def test_ar_passes_are_counted_and_bounded_by_the_output_length(verifier):
    batch, reference = greedy(verifier, SOURCES, max_length=30)
    out, passes = counting_ar_passes(verifier, random_cmlm(1), batch, max_length=30)
    assert torch.equal(out.sequences, reference)
    assert passes == int(out.verifications.max()) <= reference.shape[1] - 1
    assert (out.accepted_tokens <= out.drafted_tokens).all()
    assert (out.accepted_tokens + out.verifications == reference.ne(0).sum(1) - 1).all()


@pytest.mark.parametrize(
    "options",
    [
        {"max_length": 7},  # forced eos at the last position, rows cut by max_length
        {"max_length": 30, "min_length": 9},
        {"max_length": 30, "no_repeat_ngram_size": 2},
        {"max_new_tokens": 5},
    ],
)
def test_greedy_options_are_reproduced(verifier, options):
    batch, reference = greedy(verifier, SOURCES, **options)
    for drafter in (random_cmlm(), oracle(reference)):
        out = assisted_generate(verifier, **batch, assistant_model=drafter, num_beams=1, **options)
        assert torch.equal(out, reference)


def test_drafts_of_special_tokens_or_overlong_are_clipped(verifier):
    batch, reference = greedy(verifier, SOURCES, max_length=30)

    def specials(prefix, draft_lengths):  # the true continuation, with a mask token in the middle
        good = oracle(reference)._nat_draft(None, prefix, draft_lengths)
        return good.index_fill(1, torch.tensor([min(1, good.shape[1] - 1)]), 4) if good.shape[1] else good

    def overlong(prefix, draft_lengths):  # far more tokens than asked for, and out of the vocabulary's specials
        return torch.full((prefix.shape[0], int(draft_lengths.max()) + 50), 9)

    def bos_and_pad(prefix, draft_lengths):
        return torch.tensor([1, 0, 1])[torch.arange(int(draft_lengths.max())) % 3].expand(prefix.shape[0], -1)

    for proposals in (specials, overlong, bos_and_pad):
        out = assisted_generate(
            verifier, **batch, assistant_model=oracle(reference, proposals), num_beams=1, max_length=30
        )
        assert torch.equal(out, reference)


def test_empty_sources_get_the_verifiers_own_result(verifier):
    for sources in (["", "   "], ["", "w1 w2"]):
        batch, reference = greedy(verifier, sources, max_length=20)
        assert torch.equal(
            assisted_generate(verifier, **batch, assistant_model=random_cmlm(), num_beams=1, max_length=20), reference
        )


def test_bad_verifiers_and_settings_are_clear_errors(verifier):
    batch = toy_tokenizer()(["w1 w2"], return_tensors="pt")
    drafter = random_cmlm()
    for vocab_size in (40, 20):
        with pytest.raises(ValueError, match="vocabulary"):
            assisted_generate(
                toy_ar_model(toy_tokenizer(), vocab_size=vocab_size), **batch, assistant_model=drafter, num_beams=1
            )
    with pytest.raises(ValueError, match="eos_token_id"):
        assisted_generate(toy_ar_model(toy_tokenizer(), eos_token_id=3), **batch, assistant_model=drafter, num_beams=1)
    with pytest.raises(ValueError, match="autoregressive|seq2seq"):
        assisted_generate(drafter, **batch, assistant_model=drafter)
    with pytest.raises(ValueError, match="hf_nat model"):
        assisted_generate(verifier, **batch, assistant_model=verifier, num_beams=1)
    with pytest.raises(ValueError, match="greedy"):
        assisted_generate(verifier, **batch, assistant_model=drafter, num_beams=5)
    with pytest.raises(ValueError, match="greedy"):
        assisted_generate(verifier, **batch, assistant_model=drafter, do_sample=True)
    with pytest.raises(ValueError, match="draft_max_tokens"):
        assisted_generate(verifier, **batch, assistant_model=drafter, num_beams=1, draft_max_tokens=0)
    with pytest.raises(ValueError, match="return"):
        assisted_generate(
            verifier, **batch, assistant_model=drafter, num_beams=1, output_scores=True, return_dict_in_generate=True
        )


@pytest.mark.parametrize("iterations", [2, 3])
def test_cmlm_mask_predict_drafts_give_greedy_output_exactly(verifier, toy, iterations):
    batch, reference = greedy(verifier, SOURCES, max_length=30)
    for drafter in (random_cmlm(), toy.model):
        out = assisted_generate(
            verifier,
            **batch,
            assistant_model=drafter,
            num_beams=1,
            max_length=30,
            draft_options={"draft_iterations": iterations},
        )
        assert torch.equal(out, reference)


def test_cmlm_draft_after_no_prefix_is_mask_predict(toy):
    batch = toy.tokenizer(toy.test_sentences[:8], return_tensors="pt", padding=True)
    model = toy.model
    with torch.no_grad():
        ids, mask = model._check_source(batch["input_ids"], batch["attention_mask"])
        encoder = model.model.encode(ids, mask, cache_cross_kv=True)
        lengths = model._nat_draft_length(encoder)
        for iterations in (1, 3):
            draft = model._nat_draft(encoder, ids[:, :0], lengths, {"draft_iterations": iterations})
            expected = model.generate(**batch, max_iterations=iterations, length_beam=1)
            assert torch.equal(model._nat_append_eos(draft), expected)


def test_draft_options_are_declared_and_checked(verifier):
    batch = toy_tokenizer()(["w1 w2"], return_tensors="pt")
    for drafter, options, match in [
        (random_cmlm(), {"draft_iterations": 0}, "draft_iterations"),
        (random_cmlm(), {"draft_iterations": 1.5}, "integer"),
        (random_cmlm(), {"draft_iteratoins": 2}, "draft_iterations"),
        (random_fertility_nat("uniform_copy"), {"draft_iterations": 2}, "option"),
    ]:
        with pytest.raises(ValueError, match=match):
            assisted_generate(verifier, **batch, assistant_model=drafter, num_beams=1, draft_options=options)


def test_cmlm_draft_after_no_prefix_is_its_one_pass_output(toy):
    batch = toy.tokenizer(toy.test_sentences[:8], return_tensors="pt", padding=True)
    model = toy.model
    one_pass = model.generate(**batch, max_iterations=1, length_beam=1)
    with torch.no_grad():
        ids, mask = model._check_source(batch["input_ids"], batch["attention_mask"])
        encoder = model.model.encode(ids, mask, cache_cross_kv=True)
        lengths = model._nat_draft_length(encoder)
        draft = model._nat_draft(encoder, torch.zeros(len(ids), 0, dtype=torch.long), lengths, {"draft_iterations": 1})
    assert torch.equal(model._nat_append_eos(draft), one_pass)


@pytest.mark.parametrize("decoder_input", ["fertility", "uniform_copy"])
def test_fertility_nat_draft_after_no_prefix_is_its_one_pass_output(decoder_input):
    model = random_fertility_nat(decoder_input)
    batch = toy_tokenizer()(SOURCES[:6], return_tensors="pt", padding=True)
    one_pass = model.generate(**batch)
    with torch.no_grad():
        ids, mask = model._check_source(batch["input_ids"], batch["attention_mask"])
        encoder = model.model.encode(ids, mask, cache_cross_kv=True)
        draft = model._nat_draft(
            encoder, torch.zeros(len(ids), 0, dtype=torch.long), model._nat_draft_length(encoder), {}
        )
    assert torch.equal(model._nat_append_eos(draft), one_pass)


def test_leading_matches_brute_force():
    generator = torch.Generator().manual_seed(0)
    for _ in range(50):
        rows, width = 4, int(torch.randint(0, 5, (1,), generator=generator))
        draft = torch.randint(0, 3, (rows, width), generator=generator)
        verified = torch.randint(0, 3, (rows, width + 1), generator=generator)
        lengths = torch.randint(0, width + 1, (rows,), generator=generator)
        expected = [
            next((j for j in range(int(lengths[r])) if draft[r, j] != verified[r, j]), int(lengths[r]))
            for r in range(rows)
        ]
        assert _leading_matches(draft, verified, lengths).tolist() == expected


def test_place_drafts_and_draft_layout_brute_force():
    generator = torch.Generator().manual_seed(1)
    for _ in range(30):
        known = torch.randint(1, 5, (3,), generator=generator)
        draft_lengths = torch.randint(0, 4, (3,), generator=generator)
        sequences = torch.randint(7, 20, (3, 10), generator=generator)
        draft = torch.randint(7, 20, (3, max(int(draft_lengths.max()), 0)), generator=generator)
        got = _place_drafts(sequences, known, draft, draft_lengths, 0)
        for r in range(3):
            row = sequences[r, : known[r]].tolist() + draft[r, : draft_lengths[r]].tolist()
            assert got[r].tolist() == row + [0] * (got.shape[1] - len(row))
        prefix = torch.where(torch.arange(4)[None, :] < (known - 1)[:, None], sequences[:, :4], 0)
        tokens, keep, drafted = draft_layout(prefix, draft_lengths, 0)
        for r in range(3):
            n, m = int(known[r] - 1), int(draft_lengths[r])
            assert keep[r].tolist() == [True] * (n + m) + [False] * (keep.shape[1] - n - m)
            assert drafted[r].tolist() == [False] * n + [True] * m + [False] * (keep.shape[1] - n - m)
            assert tokens[r, :n].tolist() == prefix[r, :n].tolist() and tokens[r, n:].eq(0).all()


def test_random_prefix_covers_chosen_rows_only_and_leaves_a_token():
    keep = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1], [1, 0, 0, 0]]).bool()
    generator = torch.Generator().manual_seed(0)
    lengths_seen = set()
    for _ in range(200):
        chosen, prefix = random_prefix(keep, 0.5, generator)
        assert not prefix[~chosen].any() and not (prefix & ~keep).any()
        assert (prefix.sum(1) < keep.sum(1)).all()  # at least one token left to predict
        assert (prefix.sum(1)[:, None] > torch.arange(4)).eq(prefix).all()  # a prefix
        lengths_seen.add(int(prefix[1].sum()))
    assert lengths_seen == {0, 1, 2, 3}
    chosen, prefix = random_prefix(keep, 0.0, generator)
    assert not chosen.any() and not prefix.any()


@pytest.mark.parametrize("family", ["cmlm", "fertility_nat"])
def test_draft_prefix_prob_is_a_checked_probability(family):
    from transformers import AutoConfig

    with pytest.raises(ValueError, match="draft_prefix_prob"):
        AutoConfig.for_model(family, draft_prefix_prob=1.5)


def test_measurement_reports_identity_acceptance_and_ratios(verifier, toy, tmp_path):
    from hf_nat.measurements.assisted_decoding import (
        format_assisted,
        measure_assisted,
        next_token_accuracy,
        plot_assisted,
    )

    sources = toy.test_sentences[:6] + [""]
    measured = measure_assisted(
        verifier,
        toy.tokenizer,
        sources,
        sources,
        [("toy", toy.model, {"draft_iterations": 1})],
        (None, 2),
        (1, 4),
        warmup_batches=1,
    )
    for entry in measured["batches"].values():
        assert [v["draft_max_tokens"] for v in entry["variants"]] == [None, 2]
        for variant in entry["variants"]:
            assert variant["mismatches"] == 0 and variant["bleu"] == entry["greedy"]["bleu"]
            assert variant["ar_passes_per_sentence"] >= 1 and variant["speedup_vs_fastest_ar"] is None
            assert variant["drafted_per_verification"] <= 2 + 1 or variant["draft_max_tokens"] is None
    results = {"command": "c", "commit": "x", "machine": "m", "torch": "t", "threads": 1, "verifier": "v"}
    accuracy = next_token_accuracy(verifier, toy.model, toy.tokenizer, sources, {"draft_iterations": 1})
    assert accuracy["positions"] > 0 and 0 <= accuracy["first_token_accuracy"] <= 1
    results.update(split="s", sentences=len(sources), next_token_accuracy={"toy": accuracy}, **measured)
    assert "rows ≠ greedy" in format_assisted(results) and "first-token accuracy" in format_assisted(results)
    plot_assisted(results, str(tmp_path / "plot.png"))
    assert (tmp_path / "plot.png").stat().st_size > 0
