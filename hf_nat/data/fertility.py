"""Fertility labels for the vanilla NAT: word alignments (eflomal) mapped to subword fertilities.

A source token's fertility is the number of target tokens aligned to it, so the fertilities of a
sentence always sum to its target length (eos excluded). Alignment runs on the tokenizer's own
words (its pre-tokenization), so words and subwords match exactly.

Target words the aligner leaves unaligned are attached to the source word of the nearest aligned
target word (the one before, else the one after), keeping the copy monotone; if no target word of
a sentence is aligned, target word j goes to source word ⌊j·S/T⌋. The subwords of a target word
aligned to a source word of k subwords are spread over those k subwords in order.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
from collections.abc import Sequence

import datasets

from hf_nat.files import read_json, replace_folder, write_json_atomic
from hf_nat.optional import require

# Written next to cached fertilities by align_corpus.
INFO_FILE = "fertility_info.json"


def tokenizer_fingerprint(tokenizer) -> str:
    """A hash of the tokenizer's vocabulary and rules (fertilities are only valid for that tokenizer)."""
    return hashlib.sha256(tokenizer.backend_tokenizer.to_str().encode("utf-8")).hexdigest()[:16]


def word_groups(encoding) -> list[list[int]]:
    """Token positions of each word of a fast-tokenizer encoding (special tokens belong to none)."""
    groups: dict[int, list[int]] = {}
    for position, word in enumerate(encoding.word_ids):
        if word is not None:
            groups.setdefault(word, []).append(position)
    return [groups[w] for w in sorted(groups)]


