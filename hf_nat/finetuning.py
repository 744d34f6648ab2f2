"""Fine-tune an existing hf_nat checkpoint (a folder or a Hub id) on another corpus with
transformers' ``Seq2SeqTrainer``.

::

    hf-nat finetune --model runs/cmlm_en_de/best --data ../shared/data/multi30k \\
        --src en --tgt de --train_split train --valid_split val --output_dir runs/cmlm_ft \\
        --max_steps 2000 --learning_rate 1e-4 --per_device_train_batch_size 64 --bf16 \\
        --eval_generate_kwargs '{"max_iterations": 4, "length_beam": 3}'

Every ``Seq2SeqTrainingArguments`` option is a command-line flag (``--max_steps``,
``--learning_rate``, ``--warmup_steps``, ``--eval_strategy steps``, ``--save_steps``,
``--resume_from_checkpoint``, ``--use_cpu``, ``--report_to``, ...), next to this script's own
options (:class:`FinetuneArguments`). ``accelerate launch`` / ``torchrun`` run it data-parallel.

How the models meet the Trainer:

* ``model(input_ids, attention_mask, labels=...)`` returns ``.loss``: the model builds its own
  decoder input from the labels (CMLM: random masking). No ``generator`` is passed, so the noise
  comes from torch's global RNG, which the Trainer seeds with ``--seed`` and stores in (and
  restores from) its checkpoints.
* Our ``forward`` takes ``**kwargs``, from which the Trainer concludes that the model divides its
  loss by ``num_items_in_batch`` itself; it would then skip the division by the gradient
  accumulation steps and scale the loss by the number of processes. hf_nat losses are per-batch
  means, so ``NATPreTrainedModel`` declares ``accepts_loss_kwargs = False``.
* Validation during training (``--eval_strategy``) reports only the loss: with labels, a NAT
  model's ``logits`` cover only the positions it scored, which cannot be gathered into
  predictions. ``predict_with_generate`` stays off for NAT models because ``Seq2SeqTrainer``
  calls ``generate()`` with autoregressive options (``max_length``, ``num_beams``,
  ``synced_gpus``) that NAT decoding rejects. Instead, after training, the validation split is
  translated with the model's own ``generate()`` (``--eval_generate_kwargs``) and scored with
  sacreBLEU/chrF: one number per run, where a fine-tuning run needs it.

The output folder holds the fine-tuned model and tokenizer (``trainer.save_model``: a normal
hf_nat folder that ``AutoModelForSeq2SeqLM.from_pretrained`` loads), the Trainer's
``checkpoint-N`` folders if saving is on, and ``finetune_summary.json`` (steps, logged losses,
validation scores).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field

from transformers import AutoModelForSeq2SeqLM, AutoTokenizer, Seq2SeqTrainer, Seq2SeqTrainingArguments

import hf_nat  # noqa: F401  (registers hf_nat families with the Auto classes)
from hf_nat.data import Seq2SeqCollator, load_parallel_corpus, require_pairs, source_token_limit, tokenize_corpus
from hf_nat.files import write_json_atomic
from hf_nat.metrics import corpus_scores
from hf_nat.translate import translate

__all__ = ["SUMMARY_FILE", "FinetuneArguments", "adapt_for_trainer", "build_trainer", "finetune", "logged_losses"]

logger = logging.getLogger("hf_nat.finetune")
SUMMARY_FILE = "finetune_summary.json"


@dataclass
class FinetuneArguments:
    """Options of this script; the Trainer's own options come from ``Seq2SeqTrainingArguments``."""

    model: str = field(metadata={"help": "hf_nat checkpoint folder or Hub id to continue training"})
    data: str = field(
        default="../shared/data/multi30k", metadata={"help": "corpus directory, saved DatasetDict or Hub dataset id"}
    )
    src: str = field(default="en", metadata={"help": "source language code"})
    tgt: str = field(default="de", metadata={"help": "target language code"})
    train_split: str = field(default="train")
    valid_split: str | None = field(default="val", metadata={"help": "validation split; empty for none"})
    tokenizer: str | None = field(default=None, metadata={"help": "tokenizer folder; default: the model's"})
    max_length: int = field(default=128, metadata={"help": "longest source/target kept (tokens, eos included)"})
    eval_sentences: int | None = field(default=None, metadata={"help": "validate on the first N sentences"})
    eval_generate_kwargs: str = field(default="{}", metadata={"help": "JSON options of generate() for BLEU"})
    bleu: bool = field(default=True, metadata={"help": "score the validation split after training"})


def load_model_and_tokenizer(args: FinetuneArguments):
    """The checkpoint as an ``AutoModelForSeq2SeqLM`` and its tokenizer (or ``--tokenizer``)."""
    model = AutoModelForSeq2SeqLM.from_pretrained(args.model)
    tokenizer = AutoTokenizer.from_pretrained(args.tokenizer or args.model)
    if len(tokenizer) > model.config.vocab_size:
        raise ValueError(
            f"tokenizer has {len(tokenizer)} tokens but the model's vocab_size is "
            f"{model.config.vocab_size}; pass the tokenizer the model was trained with"
        )
    return model, tokenizer


