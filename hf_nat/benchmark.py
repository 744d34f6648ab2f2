"""Quality/speed benchmark of translation models: NAT models against an AR baseline, in one run.

Every model folder is decoded under a list of decoding settings on one test split, by each of the
requested engines (:mod:`hf_nat.engines`: PyTorch fp32 or bf16 autocast, ONNX Runtime fp32 or
int8 for NAT models, CTranslate2 fp32 or int8 for the AR baseline); the AR baseline is decoded in
the same run, so latency and throughput are reported as ratios against its greedy decoding in
transformers and, when measured, in CTranslate2 int8 (what a practitioner deploys), on the same
machine and threads. A NAT model's settings default to
what its family declares (``Family.benchmark_settings``). A NAT setting may hold
``"rescore": true``: its candidates are then ranked by the baseline's teacher-forced
log-likelihood (``generate(..., rescorer=baseline)``), and the rescoring cost is part of the time.
Every row records the folder it measured and that folder's content fingerprint
(:func:`hf_nat.provenance.model_fingerprint`), so the numbers can be traced to the exact weights.
"""

from __future__ import annotations

import gc
import os
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from typing import Any

import numpy as np
import torch

from hf_nat.data import load_parallel_corpus
from hf_nat.engines import engine_context, engines_for, load_engine
from hf_nat.loading import LoadedModel, load_model
from hf_nat.metrics import corpus_scores
from hf_nat.metrics.output_stats import count_tokens, leftover_special_ids, length_ratio, repetition_rate
from hf_nat.models.nat_registry import family_of
from hf_nat.reports import write_results
from hf_nat.results import Row
from hf_nat.run_info import environment, native_bf16
from hf_nat.translate import AR_LENGTH, measure_latency, translate_corpus

__all__ = [
    "AR_GREEDY",
    "DEFAULT_AR_SETTINGS",
    "Row",
    "read_test_pairs",
    "resolve_setting",
    "run_benchmark",
    "setting_label",
    "settings_on_the_front",
]

DEFAULT_AR_SETTINGS: list[dict[str, Any]] = [{"num_beams": 1}, {"num_beams": 5}]
AR_GREEDY: dict[str, Any] = {"num_beams": 1}


def read_test_pairs(
    data_dir: str, split: str, src: str, tgt: str, max_sentences: int | None = None
) -> tuple[list[str], list[str]]:
    """The (sources, references) of one split; an empty line is an error (a test set keeps every pair)."""
    pairs = load_parallel_corpus(data_dir, src, tgt, splits=[split], on_bad_lines="error")[split]
    sources, targets = list(pairs["source"]), list(pairs["target"])
    if max_sentences is not None:
        sources, targets = sources[:max_sentences], targets[:max_sentences]
    return sources, targets


def setting_label(setting: dict[str, Any], is_nat: bool) -> str:
    """Short human-readable name of a decoding setting, e.g. ``T=4 lb=5``."""
    rest = dict(setting)
    parts = []
    if is_nat:
        for key, short in (("max_iterations", "T"), ("length_beam", "lb")):
            if key in rest:
                parts.append(f"{short}={rest.pop(key)}")
        if rest.pop("rescore", False):
            parts.append("+AR rescoring")
    elif "num_beams" in rest:
        beams = int(rest.pop("num_beams"))
        parts.append("greedy" if beams == 1 else f"beam{beams}")
    parts += [f"{k}={v}" for k, v in sorted(rest.items())]
    return " ".join(parts) or "default"


def resolve_setting(setting: dict[str, Any], rescorer: Any) -> dict[str, Any]:
    """The ``generate()`` options of a setting: ``"rescore": true`` becomes ``rescorer=<baseline>``."""
    options = dict(setting)
    if options.pop("rescore", False):
        if rescorer is None:
            raise ValueError(f"setting {setting} asks for rescoring but no AR baseline is loaded")
        options["rescorer"] = rescorer
    return options


def settings_on_the_front(results: dict[str, Any], engine: str = "pytorch") -> dict[str, list[dict]]:
    """Each NAT model's settings that no other setting of it beats on both BLEU and batch-1 speed
    in ``results`` (a benchmark run, e.g. on the validation split) under ``engine``: what a later
    run on the test split measures (``--settings_from``), fastest first."""
    from hf_nat.reports import pareto_front

    chosen: dict[str, list[dict]] = {}
    rows = [r for r in results["rows"] if r["kind"] == "nat" and r.get("engine", "pytorch") == engine]
    for model in dict.fromkeys(r["model"] for r in rows):
        mine = [r for r in rows if r["model"] == model]
        front = pareto_front([(r["speedup"], r["bleu"]) for r in mine])
        chosen[model] = [dict(mine[i]["setting"]) for i in front]
    if not chosen:
        raise ValueError(f"the results hold no NAT rows measured with engine {engine}")
    return chosen


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")


