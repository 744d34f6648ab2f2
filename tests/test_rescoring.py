"""AR rescoring of NAT candidates: the scores are the AR log-likelihood, and the choice uses them."""

import pytest
import torch

from hf_nat.models.nat_rescoring import rescore_candidates
from tests.toy import toy_ar_model


def reference_scores(scorer, source_ids, source_mask, candidates, pad, eos):
    """One candidate at a time through the model's own loss: sum log-prob / (length with eos)."""
    out = []
    for i in range(candidates.shape[0]):
        content = candidates[i][candidates[i].ne(pad)]
        labels = torch.cat([content, torch.tensor([eos])])[None]
        with torch.no_grad():
            loss = scorer(input_ids=source_ids[i : i + 1], attention_mask=source_mask[i : i + 1], labels=labels).loss
        out.append(-loss.item())
    return torch.tensor(out)


@pytest.mark.parametrize("logits_per_chunk", [2**26, 1])  # one pass, and one candidate per pass
def test_rescore_matches_one_at_a_time_likelihood(toy, monkeypatch, logits_per_chunk):
    monkeypatch.setattr("hf_nat.models.nat_rescoring._LOGITS_PER_CHUNK", logits_per_chunk)
    scorer = toy_ar_model(toy.tokenizer)
    sources = toy.tokenizer(["w1 w2 w3", "w4", "w5 w6"], return_tensors="pt", padding=True)
    # Repeats of a (source, candidate) pair are scored once; the same candidate of another source is not a repeat.
    candidates = torch.tensor(
        [[7, 8, 9, 0], [10, 0, 0, 0], [11, 12, 13, 14], [11, 0, 0, 0], [11, 12, 13, 14], [10, 0, 0, 0]]
    )
    source_index = torch.tensor([0, 1, 2, 2, 2, 0])
    got = rescore_candidates(
        scorer,
        sources["input_ids"],
        sources["attention_mask"],
        candidates,
        source_index,
        pad_token_id=0,
        eos_token_id=2,
        length_penalty=1.0,
    )
    expected = reference_scores(
        scorer, sources["input_ids"][source_index], sources["attention_mask"][source_index], candidates, pad=0, eos=2
    )
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)


def test_generate_with_rescorer_picks_the_candidate_the_scorer_prefers(toy):
    scorer = toy_ar_model(toy.tokenizer, seed=3)
    batch = toy.tokenizer(toy.test_sentences[:8], return_tensors="pt", padding=True)
    options = dict(max_iterations=2, length_beam=4, return_dict_in_generate=True)
    plain = toy.model.generate(**batch, **options)
    rescored = toy.model.generate(**batch, rescorer=scorer, **options)

    def ar_score(sequences):
        content = sequences.masked_fill(sequences.eq(2), 0)
        return rescore_candidates(
            scorer,
            batch["input_ids"],
            batch["attention_mask"],
            content,
            torch.arange(len(content)),
            pad_token_id=0,
            eos_token_id=2,
        )

    # The chosen candidate's reported score is its AR score, and no worse than the family's pick
    # (which is one of the same candidates).
    torch.testing.assert_close(rescored.sequences_scores, ar_score(rescored.sequences), atol=1e-4, rtol=1e-4)
    assert (ar_score(rescored.sequences) >= ar_score(plain.sequences) - 1e-5).all()


def test_rescorer_in_another_dtype_scores_like_fp32(toy):
    batch = toy.tokenizer(toy.test_sentences[:8], return_tensors="pt", padding=True)
    scorer_bf16 = toy_ar_model(toy.tokenizer, seed=3).to(torch.bfloat16)
    out = toy.model.generate(**batch, length_beam=3, rescorer=scorer_bf16, return_dict_in_generate=True)
    content = out.sequences.masked_fill(out.sequences.eq(2), 0)
    fp32 = rescore_candidates(
        toy_ar_model(toy.tokenizer, seed=3),
        batch["input_ids"],
        batch["attention_mask"],
        content,
        torch.arange(len(content)),
        pad_token_id=0,
        eos_token_id=2,
    )
    assert out.sequences_scores.dtype == torch.float32
    torch.testing.assert_close(out.sequences_scores, fp32, atol=0.1, rtol=0.05)


def test_rescorer_with_another_tokenizer_is_rejected_before_decoding(toy):
    batch = toy.tokenizer(toy.test_sentences[:2], return_tensors="pt", padding=True)
    with pytest.raises(ValueError, match="share the model's tokenizer"):
        toy.model.generate(**batch, rescorer=toy_ar_model(toy.tokenizer, pad_token_id=5))
    with pytest.raises(ValueError, match="share the model's tokenizer"):
        toy.model.generate(**batch, rescorer=toy_ar_model(toy.tokenizer, vocab_size=10))
    with pytest.raises(ValueError, match="encoder-decoder"):
        toy.model.generate(**batch, rescorer=toy.tokenizer)