def load_data(args: FinetuneArguments, tokenizer, model):
    """Tokenized train and validation splits (length-filtered) and the raw validation pairs.

    Both tokenized splits are filtered, since the model raises on sequences longer than it
    accepts: sources beyond its own source limit (an upsampling CTC/Imputer model reads only
    ``max_position_embeddings // upsample_ratio`` tokens), targets beyond its position table,
    either beyond ``--max_length``. The raw pairs (for BLEU) are kept whole, ``translate``
    truncates sources. The validation objects are ``None`` without ``--valid_split``. Every
    split must keep pairs, or a clear ``ValueError`` names it before any training.
    """
    splits = [args.train_split] + ([args.valid_split] if args.valid_split else [])
    corpus = load_parallel_corpus(args.data, args.src, args.tgt, splits=splits)
    if args.valid_split and args.eval_sentences:
        valid = corpus[args.valid_split]
        corpus[args.valid_split] = valid.select(range(min(args.eval_sentences, len(valid))))
    require_pairs(corpus, f"{args.data} ({args.src}-{args.tgt})")
    source_limit = min(args.max_length, source_token_limit(model, default=args.max_length))
    target_limit = min(args.max_length, getattr(model.config, "max_position_embeddings", args.max_length))
    tokenized = tokenize_corpus(
        corpus, tokenizer, max_source_length=source_limit, max_target_length=target_limit, filter_splits=splits
    )
    require_pairs(
        tokenized, f"{args.data} within the length limits (source <= {source_limit}, target <= {target_limit} tokens)"
    )
    if not args.valid_split:
        return tokenized[args.train_split], None, None
    valid = corpus[args.valid_split]
    return tokenized[args.train_split], tokenized[args.valid_split], (list(valid["source"]), list(valid["target"]))


def adapt_for_trainer(model, training_args: Seq2SeqTrainingArguments) -> None:
    """Make a NAT model and the training arguments fit the Trainer (see the module docstring)."""
    if not getattr(model, "is_nat", False):
        return  # an AR seq2seq model (e.g. the Marian teacher) works with the Trainer as it is
    if training_args.predict_with_generate:
        raise ValueError(
            "--predict_with_generate is not supported for NAT models: Seq2SeqTrainer passes "
            "autoregressive generate() options; validation BLEU is computed after training "
            "with --eval_generate_kwargs instead"
        )
    training_args.prediction_loss_only = True


def build_trainer(model, tokenizer, train, valid, training_args: Seq2SeqTrainingArguments) -> Seq2SeqTrainer:
    """A ``Seq2SeqTrainer`` over the tokenized splits with hf_nat's padding collator."""
    evaluating = training_args.eval_strategy != "no"
    if evaluating and valid is None:
        raise ValueError("--eval_strategy needs a --valid_split")
    return Seq2SeqTrainer(
        model=model,
        args=training_args,
        # Labels are padded with -100; the Trainer drops the text columns (not forward() arguments).
        data_collator=Seq2SeqCollator(tokenizer.pad_token_id),
        train_dataset=train,
        eval_dataset=valid if evaluating else None,
        processing_class=tokenizer,
    )


def logged_losses(log_history: list[dict], key: str = "loss") -> list[dict]:
    """``[{"step": s, key: value}, ...]`` of the Trainer's log entries that hold ``key``."""
    return [{"step": entry["step"], key: entry[key]} for entry in log_history if key in entry]


def validation_scores(model, tokenizer, valid_pairs, batch_size: int, generate_kwargs: dict) -> dict:
    """sacreBLEU and chrF of the model's own ``generate()`` on the validation pairs."""
    hypotheses = translate(model, tokenizer, valid_pairs[0], batch_size, **generate_kwargs)
    return corpus_scores(hypotheses, valid_pairs[1])


def finetune(args: FinetuneArguments, training_args: Seq2SeqTrainingArguments) -> dict:
    """Continue training ``args.model`` on ``args.data``; save it and return the run's summary."""
    generate_kwargs = json.loads(args.eval_generate_kwargs)
    model, tokenizer = load_model_and_tokenizer(args)
    adapt_for_trainer(model, training_args)  # before the data, so a bad option fails fast
    train, valid, valid_pairs = load_data(args, tokenizer, model)
    trainer = build_trainer(model, tokenizer, train, valid, training_args)
    result = trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
    trainer.save_model(training_args.output_dir)
    summary = {
        "model": args.model,
        "data": args.data,
        "global_step": trainer.state.global_step,
        "train_loss": result.training_loss,
        "losses": logged_losses(trainer.state.log_history),
        "eval_losses": logged_losses(trainer.state.log_history, "eval_loss"),
        "validation": None,
    }
    if not trainer.is_world_process_zero():
        return summary
    if args.bleu and valid_pairs is not None:
        summary["validation"] = validation_scores(
            trainer.model, tokenizer, valid_pairs, training_args.per_device_eval_batch_size, generate_kwargs
        )
        logger.info("validation %s", summary["validation"])
    write_json_atomic(os.path.join(training_args.output_dir, SUMMARY_FILE), summary)
    return summary
