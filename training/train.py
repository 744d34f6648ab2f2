"""Train an hf_nat family (or an AR baseline) on a parallel corpus with Accelerate: ``hf-nat train``.

One process::

    python training/train.py --model_type cmlm --data ../shared/data/multi30k --src en --tgt de \\
        --output_dir runs/cmlm_en_de --max_minutes 55

Two data-parallel processes on CPU (gloo)::

    ACCELERATE_USE_CPU=true accelerate launch --multi_gpu --num_processes 2 training/train.py ...

The run writes ``checkpoints/step_N`` (Accelerate state, resumed with ``--resume``), ``best/``
(the model with the best validation BLEU so far) and ``final/`` (the last model), each a
``save_pretrained`` folder with the tokenizer and generation config, plus ``train_log.jsonl``.
The loop is :mod:`hf_nat.trainer`.
"""

import sys

from hf_nat.cli import main

if __name__ == "__main__":
    main(["train", *sys.argv[1:]])
