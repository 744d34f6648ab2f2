"""Draw the synthetic image–caption corpus (imagefolder layout: PNG files and metadata.jsonl).

    python training/make_caption_corpus.py --output_dir runs/caption_corpus

Needs only Pillow. Resumable: finished splits are kept. See :mod:`hf_nat.data.synthetic_images`
for the scenes, the caption templates and the held-out (colour, shape) pairs.
"""

import argparse
import json

from hf_nat.data.synthetic_images import DEFAULT_SIZES, build_caption_corpus


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--train_images", type=int, default=DEFAULT_SIZES["train"])
    parser.add_argument("--valid_images", type=int, default=DEFAULT_SIZES["validation"])
    parser.add_argument("--test_images", type=int, default=DEFAULT_SIZES["test"])
    parser.add_argument(
        "--unseen_images",
        type=int,
        default=DEFAULT_SIZES["test_unseen_combination"],
        help="images of test_unseen_combination, each holding a held-out (colour, shape) pair",
    )
    parser.add_argument("--image_size", type=int, default=64, help="side of the square images, in pixels")
    parser.add_argument("--captions_per_image", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    sizes = {
        "train": args.train_images,
        "validation": args.valid_images,
        "test": args.test_images,
        "test_unseen_combination": args.unseen_images,
    }
    info = build_caption_corpus(
        args.output_dir,
        sizes=sizes,
        seed=args.seed,
        image_size=args.image_size,
        captions_per_image=args.captions_per_image,
    )
    print(json.dumps(info, indent=2))


if __name__ == "__main__":
    main()
