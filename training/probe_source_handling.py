"""How a trained model's output depends on how its sources are handed to ``generate()`` (see
:mod:`hf_nat.measurements.source_handling`)::

    python training/probe_source_handling.py --model runs/quickstart/best --split val --output results/NAME

Writes ``source_handling.json`` and ``.md``.
"""

import argparse
import json
import shlex
import sys

import torch

from hf_nat.benchmark import read_test_pairs
from hf_nat.demo import LOCAL_DATA
from hf_nat.loading import load_model
from hf_nat.measurements.source_handling import probe_source_handling, write_source_handling


def main(argv=None) -> dict:
    """Parse the options, run the probes, print (and write) the report."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True)
    p.add_argument("--data_dir", default=LOCAL_DATA)
    p.add_argument("--src", default="en")
    p.add_argument("--tgt", default="de")
    p.add_argument("--split", default="val")
    p.add_argument("--batch_size", type=int, default=64)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--output", default=None)
    argv = sys.argv[1:] if argv is None else argv
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    lm = load_model(args.model)
    sources, references = read_test_pairs(args.data_dir, args.split, args.src, args.tgt)
    report = probe_source_handling(
        lm.model,
        lm.tokenizer,
        sources,
        references,
        args.batch_size,
        shlex.join(["python", "training/probe_source_handling.py", *argv]),
    )
    report.update(model=args.model, split=args.split)
    print(json.dumps(report, indent=2, ensure_ascii=False))
    if args.output:
        write_source_handling(report, args.output, args.split)
    return report


if __name__ == "__main__":
    main()
