"""Quality/speed benchmark of NAT models against an AR baseline: ``hf-nat benchmark`` (see
:mod:`hf_nat.benchmark`)::

    python training/benchmark.py --models runs/cmlm --baseline runs/marian \\
        --data_dir ../shared/data/multi30k --src en --tgt de \\
        --split test_2016_flickr --output_dir results/cmlm_cpu --device cpu
"""

import sys

from hf_nat.cli import main

if __name__ == "__main__":
    main(["benchmark", *sys.argv[1:]])
