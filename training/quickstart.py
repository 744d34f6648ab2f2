"""The main job end to end (``make demo``): ``hf-nat demo`` (see :mod:`hf_nat.demo`)::

python training/quickstart.py              # about 8 minutes on 2 CPU cores
"""

import sys

from hf_nat.cli import main

if __name__ == "__main__":
    main(["demo", *sys.argv[1:]])
