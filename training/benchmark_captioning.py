"""BLEU-4, CIDEr, repetition and speed of image captioners against an AR baseline, on the seen-
and unseen-combination tests.

    python training/benchmark_captioning.py --baseline runs/caption_ar/best \\
        --models runs/caption_cmlm/best runs/caption_ctc/best \\
        --data runs/caption_corpus --splits test test_unseen_combination --output_dir results/captioning_cpu

Writes results.json, results.md and bleu_vs_speedup.png (:mod:`hf_nat.caption_benchmark`).
"""

import argparse

from hf_nat.caption_benchmark import run_caption_benchmark
from hf_nat.run_info import command_line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", required=True, help="AR captioning model folder (the reference of the ratios)")
    parser.add_argument("--models", nargs="+", default=[], help="NAT captioning model folders")
    parser.add_argument("--data", required=True, help="captioning corpus (imagefolder layout) or Hub dataset id")
    parser.add_argument("--splits", nargs="+", default=["test", "test_unseen_combination"])
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--latency_images", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--max_images", type=int, default=None, help="score only the first N images of each split")
    args = parser.parse_args()
    run_caption_benchmark(
        args.models,
        args.baseline,
        args.data,
        args.splits,
        args.output_dir,
        threads=args.threads,
        batch_size=args.batch_size,
        latency_images=args.latency_images,
        warmup=args.warmup,
        max_images=args.max_images,
        command=command_line(),
    )


if __name__ == "__main__":
    main()
