"""Export a trained model as a self-contained Hub folder with its model card, and optionally push it:
``hf-nat export`` (see :mod:`hf_nat.hub_export`)::

    python training/export.py --model runs/cmlm_en_de/best --output_dir exports/cmlm_en_de \\
        --results results/cmlm_en_de_cpu/results.json --model_key cmlm_en_de/best [--push USER/cmlm-en-de]
"""

import sys

from hf_nat.cli import main

if __name__ == "__main__":
    main(["export", *sys.argv[1:]])
