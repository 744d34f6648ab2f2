"""The main job end to end: train a small NAT on Multi30k, translate through the pipeline, score.

    python training/quickstart.py              # about 8 minutes on 2 CPU cores

Trains a joint BPE tokenizer, aligns the training corpus with eflomal to get fertility labels,
and trains a vanilla NAT with fertility (``fertility_nat``: one decoder pass, the source copied
by predicted fertilities) on Multi30k en→de (the local copy in ../shared/data/multi30k, or the Hub
dataset ``--hub_dataset`` when that folder is absent) for ``--minutes``. Then it translates
example sentences with ``pipeline("translation")``, prints sacreBLEU/chrF on the test split and
the lines that load the model. Any language pair of the corpus works (``--src en --tgt fr``).
Running it again continues an interrupted run (``--resume`` from the last checkpoint).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _REPO not in sys.path:  # `python training/quickstart.py` puts training/, not the repo, on sys.path
    sys.path.insert(0, _REPO)

import torch  # noqa: E402
from transformers import pipeline  # noqa: E402

import hf_nat  # noqa: E402,F401  (registers the models and the pipeline)
from hf_nat.data import load_parallel_corpus, train_joint_tokenizer  # noqa: E402
from hf_nat.metrics import corpus_scores  # noqa: E402
from training import align_fertility, train  # noqa: E402

LOCAL_DATA = os.path.join(_REPO, "..", "shared", "data", "multi30k")

# The model and schedule of the demo: chosen so that 7 minutes of training on 2 CPU cores
# reach > 20 test BLEU (measured: README "The two commands").
DEMO_TRAINING = ["--model_type", "fertility_nat", "--d_model", "256", "--layers", "3", "--heads", "4",
                 "--ffn_dim", "1024", "--dropout", "0.1", "--lr", "1e-3", "--warmup", "200", "--max_tokens", "2048",
                 "--mixed_precision", "bf16", "--eval_every", "200", "--eval_sentences", "300", "--save_every", "200",
                 "--keep_checkpoints", "1"]


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=7.0, help="training wall time")
    p.add_argument("--src", default="en")
    p.add_argument("--tgt", default="de")
    p.add_argument("--data", default=None, help="corpus folder or Hub id (default: local Multi30k, else the Hub)")
    p.add_argument("--hub_dataset", default="bentrevett/multi30k")
    p.add_argument("--output_dir", default=os.path.join("runs", "quickstart"))
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--vocab_size", type=int, default=8000)
    return p.parse_args(argv)


def main(argv=None) -> dict:
    """Train, translate examples, print and return test BLEU/chrF."""
    args = parse_args(argv)
    started = time.perf_counter()
    local = args.data is None and os.path.isdir(LOCAL_DATA)
    data = args.data or (LOCAL_DATA if local else args.hub_dataset)
    train_split, valid_split, test_split = (("train", "val", "test_2016_flickr") if os.path.isdir(data)
                                            else ("train", "validation", "test"))
    torch.set_num_threads(args.threads)
    tokenizer_dir = os.path.join(args.output_dir, "tokenizer")
    fertility_dir = os.path.join(args.output_dir, "fertility")
    if not os.path.isfile(os.path.join(tokenizer_dir, "tokenizer.json")):
        print(f"1/4 training a joint {args.vocab_size}-token BPE tokenizer → {tokenizer_dir}")
        corpus = load_parallel_corpus(data, args.src, args.tgt, splits=[train_split])[train_split]
        train_joint_tokenizer(list(corpus["source"]) + list(corpus["target"]), args.vocab_size,
                              output_dir=tokenizer_dir)
    if not os.path.isdir(fertility_dir):
        print(f"2/4 aligning the training corpus with eflomal for fertility labels → {fertility_dir}")
        align_fertility.main(["--data", data, "--src", args.src, "--tgt", args.tgt, "--splits", train_split,
                              "--tokenizer", tokenizer_dir, "--output", fertility_dir])
    print(f"3/4 training for {args.minutes:g} minutes on {args.threads} threads → {args.output_dir}")
    resume = ["--resume"] if train.checkpoint_dirs(args.output_dir) else []
    train.main([*DEMO_TRAINING, "--data", data, "--src", args.src, "--tgt", args.tgt, "--train_split", train_split,
                "--valid_split", valid_split, "--output_dir", args.output_dir, "--tokenizer", tokenizer_dir,
                "--fertility", fertility_dir, "--max_minutes", str(args.minutes), "--threads", str(args.threads),
                *resume])

    model_dir = os.path.join(args.output_dir, "best")
    print(f"4/4 translating the {test_split} split with {model_dir}")
    translator = pipeline("translation", model=model_dir)
    test = load_parallel_corpus(data, args.src, args.tgt, splits=[test_split])[test_split]
    print("\nExample translations:")
    for source, reference in zip(test["source"][:5], test["target"][:5]):
        print(f"  {args.src}: {source}\n  {args.tgt}: {translator(source)[0]['translation_text']}\n  ref: {reference}\n")
    hyps = train.translate(translator.model, translator.tokenizer, list(test["source"]), 64)
    scores = corpus_scores(hyps, list(test["target"]))
    minutes = (time.perf_counter() - started) / 60
    print(f"{test_split} ({len(hyps)} sentences), one decoder pass: sacreBLEU {scores['bleu']:.2f}  "
          f"chrF {scores['chrf']:.2f}  ({minutes:.1f} minutes in all)")
    print(f"\nThe model is in {model_dir}. Use it:\n\n"
          f"    import hf_nat  # registers the NAT families with transformers\n"
          f"    from transformers import pipeline\n"
          f"    translator = pipeline(\"translation\", model=\"{model_dir}\")\n"
          f"    translator(\"A man is riding a bike.\")\n")
    return {**scores, "minutes": minutes, "model_dir": model_dir}


if __name__ == "__main__":
    main()
