"""CTC NAT and glancing training: alignments match brute force, the toy task is learned in one pass,
candidates matter only with a rescorer, infeasible targets are counted. (Round trip, batch
invariance, the pipeline and the export: tests/test_family_contract.py.)"""

import itertools

import pytest
import torch

from hf_nat import CTCNATConfig, CTCNATForConditionalGeneration
from hf_nat.models.ctc_alignment import best_alignment, collapse, ctc_feasible
from tests.toy import exact_match, toy_ar_model, toy_batch, toy_sentences, toy_shape, toy_tokenizer, train_toy_model

BLANK, PAD = 0, 9  # small-vocabulary tests: blank 0, pad 9 (never a path token)


def brute_force_best(log_probs: torch.Tensor, target: list[int], length: int) -> float:
    """Best path score by enumerating every path of ``length`` over the vocabulary."""
    vocab = log_probs.shape[-1]
    best = float("-inf")
    for path in itertools.product(range(vocab), repeat=length):
        out = collapse(torch.tensor([path]), torch.ones(1, length, dtype=torch.bool), BLANK, PAD)[0]
        if out[out.ne(PAD)].tolist() == target:
            best = max(best, sum(log_probs[t, token].item() for t, token in enumerate(path)))
    return best


def test_collapse_merges_repeats_then_drops_blanks():
    paths = torch.tensor([[3, 3, 0, 3, 4, 4, 0], [0, 0, 5, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0]])
    keep = torch.ones_like(paths, dtype=torch.bool)
    keep[1, 3:] = False
    assert collapse(paths, keep, BLANK, PAD).tolist() == [[3, 3, 4], [5, PAD, PAD], [PAD, PAD, PAD]]


def test_feasibility_counts_repeated_neighbours():
    targets = torch.tensor([[3, 3, PAD], [3, 4, 5]])
    lengths = torch.tensor([2, 3])
    assert ctc_feasible(targets, lengths, torch.tensor([2, 3]), PAD).tolist() == [False, True]
    assert ctc_feasible(targets, lengths, torch.tensor([3, 2]), PAD).tolist() == [True, False]


@pytest.mark.parametrize("seed", range(6))
def test_best_alignment_matches_brute_force(seed):
    generator = torch.Generator().manual_seed(seed)
    batch, length, vocab = 3, 5, 4
    log_probs = torch.randn(batch, length, vocab, generator=generator).log_softmax(-1)
    targets = torch.randint(1, vocab, (batch, 3), generator=generator)
    target_lengths = torch.tensor([1, 2, 3])
    input_lengths = torch.tensor([5, 4, 5])
    targets[0, 1:] = PAD
    targets[1, 2:] = PAD
    paths = best_alignment(log_probs, targets, input_lengths, target_lengths, BLANK)
    for row in range(batch):
        n, u = int(input_lengths[row]), int(target_lengths[row])
        target = targets[row, :u].tolist()
        expected = brute_force_best(log_probs[row, :n], target, n)
        path = paths[row, :n]
        keep = torch.ones(1, n, dtype=torch.bool)
        emitted = collapse(path[None], keep, BLANK, PAD)[0]
        if expected == float("-inf"):
            assert path.eq(BLANK).all()
            continue
        assert emitted[emitted.ne(PAD)].tolist() == target
        score = sum(log_probs[row, t, token].item() for t, token in enumerate(path.tolist()))
        assert score == pytest.approx(expected, abs=1e-5)
        assert paths[row, n:].eq(BLANK).all()


def toy_ctc_config(tokenizer, **overrides) -> CTCNATConfig:
    return CTCNATConfig(**toy_shape(tokenizer, **{"label_smoothing": 0.1, "upsample_ratio": 2, **overrides}))


def train_toy_ctc(steps: int, seed: int = 0, **overrides) -> tuple[CTCNATForConditionalGeneration, list]:
    torch.manual_seed(seed)
    tokenizer = toy_tokenizer()
    model = CTCNATForConditionalGeneration(toy_ctc_config(tokenizer, **overrides))
    history = train_toy_model(
        model, lambda step: toy_batch(tokenizer, toy_sentences(64, seed=2000 + step)), steps, seed
    )
    return model, history


@pytest.fixture(scope="module")
def toy_ctc():
    model, _ = train_toy_ctc(250)
    return model, toy_tokenizer(), toy_sentences(40, seed=7)


@pytest.mark.learning
def test_ctc_learns_the_copy_task_in_one_pass(toy_ctc):
    model, tokenizer, sentences = toy_ctc
    assert exact_match(model, tokenizer, sentences) >= 0.8
    out = model.generate(**tokenizer(sentences[:4], return_tensors="pt", padding=True), return_dict_in_generate=True)
    assert out.iterations.tolist() == [1, 1, 1, 1]


def test_candidates_only_matter_with_a_rescorer(toy_ctc):
    model, tokenizer, sentences = toy_ctc
    batch = tokenizer(sentences[:8], return_tensors="pt", padding=True)
    assert torch.equal(model.generate(**batch), model.generate(**batch, num_candidates=4))
    scorer = toy_ar_model(tokenizer, seed=3)
    out = model.generate(**batch, num_candidates=4, rescorer=scorer, return_dict_in_generate=True)
    assert out.sequences.shape[0] == 8
    with pytest.raises(ValueError, match="num_candidates"):
        model.generate(**batch, num_candidates=0)


def test_glancing_training_reveals_tokens_and_anneals():
    model, history = train_toy_ctc(30, glancing=True, glancing_anneal_steps=20)
    assert int(model.glancing_updates) == 30
    assert model.glancing_ratio() == pytest.approx(0.3)
    assert all("revealed" in h for h in history)
    assert history[0]["revealed"] > 0  # an untrained first pass errs everywhere
    assert history[-1]["ctc"] < history[0]["ctc"]


def test_infeasible_targets_are_left_out_and_counted():
    tokenizer = toy_tokenizer()
    torch.manual_seed(0)
    model = CTCNATForConditionalGeneration(toy_ctc_config(tokenizer, upsample_ratio=1))
    enc = tokenizer(["w1", "w1 w2"], text_target=["w1 w2 w3 w4", "w1"], return_tensors="pt", padding=True)
    out = model(**enc)
    assert out.losses["infeasible"] == 1 and torch.isfinite(out.loss)


def test_cmlm_glancing_trains_one_shot_and_imputer_refuses_it():
    from hf_nat import CMLMForConditionalGeneration, ImputerConfig, ImputerForConditionalGeneration
    from tests.toy import toy_config

    torch.manual_seed(0)
    tokenizer = toy_tokenizer()
    model = CMLMForConditionalGeneration(toy_config(tokenizer, glancing=True, glancing_anneal_steps=10))
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(0)
    first = last = None
    for step in range(20):
        out = model(**toy_batch(tokenizer, toy_sentences(32, seed=4000 + step)), generator=generator)
        out.loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        first = first if first is not None else out.losses["tokens"]
        last = out.losses["tokens"]
    assert int(model.glancing_updates) == 20 and model.glancing_ratio() == pytest.approx(0.3)
    assert last < first
    with pytest.raises(ValueError, match="glancing"):
        ImputerForConditionalGeneration(
            ImputerConfig(vocab_size=len(tokenizer), d_model=32, encoder_layers=1, decoder_layers=1, glancing=True)
        )
