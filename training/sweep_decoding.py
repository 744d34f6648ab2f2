"""Choose a decoding option on the validation split: ``hf-nat sweep`` (see :mod:`hf_nat.sweep`)::

    python training/sweep_decoding.py --model runs/levenshtein_distill_en_de/best \\
      --data_dir ../shared/data/multi30k --src en --tgt de --split val \\
      --option insertion_penalty --values 0 0.5 1 2 --fixed '{"max_iterations": 10}' \\
      --output results/NAME/val_sweep_levenshtein
"""

import sys

from hf_nat.cli import main

if __name__ == "__main__":
    main(["sweep", *sys.argv[1:]])
