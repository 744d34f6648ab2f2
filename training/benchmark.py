"""Quality/speed benchmark of translation models (AR baseline vs NAT models).

Every model folder is decoded under a list of decoding settings on one test
split; an autoregressive baseline is decoded in the same run, so latency and
throughput are reported as ratios against AR greedy decoding measured on the
same machine, threads and dtype.

A NAT setting may hold ``"rescore": true``: its candidates (length beam, samples) are then ranked
by the baseline's teacher-forced log-likelihood (``generate(..., rescorer=baseline)``), and the
rescoring cost is part of the measured time.

Every row records the folder it measured and that folder's content fingerprint
(``hf_nat.provenance.model_fingerprint``), so the numbers can be traced to the exact weights;
``training/export.py`` refuses to put them on the card of any other model.

Example::

    python training/benchmark.py --models runs/cmlm --baseline runs/marian \\
        --data_dir ../shared/data/multi30k --src en --tgt de \\
        --split test_2016_flickr --output_dir results/cmlm_cpu --device cpu
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import gzip
import json
import os
import platform
import re
import shlex
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import torch

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _REPO_ROOT not in sys.path:
    # `python training/benchmark.py` puts training/ (not the repo) on sys.path.
    sys.path.insert(0, _REPO_ROOT)

import hf_nat  # noqa: E402,F401  (registers the NAT families with the Auto classes)
from hf_nat.data import source_token_limit  # noqa: E402
from hf_nat.metrics import corpus_scores  # noqa: E402
from hf_nat.provenance import load_fingerprinted  # noqa: E402

DEFAULT_NAT_SETTINGS: list[dict[str, Any]] = [
    {"max_iterations": t, "length_beam": lb} for t in (1, 4, 10) for lb in (1, 5)
]
DEFAULT_AR_SETTINGS: list[dict[str, Any]] = [{"num_beams": 1}, {"num_beams": 5}]
AR_GREEDY: dict[str, Any] = {"num_beams": 1}
_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass
class LoadedModel:
    """A model ready to decode, with its tokenizer, kind and the fingerprint of the folder it came from.

    ``fingerprint`` is None for a model that was not loaded from a saved folder.
    """

    name: str
    path: str
    model: Any
    tokenizer: Any
    is_nat: bool
    fingerprint: str | None = None


@dataclass
class DecodeResult:
    """Output of decoding a corpus, in the original sentence order."""

    hypotheses: list[str]
    token_ids: list[list[int]]
    iterations: list[int]
    seconds: float

    @property
    def sentences_per_second(self) -> float:
        """Sentences decoded per second of generation time."""
        return len(self.hypotheses) / self.seconds if self.seconds > 0 else float("inf")


@dataclass
class Row:
    """One (model, decoding setting) result line."""

    model: str
    model_path: str
    model_fingerprint: str | None
    kind: str
    setting: dict[str, Any]
    label: str
    n_sentences: int
    bleu: float
    chrf: float
    latency_ms_median: float
    latency_ms_p90: float
    latency_sentences: int
    sents_per_s: float
    decode_seconds: float
    mean_iterations: float
    iterations_unit: str
    repetition_rate: float
    leftover_special_tokens: int = 0
    speedup: float = float("nan")
    throughput_ratio: float = float("nan")
    hyps_file: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------- data


def read_test_pairs(
    data_dir: str, split: str, src: str, tgt: str, max_sentences: int | None = None
) -> tuple[list[str], list[str]]:
    """Read ``{data_dir}/{split}.{lang}.gz`` (one sentence per line) for both sides."""

    def read(lang: str) -> list[str]:
        with gzip.open(os.path.join(data_dir, f"{split}.{lang}.gz"), "rt", encoding="utf-8") as f:
            return [line.rstrip("\n") for line in f]

    sources, targets = read(src), read(tgt)
    if len(sources) != len(targets):
        raise ValueError(f"{split}: {len(sources)} {src} lines but {len(targets)} {tgt} lines")
    if max_sentences is not None:
        sources, targets = sources[:max_sentences], targets[:max_sentences]
    return sources, targets


# ------------------------------------------------------------------------- models


def load_model(path: str, device: str, dtype: str = "float32") -> LoadedModel:
    """Load a seq2seq model folder (AR or NAT) and its tokenizer for inference, with its fingerprint."""
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    def load(folder: str) -> tuple[Any, Any]:
        return AutoTokenizer.from_pretrained(folder), AutoModelForSeq2SeqLM.from_pretrained(folder)

    (tokenizer, model), fingerprint = load_fingerprinted(path, load)
    model.to(device=device, dtype=_DTYPES[dtype]).eval()
    return LoadedModel(
        name=os.path.basename(os.path.normpath(path)),
        path=path,
        model=model,
        tokenizer=tokenizer,
        is_nat=bool(getattr(model, "is_nat", False)),
        fingerprint=fingerprint,
    )


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


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")


def _special_ids(tokenizer: Any) -> set[int]:
    return {int(i) for i in tokenizer.all_special_ids}


def _leftover_ids(tokenizer: Any) -> set[int]:
    """Special ids that must never reach an output (mask, placeholder, blank, ...)."""
    allowed = {tokenizer.pad_token_id, tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.unk_token_id}
    return _special_ids(tokenizer) - {int(i) for i in allowed if i is not None}


def count_tokens(token_ids: Iterable[Sequence[int]], ids: set[int]) -> int:
    """How many tokens of ``token_ids`` are in ``ids`` (a decoded set's leftover mask/placeholder count)."""
    return sum(1 for seq in token_ids for t in seq if int(t) in ids)


def _pad_id(lm: LoadedModel) -> int:
    pad = lm.tokenizer.pad_token_id
    if pad is None:
        pad = getattr(lm.model.config, "pad_token_id", None)
    return int(pad) if pad is not None else 0


def _max_new_tokens(src_len: int, fixed: int | None) -> int:
    # Generous bound for AR decoding; NAT models predict their own length.
    return fixed if fixed is not None else 2 * src_len + 10


def _ar_steps(seqs: torch.Tensor, eos_id: int | None, pad_id: int) -> torch.Tensor:
    """Decoder steps per sentence: up to and including the first eos."""
    not_pad = (seqs != pad_id).sum(dim=1)
    if eos_id is None:
        return not_pad
    is_eos = seqs == eos_id
    first_eos = is_eos.int().argmax(dim=1) + 1
    return torch.where(is_eos.any(dim=1), first_eos, not_pad)


def generate_batch(
    lm: LoadedModel,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    setting: dict[str, Any],
    max_new_tokens: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Decode one batch; return (output token ids, iterations or AR steps per sentence).

    AR outputs lose their decoder start token so both kinds look alike:
    tokens, then eos, then padding.
    """
    if lm.is_nat:
        out = lm.model.generate(
            input_ids=input_ids,
            attention_mask=attention_mask,
            return_dict_in_generate=True,
            **setting,
        )
        return out.sequences, out.iterations
    kwargs = {"max_new_tokens": _max_new_tokens(input_ids.shape[1], max_new_tokens), "use_cache": True}
    kwargs.update(setting)
    out = lm.model.generate(input_ids=input_ids, attention_mask=attention_mask, **kwargs)
    seqs = out if isinstance(out, torch.Tensor) else out.sequences
    seqs = seqs[:, 1:]
    eos = lm.tokenizer.eos_token_id
    if eos is None:
        eos = getattr(lm.model.generation_config, "eos_token_id", None)
        eos = eos[0] if isinstance(eos, list) else eos
    return seqs, _ar_steps(seqs, eos, _pad_id(lm))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _model_device(lm: LoadedModel) -> torch.device:
    try:
        return next(lm.model.parameters()).device
    except (StopIteration, AttributeError, TypeError):
        return torch.device("cpu")


def _tokenize(lm: LoadedModel, sources: Sequence[str]) -> list[list[int]]:
    limit = source_token_limit(lm.model, default=getattr(lm.tokenizer, "model_max_length", None))
    truncate = limit is not None and limit < 1_000_000
    enc = lm.tokenizer(list(sources), truncation=truncate, max_length=limit if truncate else None)
    return [list(ids) for ids in enc["input_ids"]]


def _pad_batch(
    ids: Sequence[Sequence[int]], pad_id: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(x) for x in ids)
    input_ids = torch.full((len(ids), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(ids), width), dtype=torch.long)
    for i, x in enumerate(ids):
        input_ids[i, : len(x)] = torch.tensor(x, dtype=torch.long)
        mask[i, : len(x)] = 1
    return input_ids.to(device), mask.to(device)


# ------------------------------------------------------------------------ measure


def decode_corpus(
    lm: LoadedModel,
    sources: Sequence[str],
    setting: dict[str, Any],
    batch_size: int = 64,
    max_new_tokens: int | None = None,
) -> DecodeResult:
    """Decode all ``sources`` in length-sorted batches; outputs keep the input order.

    Only generation (and the copy of its output to the host) is timed;
    tokenization, padding and detokenization are not.
    """
    device = _model_device(lm)
    token_ids = _tokenize(lm, sources)
    # Longest first: similar lengths share a batch and memory errors show up at once.
    order = sorted(range(len(sources)), key=lambda i: -len(token_ids[i]))
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    tensors = [_pad_batch([token_ids[i] for i in b], _pad_id(lm), device) for b in batches]

    outputs: list[list[int] | None] = [None] * len(sources)
    iterations: list[int] = [0] * len(sources)
    seconds = 0.0
    with torch.inference_mode():
        for idx, (input_ids, mask) in zip(batches, tensors):
            _sync(device)
            start = time.perf_counter()
            seqs, iters = generate_batch(lm, input_ids, mask, setting, max_new_tokens)
            seqs, iters = seqs.cpu(), iters.cpu()
            seconds += time.perf_counter() - start
            for row, i in enumerate(idx):
                outputs[i] = seqs[row].tolist()
                iterations[i] = int(iters[row])

    assert all(o is not None for o in outputs)
    hyps = lm.tokenizer.batch_decode(outputs, skip_special_tokens=True)
    assert len(hyps) == len(sources), "a sentence was dropped while decoding"
    return DecodeResult(hypotheses=hyps, token_ids=outputs, iterations=iterations, seconds=seconds)


def measure_latency(
    lm: LoadedModel,
    sources: Sequence[str],
    setting: dict[str, Any],
    warmup: int = 5,
    max_new_tokens: int | None = None,
) -> dict[str, float]:
    """Batch-1 latency over ``sources`` after ``warmup`` untimed sentences.

    Returns ``{"median_ms", "p90_ms", "n"}``.
    """
    device = _model_device(lm)
    inputs = [_pad_batch([ids], _pad_id(lm), device) for ids in _tokenize(lm, sources)]
    times: list[float] = []
    with torch.inference_mode():
        for input_ids, mask in inputs[:warmup]:
            generate_batch(lm, input_ids, mask, setting, max_new_tokens)
        for input_ids, mask in inputs:
            _sync(device)
            start = time.perf_counter()
            seqs, _ = generate_batch(lm, input_ids, mask, setting, max_new_tokens)
            seqs.cpu()
            times.append(time.perf_counter() - start)
    ms = np.asarray(times) * 1000.0
    return {"median_ms": float(np.median(ms)), "p90_ms": float(np.percentile(ms, 90)), "n": len(times)}


def repetition_rate(token_ids: Iterable[Sequence[int]], special_ids: Iterable[int] = ()) -> float:
    """Share of adjacent token pairs that are identical, pooled over a corpus.

    Special tokens (eos, pad, mask, ...) are removed before pairing.
    Returns 0.0 when there is no pair at all.
    """
    special = set(special_ids)
    repeats = pairs = 0
    for seq in token_ids:
        toks = [int(t) for t in seq if int(t) not in special]
        pairs += max(len(toks) - 1, 0)
        repeats += sum(1 for a, b in zip(toks, toks[1:]) if a == b)
    return repeats / pairs if pairs else 0.0


# -------------------------------------------------------------------------- run


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=_REPO_ROOT, capture_output=True, text=True, timeout=10
        )
        return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def collect_metadata(device: str, dtype: str, threads: int, command: str | None) -> dict[str, Any]:
    """Environment facts needed to reproduce or compare a benchmark run."""
    import transformers

    meta = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": command if command is not None else shlex.join([sys.executable] + sys.argv),
        "hostname": socket.gethostname(),
        "cpu": _cpu_model(),
        "device": device,
        "dtype": dtype,
        "threads": threads,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
        "git_commit": _git_commit(),
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        meta["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return meta


def _unique_names(paths: Sequence[str]) -> list[str]:
    names = [os.path.basename(os.path.normpath(p)) for p in paths]
    return [
        n if names.count(n) == 1 else "/".join(os.path.normpath(p).split(os.sep)[-2:])
        for n, p in zip(names, paths)
    ]


def _free(lm: LoadedModel) -> None:
    lm.model = None
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def run_benchmark(
    models: Sequence[str],
    baseline: str,
    data_dir: str,
    src: str,
    tgt: str,
    split: str,
    output_dir: str,
    settings: Sequence[dict[str, Any]] | dict[str, Sequence[dict[str, Any]]] | None = None,
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
) -> dict[str, Any]:
    """Benchmark ``baseline`` (AR) and ``models`` on one split; write and return results.

    NAT models run every dict of ``settings`` (or, when ``settings`` maps
    model names or family names (``config.model_type``) to lists, the list of
    their name, else of their family);
    AR models (the baseline included) every dict of ``ar_settings``, and the
    baseline always runs greedy, the reference of every speed ratio. Each row
    records the model's folder and the fingerprint ``loader`` gave it.
    """
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    by_family = dict(settings) if isinstance(settings, dict) else None
    nat_settings = [] if by_family is not None else (list(settings) if settings else DEFAULT_NAT_SETTINGS)
    ar_list = list(ar_settings) if ar_settings else DEFAULT_AR_SETTINGS
    baseline_ar = ar_list if AR_GREEDY in ar_list else [AR_GREEDY] + ar_list
    sources, refs = read_test_pairs(data_dir, split, src, tgt, max_sentences)
    latency_src = sources[:latency_sentences]
    os.makedirs(output_dir, exist_ok=True)

    # The baseline goes first; listing it again in `models` adds no rows.
    base_real = os.path.realpath(baseline)
    paths = [baseline] + [m for m in models if os.path.realpath(m) != base_real]
    names = _unique_names(paths)

    every_nat_setting = nat_settings + [s for family in (by_family or {}).values() for s in family]
    needs_rescorer = any(s.get("rescore") for s in every_nat_setting)
    rescorer = None
    rows: list[Row] = []
    for i, (path, name) in enumerate(zip(paths, names)):
        lm = loader(path, device, dtype)
        lm.name = name
        if i == 0 and lm.is_nat:
            raise ValueError(f"baseline {path} is a NAT model; it must be autoregressive")
        if i == 0 and needs_rescorer:
            rescorer = lm.model
        kind = "nat" if lm.is_nat else "ar"
        if lm.is_nat and by_family is not None:
            family = lm.model.config.model_type
            key = name if name in by_family else family
            if key not in by_family:
                raise ValueError(f"--settings has no list for {name} or its family {family!r}; "
                                 f"it has {sorted(by_family)}")
            model_settings = list(by_family[key])
        else:
            model_settings = nat_settings if lm.is_nat else (baseline_ar if i == 0 else ar_list)
        special = _special_ids(lm.tokenizer)
        for setting in model_settings:
            label = setting_label(setting, lm.is_nat)
            print(f"[benchmark] {name} | {label}", file=sys.stderr, flush=True)
            options = resolve_setting(setting, rescorer) if lm.is_nat else setting
            # Latency first: its warm-up also warms the batched run.
            lat = measure_latency(lm, latency_src, options, warmup, max_new_tokens)
            dec = decode_corpus(lm, sources, options, batch_size, max_new_tokens)
            assert len(dec.hypotheses) == len(refs)
            scores = corpus_scores(dec.hypotheses, refs)
            hyps_file = f"hyps_{_slug(name + '_' + label)}.txt"
            with open(os.path.join(output_dir, hyps_file), "w", encoding="utf-8") as f:
                f.writelines(h.replace("\n", " ") + "\n" for h in dec.hypotheses)
            rows.append(
                Row(
                    model=name,
                    model_path=path,
                    model_fingerprint=lm.fingerprint,
                    kind=kind,
                    setting=dict(setting),
                    label=label,
                    n_sentences=len(refs),
                    bleu=scores["bleu"],
                    chrf=scores["chrf"],
                    latency_ms_median=lat["median_ms"],
                    latency_ms_p90=lat["p90_ms"],
                    latency_sentences=int(lat["n"]),
                    sents_per_s=dec.sentences_per_second,
                    decode_seconds=dec.seconds,
                    mean_iterations=float(np.mean(dec.iterations)) if dec.iterations else 0.0,
                    iterations_unit="refinement iterations" if lm.is_nat else "decoder steps",
                    repetition_rate=repetition_rate(dec.token_ids, special),
                    leftover_special_tokens=count_tokens(dec.token_ids, _leftover_ids(lm.tokenizer)),
                    hyps_file=hyps_file,
                )
            )
        if lm.model is not rescorer:
            _free(lm)

    ref_row = next(r for r in rows if r.model_path == baseline and r.setting == AR_GREEDY)
    for r in rows:
        r.speedup = ref_row.latency_ms_median / r.latency_ms_median
        r.throughput_ratio = r.sents_per_s / ref_row.sents_per_s

    results = {
        "metadata": {
            **collect_metadata(device, dtype, threads, command),
            "data_dir": data_dir,
            "split": split,
            "src": src,
            "tgt": tgt,
            "n_sentences": len(refs),
            "batch_size": batch_size,
            "latency_sentences": len(latency_src),
            "warmup": warmup,
            "max_new_tokens": max_new_tokens if max_new_tokens is not None else "2*src_len+10",
            "baseline": baseline,
            "baseline_setting": ref_row.label,
        },
        "rows": [asdict(r) for r in rows],
    }
    write_results(results, output_dir)
    return results


# ------------------------------------------------------------------------ output


def measured_models_lines(rows: Sequence[dict[str, Any]]) -> list[str]:
    """One markdown list item per model of ``rows``: its name, folder and fingerprint."""
    models = dict.fromkeys((r["model"], r["model_path"], r.get("model_fingerprint")) for r in rows)
    return [f"- model {name}: `{path}`, fingerprint `{fingerprint or 'not recorded'}`"
            for name, path, fingerprint in models]


def format_markdown(results: dict[str, Any]) -> str:
    """Markdown report: a few metadata lines and one table row per (model, setting)."""
    m = results["metadata"]
    lines = [
        f"# Benchmark: {m['src']}→{m['tgt']} {m['split']} ({m['n_sentences']} sentences)",
        "",
        f"- baseline: `{m['baseline']}` ({m['baseline_setting']}); speed ratios are against it",
        f"- device: {m['device']} ({m.get('gpu', m['cpu'])}), dtype {m['dtype']}, "
        f"threads {m['threads']}, torch {m['torch']}",
        f"- host {m['hostname']}, commit `{m['git_commit']}`, {m['date']}",
        f"- latency: batch 1, first {m['latency_sentences']} sentences; "
        f"throughput: batch {m['batch_size']}, whole split",
        f"- command: `{m['command']}`",
        *measured_models_lines(results["rows"]),
        "",
        f"| model | setting | BLEU | chrF | latency ms (median / p90) | speedup × "
        f"| sents/s (b{m['batch_size']}) | throughput × | mean iterations | repetition % | leftover specials |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results["rows"]:
        unit = "" if r["kind"] == "nat" else " steps"
        lines.append(
            f"| {r['model']} | {r['label']} | {r['bleu']:.2f} | {r['chrf']:.2f} "
            f"| {r['latency_ms_median']:.1f} / {r['latency_ms_p90']:.1f} | {r['speedup']:.2f} "
            f"| {r['sents_per_s']:.1f} | {r['throughput_ratio']:.2f} "
            f"| {r['mean_iterations']:.2f}{unit} | {100 * r['repetition_rate']:.2f} "
            f"| {r.get('leftover_special_tokens', 0)} |"
        )
    return "\n".join(lines) + "\n"


def plot_bleu_vs_speedup(results: dict[str, Any], path: str) -> None:
    """Scatter of BLEU against batch-1 speedup over AR greedy, one labeled marker per row."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 5))
    markers = "osD^v<>ph*"
    for k, model in enumerate(dict.fromkeys(r["model"] for r in results["rows"])):
        rows = [r for r in results["rows"] if r["model"] == model]
        ax.scatter(
            [r["speedup"] for r in rows], [r["bleu"] for r in rows],
            marker=markers[k % len(markers)], label=model,
        )
        for r in rows:
            ax.annotate(r["label"], (r["speedup"], r["bleu"]), fontsize=7,
                        xytext=(3, 3), textcoords="offset points")
    ax.axvline(1.0, color="grey", lw=0.8, ls="--")
    speedups = [r["speedup"] for r in results["rows"] if r["speedup"] > 0]
    if speedups and max(speedups) / min(speedups) > 50:
        ax.set_xscale("log")
    m = results["metadata"]
    ax.set_xlabel("batch-1 speedup vs AR greedy (×)")
    ax.set_ylabel("sacreBLEU")
    ax.set_title(f"{m['src']}→{m['tgt']} {m['split']} ({m['device']}, {m['threads']} threads)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_results(results: dict[str, Any], output_dir: str) -> None:
    """Write ``results.json``, ``results.md`` and ``bleu_vs_speedup.png`` to ``output_dir``."""
    os.makedirs(output_dir, exist_ok=True)
    with open(os.path.join(output_dir, "results.json"), "w", encoding="utf-8") as f:
        json.dump(results, f, indent=2, ensure_ascii=False)
    with open(os.path.join(output_dir, "results.md"), "w", encoding="utf-8") as f:
        f.write(format_markdown(results))
    plot_bleu_vs_speedup(results, os.path.join(output_dir, "bleu_vs_speedup.png"))


# --------------------------------------------------------------------------- CLI


def _settings_arg(text: str) -> list[dict[str, Any]] | dict[str, list[dict[str, Any]]]:
    value = json.loads(text)

    def is_list_of_objects(v) -> bool:
        return isinstance(v, list) and all(isinstance(s, dict) for s in v)

    if is_list_of_objects(value):
        return value
    if isinstance(value, dict) and all(is_list_of_objects(v) for v in value.values()):
        return value
    raise argparse.ArgumentTypeError("settings must be a JSON list of objects, or an object mapping "
                                     "family names to such lists")


def build_parser() -> argparse.ArgumentParser:
    """Command-line interface of the benchmark."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="*", default=[], help="model folders (AR or NAT)")
    p.add_argument("--baseline", required=True, help="AR model folder; speed ratios are vs its greedy decoding")
    p.add_argument("--data_dir", required=True)
    p.add_argument("--src", required=True)
    p.add_argument("--tgt", required=True)
    p.add_argument("--split", default="test_2016_flickr")
    p.add_argument("--settings", type=_settings_arg, default=None,
                   help="JSON list of generate kwargs for NAT models, or an object mapping model names "
                        "(as in the results) or family names (model_type) to such lists (default: max_iterations 1,4,10 × length_beam 1,5)")
    p.add_argument("--ar_settings", type=_settings_arg, default=None,
                   help='JSON list for AR models (default: [{"num_beams": 1}, {"num_beams": 5}])')
    p.add_argument("--output_dir", required=True)
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument("--dtype", default="float32", choices=sorted(_DTYPES))
    p.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    p.add_argument("--batch_size", type=int, default=64)
    p.add_argument("--max_sentences", type=int, default=None, help="use only the first K sentences")
    p.add_argument("--latency_sentences", type=int, default=200)
    p.add_argument("--warmup", type=int, default=5, help="untimed sentences before latency timing")
    p.add_argument("--max_new_tokens", type=int, default=None,
                   help="AR length cap (default 2 * source length + 10)")
    return p


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Parse arguments, run the benchmark and print the markdown table."""
    args = build_parser().parse_args(argv)
    command = shlex.join([os.path.basename(sys.executable), *sys.argv]) if argv is None else (
        shlex.join(["benchmark.py", *argv])
    )
    results = run_benchmark(
        models=args.models,
        baseline=args.baseline,
        data_dir=args.data_dir,
        src=args.src,
        tgt=args.tgt,
        split=args.split,
        output_dir=args.output_dir,
        settings=args.settings,
        ar_settings=args.ar_settings,
        device=args.device,
        dtype=args.dtype,
        threads=args.threads,
        batch_size=args.batch_size,
        max_sentences=args.max_sentences,
        latency_sentences=args.latency_sentences,
        warmup=args.warmup,
        max_new_tokens=args.max_new_tokens,
        command=command,
    )
    print(format_markdown(results))
    return results


if __name__ == "__main__":
    main()
