"""Statistics of decoded outputs that BLEU does not show: repeated tokens, leftover special tokens,
length against the references."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

__all__ = ["count_tokens", "leftover_special_ids", "length_ratio", "repetition_rate"]


def repetition_rate(token_ids: Iterable[Sequence[int]], special_ids: Iterable[int] = ()) -> float:
    """Share of adjacent token pairs that are identical, pooled over a corpus.

    Special tokens (eos, pad, mask, ...) are removed before pairing. Returns 0.0 when there is no
    pair at all.
    """
    special = set(special_ids)
    repeats = pairs = 0
    for seq in token_ids:
        toks = [int(t) for t in seq if int(t) not in special]
        pairs += max(len(toks) - 1, 0)
        repeats += sum(1 for a, b in zip(toks, toks[1:]) if a == b)
    return repeats / pairs if pairs else 0.0


def leftover_special_ids(tokenizer) -> set[int]:
    """Special ids that must never reach an output (mask, placeholder, blank, ...): every special
    token of ``tokenizer`` but pad, bos, eos and unk."""
    allowed = {tokenizer.pad_token_id, tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.unk_token_id}
    return {int(i) for i in tokenizer.all_special_ids} - {int(i) for i in allowed if i is not None}


def count_tokens(token_ids: Iterable[Sequence[int]], ids: set[int]) -> int:
    """How many tokens of ``token_ids`` are in ``ids`` (a decoded set's leftover mask/placeholder count)."""
    return sum(1 for seq in token_ids for t in seq if int(t) in ids)


def length_ratio(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Total whitespace-separated words of the hypotheses over those of the references."""
    return sum(len(h.split()) for h in hypotheses) / max(sum(len(r.split()) for r in references), 1)
