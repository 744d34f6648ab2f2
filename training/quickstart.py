"""The main job end to end: train a small teacher-free CMLM, translate through the pipeline, score.

    python training/quickstart.py --minutes 5

Trains a CMLM on Multi30k en→de (the local copy in ../shared/data/multi30k, or the Hub dataset
``--hub_dataset`` when that folder is absent) for a few minutes with ``training/train.py``, then
translates example sentences with ``pipeline("translation")`` and prints sacreBLEU/chrF on the
test split. Any language pair of the corpus works (``--src en --tgt fr``).
"""

from __future__ import annotations

import argparse
import os
import sys

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _REPO not in sys.path:  # `python training/quickstart.py` puts training/, not the repo, on sys.path
    sys.path.insert(0, _REPO)

import torch  # noqa: E402
from transformers import pipeline  # noqa: E402

import hf_nat  # noqa: E402,F401  (registers the models and the pipeline)
from hf_nat.data import load_parallel_corpus  # noqa: E402
from hf_nat.metrics import corpus_scores  # noqa: E402
from training import train  # noqa: E402

LOCAL_DATA = os.path.join(_REPO, "..", "shared", "data", "multi30k")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=5.0, help="training wall time")
    p.add_argument("--src", default="en")
    p.add_argument("--tgt", default="de")
    p.add_argument("--data", default=None, help="corpus folder or Hub id (default: local Multi30k, else the Hub)")
    p.add_argument("--hub_dataset", default="bentrevett/multi30k")
    p.add_argument("--output_dir", default=os.path.join(_REPO, "runs", "quickstart"))
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--iterations", type=int, default=4)
    p.add_argument("--length_beam", type=int, default=3)
    return p.parse_args(argv)


def main(argv=None) -> dict:
    """Train, translate examples, print and return test BLEU/chrF."""
    args = parse_args(argv)
    local = args.data is None and os.path.isdir(LOCAL_DATA)
    data = args.data or (LOCAL_DATA if local else args.hub_dataset)
    valid_split, test_split = ("val", "test_2016_flickr") if os.path.isdir(data) else ("validation", "test")
    torch.set_num_threads(args.threads)
    train.main(["--model_type", "cmlm", "--data", data, "--src", args.src, "--tgt", args.tgt,
                "--valid_split", valid_split, "--output_dir", args.output_dir, "--max_minutes", str(args.minutes),
                "--d_model", "256", "--layers", "3", "--vocab_size", "8000", "--lr", "7e-4", "--warmup", "400",
                "--mixed_precision", "bf16", "--eval_every", "300", "--eval_sentences", "200",
                "--save_every", "200", "--threads", str(args.threads),
                "--eval_generate_kwargs", f'{{"max_iterations": {args.iterations}, "length_beam": {args.length_beam}}}'])
    model_dir = os.path.join(args.output_dir, "best")
    translator = pipeline("translation", model=model_dir, max_iterations=args.iterations,
                          length_beam=args.length_beam)
    test = load_parallel_corpus(data, args.src, args.tgt, splits=[test_split])[test_split]
    print("\nExample translations:")
    for source, reference in zip(test["source"][:5], test["target"][:5]):
        print(f"  {args.src}: {source}\n  {args.tgt}: {translator(source)[0]['translation_text']}\n  ref: {reference}\n")
    hyps = train.translate(translator.model, translator.tokenizer, list(test["source"]), 64,
                           max_iterations=args.iterations, length_beam=args.length_beam)
    scores = corpus_scores(hyps, list(test["target"]))
    print(f"{test_split} ({len(hyps)} sentences), CMLM {args.iterations} iterations, length beam "
          f"{args.length_beam}: sacreBLEU {scores['bleu']:.2f}  chrF {scores['chrf']:.2f}")
    return scores


if __name__ == "__main__":
    main()
