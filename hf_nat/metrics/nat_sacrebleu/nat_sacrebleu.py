"""Offline corpus-level sacreBLEU as a local `evaluate` module.

Loads with ``evaluate.load("<path>/nat_sacrebleu")`` without Hub access and
returns the same keys as the Hub ``sacrebleu`` metric.
"""

from typing import Any

import datasets
import evaluate
import sacrebleu

_DESCRIPTION = """Corpus BLEU computed with sacrebleu (13a tokenization, cased,
on detokenized text by default)."""

_KWARGS_DESCRIPTION = """
Args:
    predictions: list of hypothesis strings.
    references: list of lists of reference strings, one inner list per
        prediction; every inner list must have the same length.
    smooth_method: "exp" (default), "floor", "add-k" or "none".
    smooth_value: smoothing value for "floor"/"add-k".
    tokenize: sacrebleu tokenizer name (default "13a").
    lowercase: lowercase before scoring (default False).
    force: do not complain about already-tokenized input (default False).
    use_effective_order: use effective n-gram order (default False).
Returns:
    score, counts, totals, precisions, bp, sys_len, ref_len.
"""

_CITATION = """@inproceedings{post-2018-call,
  title = "A Call for Clarity in Reporting {BLEU} Scores",
  author = "Post, Matt",
  booktitle = "Proceedings of the Third Conference on Machine Translation",
  year = "2018",
}"""


def transpose_references(references: list[list[str]]) -> list[list[str]]:
    """Turn per-prediction reference lists into sacrebleu's per-stream layout."""
    n_refs = len(references[0]) if references else 0
    if any(len(refs) != n_refs for refs in references):
        raise ValueError("every prediction needs the same number of references")
    return [[refs[i] for refs in references] for i in range(n_refs)]


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class NatSacrebleu(evaluate.Metric):
    """Corpus sacreBLEU that needs no network access."""

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
        smooth_method: str = "exp",
        smooth_value: float | None = None,
        tokenize: str = "13a",
        lowercase: bool = False,
        force: bool = False,
        use_effective_order: bool = False,
    ) -> dict[str, Any]:
        bleu = sacrebleu.BLEU(
            lowercase=lowercase,
            force=force,
            tokenize=tokenize,
            smooth_method=smooth_method,
            smooth_value=smooth_value,
            effective_order=use_effective_order,
        )
        result = bleu.corpus_score(list(predictions), transpose_references(references))
        return {
            "score": result.score,
            "counts": result.counts,
            "totals": result.totals,
            "precisions": result.precisions,
            "bp": result.bp,
            "sys_len": result.sys_len,
            "ref_len": result.ref_len,
        }
