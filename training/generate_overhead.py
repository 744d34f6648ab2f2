"""How much of one-pass generate() is the network it wraps, profiled.

    python training/generate_overhead.py --models runs/fertility_en_de/best runs/cmlm_en_de/best \
        --settings '{"cmlm": [{"max_iterations": 1, "length_beam": 1}]}' --output_dir results/generate_overhead

Each model decodes the first --sentences test sources at batch 1 and batch 64; the time spent in
its encoder, decoders and heads is summed and compared with the whole generate() call. Writes
results.json and results.md (with torch's operator profile of each case).
"""

from __future__ import annotations

import argparse
import os
import sys

import torch

from hf_nat.benchmark import read_test_pairs
from hf_nat.cli import _settings
from hf_nat.demo import LOCAL_DATA
from hf_nat.files import write_json_atomic, write_text_atomic
from hf_nat.loading import load_model
from hf_nat.measurements.generate_overhead import format_overhead, generate_overhead
from hf_nat.models.nat_registry import family_of
from hf_nat.run_info import cpu_model, git_commit


def main(argv=None) -> dict:
    """Parse the options, measure every model under its settings, write the results."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", required=True)
    p.add_argument("--settings", type=_settings, default={}, help="family name -> list of settings (default: {})")
    p.add_argument("--data_dir", default=LOCAL_DATA)
    p.add_argument("--split", default="test_2016_flickr")
    p.add_argument("--sentences", type=int, default=256)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--output_dir", required=True)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    sources, _ = read_test_pairs(args.data_dir, args.split, "en", "de", args.sentences)
    results = {"command": " ".join([sys.executable, *sys.argv]), "commit": git_commit(), "machine": cpu_model()}
    results.update(torch=torch.__version__, threads=args.threads, models=[])
    for path in args.models:
        lm = load_model(path)
        family = lm.model.config.model_type
        family_of(family)
        for setting in args.settings.get(family, [{}]):
            batches = generate_overhead(lm.model, lm.tokenizer, sources, setting)
            results["models"].append({"model": path, "setting": setting, "batches": batches})
    write_json_atomic(os.path.join(args.output_dir, "results.json"), results)
    write_text_atomic(os.path.join(args.output_dir, "results.md"), format_overhead(results))
    print(format_overhead(results).split("\n## ")[0])
    return results


if __name__ == "__main__":
    main()
