"""Offline corpus-level sacreBLEU and chrF as one local `evaluate` module.

Loads without Hub access: ``evaluate.load("<path>/nat_sacrebleu")`` scores BLEU (the same keys
as the Hub ``sacrebleu`` metric) and ``evaluate.load("<path>/nat_sacrebleu", config_name="chrf")``
scores chrF (the keys of the Hub ``chrf`` metric). Both live in one file because evaluate loads a
module as a single self-contained script.
"""

from typing import Any

import datasets
import evaluate
import sacrebleu

_DESCRIPTION = """Corpus BLEU (config "bleu", the default: 13a tokenization, cased, on detokenized
text) or corpus chrF (config "chrf": character 6-grams, beta 2; word_order=2 gives chrF++),
computed with sacrebleu."""

_KWARGS_DESCRIPTION = """
Args:
    predictions: list of hypothesis strings.
    references: list of lists of reference strings, one inner list per
        prediction; every inner list must have the same length.
    Config "bleu": smooth_method ("exp", "floor", "add-k", "none"), smooth_value, tokenize
        (default "13a"), lowercase, force, use_effective_order.
    Config "chrf": char_order (6), word_order (0), beta (2), lowercase, whitespace, eps_smoothing.
Returns:
    bleu: score, counts, totals, precisions, bp, sys_len, ref_len.
    chrf: score, char_order, word_order, beta.
"""

_CITATION = """@inproceedings{post-2018-call,
  title = "A Call for Clarity in Reporting {BLEU} Scores",
  author = "Post, Matt",
  booktitle = "Proceedings of the Third Conference on Machine Translation",
  year = "2018",
}
@inproceedings{popovic-2015-chrf,
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


def _bleu(predictions, references, use_effective_order: bool = False, **kwargs) -> dict[str, Any]:
    result = sacrebleu.BLEU(effective_order=use_effective_order, **kwargs).corpus_score(predictions, references)
    return {
        "score": result.score,
        "counts": result.counts,
        "totals": result.totals,
        "precisions": result.precisions,
        "bp": result.bp,
        "sys_len": result.sys_len,
        "ref_len": result.ref_len,
    }


def _chrf(predictions, references, **kwargs) -> dict[str, Any]:
    result = sacrebleu.CHRF(**kwargs).corpus_score(predictions, references)
    return {
        "score": result.score,
        "char_order": result.char_order,
        "word_order": result.word_order,
        "beta": result.beta,
    }


_SCORERS = {"default": _bleu, "bleu": _bleu, "chrf": _chrf}


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class NatSacrebleu(evaluate.Metric):
    """Corpus sacreBLEU or chrF that needs no network access."""

    def _info(self) -> evaluate.MetricInfo:
        if self.config_name not in _SCORERS:
            raise ValueError(f"unknown config {self.config_name!r}; use 'bleu' or 'chrf'")
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "predictions": datasets.Value("string", id="sequence"),
                    "references": datasets.Sequence(datasets.Value("string", id="sequence"), id="references"),
                }
            ),
            reference_urls=["https://github.com/mjpost/sacrebleu"],
        )

    def _compute(self, predictions: list[str], references: list[list[str]], **kwargs) -> dict[str, Any]:
        scorer = _SCORERS[self.config_name]
        return scorer(list(predictions), transpose_references(references), **kwargs)
