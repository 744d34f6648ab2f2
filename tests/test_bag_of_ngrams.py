"""The exact bag-of-n-grams loss against enumeration of every output sequence."""

import itertools
from collections import Counter

import pytest
import torch

from hf_nat.models.nat_bag_of_ngrams import bag_of_ngrams_loss


def brute_force_loss(probs: torch.Tensor, reference: list[int], n: int) -> float:
    """BoN-L1 / (2(T - n + 1)) by enumerating all V^T outputs of independent positions."""
    length, vocab = len(reference), probs.shape[-1]
    expected = Counter()
    for output in itertools.product(range(vocab), repeat=length):
        chance = float(torch.prod(probs[torch.arange(length), torch.tensor(output)]))
        for t in range(length - n + 1):
            expected[output[t : t + n]] += chance
    reference_bag = Counter(tuple(reference[t : t + n]) for t in range(length - n + 1))
    distance = sum(abs(expected[g] - reference_bag[g]) for g in set(expected) | set(reference_bag))
    return distance / (2 * (length - n + 1))


def test_a_case_by_hand():
    # p_1 = (1/2, 1/2), p_2 = (1/4, 3/4), reference "0 1": E[C(0 1)] = 3/8, the loss 1 - 3/8
    probs = torch.tensor([[[0.5, 0.5], [0.25, 0.75]]])
    loss, has = bag_of_ngrams_loss(probs.log(), torch.tensor([[0, 1]]), torch.tensor([2]), n=2)
    assert has.tolist() == [True]
    assert loss.item() == pytest.approx(0.625)


def test_a_repeated_reference_ngram_is_counted_with_its_multiplicity():
    # reference "0 0 0" holds the bigram (0 0) twice; a certain "0 0 0" output matches both
    certain = torch.tensor([[[1.0, 0.0]] * 3]).clamp(min=1e-12)
    loss, _ = bag_of_ngrams_loss(certain.log(), torch.tensor([[0, 0, 0]]), torch.tensor([3]), n=2)
    assert loss.item() == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("seed", range(12))
def test_equals_enumeration_on_random_cases(seed):
    generator = torch.Generator().manual_seed(seed)
    batch, width, vocab = 3, 4, 3
    n = 1 + seed % 3
    log_probs = torch.randn(batch, width, vocab, generator=generator, dtype=torch.float64).log_softmax(-1)
    targets = torch.randint(vocab, (batch, width), generator=generator)
    lengths = torch.randint(1, width + 1, (batch,), generator=generator)
    loss, has = bag_of_ngrams_loss(log_probs, targets, lengths, n=n)
    for b in range(batch):
        length = int(lengths[b])
        assert bool(has[b]) == (length >= n)
        if length >= n:
            want = brute_force_loss(log_probs[b, :length].exp(), targets[b, :length].tolist(), n)
            assert loss[b].item() == pytest.approx(want, abs=1e-5)
        else:
            assert loss[b].item() == 0.0


def test_no_ngrams_anywhere_is_zero_with_a_gradient_and_no_nan():
    log_probs = torch.randn(2, 1, 5).log_softmax(-1).requires_grad_()
    loss, has = bag_of_ngrams_loss(log_probs, torch.tensor([[3], [1]]), torch.tensor([1, 1]), n=2)
    assert not has.any() and torch.equal(loss, torch.zeros(2))
    loss.sum().backward()
    assert torch.isfinite(log_probs.grad).all()


def test_gradient_lowers_the_loss():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 5, 7, generator=generator).requires_grad_()
    targets = torch.randint(7, (2, 5), generator=generator)
    lengths = torch.tensor([5, 3])
    before, _ = bag_of_ngrams_loss(logits.log_softmax(-1), targets, lengths)
    before.sum().backward()
    with torch.no_grad():
        after, _ = bag_of_ngrams_loss((logits - 1.0 * logits.grad).log_softmax(-1), targets, lengths)
    assert (after < before).all()


def test_order_below_one_is_refused():
    with pytest.raises(ValueError, match="at least 1"):
        bag_of_ngrams_loss(torch.zeros(1, 2, 3), torch.zeros(1, 2, dtype=torch.long), torch.tensor([2]), n=0)
