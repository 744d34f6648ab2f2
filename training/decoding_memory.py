"""Peak memory of ``generate()``, each case in a fresh process (see
:mod:`hf_nat.measurements.decoding_memory`)::

    python training/decoding_memory.py --output results/decoding_memory \\
        --case npd100_b512 runs/quickstart/best '{"npd_samples": 100}' 512 \\
        --case cmlm_lb100_b8 random:cmlm '{"length_beam": 100}' 8 --tokenizer runs/quickstart/tokenizer

Writes ``memory.json`` and ``memory.md``.
"""

import argparse
import shlex
import sys

from hf_nat.benchmark import read_test_pairs
from hf_nat.demo import LOCAL_DATA
from hf_nat.measurements.decoding_memory import measure_cases, write_memory_report


def main(argv=None) -> list[dict]:
    """Parse the options, measure every case, write the report."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--case", nargs=4, action="append", metavar=("NAME", "MODEL", "OPTIONS", "BATCH"), required=True)
    p.add_argument("--tokenizer", default=None, help="tokenizer folder for random:FAMILY models")
    p.add_argument("--data_dir", default=LOCAL_DATA)
    p.add_argument("--src", default="en")
    p.add_argument("--tgt", default="de")
    p.add_argument("--split", default="test_2016_flickr")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument(
        "--cap_gib",
        type=float,
        default=16.0,
        help="address-space limit of each case's process, so a runaway case fails instead of the machine",
    )
    p.add_argument("--output", default=None, help="folder for memory.json / memory.md")
    argv = sys.argv[1:] if argv is None else argv
    args = p.parse_args(argv)
    sources, _ = read_test_pairs(args.data_dir, args.split, args.src, args.tgt)
    rows = measure_cases(args.case, sources, args.tokenizer, args.threads, args.cap_gib)
    if args.output:
        write_memory_report(rows, args.output, shlex.join(["python", "training/decoding_memory.py", *argv]))
    return rows


if __name__ == "__main__":
    main()
