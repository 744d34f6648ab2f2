"""The ``hf-nat`` command line: ``hf-nat train | distill | align | benchmark | sweep | export | finetune |
translate | demo``. The scripts under ``training/`` call :func:`main` with their command's name.

Each command parses its options here and calls the library; a command whose optional dependencies
are missing says which extra of the package installs them (``pip install "hf_nat[train]"``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from hf_nat.engines import ENGINES
from hf_nat.optional import require
from hf_nat.run_info import command_line

__all__ = ["build_parser", "console", "main"]

# What each command imports beyond the core (torch, transformers, tokenizers, safetensors).
_NEEDS = {
    "train": ("accelerate", "datasets", "evaluate", "sacrebleu", "tqdm"),
    "distill": ("accelerate", "datasets"),
    "align": ("datasets", "eflomal"),
    "benchmark": ("datasets", "evaluate", "sacrebleu", "matplotlib"),
    "sweep": ("datasets", "evaluate", "sacrebleu"),
    "export": ("jinja2",),
    "finetune": ("accelerate", "datasets", "evaluate", "sacrebleu"),
    "demo": ("accelerate", "datasets", "evaluate", "sacrebleu", "tqdm", "eflomal"),
    "translate": (),
    "export-onnx": ("onnx", "onnxruntime"),
}


def _json_object(text: str) -> dict:
    value = json.loads(text)
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r}")
    return value


def _settings(text: str) -> list[dict[str, Any]] | dict[str, list[dict[str, Any]]]:
    value = json.loads(text)

    def is_list_of_objects(v) -> bool:
        return isinstance(v, list) and all(isinstance(s, dict) for s in v)

    if is_list_of_objects(value) or (isinstance(value, dict) and all(map(is_list_of_objects, value.values()))):
        return value
    raise argparse.ArgumentTypeError(
        "settings must be a JSON list of objects, or an object mapping model or family names to such lists"
    )


def _boolean(text: str) -> bool:
    lowered = text.lower()
    if lowered not in ("true", "false"):
        raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")
    return lowered == "true"


# --- the commands' options ------------------------------------------------------------------
def _train_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model_type",
        default="cmlm",
        help="an hf_nat family (e.g. cmlm) or an AR baseline: 'marian' (text), 'speech2text' (--task speech) "
        "or 'vision_encoder_decoder' (--task captioning)",
    )
    p.add_argument(
        "--task",
        default="translation",
        choices=["translation", "speech", "captioning"],
        help="translation: a parallel corpus (--src/--tgt); speech: audio with transcripts (--audio_column ...); "
        "captioning: images with one or more captions each (--image_column, --caption_columns)",
    )
    p.add_argument("--data", default="../shared/data/multi30k", help="local corpus directory or Hub dataset id")
    p.add_argument("--audio_column", default="audio", help="--task speech: the Hub dataset's audio column")
    p.add_argument("--text_column", default="transcription", help="--task speech: the transcript column")
    p.add_argument("--num_mel_bins", type=int, default=80, help="--task speech: log-mel bins of the features")
    p.add_argument(
        "--subsampling_conv_layers",
        type=int,
        default=2,
        help="--task speech: stride-2 convolutions before the encoder, the same for NAT and speech2text "
        "(2: a state per 40 ms, 3: per 80 ms)",
    )
    p.add_argument("--image_column", default="image", help="--task captioning: the image column")
    p.add_argument(
        "--caption_columns",
        nargs="+",
        default=["captions"],
        help="--task captioning: caption columns (each a caption or a list of them); an image's references are all",
    )
    p.add_argument("--image_size", type=int, default=64, help="--task captioning: side of the resized square image")
    p.add_argument("--patch_size", type=int, default=8, help="--task captioning: side of a ViT patch")
    p.add_argument(
        "--vision_encoder",
        default=None,
        help="--task captioning: a pretrained vision model (folder or Hub id, safetensors) as the encoder, "
        "with its image processor, instead of a fresh ViT of the model's size",
    )
    p.add_argument("--src", default="en")
    p.add_argument("--tgt", default="de")
    p.add_argument("--train_split", default="train")
    p.add_argument("--valid_split", default="val")
    p.add_argument("--output_dir", required=True)
    p.add_argument("--tokenizer", default=None, help="tokenizer folder; trained on the training corpus if absent")
    p.add_argument("--vocab_size", type=int, default=8000)
    p.add_argument("--d_model", type=int, default=256)
    p.add_argument("--layers", type=int, default=3, help="encoder and decoder layers each")
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--ffn_dim", type=int, default=1024)
    p.add_argument("--dropout", type=float, default=0.1)
    p.add_argument("--max_length", type=int, default=128, help="longest source/target kept for training (tokens)")
    p.add_argument("--max_positions", type=int, default=256)
    p.add_argument(
        "--config_overrides",
        type=_json_object,
        default={},
        help='JSON of family config fields, e.g. {"upsample_ratio": 3, "glancing": true} for ctc_nat',
    )
    p.add_argument(
        "--max_tokens",
        type=int,
        default=4096,
        help="padded tokens per batch and process (--task speech: padded feature frames; "
        "--task captioning: encoder states, patches per image)",
    )
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--warmup", type=int, default=1000)
    p.add_argument("--weight_decay", type=float, default=0.01)
    p.add_argument("--label_smoothing", type=float, default=0.1)
    p.add_argument("--clip_norm", type=float, default=1.0)
    p.add_argument("--max_updates", type=int, default=100000)
    p.add_argument("--max_minutes", type=float, default=None, help="stop after this much training wall time")
    p.add_argument(
        "--max_minutes_this_run",
        type=float,
        default=None,
        help="stop this invocation (with a checkpoint) after N minutes; resume later with --resume",
    )
    p.add_argument(
        "--mixed_precision",
        default="no",
        choices=["no", "bf16", "fp16"],
        help="autocast precision, accelerate's spelling (the weights stay float32)",
    )
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--threads", type=int, default=None, help="torch threads per process")
    p.add_argument("--save_every", type=int, default=500, help="updates between resumable checkpoints")
    p.add_argument("--keep_checkpoints", type=int, default=2)
    p.add_argument("--eval_every", type=int, default=1000, help="updates between validation runs (BLEU, or WER)")
    p.add_argument("--eval_sentences", type=int, default=None, help="validate on the first N sentences")
    p.add_argument("--eval_batch_size", type=int, default=64)
    p.add_argument(
        "--eval_generate_kwargs",
        type=_json_object,
        default={},
        help='JSON options for generate() during validation, e.g. {"max_iterations": 4}',
    )
    p.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in output_dir")
    p.add_argument(
        "--fertility",
        default=None,
        help="fertility labels from `hf-nat align` (fertility_nat with decoder_input='fertility')",
    )
    p.add_argument(
        "--init_from",
        default=None,
        help="start from the weights of a saved model folder (same shapes; e.g. an Imputer from a CTC model)",
    )
    p.add_argument(
        "--hint_teacher",
        default=None,
        help="AR seq2seq model folder (same tokenizer) whose hints train the student "
        "(config hint_hidden_weight / hint_alignment_weight > 0)",
    )
    p.add_argument(
        "--ctc_weight",
        type=float,
        default=0.0,
        help="speech2text only: weight in (0, 1) of a CTC loss on the encoder during training "
        "(joint CTC-attention); its head is not saved, decoding stays attention alone",
    )
    p.add_argument("--log_every", type=int, default=50)
    p.add_argument("--no_progress", action="store_true")


def _distill_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--teacher", required=True, help="seq2seq model folder or Hub id")
    p.add_argument("--data", required=True, help="corpus directory, saved DatasetDict or Hub dataset id")
    p.add_argument("--src", required=True)
    p.add_argument("--tgt", required=True)
    p.add_argument("--splits", nargs="+", default=["train"], help="splits whose targets the teacher replaces")
    p.add_argument("--copy_splits", nargs="*", default=["val"], help="splits stored with their references")
    p.add_argument("--output_dir", required=True)
    p.add_argument("--student_tokenizer", default=None, help="tokenizer folder the teacher must share")
    p.add_argument("--num_beams", type=int, default=5)
    p.add_argument("--max_tokens", type=int, default=2048, help="padded source tokens per batch (times beams)")
    p.add_argument("--max_sentences", type=int, default=128)
    p.add_argument("--max_length_a", type=float, default=1.5, help="max new tokens = a * source length + b")
    p.add_argument("--max_length_b", type=int, default=10)
    p.add_argument("--chunk_size", type=int, default=1024, help="sentences per resumable unit of work")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    p.add_argument("--threads", type=int, default=None, help="torch threads per process")
    p.add_argument("--limit", type=int, default=None, help="distill only the first N sentences of each split")


def _align_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, help="corpus folder (text files or save_to_disk) or Hub id")
    p.add_argument("--src", default="en")
    p.add_argument("--tgt", default="de")
    p.add_argument("--splits", nargs="+", default=["train"])
    p.add_argument("--tokenizer", required=True, help="the tokenizer the model trains with")
    p.add_argument("--output", required=True)


def _benchmark_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--models", nargs="*", default=[], help="model folders (AR or NAT)")
    p.add_argument("--baseline", required=True, help="AR model folder; speed ratios are vs its greedy decoding")
    p.add_argument("--data_dir", required=True)
    p.add_argument("--src", required=True)
    p.add_argument("--tgt", required=True)
    p.add_argument("--split", default="test_2016_flickr")
    p.add_argument(
        "--settings",
        type=_settings,
        default=None,
        help="JSON list of generate kwargs for NAT models, or an object mapping model names (as in the "
        "results) or family names (model_type) to such lists (default: each family's declared "
        "benchmark settings)",
    )
    p.add_argument(
        "--settings_from",
        default=None,
        help="results.json of an earlier benchmark (e.g. --split val): each NAT model runs the settings on its "
        "BLEU-vs-latency Pareto front there (models are matched by name)",
    )
    p.add_argument(
        "--ar_settings",
        type=_settings,
        default=None,
        help='JSON list for AR models (default: [{"num_beams": 1}, {"num_beams": 5}])',
    )
    p.add_argument("--output_dir", required=True)
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    p.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    p.add_argument("--batch_size", type=int, default=64)
    p.add_argument("--max_sentences", type=int, default=None, help="use only the first K sentences")
    p.add_argument("--latency_sentences", type=int, default=200)
    p.add_argument("--warmup", type=int, default=5, help="untimed sentences before latency timing")
    p.add_argument("--max_new_tokens", type=int, default=None, help="AR length cap (default 2 * source length + 10)")
    p.add_argument(
        "--engines",
        nargs="+",
        choices=sorted(ENGINES),
        default=["pytorch", "ctranslate2", "ctranslate2-int8"],
        help="engines each model runs under, where they apply: pytorch and pytorch-bf16 (autocast) any model, "
        "onnxruntime[-int8] NAT models (exported beside the weights when missing), ctranslate2[-int8] the "
        "Marian baseline (converted into BASELINE/ctranslate2); default: %(default)s",
    )


def _sweep_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="NAT model folder")
    p.add_argument("--data_dir", required=True)
    p.add_argument("--src", required=True)
    p.add_argument("--tgt", required=True)
    p.add_argument("--split", default="val")
    p.add_argument("--option", required=True, help="the generate() option to vary")
    p.add_argument("--values", type=json.loads, nargs="+", required=True, help="JSON values, e.g. 0 0.5 2")
    p.add_argument("--fixed", type=_json_object, default={}, help="other generate() options (JSON)")
    p.add_argument("--output", required=True, help="path prefix of the .json / .md results")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch_size", type=int, default=64)


def _export_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="save_pretrained folder (e.g. runs/cmlm_en_de/best)")
    p.add_argument("--output_dir", required=True, help="folder to write the export into")
    p.add_argument("--results", help="results.json from hf-nat benchmark")
    p.add_argument("--model_key", help="the model's name in the results rows (default: matched by path)")
    p.add_argument("--training_summary", help="summary.json from hf-nat train (default: MODEL/training_info.json)")
    p.add_argument("--dataset_name", help="dataset name for the card (default: from the results / training args)")
    p.add_argument("--src", help="source language code (default: from the results / training args)")
    p.add_argument("--tgt", help="target language code (default: from the results / training args)")
    p.add_argument(
        "--allow_results_of_another_model",
        action="store_true",
        help="accept --results rows whose model fingerprint differs from --model's (or is not recorded); "
        "the card then says they are another model's and leaves them out of model-index",
    )
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty output_dir")
    p.add_argument("--push", metavar="REPO_ID", help="upload the folder to this Hub model repo")
    p.add_argument("--private", action="store_true", help="create the Hub repo as private")
    p.add_argument("--token", help="Hugging Face token (default: HF_TOKEN or the saved login)")


def _translate_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="saved model folder (an hf_nat family or a transformers AR model)")
    p.add_argument("--input", default="-", help="file of sentences, one a line (default: standard input)")
    p.add_argument("--output", default="-", help="file for the translations (default: standard output)")
    p.add_argument("--batch_size", type=int, default=64, help="sentences decoded at once")
    p.add_argument(
        "--buffer_size",
        type=int,
        default=None,
        help="lines read before translating (default: 1 from a terminal, else 1024)",
    )
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    p.add_argument("--threads", type=int, default=None, help="torch threads")
    p.add_argument("--rescorer", default=None, help="AR model folder that ranks the NAT candidates (rescorer=)")
    p.add_argument(
        "--engine",
        default="pytorch",
        choices=sorted(ENGINES),
        help="what runs the model: pytorch, pytorch-bf16 (autocast), onnxruntime[-int8] (NAT models, exported "
        "beside the weights when missing), ctranslate2[-int8] (Marian models); default: %(default)s",
    )


def _demo_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--minutes", type=float, default=7.0, help="training wall time")
    p.add_argument("--src", default="en")
    p.add_argument("--tgt", default="de")
    p.add_argument("--data", default=None, help="corpus folder or Hub id (default: local Multi30k, else the Hub)")
    p.add_argument("--hub_dataset", default="bentrevett/multi30k")
    p.add_argument("--output_dir", default=os.path.join("runs", "quickstart"))
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--vocab_size", type=int, default=8000)


# --- the commands ----------------------------------------------------------------------------
def _run_train(args, argv) -> dict:
    from hf_nat.trainer import train

    return train(args)


def _run_distill(args, argv) -> dict:
    import logging

    from hf_nat.distillation import distill

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    return distill(args, command_line(argv, "hf-nat distill"))


def _run_align(args, argv) -> dict:
    from transformers import AutoTokenizer

    from hf_nat.data.fertility import align_corpus

    return align_corpus(
        args.data, args.src, args.tgt, args.splits, AutoTokenizer.from_pretrained(args.tokenizer), args.output
    )


def _run_benchmark(args, argv) -> dict:
    from hf_nat.benchmark import run_benchmark
    from hf_nat.reports import format_markdown

    options = {k: v for k, v in vars(args).items() if k not in ("command", "settings_from")}
    if args.settings_from:
        from hf_nat.benchmark import settings_on_the_front
        from hf_nat.files import read_json

        if args.settings is not None:
            raise SystemExit("error: give --settings or --settings_from, not both")
        options["settings"] = settings_on_the_front(read_json(args.settings_from, "benchmark results"))
    results = run_benchmark(**options, command=command_line(argv, "hf-nat benchmark"))
    print(format_markdown(results))
    return results


def _run_sweep(args, argv) -> dict:
    import torch

    from hf_nat.sweep import sweep_option, write_sweep

    torch.set_num_threads(args.threads)
    report = sweep_option(
        args.model,
        args.data_dir,
        args.src,
        args.tgt,
        args.split,
        args.option,
        args.values,
        args.fixed,
        args.batch_size,
        command_line(argv, "hf-nat sweep"),
    )
    write_sweep(report, args.output)
    return report


def _run_export(args, argv):
    from hf_nat.hub_export import export_model, push_folder

    try:
        folder = export_model(
            args.model,
            args.output_dir,
            results=args.results,
            model_key=args.model_key,
            training_summary=args.training_summary,
            dataset_name=args.dataset_name,
            src=args.src,
            tgt=args.tgt,
            repo_id=args.push,
            overwrite=args.overwrite,
            allow_results_of_another_model=args.allow_results_of_another_model,
        )
        print(f"exported {args.model} to {folder}")
        if args.push:
            print(f"pushed to {push_folder(folder, args.push, token=args.token, private=args.private)}")
    except (OSError, ValueError, RuntimeError) as error:
        raise SystemExit(f"error: {error}") from error
    return folder


def _export_onnx_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model", required=True, help="NAT model folder (save_pretrained); the ONNX files go beside its weights"
    )
    p.add_argument("--no_quantize", action="store_true", help="skip the int8 (dynamic quantisation) files")
    p.add_argument("--opset", type=int, default=None, help="ONNX opset (default: hf_nat.runtime.onnx.OPSET)")


def _run_export_onnx(args, argv) -> dict:
    from hf_nat.runtime.onnx import OPSET, export_onnx

    try:
        manifest = export_onnx(args.model, quantize=not args.no_quantize, opset=args.opset or OPSET)
    except (OSError, ValueError) as error:
        raise SystemExit(f"error: {error}") from error
    files = [name for part in manifest["parts"] for name in part["files"].values()]
    print(
        f"exported {len(manifest['parts'])} parts of {args.model} to ONNX "
        f"({len(files)} files, opset {manifest['opset']})"
    )
    return manifest


def _run_demo(args, argv) -> dict:
    from hf_nat.demo import run_demo

    return run_demo(args)


_COMMANDS: dict[str, tuple[Callable, Callable, str]] = {
    "train": (_train_options, _run_train, "train a family (or the Marian AR baseline) with Accelerate"),
    "distill": (_distill_options, _run_distill, "replace a corpus's targets by a teacher's translations"),
    "align": (_align_options, _run_align, "fertility labels for fertility_nat from eflomal word alignments"),
    "benchmark": (_benchmark_options, _run_benchmark, "BLEU and speed of NAT models against an AR baseline"),
    "sweep": (_sweep_options, _run_sweep, "BLEU on a validation split for each value of one decoding option"),
    "export": (_export_options, _run_export, "a self-contained Hub folder with a model card (and push it)"),
    "export-onnx": (
        _export_onnx_options,
        _run_export_onnx,
        "ONNX files (fp32 and int8) of a NAT model beside its weights, for ORTNATModelForSeq2SeqLM",
    ),
    "translate": (
        _translate_options,
        None,
        "translate sentences from standard input or a file (the model's "
        "decoding options are flags: hf-nat translate --model DIR --help)",
    ),
    "demo": (_demo_options, _run_demo, "the main job end to end: train a small NAT, translate, score"),
}


def build_parser() -> argparse.ArgumentParser:
    """The ``hf-nat`` parser with one sub-command per job (``finetune`` takes the Trainer's options)."""
    parser = argparse.ArgumentParser(prog="hf-nat", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (add_options, _, summary) in _COMMANDS.items():
        add_options(commands.add_parser(name, help=summary, description=summary))
    commands.add_parser(
        "finetune",
        help="continue training a checkpoint with transformers' Seq2SeqTrainer "
        "(every Seq2SeqTrainingArguments option is a flag)",
        add_help=False,
    )
    return parser


def _finetune(argv: Sequence[str]) -> dict:
    import logging

    from transformers import HfArgumentParser, Seq2SeqTrainingArguments

    from hf_nat.finetuning import FinetuneArguments, finetune

    parser = HfArgumentParser((FinetuneArguments, Seq2SeqTrainingArguments), prog="hf-nat finetune")
    args, training_args = parser.parse_args_into_dataclasses(args=list(argv))
    logging.basicConfig(format="%(asctime)s %(name)s: %(message)s", level=logging.INFO)
    return finetune(args, training_args)


def _check_installed(command: str) -> None:
    for module in _NEEDS.get(command, ()):
        require(module, f"hf-nat {command}")


def main(argv: Sequence[str] | None = None):
    """Run one command (``argv`` like ``["train", "--model_type", "cmlm", ...]``; default: sys.argv)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["finetune"]:
        _check_installed("finetune")
        return _finetune(argv[1:])
    if argv[:1] == ["translate"]:
        return _translate(argv[1:])
    args = build_parser().parse_args(argv)
    _check_installed(args.command)
    _, run, _ = _COMMANDS[args.command]
    del args.command
    return run(args, argv[1:])


def _translate(argv: Sequence[str]) -> int:
    """``hf-nat translate``: its options plus the decoding options of the family in ``--model``
    (known only once the folder is read, so they are parsed in a second pass)."""
    from hf_nat.interactive import add_decoding_options, translate_stream

    first = argparse.ArgumentParser(add_help=False)
    first.add_argument("--model")
    model_dir = first.parse_known_args(argv)[0].model
    parser = argparse.ArgumentParser(prog="hf-nat translate", description=_COMMANDS["translate"][2])
    _translate_options(parser)
    names = add_decoding_options(parser, model_dir) if model_dir else []
    args = parser.parse_args(argv)
    decoding = {name: getattr(args, name) for name in names if getattr(args, name) is not None}
    return translate_stream(args, decoding)


def console() -> int:
    """The ``hf-nat`` console script: run the command of ``sys.argv``, exit status 0 when it ends
    (``main`` returns the command's result, which ``sys.exit`` would print as an error)."""
    main()
    return 0


if __name__ == "__main__":
    main()
