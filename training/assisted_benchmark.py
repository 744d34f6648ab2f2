"""NAT-assisted decoding against the AR model's greedy search and CTranslate2 int8, in one run.

    python training/assisted_benchmark.py --verifier runs/ar_en_de/best \
        --drafters runs/cmlm_greedy_prefix_en_de/best runs/nat_greedy_prefix_en_de/best \
        --drafter_engines pytorch onnxruntime-int8 --draft_caps 0 8 \
        --draft_options '[{}, {"draft_iterations": 2}]' --output_dir results/assisted_cpu

Every test batch is decoded by the verifier's greedy generate() (PyTorch), by CTranslate2 int8
greedy, and by each drafter × engine × draft cap (0: the whole predicted continuation) verified by
the same PyTorch model; rows that differ from greedy are counted. Writes results.json,
results.md and results.png.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import torch

from hf_nat.benchmark import read_test_pairs
from hf_nat.demo import LOCAL_DATA
from hf_nat.engines import ENGINES, load_engine
from hf_nat.files import write_json_atomic, write_text_atomic
from hf_nat.loading import load_model
from hf_nat.measurements.assisted_decoding import format_assisted, measure_assisted, next_token_accuracy, plot_assisted
from hf_nat.run_info import cpu_model, git_commit


def main(argv=None) -> dict:
    """Parse the options, load the models, measure, write the results."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--verifier", required=True, help="the AR model folder (transformers seq2seq)")
    p.add_argument("--drafters", nargs="+", required=True, help="hf_nat model folders that draft")
    nat_engines = [e for e in ENGINES if "nat" in ENGINES[e].kinds]
    p.add_argument("--drafter_engines", nargs="+", default=["pytorch"], choices=nat_engines)
    p.add_argument(
        "--draft_options",
        type=json.loads,
        default=[{}],
        help="JSON list of drafting options, e.g. '[{}, {\"draft_iterations\": 2}]'; a drafter gets those it declares",
    )
    p.add_argument("--draft_caps", nargs="+", type=int, default=[0], help="tokens per draft at most (0: no cap)")
    p.add_argument("--fastest_ar", default="ctranslate2-int8", help="AR engine to compare with ('none' to skip)")
    p.add_argument("--batch_sizes", nargs="+", type=int, default=[1, 64])
    p.add_argument("--data_dir", default=LOCAL_DATA)
    p.add_argument("--split", default="test_2016_flickr")
    p.add_argument("--src", default="en")
    p.add_argument("--tgt", default="de")
    p.add_argument("--sentences", type=int, default=None, help="the first N sentences (default: all)")
    p.add_argument("--accuracy_sentences", type=int, default=200, help="sentences for the next-token accuracy")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--output_dir", required=True)
    args = p.parse_args(argv)
    if any(c < 0 for c in args.draft_caps):
        p.error("--draft_caps must be >= 0")
    if any(b < 1 for b in args.batch_sizes):
        p.error("--batch_sizes must be >= 1")
    torch.set_num_threads(args.threads)
    sources, references = read_test_pairs(args.data_dir, args.split, args.src, args.tgt, args.sentences)
    verifier = load_model(args.verifier)
    fastest = None
    if args.fastest_ar != "none":
        if args.fastest_ar not in ENGINES or "ar" not in ENGINES[args.fastest_ar].kinds:
            p.error(f"--fastest_ar must be an AR engine or 'none', got {args.fastest_ar!r}")
        fastest = load_engine(verifier, args.fastest_ar, args.threads).model
    drafters = []
    for path in args.drafters:
        lm = load_model(path)
        declared = lm.model.nat_draft_defaults
        settings = [o for o in args.draft_options if set(o) <= set(declared)]
        if not settings:
            p.error(f"{path} declares the drafting options {sorted(declared)}: none of --draft_options fits")
        for engine in args.drafter_engines:
            model = load_engine(lm, engine, args.threads).model
            for options in settings:
                name = f"{os.path.basename(os.path.dirname(os.path.normpath(path)))} ({engine})"
                name += "".join(f", {k}={v}" for k, v in options.items())
                drafters.append((name, model, model.nat_draft_options(options)))
    caps = [None if c == 0 else c for c in args.draft_caps]
    results = {
        "command": " ".join([sys.executable, *sys.argv]),
        "commit": git_commit(),
        "machine": cpu_model(),
        "torch": torch.__version__,
        "threads": args.threads,
        "verifier": args.verifier,
        "fastest_ar": None if fastest is None else args.fastest_ar,
        "split": args.split,
        "sentences": len(sources),
        "drafters": args.drafters,
        "drafter_engines": args.drafter_engines,
        "draft_options": args.draft_options,
    }
    results.update(
        measure_assisted(
            verifier.model, verifier.tokenizer, sources, references, drafters, caps, args.batch_sizes, fastest
        )
    )
    results["next_token_accuracy"] = {
        name: next_token_accuracy(
            verifier.model, model, verifier.tokenizer, sources[: args.accuracy_sentences], options
        )
        for name, model, options in drafters
    }
    os.makedirs(args.output_dir, exist_ok=True)
    write_json_atomic(os.path.join(args.output_dir, "results.json"), results)
    write_text_atomic(os.path.join(args.output_dir, "results.md"), format_assisted(results))
    plot_assisted(results, os.path.join(args.output_dir, "results.png"))
    print(format_assisted(results))
    return results


if __name__ == "__main__":
    main()
