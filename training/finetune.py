"""Fine-tune a saved checkpoint with transformers' ``Seq2SeqTrainer``: ``hf-nat finetune`` (see
:mod:`hf_nat.finetuning`; every ``Seq2SeqTrainingArguments`` option is a flag).
"""

import sys

from hf_nat.cli import main

if __name__ == "__main__":
    main(["finetune", *sys.argv[1:]])