def subword_fertilities(
    links: Sequence[tuple[int, int]], source_words: list[list[int]], target_words: list[list[int]], source_length: int
) -> tuple[list[int], int]:
    """Fertility of every source token (a list of ``source_length``) and the number of target
    words the aligner left unaligned.

    ``links`` are (source word, target word) pairs; when a target word has several, the first
    source word is used. ``source_words``/``target_words`` give each word's token positions.
    """
    fertility = [0] * source_length
    if not target_words:
        return fertility, 0
    if not source_words:
        raise ValueError("a sentence with target words has no source word to align them to")
    aligned: dict[int, int] = {}
    for s, t in sorted(links):
        if 0 <= s < len(source_words) and 0 <= t < len(target_words):
            aligned.setdefault(t, s)
    unaligned = len(target_words) - len(aligned)
    owner = _fill_unaligned(aligned, len(target_words), len(source_words))
    for t, tokens in enumerate(target_words):
        sub = source_words[owner[t]]
        for i in range(len(tokens)):
            fertility[sub[i * len(sub) // len(tokens)]] += 1
    return fertility, unaligned


def _fill_unaligned(aligned: dict[int, int], n_target: int, n_source: int) -> list[int]:
    """Source word of every target word: its own link, else the nearest aligned neighbour's."""
    if not aligned:
        return [t * n_source // n_target for t in range(n_target)]
    owner: list[int | None] = [aligned.get(t) for t in range(n_target)]
    previous = None
    for t in range(n_target):
        if owner[t] is None:
            owner[t] = previous
        previous = owner[t] if owner[t] is not None else previous
    following = None
    for t in reversed(range(n_target)):
        if aligned.get(t) is not None:
            following = aligned[t]
        if owner[t] is None:
            owner[t] = following
    return owner  # type: ignore[return-value]


def align_words(
    source_words: list[list[str]], target_words: list[list[str]], **aligner_options
) -> list[list[tuple[int, int]]]:
    """Word alignments (source word, target word) of every sentence pair by eflomal.

    The forward direction is used: every target word is linked to at most one source word.
    """
    eflomal = require("eflomal", "fertility labels (word alignment)")
    if len(source_words) != len(target_words):
        raise ValueError(f"{len(source_words)} sources but {len(target_words)} targets")
    with tempfile.TemporaryDirectory() as tmp:
        links_path = os.path.join(tmp, "forward.links")
        # eflomal cannot read empty lines: a placeholder word keeps line numbers aligned.
        eflomal.Aligner(**aligner_options).align(
            [" ".join(words) or "<empty>" for words in source_words],
            [" ".join(words) or "<empty>" for words in target_words],
            links_filename_fwd=links_path,
            quiet=True,
        )
        with open(links_path, encoding="utf-8") as f:
            lines = f.read().split("\n")[: len(source_words)]
    out = []
    for line in lines:
        pairs = [p.split("-") for p in line.split()]
        out.append([(int(s), int(t)) for s, t in pairs])
    return out


def corpus_fertilities(
    sources: list[str], targets: list[str], tokenizer, **aligner_options
) -> tuple[list[list[int]], dict]:
    """Fertility of every source token of every pair (aligned with ``tokenizer(source).input_ids``)
    and statistics: sentences, target words, unaligned target words, largest fertility."""
    source_encodings = tokenizer(list(sources)).encodings
    target_encodings = tokenizer(list(targets)).encodings
    if source_encodings is None:
        raise ValueError("fertility labels need a fast tokenizer (word ids come from its encodings)")
    source_groups = [word_groups(e) for e in source_encodings]
    target_groups = [word_groups(e) for e in target_encodings]

    def words(encoding, groups):
        # A word's text is the concatenation of its tokens (without spaces, so eflomal sees one word).
        return ["".join(encoding.tokens[i] for i in g).replace(" ", "") for g in groups]

    links = align_words(
        [words(e, g) for e, g in zip(source_encodings, source_groups)],
        [words(e, g) for e, g in zip(target_encodings, target_groups)],
        **aligner_options,
    )
    fertilities, unaligned, total_words = [], 0, 0
    for enc, s_groups, t_groups, pair_links in zip(source_encodings, source_groups, target_groups, links):
        fertility, missing = subword_fertilities(pair_links, s_groups, t_groups, len(enc.ids))
        fertilities.append(fertility)
        unaligned += missing
        total_words += len(t_groups)
    stats = {
        "sentences": len(fertilities),
        "target_words": total_words,
        "unaligned_target_words": unaligned,
        "max_fertility": max((max(f) for f in fertilities if f), default=0),
    }
    return fertilities, stats


def attach_fertility(examples: list[dict], train, tokenizer, folder: str, split: str) -> None:
    """Add to each tokenized example of ``train`` (the split's ``source``/``target`` text, in the
    examples' order) its labels cached by :func:`align_corpus` in ``folder``, matched by text."""
    info = read_json(os.path.join(folder, INFO_FILE), "fertility labels info")
    if info["tokenizer_fingerprint"] != tokenizer_fingerprint(tokenizer):
        raise ValueError(f"--fertility {folder} was computed with another tokenizer; rerun hf-nat align")
    cached = datasets.load_from_disk(folder)[split]
    by_pair = {(s, t): f for s, t, f in zip(cached["source"], cached["target"], cached["fertility"])}
    missing = 0
    for example, source, target in zip(examples, train["source"], train["target"]):
        fertility = by_pair.get((source, target))
        if fertility is None or len(fertility) != len(example["input_ids"]):
            missing += 1
        else:
            example["fertility"] = fertility
    if missing:
        raise ValueError(
            f"--fertility {folder} lacks labels for {missing} of {len(examples)} training pairs; "
            f"rerun hf-nat align on this corpus"
        )


def align_corpus(data: str, src: str, tgt: str, splits: Sequence[str], tokenizer, output: str) -> dict:
    """Align every split of a corpus and save its fertilities to ``output`` (replaced when complete):
    a ``save_to_disk`` DatasetDict (``source``, ``target``, ``fertility``) and :data:`INFO_FILE`
    (statistics and the tokenizer's fingerprint, which training checks). Returns the statistics."""
    from hf_nat.data.corpus import load_parallel_corpus

    corpus = load_parallel_corpus(data, src, tgt, splits=list(splits))
    out, stats = {}, {}
    for split in splits:
        started = time.perf_counter()
        sources, targets = list(corpus[split]["source"]), list(corpus[split]["target"])
        fertility, stats[split] = corpus_fertilities(sources, targets, tokenizer)
        stats[split]["seconds"] = round(time.perf_counter() - started, 1)
        out[split] = datasets.Dataset.from_dict({"source": sources, "target": targets, "fertility": fertility})
        print(f"{split}: {stats[split]}")
    staging = output.rstrip("/") + ".tmp"
    shutil.rmtree(staging, ignore_errors=True)
    datasets.DatasetDict(out).save_to_disk(staging)
    write_json_atomic(
        os.path.join(staging, INFO_FILE),
        {
            "tokenizer_fingerprint": tokenizer_fingerprint(tokenizer),
            "data": data,
            "src": src,
            "tgt": tgt,
            "stats": stats,
        },
    )
    replace_folder(staging, output)
    return stats
