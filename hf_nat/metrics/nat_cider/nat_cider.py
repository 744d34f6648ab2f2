"""Offline corpus CIDEr-D, the captioning metric of the MSCOCO evaluation server, as a local `evaluate` module.

``evaluate.load("<path>/nat_cider")`` scores CIDEr-D (Vedantam et al., 2015) with the MSCOCO settings: n-grams of
1 to 4 words, TF-IDF weights whose document frequencies come from the references of the evaluated corpus, candidate
counts clipped by reference counts, a Gaussian length penalty with sigma 6, and a factor of 10. Pure Python, no Java
(the coco-caption PTB tokenizer is replaced by the simple tokenisation of :func:`tokenize`).
"""

import math
import re
from collections import Counter
from typing import Any

import datasets
import evaluate

_DESCRIPTION = """Corpus CIDEr-D. For image i with candidate c and references s_1..s_m, n-gram order n (1..4) and
g_n(x) the vector of n-gram counts of x weighted by idf(w) = log(N / max(1, df(w))), with N the number of images and
df(w) the number of images in which some reference contains w:

    CIDEr-D_n(c, S) = 10/m * sum_j exp(-(len(c) - len(s_j))^2 / (2 sigma^2))
                      * <min(g_n(c), g_n(s_j)), g_n(s_j)> / (|g_n(c)| |g_n(s_j)|)

(a term is 0 when either norm is 0), CIDEr-D(c, S) = mean over n of CIDEr-D_n, and the corpus score is the mean over
images. sigma = 6; len is in words. This is what pycocoevalcap.cider.Cider computes (its ``cider`` scorer is CIDEr-D),
on the same tokens. Scores lie in [0, 10]; papers print them times 100 ("CIDEr 112.3" is a score of 1.123).
Because the idf comes from the corpus itself, a corpus of one image scores 0 (every reference n-gram has idf 0).

Tokenisation (tokenize="simple", the default): lower-case, every character that is not a letter, digit or whitespace
becomes a space ("A dog's frisbee." -> "a dog s frisbee"), then split on whitespace. tokenize="none" only splits on
whitespace, for text tokenised beforehand (e.g. by the coco-caption PTB tokenizer)."""

_KWARGS_DESCRIPTION = """
Args:
    predictions: list of candidate captions, one per image.
    references: list of lists of reference captions, one non-empty list per image; counts may differ.
    tokenize: "simple" (default) or "none".
    n: largest n-gram order (4).
    sigma: standard deviation of the length penalty, in words (6.0).
Returns:
    score: corpus CIDEr-D (the mean of scores), on the 0-10 scale of pycocoevalcap.
    scores: CIDEr-D of every image.
"""

_CITATION = """@inproceedings{vedantam-2015-cider,
  title = "{CIDE}r: Consensus-based Image Description Evaluation",
  author = "Vedantam, Ramakrishna and Zitnick, C. Lawrence and Parikh, Devi",
  booktitle = "Proceedings of the IEEE Conference on Computer Vision and Pattern Recognition",
  year = "2015",
}"""

_NOT_WORD = re.compile(r"[^\w\s]|_")


def tokenize(text: str, mode: str = "simple") -> list[str]:
    """The words of ``text``: lower-cased with punctuation replaced by spaces ("simple"), or only split ("none")."""
    if mode == "simple":
        text = _NOT_WORD.sub(" ", text.lower())
    elif mode != "none":
        raise ValueError(f"unknown tokenize {mode!r}; use 'simple' or 'none'")
    return text.split()


def ngram_counts(tokens: list[str], n: int) -> list[Counter]:
    """Counts of the 1-grams, ..., n-grams of ``tokens``, one Counter per order."""
    return [Counter(tuple(tokens[i : i + k]) for i in range(len(tokens) - k + 1)) for k in range(1, n + 1)]


def _weights(counts: Counter, idf: dict[tuple[str, ...], float], default_idf: float) -> tuple[dict, float]:
    vector = {gram: count * idf.get(gram, default_idf) for gram, count in counts.items()}
    return vector, math.sqrt(sum(w * w for w in vector.values()))


def cider_d(
    predictions: list[str],
    references: list[list[str]],
    n: int = 4,
    sigma: float = 6.0,
    tokenize_mode: str = "simple",
) -> dict[str, Any]:
    """Corpus CIDEr-D of ``predictions`` against their ``references``: ``{"score": mean, "scores": per image}``."""
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} references")
    if any(isinstance(refs, str) or len(refs) == 0 for refs in references):
        raise ValueError("every prediction needs a non-empty list of references")
    if not predictions:
        return {"score": 0.0, "scores": []}

    candidates = [tokenize(text, tokenize_mode) for text in predictions]
    refs_tokens = [[tokenize(text, tokenize_mode) for text in refs] for refs in references]
    cand_counts = [ngram_counts(tokens, n) for tokens in candidates]
    refs_counts = [[ngram_counts(tokens, n) for tokens in refs] for refs in refs_tokens]

    document_frequency: Counter = Counter()
    for refs in refs_counts:
        document_frequency.update({gram for ref in refs for order in ref for gram in order})
    log_images = math.log(len(predictions))
    # an n-gram no reference contains counts as df 1 (as on MSCOCO), so it gets the default idf log N in _weights
    idf = {gram: log_images - math.log(df) for gram, df in document_frequency.items()}

    scores = []
    for cand_tokens, cand, ref_tokens, refs in zip(candidates, cand_counts, refs_tokens, refs_counts):
        cand_vectors = [_weights(order, idf, log_images) for order in cand]
        per_order = [0.0] * n
        for tokens, ref in zip(ref_tokens, refs):
            penalty = math.exp(-((len(cand_tokens) - len(tokens)) ** 2) / (2 * sigma**2))
            for k in range(n):
                (cand_vec, cand_norm), (ref_vec, ref_norm) = cand_vectors[k], _weights(ref[k], idf, log_images)
                if cand_norm == 0 or ref_norm == 0:
                    continue
                # idf >= 0, so clipping the weights is clipping the counts
                overlap = sum(min(w, ref_vec[gram]) * ref_vec[gram] for gram, w in cand_vec.items() if gram in ref_vec)
                per_order[k] += penalty * overlap / (cand_norm * ref_norm)
        scores.append(10.0 * sum(per_order) / (n * len(refs)))
    return {"score": sum(scores) / len(scores), "scores": scores}


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class NatCider(evaluate.Metric):
    """Corpus CIDEr-D that needs neither network access nor Java."""

    def _info(self) -> evaluate.MetricInfo:
        if self.config_name not in ("default", "cider", "cider-d"):
            raise ValueError(f"unknown config {self.config_name!r}; use 'cider'")
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
            reference_urls=["https://arxiv.org/abs/1411.5726", "https://github.com/tylin/coco-caption"],
        )

    def _compute(
        self,
        predictions: list[str],
        references: list[list[str]],
        tokenize: str = "simple",
        n: int = 4,
        sigma: float = 6.0,
    ) -> dict[str, Any]:
        return cider_d(list(predictions), [list(refs) for refs in references], n=n, sigma=sigma, tokenize_mode=tokenize)
