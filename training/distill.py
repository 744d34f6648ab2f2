"""Sequence-level knowledge distillation of a corpus by a teacher: ``hf-nat distill`` (see
:mod:`hf_nat.distillation`). Runs data-parallel under ``accelerate launch``.
"""

import sys

from hf_nat.cli import main

if __name__ == "__main__":
    main(["distill", *sys.argv[1:]])
