"""``hf-nat translate``: sentences from standard input or a file, translations out, like fairseq-interactive.

Lines are read in buffers, translated in length-sorted batches by the model's own ``generate()``
and written in input order, one line each (an empty line gives an empty line). The decoding
options of the model's family (``max_iterations``, ``length_beam``, ``npd_samples``, …; for an AR
model ``num_beams`` and ``max_new_tokens``) are command-line flags.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator
from typing import Any, TextIO

__all__ = ["add_decoding_options", "decoding_defaults", "translate_stream"]

_AR_OPTIONS = {"num_beams": 1, "max_new_tokens": 1, "length_penalty": 1.0}
_NAT_COMMON = {"rescore_length_penalty": 1.0}


def decoding_defaults(model_dir: str) -> dict[str, Any]:
    """The decoding options of the model saved in ``model_dir`` with their default values (which
    set each flag's type): its family's declared options, or transformers' for an AR model."""
    from transformers import AutoConfig

    import hf_nat

    try:
        config = AutoConfig.from_pretrained(model_dir)
    except (OSError, ValueError) as error:
        raise SystemExit(f"error: --model {model_dir}: {error}") from error
    if config.model_type in hf_nat.FAMILIES:
        return {**hf_nat.FAMILIES[config.model_type].head_class.nat_generation_defaults, **_NAT_COMMON}
    return dict(_AR_OPTIONS)


def _boolean(text: str) -> bool:
    if text.lower() not in ("true", "false"):
        raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")
    return text.lower() == "true"


def add_decoding_options(parser: argparse.ArgumentParser, model_dir: str) -> list[str]:
    """Add a flag per decoding option of the model in ``model_dir``; returns the option names.
    Flags left out keep the model's generation config."""
    group = parser.add_argument_group(f"decoding options of {model_dir}")
    names = []
    for name, default in decoding_defaults(model_dir).items():
        kind = _boolean if isinstance(default, bool) else type(default)
        group.add_argument(
            f"--{name}",
            type=kind,
            default=None,
            help=f"(model default: its generation config; family default {default!r})",
        )
        names.append(name)
    return names


def _buffers(lines: TextIO, size: int) -> Iterator[list[str]]:
    buffer = []
    for line in lines:
        buffer.append(line.rstrip("\n"))
        if len(buffer) >= size:
            yield buffer
            buffer = []
    if buffer:
        yield buffer


@contextlib.contextmanager
def _open(path: str, mode: str, standard: TextIO):
    if path == "-":
        yield standard
    else:
        with open(path, mode, encoding="utf-8", errors="replace" if "r" in mode else "strict") as f:
            yield f


def translate_stream(args: argparse.Namespace, decoding: dict[str, Any]) -> int:
    """Translate every line of ``args.input`` into ``args.output``; returns the number of lines."""
    import torch
    from transformers.utils import logging as transformers_logging

    from hf_nat.engines import engine_context, engines_for, load_engine
    from hf_nat.loading import load_model
    from hf_nat.translate import translate_corpus

    if args.threads:
        torch.set_num_threads(args.threads)
    transformers_logging.disable_progress_bar()  # standard error stays free for real problems
    lm = load_model(args.model, args.device, args.dtype)
    if args.engine not in engines_for(lm.is_nat, [args.engine]):
        kind = "NAT" if lm.is_nat else "AR"
        raise SystemExit(f"error: engine {args.engine} does not run {kind} models such as {args.model}")
    lm = load_engine(lm, args.engine, torch.get_num_threads(), args.device)
    if args.rescorer:
        decoding["rescorer"] = load_model(args.rescorer, args.device, args.dtype).model
    buffer_size = args.buffer_size or (1 if args.input == "-" and sys.stdin.isatty() else 1024)
    count = 0
    with _open(args.input, "r", sys.stdin) as source, _open(args.output, "w", sys.stdout) as sink:
        for lines in _buffers(source, buffer_size):
            content = [i for i, line in enumerate(lines) if line.strip()]
            with engine_context(args.engine, args.device):
                decoded = translate_corpus(
                    lm.model, lm.tokenizer, [lines[i] for i in content], decoding, batch_size=args.batch_size
                )
            out = [""] * len(lines)
            for i, text in zip(content, decoded.hypotheses):
                out[i] = text.replace("\n", " ")
            sink.write("".join(line + "\n" for line in out))
            sink.flush()
            count += len(lines)
    return count
