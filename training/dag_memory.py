"""Peak memory and time of one DA-Transformer training update per graph size λ, each in a fresh
process (see :mod:`hf_nat.measurements.dag_training_memory`)::

    python training/dag_memory.py --ratios 2 4 8 --output_dir results/da_transformer_memory_cpu

Writes results.json, results.md and memory.png.
"""

import argparse
import shlex
import sys

from hf_nat.demo import LOCAL_DATA
from hf_nat.measurements.dag_training_memory import format_dag_memory, measure_dag_memory, write_dag_memory


def main(argv=None) -> dict:
    """Parse the options, measure every ratio, write the report."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ratios", type=int, nargs="+", default=[2, 4, 8])
    p.add_argument("--tokenizer", default="runs/tok_en_de_8k")
    p.add_argument("--data", default=LOCAL_DATA)
    p.add_argument("--max_tokens", type=int, default=4096)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--output_dir", required=True)
    argv = sys.argv[1:] if argv is None else argv
    args = p.parse_args(argv)
    if min(args.ratios) < 1:
        p.error("--ratios must be >= 1")
    command = shlex.join(["python", "training/dag_memory.py", *argv])
    results = measure_dag_memory(args.ratios, args.tokenizer, args.data, args.max_tokens, args.threads, command)
    write_dag_memory(results, args.output_dir)
    print(format_dag_memory(results))
    return results


if __name__ == "__main__":
    main()
