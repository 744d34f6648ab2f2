"""Offline corpus word and character error rates as one local `evaluate` module.

``evaluate.load("<path>/nat_wer")`` scores WER and ``config_name="cer"`` scores CER, with jiwer's
default normalisation and corpus definition (edits summed over the corpus, divided by the
reference length summed over it), without jiwer or Hub access.
"""

import re
from typing import Any

import datasets
import evaluate

_DESCRIPTION = """Corpus word error rate (config "wer", the default) or character error rate (config
"cer"): the Levenshtein edits (substitutions + deletions + insertions) turning every reference into
its prediction, summed, over the reference words (characters) summed. Words are what remains
between single spaces after runs of two or more whitespace characters become one space and the
ends are stripped; characters are those of the stripped string, spaces included. When the
references are all empty the rate is the number of edits (the division is by max(length, 1)).
The same definitions as jiwer's wer() and cer() with their default transforms."""

_KWARGS_DESCRIPTION = """
Args:
    predictions: list of hypothesis strings.
    references: list of reference strings, one per prediction.
Returns:
    score: the error rate (a fraction; 0.25 is 25% WER).
    substitutions, deletions, insertions: the edit counts.
    reference_length: reference words (characters) in the corpus.
"""


def words(text: str) -> list[str]:
    """The words of ``text`` as jiwer's default WER transform sees them."""
    text = re.sub(r"\s\s+", " ", text).strip()
    return [w for w in text.split(" ") if w]


def characters(text: str) -> list[str]:
    """The characters of ``text`` as jiwer's default CER transform sees them."""
    return list(text.strip())


def edit_counts(reference: list[str], hypothesis: list[str]) -> tuple[int, int, int]:
    """(substitutions, deletions, insertions) of one minimum-edit alignment of two sequences.

    Among alignments with the fewest edits it prefers, at every cell, a match/substitution over a
    deletion over an insertion; the total is the Levenshtein distance whichever is chosen.
    """
    # cost[j] = (edits, subs, dels, ins) for reference[:i] against hypothesis[:j]
    previous = [(j, 0, 0, j) for j in range(len(hypothesis) + 1)]
    for i, ref_token in enumerate(reference, 1):
        current = [(i, 0, i, 0)]
        for j, hyp_token in enumerate(hypothesis, 1):
            edits, subs, dels, ins = previous[j - 1]
            diagonal = (edits + 1, subs + 1, dels, ins) if ref_token != hyp_token else (edits, subs, dels, ins)
            edits, subs, dels, ins = previous[j]
            deletion = (edits + 1, subs, dels + 1, ins)
            edits, subs, dels, ins = current[j - 1]
            insertion = (edits + 1, subs, dels, ins + 1)
            current.append(min((diagonal, deletion, insertion), key=lambda cell: cell[0]))
        previous = current
    return previous[-1][1:]


def error_rate(predictions: list[str], references: list[str], unit: str) -> dict[str, Any]:
    """Corpus error rate of ``predictions`` against ``references`` in ``unit`` "word" or "char"."""
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} references")
    split = {"word": words, "char": characters}[unit]
    subs = dels = ins = length = 0
    for prediction, reference in zip(predictions, references):
        ref_tokens = split(reference)
        s, d, i = edit_counts(ref_tokens, split(prediction))
        subs, dels, ins, length = subs + s, dels + d, ins + i, length + len(ref_tokens)
    return {
        "score": (subs + dels + ins) / max(length, 1),
        "substitutions": subs,
        "deletions": dels,
        "insertions": ins,
        "reference_length": length,
    }


_UNITS = {"default": "word", "wer": "word", "cer": "char"}


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class NatWer(evaluate.Metric):
    """Corpus WER or CER that needs no network access."""

    def _info(self) -> evaluate.MetricInfo:
        if self.config_name not in _UNITS:
            raise ValueError(f"unknown config {self.config_name!r}; use 'wer' or 'cer'")
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "predictions": datasets.Value("string", id="sequence"),
                    "references": datasets.Value("string", id="sequence"),
                }
            ),
            reference_urls=["https://github.com/jitsi/jiwer"],
        )

    def _compute(self, predictions: list[str], references: list[str]) -> dict[str, Any]:
        return error_rate(list(predictions), list(references), _UNITS[self.config_name])
