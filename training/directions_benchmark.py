"""BLEU in both directions of one split for models that translate several (KERMIT) beside
one-direction models, plus pairs sampled from nothing (see
:mod:`hf_nat.measurements.translation_directions`)::

    python training/directions_benchmark.py --models runs/kermit_en_de/best runs/insertion_en_de/best \\
        --data_dir ../shared/data/multi30k --languages en de --split test_2016_flickr \\
        --options '{"max_iterations": 10}' --output_dir results/kermit_directions

Writes results.json, results.md and bleu_by_direction.png.
"""

import argparse
import json
import shlex
import sys

from hf_nat.measurements.translation_directions import measure_directions, write_directions


def main(argv=None) -> dict:
    """Parse the options, measure, write the report."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", required=True, help="model folders")
    p.add_argument("--data_dir", required=True)
    p.add_argument("--languages", nargs=2, required=True, metavar=("X", "Y"), help="the corpus's direction X→Y")
    p.add_argument("--split", default="test_2016_flickr")
    p.add_argument("--options", type=json.loads, default={}, help="JSON object of generate() options for every model")
    p.add_argument("--batch_size", type=int, default=64)
    p.add_argument("--max_sentences", type=int, default=None)
    p.add_argument("--samples", type=int, default=5, help="pairs sampled by each model that samples pairs")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--output_dir", required=True)
    argv = sys.argv[1:] if argv is None else argv
    args = p.parse_args(argv)
    if not isinstance(args.options, dict):
        p.error("--options must be a JSON object")
    results = measure_directions(
        args.models,
        args.data_dir,
        tuple(args.languages),
        args.split,
        options=args.options,
        batch_size=args.batch_size,
        max_sentences=args.max_sentences,
        samples=args.samples,
        threads=args.threads,
        command=shlex.join(["python", "training/directions_benchmark.py", *argv]),
    )
    write_directions(results, args.output_dir)
    return results


if __name__ == "__main__":
    main()
