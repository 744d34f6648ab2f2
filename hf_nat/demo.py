"""The main job end to end (``make demo`` / ``hf-nat demo``): train a small NAT on Multi30k, translate
through the pipeline, score.

Trains a joint BPE tokenizer, aligns the training corpus with eflomal to get fertility labels,
and trains a vanilla NAT with fertility (``fertility_nat``: one decoder pass, the source copied
by predicted fertilities) on Multi30k en→de (the local copy in ../shared/data/multi30k, or the Hub
dataset ``--hub_dataset`` when that folder is absent) for ``--minutes``. Then it translates
example sentences with ``pipeline("translation")``, prints sacreBLEU/chrF on the test split and
the lines that load the model. Any language pair of the corpus works (``--src en --tgt fr``).
Running it again continues an interrupted run (``--resume`` from the last checkpoint).
"""

from __future__ import annotations

import os
import time

import torch
from transformers import AutoTokenizer, pipeline

import hf_nat  # noqa: F401  (registers the models and the pipeline)
from hf_nat.checkpoints import checkpoint_dirs
from hf_nat.data import load_parallel_corpus, train_joint_tokenizer
from hf_nat.data.fertility import align_corpus
from hf_nat.metrics import corpus_scores
from hf_nat.translate import translate

__all__ = ["DEMO_TRAINING", "LOCAL_DATA", "run_demo"]

# ../shared/data/multi30k beside the checkout (or the working directory), as on the project's machines.
_CHECKOUT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOCAL_DATA = next(
    (
        path
        for path in (os.path.join(root, "..", "shared", "data", "multi30k") for root in (_CHECKOUT, os.getcwd()))
        if os.path.isdir(path)
    ),
    os.path.join(_CHECKOUT, "..", "shared", "data", "multi30k"),
)

# The model and schedule of the demo: chosen so that 7 minutes of training on 2 CPU cores
# reach > 20 test BLEU (measured: README "The two commands").
DEMO_TRAINING = [
    "--model_type",
    "fertility_nat",
    "--d_model",
    "256",
    "--layers",
    "3",
    "--heads",
    "4",
    "--ffn_dim",
    "1024",
    "--dropout",
    "0.1",
    "--lr",
    "1e-3",
    "--warmup",
    "200",
    "--max_tokens",
    "2048",
    "--mixed_precision",
    "bf16",
    "--eval_every",
    "200",
    "--eval_sentences",
    "300",
    "--save_every",
    "200",
    "--keep_checkpoints",
    "1",
]


def run_demo(args) -> dict:
    """Train, translate examples, print and return test BLEU/chrF (``args``: ``hf-nat demo``'s options)."""
    from hf_nat.cli import build_parser
    from hf_nat.trainer import train

    started = time.perf_counter()
    local = args.data is None and os.path.isdir(LOCAL_DATA)
    data = args.data or (LOCAL_DATA if local else args.hub_dataset)
    train_split, valid_split, test_split = (
        ("train", "val", "test_2016_flickr") if os.path.isdir(data) else ("train", "validation", "test")
    )
    torch.set_num_threads(args.threads)
    tokenizer_dir = os.path.join(args.output_dir, "tokenizer")
    fertility_dir = os.path.join(args.output_dir, "fertility")
    if not os.path.isfile(os.path.join(tokenizer_dir, "tokenizer.json")):
        print(f"1/4 training a joint {args.vocab_size}-token BPE tokenizer → {tokenizer_dir}")
        corpus = load_parallel_corpus(data, args.src, args.tgt, splits=[train_split])[train_split]
        train_joint_tokenizer(
            list(corpus["source"]) + list(corpus["target"]), args.vocab_size, output_dir=tokenizer_dir
        )
    if not os.path.isdir(fertility_dir):
        print(f"2/4 aligning the training corpus with eflomal for fertility labels → {fertility_dir}")
        align_corpus(
            data, args.src, args.tgt, [train_split], AutoTokenizer.from_pretrained(tokenizer_dir), fertility_dir
        )
    print(f"3/4 training for {args.minutes:g} minutes on {args.threads} threads → {args.output_dir}")
    resume = ["--resume"] if checkpoint_dirs(args.output_dir) else []
    train(
        build_parser().parse_args(
            [
                "train",
                *DEMO_TRAINING,
                "--data",
                data,
                "--src",
                args.src,
                "--tgt",
                args.tgt,
                "--train_split",
                train_split,
                "--valid_split",
                valid_split,
                "--output_dir",
                args.output_dir,
                "--tokenizer",
                tokenizer_dir,
                "--fertility",
                fertility_dir,
                "--max_minutes",
                str(args.minutes),
                "--threads",
                str(args.threads),
                *resume,
            ]
        )
    )

    model_dir = os.path.join(args.output_dir, "best")
    print(f"4/4 translating the {test_split} split with {model_dir}")
    translator = pipeline("translation", model=model_dir)
    test = load_parallel_corpus(data, args.src, args.tgt, splits=[test_split])[test_split]
    print("\nExample translations:")
    for source, reference in zip(test["source"][:5], test["target"][:5]):
        print(
            f"  {args.src}: {source}\n  {args.tgt}: {translator(source)[0]['translation_text']}\n  ref: {reference}\n"
        )
    hyps = translate(translator.model, translator.tokenizer, list(test["source"]), 64)
    scores = corpus_scores(hyps, list(test["target"]))
    minutes = (time.perf_counter() - started) / 60
    print(
        f"{test_split} ({len(hyps)} sentences), one decoder pass: sacreBLEU {scores['bleu']:.2f}  "
        f"chrF {scores['chrf']:.2f}  ({minutes:.1f} minutes in all)"
    )
    print(
        f"\nThe model is in {model_dir}. Use it:\n\n"
        f"    import hf_nat  # registers the NAT families with transformers\n"
        f"    from transformers import pipeline\n"
        f'    translator = pipeline("translation", model="{model_dir}")\n'
        f'    translator("A man is riding a bike.")\n\n'
        f'or from the shell:  echo "A man is riding a bike." | hf-nat translate --model {model_dir}\n'
    )
    return {**scores, "minutes": minutes, "model_dir": model_dir}
