"""Distil a captioning corpus: the AR teacher's caption for every training image (one per image).

    python training/distill_captions.py --teacher runs/caption_ar/best --data runs/caption_corpus \\
        --output_dir runs/caption_corpus_distilled

See :mod:`hf_nat.caption_distillation`; train a NAT on the output with ``--data``.
"""

import argparse

from hf_nat.caption_distillation import distill_caption_corpus


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teacher", required=True, help="AR captioning model folder (VisionEncoderDecoder)")
    parser.add_argument("--data", required=True, help="captioning corpus (imagefolder layout) or Hub dataset id")
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--splits", nargs="+", default=["train"], help="splits whose captions the teacher replaces")
    parser.add_argument("--copy_splits", nargs="*", default=["validation", "test", "test_unseen_combination"])
    parser.add_argument("--num_beams", type=int, default=1)
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    distill_caption_corpus(
        args.teacher, args.data, args.output_dir, args.splits, args.copy_splits, args.num_beams, args.batch_size
    )


if __name__ == "__main__":
    main()