def _unique_names(paths: Sequence[str]) -> list[str]:
    names = [os.path.basename(os.path.normpath(p)) for p in paths]
    return [
        n if names.count(n) == 1 else "/".join(os.path.normpath(p).split(os.sep)[-2:]) for n, p in zip(names, paths)
    ]


def _free(lm: LoadedModel) -> None:
    lm.model = None
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _nat_settings(lm: LoadedModel, settings: Sequence[dict] | Mapping[str, Sequence[dict]] | None) -> list[dict]:
    """The settings a NAT model runs: ``settings`` as a list, or its entry by model name or family
    name when a mapping, else its family's declared benchmark settings."""
    family = lm.model.config.model_type
    if settings is None:
        return [dict(s) for s in family_of(family).benchmark_settings]
    if not isinstance(settings, Mapping):
        return list(settings)
    key = lm.name if lm.name in settings else family
    if key not in settings:
        raise ValueError(f"--settings has no list for {lm.name} or its family {family!r}; it has {sorted(settings)}")
    return list(settings[key])


def measure_setting(
    lm: LoadedModel,
    engine: str,
    options: dict,
    setting: dict,
    sources: list[str],
    references: list[str],
    latency_sources: list[str],
    output_dir: str,
    batch_size: int,
    warmup: int,
    ar_length: tuple[float, int],
    device: str = "cpu",
) -> Row:
    """Decode the split under one setting with one engine (latency at batch 1 first: its warm-up
    also warms the batched run), score it, write its hypotheses file and return its row."""
    label = setting_label(setting, lm.is_nat)
    with engine_context(engine, device):
        latency = measure_latency(lm.model, lm.tokenizer, latency_sources, options, warmup, ar_length)
        decoded = translate_corpus(lm.model, lm.tokenizer, sources, options, batch_size=batch_size, ar_length=ar_length)
    scores = corpus_scores(decoded.hypotheses, references)
    suffix = "" if engine == "pytorch" else "_" + engine
    hyps_file = f"hyps_{_slug(lm.name + '_' + label + suffix)}.txt"
    with open(os.path.join(output_dir, hyps_file), "w", encoding="utf-8") as f:
        f.writelines(h.replace("\n", " ") + "\n" for h in decoded.hypotheses)
    special = {int(i) for i in lm.tokenizer.all_special_ids}
    return Row(
        model=lm.name,
        model_path=lm.path,
        model_fingerprint=lm.fingerprint,
        kind="nat" if lm.is_nat else "ar",
        engine=engine,
        setting=dict(setting),
        label=label,
        n_sentences=len(references),
        bleu=scores["bleu"],
        chrf=scores["chrf"],
        latency_ms_median=latency["median_ms"],
        latency_ms_p90=latency["p90_ms"],
        latency_sentences=int(latency["n"]),
        sents_per_s=decoded.sentences_per_second,
        decode_seconds=decoded.seconds,
        mean_iterations=float(np.mean(decoded.iterations)) if decoded.iterations else 0.0,
        iterations_unit="refinement iterations" if lm.is_nat else "decoder steps",
        repetition_rate=repetition_rate(decoded.token_ids, special),
        length_ratio=length_ratio(decoded.hypotheses, references),
        leftover_special_tokens=count_tokens(decoded.token_ids, leftover_special_ids(lm.tokenizer)),
        hyps_file=hyps_file,
    )


