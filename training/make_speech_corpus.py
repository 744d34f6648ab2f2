"""Speak Multi30k's English sentences into a synthetic speech corpus (audiofolder layout).

    python training/make_speech_corpus.py --data ../shared/data/multi30k --output_dir runs/speech_corpus

Needs espeak-ng and flite (``apt-get install -y espeak-ng flite``). Resumable: finished splits are
kept. See :mod:`hf_nat.data.synthetic_speech` for the voices and how each clip is made.
"""

import argparse
import json

from hf_nat.data.synthetic_speech import build_speech_corpus, english_sentences


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="../shared/data/multi30k", help="folder of {split}.en[.gz] files")
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--train_sentences", type=int, default=4000)
    parser.add_argument("--valid_sentences", type=int, default=300)
    parser.add_argument("--test_sentences", type=int, default=500)
    parser.add_argument("--renditions", type=int, default=2, help="voices per training sentence")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    sizes = {"train": args.train_sentences, "validation": args.valid_sentences, "test": args.test_sentences}
    sentences = english_sentences(args.data, sizes)
    info = build_speech_corpus(sentences, args.output_dir, renditions=args.renditions, seed=args.seed)
    print(json.dumps(info, indent=2))


if __name__ == "__main__":
    main()
