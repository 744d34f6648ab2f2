"""WER/CER and speed of speech recognisers against an AR baseline, on seen- and unseen-voice tests.

    python training/benchmark_speech.py --baseline runs/speech/ar/best \\
        --models runs/speech/ctc/best runs/speech/imputer/best \\
        --data runs/speech_corpus --splits test test_unseen_voice --output_dir results/speech_cpu

Writes results.json, results.md and wer_vs_speedup.png (:mod:`hf_nat.speech_benchmark`).
"""

import argparse

from hf_nat.run_info import command_line
from hf_nat.speech_benchmark import run_speech_benchmark


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", required=True, help="AR speech model folder (the reference of the ratios)")
    parser.add_argument("--models", nargs="+", default=[], help="NAT speech model folders")
    parser.add_argument("--data", required=True, help="speech corpus (audiofolder layout) or Hub dataset id")
    parser.add_argument("--splits", nargs="+", default=["test", "test_unseen_voice"])
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--latency_clips", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--max_clips", type=int, default=None, help="score only the first N clips of each split")
    args = parser.parse_args()
    run_speech_benchmark(
        args.models,
        args.baseline,
        args.data,
        args.splits,
        args.output_dir,
        threads=args.threads,
        batch_size=args.batch_size,
        latency_clips=args.latency_clips,
        warmup=args.warmup,
        max_clips=args.max_clips,
        command=command_line(),
    )


if __name__ == "__main__":
    main()