def run_benchmark(
    models: Sequence[str],
    baseline: str,
    data_dir: str,
    src: str,
    tgt: str,
    split: str,
    output_dir: str,
    settings: Sequence[dict] | Mapping[str, Sequence[dict]] | None = None,
    ar_settings: Sequence[dict[str, Any]] | None = None,
    device: str = "cpu",
    dtype: str = "float32",
    threads: int = 1,
    batch_size: int = 64,
    max_sentences: int | None = None,
    latency_sentences: int = 200,
    warmup: int = 5,
    max_new_tokens: int | None = None,
    command: str | None = None,
    loader: Callable[[str, str, str], LoadedModel] = load_model,
    engines: Sequence[str] = ("pytorch",),
) -> dict[str, Any]:
    """Benchmark ``baseline`` (AR) and ``models`` on one split; write and return the results.

    Each model runs under every engine of ``engines`` that takes its kind (see
    :func:`hf_nat.engines.engines_for`); the PyTorch engine always runs the baseline's greedy
    decoding, the reference of the ``speedup`` and ``throughput_ratio`` ratios, and the
    ``ct2_*`` ratios refer to the baseline's CTranslate2 int8 greedy decoding when measured.
    NAT models run ``settings`` (a list for all, or a mapping from model names or family names to
    lists; by default their family's benchmark settings); AR models every dict of ``ar_settings``,
    and the baseline always runs greedy, the reference of every speed ratio. ``max_new_tokens``
    caps AR outputs (default ``2 · source length + 10``).
    """
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    ar_list = list(ar_settings) if ar_settings else DEFAULT_AR_SETTINGS
    baseline_ar = ar_list if AR_GREEDY in ar_list else [AR_GREEDY] + ar_list
    ar_length = AR_LENGTH if max_new_tokens is None else (0.0, max_new_tokens)
    sources, references = read_test_pairs(data_dir, split, src, tgt, max_sentences)
    latency_sources = sources[:latency_sentences]
    os.makedirs(output_dir, exist_ok=True)

    # The baseline goes first; listing it again in `models` adds no rows.
    paths = [baseline] + [m for m in models if os.path.realpath(m) != os.path.realpath(baseline)]
    rescorer = None  # the baseline, kept loaded: any NAT setting may ask for rescoring by it
    rows: list[Row] = []
    for i, (path, name) in enumerate(zip(paths, _unique_names(paths))):
        lm = loader(path, device, dtype)
        lm.name = name
        if i == 0 and lm.is_nat:
            raise ValueError(f"baseline {path} is a NAT model; it must be autoregressive")
        if i == 0:
            rescorer = lm.model
        model_settings = _nat_settings(lm, settings) if lm.is_nat else (baseline_ar if i == 0 else ar_list)
        model_engines = engines_for(lm.is_nat, engines)
        if "pytorch" not in model_engines and i == 0:
            model_engines = ["pytorch", *model_engines]  # the reference of every ratio
        for engine in model_engines:
            run = load_engine(lm, engine, threads, device)
            for setting in model_settings:
                label = setting_label(setting, lm.is_nat)
                print(f"[benchmark] {name} | {engine} | {label}", file=sys.stderr, flush=True)
                options = resolve_setting(setting, rescorer) if lm.is_nat else setting
                rows.append(
                    measure_setting(
                        run,
                        engine,
                        options,
                        setting,
                        sources,
                        references,
                        latency_sources,
                        output_dir,
                        batch_size,
                        warmup,
                        ar_length,
                        device,
                    )
                )
            if run is not lm:
                run.model = None
        if lm.model is not rescorer:
            _free(lm)

    def baseline_row(engine: str) -> Row | None:
        return next(
            (r for r in rows if r.model_path == baseline and r.setting == AR_GREEDY and r.engine == engine), None
        )

    reference, ct2 = baseline_row("pytorch"), baseline_row("ctranslate2-int8")
    for r in rows:
        r.speedup = reference.latency_ms_median / r.latency_ms_median
        r.throughput_ratio = r.sents_per_s / reference.sents_per_s
        if ct2 is not None:
            r.ct2_speedup = ct2.latency_ms_median / r.latency_ms_median
            r.ct2_throughput_ratio = r.sents_per_s / ct2.sents_per_s
    results = {
        "metadata": {
            **environment(device, dtype, threads, command),
            "data_dir": data_dir,
            "split": split,
            "src": src,
            "tgt": tgt,
            "n_sentences": len(references),
            "batch_size": batch_size,
            "latency_sentences": len(latency_sources),
            "warmup": warmup,
            "max_new_tokens": max_new_tokens if max_new_tokens is not None else "2*src_len+10",
            "baseline": baseline,
            "baseline_setting": reference.label,
            "engines": list(engines),
            "ct2_reference": None if ct2 is None else f"{ct2.model} ctranslate2-int8 {ct2.label}",
            "cpu_native_bf16": native_bf16(),
        },
        "rows": [asdict(r) for r in rows],
    }
    write_results(results, output_dir)
    return results
