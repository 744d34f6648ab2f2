"""Offline corpus-level chrF / chrF++ as a local `evaluate` module.

Loads with ``evaluate.load("<path>/nat_chrf")`` without Hub access and
returns the same keys as the Hub ``chrf`` metric.
"""

from typing import Any

import datasets
import evaluate
import sacrebleu

_DESCRIPTION = """Corpus chrF computed with sacrebleu (character 6-grams,
beta 2, no word n-grams by default; word_order=2 gives chrF++)."""

_KWARGS_DESCRIPTION = """
Args:
    predictions: list of hypothesis strings.
    references: list of lists of reference strings, one inner list per
        prediction; every inner list must have the same length.
    char_order: character n-gram order (default 6).
    word_order: word n-gram order (default 0; 2 gives chrF++).
    beta: recall weight (default 2).
    lowercase: lowercase before scoring (default False).
    whitespace: keep whitespace in character n-grams (default False).
    eps_smoothing: use epsilon smoothing (default False).
Returns:
    score, char_order, word_order, beta.
"""

_CITATION = """@inproceedings{popovic-2015-chrf,
  title = "chr{F}: character n-gram {F}-score for automatic {MT} evaluation",
  author = "Popovi{\\'c}, Maja",
  booktitle = "Proceedings of the Tenth Workshop on Statistical Machine Translation",
  year = "2015",
}"""


def transpose_references(references: list[list[str]]) -> list[list[str]]:
    """Turn per-prediction reference lists into sacrebleu's per-stream layout."""
    n_refs = len(references[0]) if references else 0
    if any(len(refs) != n_refs for refs in references):
        raise ValueError("every prediction needs the same number of references")
    return [[refs[i] for refs in references] for i in range(n_refs)]


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class NatChrf(evaluate.Metric):
    """Corpus chrF that needs no network access."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "predictions": datasets.Value("string", id="sequence"),
                    "references": datasets.Sequence(
                        datasets.Value("string", id="sequence"), id="references"
                    ),
                }
            ),
            reference_urls=["https://github.com/mjpost/sacrebleu"],
        )

    def _compute(
        self,
        predictions: list[str],
        references: list[list[str]],
        char_order: int = sacrebleu.CHRF.CHAR_ORDER,
        word_order: int = sacrebleu.CHRF.WORD_ORDER,
        beta: int = sacrebleu.CHRF.BETA,
        lowercase: bool = False,
        whitespace: bool = False,
        eps_smoothing: bool = False,
    ) -> dict[str, Any]:
        chrf = sacrebleu.CHRF(
            char_order=char_order,
            word_order=word_order,
            beta=beta,
            lowercase=lowercase,
            whitespace=whitespace,
            eps_smoothing=eps_smoothing,
        )
        result = chrf.corpus_score(list(predictions), transpose_references(references))
        return {
            "score": result.score,
            "char_order": result.char_order,
            "word_order": result.word_order,
            "beta": result.beta,
        }
