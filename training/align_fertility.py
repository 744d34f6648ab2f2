"""Fertility labels for ``fertility_nat`` training from eflomal word alignments: ``hf-nat align``
(see :func:`hf_nat.data.fertility.align_corpus`)::

    python training/align_fertility.py --data runs/distill_en_de --tokenizer runs/tok_en_de_8k \\
        --output runs/distill_en_de_fertility
"""

import sys

from hf_nat.cli import main

if __name__ == "__main__":
    main(["align", *sys.argv[1:]])
