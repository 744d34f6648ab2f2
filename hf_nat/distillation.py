"""Sequence-level knowledge distillation (Kim & Rush, 2016): replace a corpus's targets by a teacher's
beam-search translations.

Any transformers seq2seq model can be the teacher: our AR baseline, or a Hub model such as
``Helsinki-NLP/opus-mt-en-de`` on a machine that can reach the Hub. The result is a ``datasets``
``DatasetDict`` saved in ``--output_dir`` with columns ``source``, ``target`` (the teacher's
translation) and ``original_target``; ``hf-nat train --data OUTPUT_DIR`` reads it like any
corpus. Splits named by ``--copy_splits`` (validation, test) are stored with their references as
targets, so validation during training still compares against human translations.

The work is cut into chunks of ``--chunk_size`` length-sorted sentences; each finished chunk is
written atomically under ``OUTPUT_DIR/work``, so a killed run started again with the same command
continues where it stopped and loses at most the chunks in flight. Processes split the chunks::

    hf-nat distill --teacher runs/ar_en_de/best --data ../shared/data/multi30k \\
        --src en --tgt de --output_dir runs/distill_en_de --student_tokenizer runs/tok_en_de_8k
    accelerate launch --num_processes 2 training/distill.py ...   # same, two processes

Distillation works on text, so teacher and student may tokenize differently in principle. When
``--student_tokenizer`` is given, the teacher must share it (the recipe also uses the teacher as
the AR rescorer, which needs identical token ids): a mismatch is an error before any decoding.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path

import datasets
import torch
from accelerate import Accelerator
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

import hf_nat  # noqa: F401  (registers hf_nat families with the Auto classes: a NAT teacher loads too)
from hf_nat.data import load_parallel_corpus
from hf_nat.data.fertility import tokenizer_fingerprint
from hf_nat.files import write_json_atomic
from hf_nat.loading import torch_dtype
from hf_nat.translate import translate_corpus

__all__ = [
    "assemble",
    "check_or_write_plan",
    "check_same_tokenizer",
    "distill",
    "make_chunks",
    "run_fingerprint",
    "teacher_fingerprint",
]

logger = logging.getLogger("hf_nat.distill")


_DISTILL_REMEDY = (
    "Use a teacher trained with the student's tokenizer, or drop --student_tokenizer to distill text only."
)


def check_same_tokenizer(teacher_tokenizer, student_tokenizer, remedy: str = _DISTILL_REMEDY) -> None:
    """Raise ``ValueError`` (ending in ``remedy``) unless both tokenizers map every token to the same id."""
    teacher_vocab, student_vocab = teacher_tokenizer.get_vocab(), student_tokenizer.get_vocab()
    if teacher_vocab != student_vocab:
        only_teacher = sorted(set(teacher_vocab) - set(student_vocab))[:5]
        only_student = sorted(set(student_vocab) - set(teacher_vocab))[:5]
        raise ValueError(
            f"the teacher's tokenizer differs from the student's ({len(teacher_vocab)} vs {len(student_vocab)} "
            f"entries; e.g. only in the teacher: {only_teacher}, only in the student: {only_student}). " + remedy
        )


def make_chunks(sources: list[str], tokenizer, chunk_size: int) -> list[list[int]]:
    """Sentence indices sorted by source length (ties by index) and cut into chunks."""
    lengths = [len(ids) for ids in tokenizer(sources)["input_ids"]]
    order = sorted(range(len(sources)), key=lambda i: (lengths[i], i))
    return [order[start : start + chunk_size] for start in range(0, len(order), chunk_size)]


def teacher_fingerprint(model, tokenizer) -> dict:
    """Digests of what the teacher translates with: its weights (a teacher folder such as a
    training run's ``best/`` is replaced in place when it improves), generation defaults and
    tokenizer. Call before the weights are cast to ``--dtype``, which is recorded on its own."""
    weights = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        weights.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype}\n".encode())
        weights.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy())
    generation = model.generation_config.to_diff_dict()
    generation.pop("transformers_version", None)
    if tokenizer.is_fast:
        tokenizer_digest = tokenizer_fingerprint(tokenizer)
    else:  # slow (e.g. sentencepiece) tokenizers have no serialised pipeline: their vocabulary stands in
        vocab = json.dumps(sorted(tokenizer.get_vocab().items()), ensure_ascii=False)
        tokenizer_digest = hashlib.sha256(vocab.encode("utf-8")).hexdigest()[:16]
    return {
        "teacher_weights_sha256": weights.hexdigest(),
        "teacher_generation_config": generation,
        "teacher_tokenizer": tokenizer_digest,
    }


def run_fingerprint(args, corpus: datasets.DatasetDict, teacher: dict) -> dict:
    """Everything that changes the distilled targets, so must not change between a run and its
    resumption: the sources, the teacher (``teacher``: :func:`teacher_fingerprint`), decoding
    options, precision and batching (padding within a batch changes beam search numerics), and the
    chunking that the finished work files follow. As JSON would store it (lists, not tuples)."""
    digest = hashlib.sha256()
    for split in args.splits:
        for text in corpus[split]["source"]:
            digest.update(text.encode("utf-8") + b"\n")
    fingerprint = {
        "teacher": args.teacher,
        **teacher,
        "num_beams": args.num_beams,
        "dtype": args.dtype,
        "max_tokens": args.max_tokens,
        "max_sentences": args.max_sentences,
        "chunk_size": args.chunk_size,
        "splits": args.splits,
        "sizes": {s: len(corpus[s]) for s in args.splits},
        "max_length_a": args.max_length_a,
        "max_length_b": args.max_length_b,
        "sources_sha256": digest.hexdigest(),
    }
    return json.loads(json.dumps(fingerprint))


def _short(value, width: int = 70) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= width else text[: width - 3] + "..."


def check_or_write_plan(output_dir: Path, fingerprint: dict, is_main: bool) -> None:
    """Refuse to resume a run made with other settings; write the plan on the first run.

    The error names every differing setting with its value in the folder and now (a plan from an
    older version of this script lacks settings: they show as ``null`` there).
    """
    plan = output_dir / "work" / "plan.json"
    if plan.exists():
        previous = json.loads(plan.read_text())
        if previous != fingerprint:
            changed = sorted(k for k in set(previous) | set(fingerprint) if previous.get(k) != fingerprint.get(k))
            details = "; ".join(
                f"{k}: {_short(previous.get(k))} in the folder, {_short(fingerprint.get(k))} now" for k in changed
            )
            raise ValueError(
                f"{output_dir} holds a distillation run with other settings ({', '.join(changed)} "
                f"differ: {details}); resume with the same settings, or use a new --output_dir "
                "or delete it"
            )
    elif is_main:
        plan.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(plan, fingerprint)


def read_chunk(path: Path, expected: list[int]) -> list[str] | None:
    """The hypotheses of a finished chunk, or None if it is missing or unreadable."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if data.get("indices") != expected or len(data.get("hypotheses", [])) != len(expected):
        return None
    return data["hypotheses"]


def translate_chunk(model, tokenizer, sources: list[str], args) -> list[str]:
    """Beam-search translations of ``sources`` (already length-sorted), batched under a token budget."""
    options = {"num_beams": args.num_beams, "num_return_sequences": 1, "do_sample": False}
    decoded = translate_corpus(
        model,
        tokenizer,
        sources,
        options,
        max_tokens=max(args.max_tokens // args.num_beams, 1),
        max_sentences=args.max_sentences,
        ar_length=(args.max_length_a, args.max_length_b),
    )
    return [text.strip() for text in decoded.hypotheses]


def distill_split(
    model, tokenizer, sources: list[str], chunks: list[list[int]], work: Path, accelerator: Accelerator, args
) -> int:
    """Translate this process's share of unfinished chunks; returns the sentences translated now."""
    work.mkdir(parents=True, exist_ok=True)
    done = 0
    for number, chunk in enumerate(chunks):
        if number % accelerator.num_processes != accelerator.process_index:
            continue
        path = work / f"chunk_{number:05d}.json"
        if read_chunk(path, chunk) is not None:
            continue
        started = time.perf_counter()
        hypotheses = translate_chunk(model, tokenizer, [sources[i] for i in chunk], args)
        write_json_atomic(path, {"indices": chunk, "hypotheses": hypotheses})
        done += len(chunk)
        logger.info(
            "process %d: chunk %d/%d (%d sentences) in %.1fs",
            accelerator.process_index,
            number + 1,
            len(chunks),
            len(chunk),
            time.perf_counter() - started,
        )
    return done


def assemble(corpus: datasets.DatasetDict, chunks_per_split: dict, work: Path, copy_splits: list[str]):
    """The distilled ``DatasetDict`` and per-split counts; every sentence of every split is kept.

    An empty teacher output (a degenerate beam) keeps the original target, and is counted.
    """
    features = datasets.Features({name: datasets.Value("string") for name in ("source", "target", "original_target")})
    out, stats = {}, {}
    for split, chunks in chunks_per_split.items():
        teacher = [None] * len(corpus[split])
        for number, chunk in enumerate(chunks):
            hypotheses = read_chunk(work / split / f"chunk_{number:05d}.json", chunk)
            if hypotheses is None:
                raise RuntimeError(f"chunk {number} of split {split!r} is missing; run the same command again")
            for i, text in zip(chunk, hypotheses):
                teacher[i] = text
        original = list(corpus[split]["target"])
        empty = sum(1 for t in teacher if not t)
        targets = [t if t else o for t, o in zip(teacher, original)]
        out[split] = datasets.Dataset.from_dict(
            {"source": list(corpus[split]["source"]), "target": targets, "original_target": original}, features=features
        )
        changed = sum(t != o for t, o in zip(targets, original))
        stats[split] = {
            "sentences": len(targets),
            "empty_teacher_outputs_kept_original": empty,
            "targets_changed": changed,
        }
    for split in copy_splits:
        original = list(corpus[split]["target"])
        out[split] = datasets.Dataset.from_dict(
            {"source": list(corpus[split]["source"]), "target": original, "original_target": original},
            features=features,
        )
        stats[split] = {"sentences": len(original), "copied": True}
    return datasets.DatasetDict(out), stats


def distill(args, command: str) -> dict:
    """Distill the corpus (``args``: the options of ``hf-nat distill``); returns the summary written
    to ``OUTPUT_DIR/distill_summary.json``."""
    if args.threads:
        torch.set_num_threads(args.threads)
    accelerator = Accelerator()
    output_dir = Path(args.output_dir)
    corpus = load_parallel_corpus(args.data, args.src, args.tgt, splits=list(args.splits) + list(args.copy_splits))
    if args.limit:
        corpus = datasets.DatasetDict({s: d.select(range(min(args.limit, len(d)))) for s, d in corpus.items()})

    tokenizer = AutoTokenizer.from_pretrained(args.teacher)
    if args.student_tokenizer:
        check_same_tokenizer(tokenizer, AutoTokenizer.from_pretrained(args.student_tokenizer))
    model = AutoModelForSeq2SeqLM.from_pretrained(args.teacher)
    teacher = teacher_fingerprint(model, tokenizer)
    check_or_write_plan(output_dir, run_fingerprint(args, corpus, teacher), accelerator.is_main_process)
    accelerator.wait_for_everyone()
    model = model.to(device=accelerator.device, dtype=torch_dtype(args.dtype))
    model.eval()

    started = time.perf_counter()
    chunks_per_split, translated = {}, 0
    for split in args.splits:
        sources = list(corpus[split]["source"])
        chunks_per_split[split] = make_chunks(sources, tokenizer, args.chunk_size)
        translated += distill_split(
            model, tokenizer, sources, chunks_per_split[split], output_dir / "work" / split, accelerator, args
        )
    seconds = time.perf_counter() - started
    translated = int(accelerator.reduce(torch.tensor(translated, device=accelerator.device), "sum"))
    accelerator.wait_for_everyone()
    summary = {}
    if accelerator.is_main_process:
        dataset, stats = assemble(corpus, chunks_per_split, output_dir / "work", list(args.copy_splits))
        dataset.save_to_disk(str(output_dir))
        summary = {
            "teacher": args.teacher,
            "num_beams": args.num_beams,
            "splits": stats,
            "processes": accelerator.num_processes,
            "threads": torch.get_num_threads(),
            "device": str(accelerator.device),
            "dtype": args.dtype,
            "sentences_translated_this_run": translated,
            "seconds_this_run": round(seconds, 1),
            "sentences_per_second": round(translated / seconds, 2) if translated and seconds else None,
            "command": command,
        }
        write_json_atomic(output_dir / "distill_summary.json", summary)
        logger.info("distilled corpus saved to %s: %s", output_dir, stats)
    accelerator.wait_for_everyone()
    return summary
