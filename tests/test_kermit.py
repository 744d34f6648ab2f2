"""KERMIT: the canvas and its side slots against a position-by-position construction, one model
learns a toy translation in both directions, the pipeline's src_lang/tgt_lang pick the
direction, untrained directions and modes are errors, pairs are sampled from nothing. (Round trip,
batch invariance, the pipeline and the export: tests/test_family_contract.py.)"""

import pytest
import torch
from transformers import pipeline

from hf_nat import KermitConfig, KermitForConditionalGeneration
from hf_nat.data import Seq2SeqCollator
from hf_nat.models.configuration_kermit import parse_training_modes
from hf_nat.models.modeling_kermit import canvas_sides, kermit_canvas, side_slots
from tests.toy import toy_sentences, toy_shape, toy_tokenizer, train_toy_model

PAD, BOS, EOS = 0, 1, 2
FIXED = toy_sentences(8, seed=21, min_len=5, max_len=9)


def shifted(sentence: str) -> str:
    """The toy "translation": every word w_i becomes w_(i+5 mod 16), so the two directions differ."""
    return " ".join(f"w{(int(word[1:]) + 5) % 16}" for word in sentence.split())


def pair_batch(tokenizer, sources: list[str], targets: list[str]) -> dict:
    enc = tokenizer(sources, text_target=targets)
    rows = [{"input_ids": s, "labels": t} for s, t in zip(enc["input_ids"], enc["labels"])]
    return Seq2SeqCollator(tokenizer.pad_token_id)(rows)


def exact(model, tokenizer, sources, targets, **options) -> float:
    out = model.generate(**tokenizer(sources, return_tensors="pt", padding=True), **options)
    return sum(h == t for h, t in zip(tokenizer.batch_decode(out, skip_special_tokens=True), targets)) / len(sources)


def both_directions(model, tokenizer) -> tuple[float, float]:
    targets = [shifted(s) for s in FIXED]
    return exact(model, tokenizer, FIXED, targets), exact(model, tokenizer, targets, FIXED, direction="x|y")


@pytest.fixture(scope="module")
def toy_kermit():
    torch.manual_seed(0)
    tokenizer = toy_tokenizer()
    model = KermitForConditionalGeneration(KermitConfig(**toy_shape(tokenizer), x_language="xx", y_language="yy"))
    targets = [shifted(s) for s in FIXED]
    history = train_toy_model(
        model,
        lambda step: pair_batch(tokenizer, FIXED * 8, targets * 8),
        3000,
        until=lambda m: min(both_directions(m, tokenizer)) >= 0.875,
        check_every=100,
    )
    return model, tokenizer, history


def random_content(generator, batch: int, width: int) -> torch.Tensor:
    lengths = torch.randint(0, width + 1, (batch,), generator=generator)
    tokens = torch.randint(7, 20, (batch, width), generator=generator)
    return tokens.masked_fill(torch.arange(width)[None, :] >= lengths[:, None], PAD)


@pytest.mark.parametrize("seed", range(8))
def test_canvas_and_side_slots_match_a_row_by_row_construction(seed):
    generator = torch.Generator().manual_seed(seed)
    x, y = random_content(generator, 4, 5), random_content(generator, 4, 3)
    canvas = kermit_canvas(x, y, PAD, BOS, EOS)
    sides = canvas_sides(canvas, BOS)
    values = torch.randn(4, canvas.shape[1] - 1, 2, generator=generator)
    for side in (0, 1):
        picked = side_slots(values, canvas, side, PAD, BOS)
        for b in range(4):
            xs, ys = x[b][x[b].ne(PAD)].tolist(), y[b][y[b].ne(PAD)].tolist()
            row = [BOS, *xs, EOS, BOS, *ys, EOS]
            assert canvas[b, : len(row)].tolist() == row and canvas[b, len(row) :].eq(PAD).all()
            assert sides[b, : len(row)].tolist() == [0] * (len(xs) + 2) + [1] * (len(ys) + 2)
            first = 0 if side == 0 else len(xs) + 2  # the side's bos
            count = (len(xs) if side == 0 else len(ys)) + 1
            assert torch.equal(picked[b, :count], values[b, first : first + count])


def test_training_modes_are_parsed_strictly():
    assert parse_training_modes("y|x:2 x|y") == {"y|x": 2.0, "x|y": 1.0}
    for bad, message in [("z|x:1", "unknown"), ("y|x:-1", ">= 0"), ("y|x:a", "number"), ("y|x:0", "no mode")]:
        with pytest.raises(ValueError, match=message):
            parse_training_modes(bad)
    with pytest.raises(ValueError, match="must differ"):
        KermitConfig(x_language="en", y_language="en")


@pytest.mark.learning
def test_one_model_translates_both_directions(toy_kermit):
    model, tokenizer, history = toy_kermit
    assert len(history) < 3000, "KERMIT did not learn both directions of the toy pairs within 3000 updates"
    forward, backward = both_directions(model, tokenizer)
    assert forward >= 0.75 and backward >= 0.75


def test_the_pipeline_languages_pick_the_direction(toy_kermit):
    model, tokenizer, _ = toy_kermit
    translator = pipeline("translation", model=model, tokenizer=tokenizer)
    source, target = FIXED[0], shifted(FIXED[0])
    decode = lambda ids: tokenizer.decode(ids[0], skip_special_tokens=True)  # noqa: E731
    forward = decode(model.generate(**tokenizer([source], return_tensors="pt")))
    backward = decode(model.generate(**tokenizer([target], return_tensors="pt"), direction="x|y"))
    assert translator(source, src_lang="xx", tgt_lang="yy")[0]["translation_text"] == forward
    assert translator(target, src_lang="yy")[0]["translation_text"] == backward
    assert translator(target, tgt_lang="xx")[0]["translation_text"] == backward
    with pytest.raises(ValueError, match="sides are 'xx' \\(x\\) and 'yy' \\(y\\)"):
        translator(source, src_lang="fr")
    with pytest.raises(ValueError, match="direction must be one of"):
        model.generate(**tokenizer([source], return_tensors="pt"), direction="y")


def test_an_untrained_direction_or_mode_is_a_clear_error():
    tokenizer = toy_tokenizer()
    model = KermitForConditionalGeneration(KermitConfig(**toy_shape(tokenizer), training_modes="y|x:1")).eval()
    batch = tokenizer(["w1 w2"], return_tensors="pt")
    assert model.generate(**batch, max_iterations=2).shape[0] == 1
    with pytest.raises(ValueError, match="direction 'x\\|y' was not trained"):
        model.generate(**batch, direction="x|y")
    with pytest.raises(ValueError, match="needs the 'xy' training mode"):
        model.generate_pairs(2)


def test_only_the_modes_asked_for_are_trained():
    tokenizer = toy_tokenizer()
    torch.manual_seed(0)
    model = KermitForConditionalGeneration(KermitConfig(**toy_shape(tokenizer), training_modes="y|x:1"))
    batch = pair_batch(tokenizer, FIXED, [shifted(s) for s in FIXED])
    y_only = model(**batch, generator=torch.Generator().manual_seed(0)).loss
    model.config.training_modes = "x|y:1"
    x_only = model(**batch, generator=torch.Generator().manual_seed(0)).loss
    assert torch.isfinite(y_only) and torch.isfinite(x_only) and not torch.isclose(y_only, x_only)
    too_long = pair_batch(tokenizer, [" ".join(["w1"] * 13)], [" ".join(["w2"] * 17)])  # 13 + 17 + 4 > 32
    with pytest.raises(ValueError, match="exceeds max_position_embeddings"):
        model(**too_long)


def test_pairs_are_sampled_from_an_empty_canvas(toy_kermit):
    model, tokenizer, _ = toy_kermit
    x, y = model.generate_pairs(5, generator=torch.Generator().manual_seed(0))
    assert x.shape[0] == y.shape[0] == 5
    specials = torch.tensor(model.config.special_token_ids())
    assert not torch.isin(x[x.ne(PAD)], specials).any() and not torch.isin(y[y.ne(PAD)], specials).any()
    assert len({tuple(row.tolist()) for row in x}) > 1  # samples, not one argmax
    again = model.generate_pairs(5, generator=torch.Generator().manual_seed(0))
    assert torch.equal(again[0], x) and torch.equal(again[1], y)
    with pytest.raises(ValueError, match="temperature > 0"):
        model.generate_pairs(2, temperature=0.0)
