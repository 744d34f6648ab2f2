"""Train an hf_nat family (or an AR baseline) on a parallel corpus with Accelerate.

One process::

    python training/train.py --model_type cmlm --data ../shared/data/multi30k --src en --tgt de \\
        --output_dir runs/cmlm_en_de --max_minutes 55

Two data-parallel processes on CPU (gloo)::

    ACCELERATE_USE_CPU=true accelerate launch --multi_gpu --num_processes 2 training/train.py ...

The run writes ``checkpoints/step_N`` (Accelerate state, resumed with ``--resume``), ``best/``
(the model with the best validation BLEU so far) and ``final/`` (the last model), each a
``save_pretrained`` folder with the tokenizer and generation config, plus ``train_log.jsonl``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import filecmp
import json
import logging
import math
import os
import shutil
import sys
import time
from dataclasses import dataclass

import datasets
import torch
import torch.nn.functional as F
from accelerate import Accelerator
from accelerate.utils import set_seed
from safetensors.torch import load_file as load_safetensors
from tqdm.auto import tqdm

import hf_nat
from hf_nat.data import (Seq2SeqCollator, TokenBudgetBatchSampler, load_parallel_corpus, require_pairs,
                         source_token_limit, special_token_ids, tokenize_corpus, train_joint_tokenizer)
from hf_nat.metrics import corpus_scores
from hf_nat.data.fertility import INFO_FILE, tokenizer_fingerprint
from transformers import AutoTokenizer, MarianConfig, MarianMTModel

AR_MODEL_TYPES = {"marian"}


def build_parser() -> argparse.ArgumentParser:
    """Command-line options of the training script."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model_type", default="cmlm", help="an hf_nat family (e.g. cmlm) or 'marian' (AR baseline)")
    p.add_argument("--data", default="../shared/data/multi30k", help="local corpus directory or Hub dataset id")
    p.add_argument("--src", default="en")
    p.add_argument("--tgt", default="de")
    p.add_argument("--train_split", default="train")
    p.add_argument("--valid_split", default="val")
    p.add_argument("--output_dir", required=True)
    p.add_argument("--tokenizer", default=None, help="tokenizer folder; trained on the training corpus if absent")
    p.add_argument("--vocab_size", type=int, default=8000)
    # Model size.
    p.add_argument("--d_model", type=int, default=256)
    p.add_argument("--layers", type=int, default=3, help="encoder and decoder layers each")
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--ffn_dim", type=int, default=1024)
    p.add_argument("--dropout", type=float, default=0.1)
    p.add_argument("--max_length", type=int, default=128, help="longest source/target kept for training (tokens)")
    p.add_argument("--max_positions", type=int, default=256)
    p.add_argument("--config_overrides", type=json.loads, default={},
                   help='JSON of family config fields, e.g. {"upsample_ratio": 3, "glancing": true} for ctc_nat')
    # Optimisation.
    p.add_argument("--max_tokens", type=int, default=4096, help="padded tokens per batch and process")
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--warmup", type=int, default=1000)
    p.add_argument("--weight_decay", type=float, default=0.01)
    p.add_argument("--label_smoothing", type=float, default=0.1)
    p.add_argument("--clip_norm", type=float, default=1.0)
    p.add_argument("--max_updates", type=int, default=100000)
    p.add_argument("--max_minutes", type=float, default=None, help="stop after this much training wall time")
    p.add_argument("--max_minutes_this_run", type=float, default=None,
                   help="stop this invocation (with a checkpoint) after N minutes; resume later with --resume")
    p.add_argument("--mixed_precision", default="no", choices=["no", "bf16", "fp16"])
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--threads", type=int, default=None, help="torch threads per process")
    # Checkpoints and validation.
    p.add_argument("--save_every", type=int, default=500, help="updates between resumable checkpoints")
    p.add_argument("--keep_checkpoints", type=int, default=2)
    p.add_argument("--eval_every", type=int, default=1000, help="updates between validation BLEU runs")
    p.add_argument("--eval_sentences", type=int, default=None, help="validate on the first N sentences")
    p.add_argument("--eval_batch_size", type=int, default=64)
    p.add_argument("--eval_generate_kwargs", type=json.loads, default={},
                   help='JSON options for generate() during validation, e.g. {"max_iterations": 4}')
    p.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in output_dir")
    p.add_argument("--fertility", default=None,
                   help="fertility labels from training/align_fertility.py (fertility_nat with decoder_input='fertility')")
    p.add_argument("--init_from", default=None,
                   help="start from the weights of a saved model folder (same shapes; e.g. an Imputer from a CTC model)")
    p.add_argument("--log_every", type=int, default=50)
    p.add_argument("--no_progress", action="store_true")
    return p


# --- model ---------------------------------------------------------------------------------
def build_model(args, tokenizer) -> torch.nn.Module:
    """A fresh model of ``args.model_type`` sized by ``args``, with ids from ``tokenizer``."""
    ids = special_token_ids(tokenizer)
    shape = dict(d_model=args.d_model, encoder_layers=args.layers, decoder_layers=args.layers,
                 encoder_attention_heads=args.heads, decoder_attention_heads=args.heads,
                 encoder_ffn_dim=args.ffn_dim, decoder_ffn_dim=args.ffn_dim, dropout=args.dropout,
                 max_position_embeddings=args.max_positions, vocab_size=len(tokenizer))
    if args.model_type == "marian":
        check_config_overrides(MarianConfig, args.config_overrides)
        config = MarianConfig(**shape, activation_function="relu", scale_embedding=True,
                              pad_token_id=ids["pad"], eos_token_id=ids["eos"], bos_token_id=ids["bos"],
                              decoder_start_token_id=ids["bos"], forced_eos_token_id=ids["eos"],
                              share_encoder_decoder_embeddings=True, tie_word_embeddings=True,
                              **args.config_overrides)
        model = MarianMTModel(config)
        model.generation_config.update(num_beams=5, max_length=args.max_positions, bad_words_ids=None)
        return model
    families = {config_class.model_type: head for config_class, _, head in hf_nat.FAMILIES}
    if args.model_type not in families:
        raise ValueError(f"unknown --model_type {args.model_type!r}; choose from {sorted(families) + ['marian']}")
    head = families[args.model_type]
    check_config_overrides(head.config_class, args.config_overrides)
    config = head.config_class(**shape, label_smoothing=args.label_smoothing, pad_token_id=ids["pad"],
                               bos_token_id=ids["bos"], eos_token_id=ids["eos"], unk_token_id=ids["unk"],
                               mask_token_id=ids["mask"], placeholder_token_id=ids["placeholder"],
                               blank_token_id=ids["blank"], decoder_start_token_id=ids["bos"],
                               **args.config_overrides)
    return head(config)


def check_config_overrides(config_class, overrides: dict) -> None:
    """Raise ``ValueError`` for ``--config_overrides`` keys that are not fields of ``config_class``
    (a misspelt field would otherwise be stored beside the real one, which keeps its default)."""
    fields = {field.name for field in dataclasses.fields(config_class)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(f"--config_overrides: {config_class.__name__} has no field(s) {unknown}; "
                         f"its fields are {sorted(fields)}")


def load_initial_weights(model: torch.nn.Module, folder: str) -> dict:
    """Copy the safetensors weights of a saved model folder into ``model`` (a warm start).

    Every tensor of the folder must exist in ``model`` with the same shape; parameters the folder
    lacks keep their fresh initialisation. Returns how many tensors were loaded and left fresh.
    """
    path = os.path.join(folder, "model.safetensors")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"--init_from: no model.safetensors in {folder}")
    weights = load_safetensors(path)
    weights.pop("glancing_updates", None)  # a training-progress counter, not a weight: the new run starts at 0
    own = model.state_dict()
    unknown = sorted(set(weights) - set(own))
    mismatched = sorted(k for k in weights if k in own and weights[k].shape != own[k].shape)
    if unknown or mismatched:
        raise ValueError(f"--init_from {folder} does not fit this model: unknown tensors {unknown[:5]}, "
                         f"shape mismatches {mismatched[:5]}")
    missing = model.load_state_dict(weights, strict=False).missing_keys
    loaded_storage = {own[k].data_ptr() for k in weights}
    fresh = [k for k in missing if own[k].data_ptr() not in loaded_storage]  # tied copies were loaded
    return {"loaded": len(weights), "fresh": fresh}


def compute_loss(model, batch: dict, generator: torch.Generator, label_smoothing: float):
    """(loss, named parts) for a batch: NAT families return their own loss; AR models get
    label-smoothed cross-entropy over the shifted target."""
    if getattr(getattr(model, "module", model), "is_nat", False):  # DDP wraps the model in .module
        out = model(**batch, generator=generator)
        return out.loss, out.losses
    logits = model(**batch).logits
    loss = F.cross_entropy(logits.float().flatten(0, 1), batch["labels"].flatten(), ignore_index=-100,
                           label_smoothing=label_smoothing)
    return loss, {"tokens": loss.detach()}


def inverse_sqrt_lr(step: int, base_lr: float, warmup: int) -> float:
    """Linear warm-up to ``base_lr`` over ``warmup`` updates, then decay ∝ 1/sqrt(step)."""
    step = max(step, 1)
    return base_lr * min(step / max(warmup, 1), math.sqrt(max(warmup, 1) / step))


# --- state that travels with checkpoints ----------------------------------------------------
@dataclass
class TrainState:
    """Progress of a run, saved with every checkpoint so ``--resume`` continues bit-identically."""

    generator: torch.Generator
    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    best_bleu: float = -1.0
    train_seconds: float = 0.0
    target_tokens: int = 0

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state(), "step": self.step, "epoch": self.epoch,
                "batch_in_epoch": self.batch_in_epoch, "best_bleu": self.best_bleu,
                "train_seconds": self.train_seconds, "target_tokens": self.target_tokens}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
        for key in ("step", "epoch", "batch_in_epoch", "best_bleu", "train_seconds", "target_tokens"):
            setattr(self, key, state[key])


# --- data ------------------------------------------------------------------------------------
def prepare_tokenizer(args, accelerator: Accelerator, corpus) -> object:
    """Load ``--tokenizer``, or train a joint one on the training split (main process) and share it."""
    path = args.tokenizer or os.path.join(args.output_dir, "tokenizer")
    if not os.path.exists(os.path.join(path, "tokenizer.json")):
        if args.tokenizer:
            raise FileNotFoundError(f"no tokenizer.json in --tokenizer {args.tokenizer}")
        if accelerator.is_main_process:
            train = corpus[args.train_split]
            train_joint_tokenizer(list(train["source"]) + list(train["target"]), vocab_size=args.vocab_size,
                                  output_dir=path, model_max_length=args.max_positions)
        accelerator.wait_for_everyone()
    return AutoTokenizer.from_pretrained(path)


def load_corpus(args, accelerator: Accelerator):
    """The training and validation splits as ``source``/``target`` text, and the tokenizer.

    Both splits must hold pairs: an empty training split would fail deep inside training, an empty
    validation split only after it, in the scorer, with nothing saved. Checked before the tokenizer
    is trained, so no tokenizer of an empty corpus is left behind.
    """
    corpus = load_parallel_corpus(args.data, args.src, args.tgt, splits=[args.train_split, args.valid_split])
    require_pairs(corpus, f"{args.data} ({args.src}-{args.tgt})")
    return corpus, prepare_tokenizer(args, accelerator, corpus)


def load_data(args, corpus, tokenizer, model):
    """Tokenized training examples and raw validation pairs ``(sources, targets)``.

    Training pairs are dropped when the source is longer than ``--max_length`` or than ``model``
    accepts (its own source limit: an upsampling CTC/Imputer model reads only
    ``max_position_embeddings // upsample_ratio`` tokens), or the target longer than ``--max_length``.
    """
    source_limit = min(args.max_length, source_token_limit(model, default=args.max_length))
    train = tokenize_corpus(corpus[args.train_split], tokenizer, max_source_length=source_limit,
                            max_target_length=args.max_length, filter_splits=[args.train_split])
    require_pairs({args.train_split: train}, f"{args.data} within the length limits (source <= {source_limit}, "
                                             f"target <= {args.max_length} tokens); raise --max_length or --max_positions")
    examples = [{"input_ids": s, "labels": t} for s, t in zip(train["input_ids"], train["labels"])]
    if args.fertility:
        attach_fertility(examples, train, tokenizer, args.fertility, args.train_split)
    valid = corpus[args.valid_split]
    if args.eval_sentences:
        valid = valid.select(range(min(args.eval_sentences, len(valid))))
    return examples, (list(valid["source"]), list(valid["target"]))


def attach_fertility(examples: list[dict], train, tokenizer, folder: str, split: str) -> None:
    """Add each example's cached fertility labels (matched by source and target text)."""
    with open(os.path.join(folder, INFO_FILE)) as f:
        info = json.load(f)
    if info["tokenizer_fingerprint"] != tokenizer_fingerprint(tokenizer):
        raise ValueError(f"--fertility {folder} was computed with another tokenizer; rerun training/align_fertility.py")
    cached = datasets.load_from_disk(folder)[split]
    by_pair = {(s, t): f for s, t, f in zip(cached["source"], cached["target"], cached["fertility"])}
    missing = 0
    for example, source, target in zip(examples, train["source"], train["target"]):
        fertility = by_pair.get((source, target))
        if fertility is None or len(fertility) != len(example["input_ids"]):
            missing += 1
        else:
            example["fertility"] = fertility
    if missing:
        raise ValueError(f"--fertility {folder} lacks labels for {missing} of {len(examples)} training pairs; "
                         f"rerun training/align_fertility.py on this corpus")


# --- validation ------------------------------------------------------------------------------
@torch.inference_mode()
def translate(model, tokenizer, sources: list[str], batch_size: int = 64, **generate_kwargs) -> list[str]:
    """Translate ``sources`` with the model's own ``generate()`` in length-sorted batches (order kept).

    Sources longer than the model accepts (:func:`~hf_nat.data.source_token_limit`) are truncated.
    """
    model.eval()
    source_limit = source_token_limit(model)  # None: the tokenizer's model_max_length
    order = sorted(range(len(sources)), key=lambda i: len(sources[i]))
    out = [""] * len(sources)
    device = next(model.parameters()).device
    for start in range(0, len(order), batch_size):
        index = order[start:start + batch_size]
        enc = tokenizer([sources[i] for i in index], return_tensors="pt", padding=True, truncation=True,
                        max_length=source_limit).to(device)
        ids = model.generate(**enc, **generate_kwargs)
        ids = ids.sequences if hasattr(ids, "sequences") else ids
        for i, text in zip(index, tokenizer.batch_decode(ids, skip_special_tokens=True)):
            out[i] = text
    return out


def validate(model, tokenizer, valid, args) -> dict:
    """Validation BLEU/chrF of the model's own decoding."""
    hyps = translate(model, tokenizer, valid[0], args.eval_batch_size, **args.eval_generate_kwargs)
    return corpus_scores(hyps, valid[1])


def save_model(model, tokenizer, path: str, extra: dict | None = None) -> None:
    """``save_pretrained`` model, tokenizer and generation config into ``path`` (replaced atomically)."""
    tmp = path + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    if extra:
        with open(os.path.join(tmp, "training_info.json"), "w") as f:
            json.dump(extra, f, indent=2)
    shutil.rmtree(path, ignore_errors=True)
    os.replace(tmp, path)


def share_identical_weights(best: str, final: str) -> bool:
    """When ``final``'s weights file holds the same bytes as ``best``'s (the last model was the
    best), make it a hard link to ``best``'s so the run keeps one copy. Returns whether it did."""
    paths = [os.path.join(folder, "model.safetensors") for folder in (best, final)]
    if not all(os.path.isfile(p) for p in paths) or os.path.samefile(*paths):
        return False
    if os.path.getsize(paths[0]) != os.path.getsize(paths[1]) or not filecmp.cmp(*paths, shallow=False):
        return False
    tmp = paths[1] + ".link"
    os.link(paths[0], tmp)
    os.replace(tmp, paths[1])
    return True


def progress_bar(args, state: TrainState, disable: bool) -> tqdm:
    """The training bar: over the time budget (seconds, with total and ETA) when ``--max_minutes``
    is set, else over ``--max_updates``; its postfix shows the update and the running loss."""
    if args.max_minutes:
        budget = round(args.max_minutes * 60)
        return tqdm(total=budget, initial=min(round(state.train_seconds), budget), disable=disable,
                    desc=f"train {args.model_type}", unit="s",
                    bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}<{remaining}{postfix}")
    return tqdm(total=args.max_updates, initial=state.step, disable=disable, desc=f"train {args.model_type}",
                unit="update")


# --- checkpoints -----------------------------------------------------------------------------
def checkpoint_dirs(output_dir: str) -> list[str]:
    """Complete checkpoints under ``output_dir/checkpoints``, oldest first."""
    root = os.path.join(output_dir, "checkpoints")
    if not os.path.isdir(root):
        return []
    names = [n for n in os.listdir(root) if n.startswith("step_") and n[5:].isdigit()]
    return [os.path.join(root, n) for n in sorted(names, key=lambda n: int(n[5:]))]


def save_checkpoint(accelerator: Accelerator, state: TrainState, args) -> None:
    """Write a resumable checkpoint (written to a temp folder, then renamed) and prune old ones."""
    final = os.path.join(args.output_dir, "checkpoints", f"step_{state.step}")
    tmp = final + ".tmp"
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
    accelerator.wait_for_everyone()
    with quiet_tied_weight_dedupe():
        accelerator.save_state(tmp)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        for old in checkpoint_dirs(args.output_dir)[:-args.keep_checkpoints]:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()


def resume(accelerator: Accelerator, args) -> None:
    """Load the latest checkpoint; a clear error names the folder when it is missing or broken."""
    found = checkpoint_dirs(args.output_dir)
    if not found:
        raise FileNotFoundError(f"--resume: no checkpoint under {os.path.join(args.output_dir, 'checkpoints')}")
    try:
        accelerator.load_state(found[-1])
    except Exception as error:  # accelerate/torch raise many kinds; name the folder for the user
        raise RuntimeError(f"--resume: checkpoint {found[-1]} could not be loaded ({error}); "
                           f"delete it to resume from the one before") from error
    accelerator.print(f"resumed from {found[-1]}")


def drop_log_records_after(log_path: str, step: int) -> None:
    """Rewrite the JSON-lines log without the records of steps after ``step`` (atomically).

    A resumed run repeats the updates made after its checkpoint; without this their records from
    the interrupted run would stay, and the log would show those steps twice. A line the kill cut
    short is dropped as well.
    """
    if not os.path.isfile(log_path):
        return
    kept = []
    with open(log_path) as f:
        for line in f:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if record["step"] <= step:
                kept.append(line if line.endswith("\n") else line + "\n")
    tmp = log_path + ".tmp"
    with open(tmp, "w") as f:
        f.writelines(kept)
    os.replace(tmp, log_path)


def _not_tied_weight_dedupe_notice(record: logging.LogRecord) -> bool:
    """Logging filter: False for accelerate's notice that it stored tied tensors once."""
    message = record.getMessage()
    return not ("Removed shared tensor" in message and "while saving" in message)


@contextlib.contextmanager
def quiet_tied_weight_dedupe():
    """Inside the block, drop accelerate's "Removed shared tensor ... while saving" notice.

    The models tie their embeddings (and output projection) on purpose; accelerate stores a tied
    tensor once and says so at every checkpoint. Only that message is dropped: other records of
    accelerate's logger still pass.
    """
    accelerate_logger = logging.getLogger("accelerate.utils.other")
    accelerate_logger.addFilter(_not_tied_weight_dedupe_notice)
    try:
        yield
    finally:
        accelerate_logger.removeFilter(_not_tied_weight_dedupe_notice)


# --- the loop --------------------------------------------------------------------------------
def train(args) -> dict:
    """Run training; returns a summary (updates, wall time, best validation BLEU)."""
    if args.threads:
        torch.set_num_threads(args.threads)
    accelerator = Accelerator(mixed_precision=args.mixed_precision)
    set_seed(args.seed)
    os.makedirs(args.output_dir, exist_ok=True)
    corpus, tokenizer = load_corpus(args, accelerator)
    model = build_model(args, tokenizer)  # before the data: its own source limit filters the pairs
    examples, valid = load_data(args, corpus, tokenizer, model)
    if args.init_from and not args.resume:
        accelerator.print(f"initialised from {args.init_from}: {load_initial_weights(model, args.init_from)}")
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}],
                                  lr=args.lr, betas=(0.9, 0.98), eps=1e-8)
    model, optimizer = accelerator.prepare(model, optimizer)
    # Masking noise has its own generator (one stream per process), so it is saved and restored
    # with the checkpoint independently of the global RNG that dropout uses.
    generator = torch.Generator().manual_seed(args.seed * 1000 + accelerator.process_index)
    state = TrainState(generator=generator)
    accelerator.register_for_checkpointing(state)
    if args.resume:
        resume(accelerator, args)
        if accelerator.is_main_process:
            drop_log_records_after(os.path.join(args.output_dir, "train_log.jsonl"), state.step)

    lengths = [max(len(e["input_ids"]), len(e["labels"])) for e in examples]
    sampler = TokenBudgetBatchSampler(lengths, args.max_tokens, shuffle=True, seed=args.seed,
                                      num_replicas=accelerator.num_processes, rank=accelerator.process_index)
    collate = Seq2SeqCollator(pad_token_id=tokenizer.pad_token_id)
    unwrapped = accelerator.unwrap_model(model)
    log_path = os.path.join(args.output_dir, "train_log.jsonl")
    bar = progress_bar(args, state, disable=args.no_progress or not accelerator.is_main_process)
    window = {"loss": 0.0, "n": 0, "tokens": 0, "start": time.perf_counter()}
    stop = False
    started = time.perf_counter() - state.train_seconds
    run_started = time.perf_counter()

    def out_of_time() -> bool:
        if args.max_minutes is None and args.max_minutes_this_run is None:
            return False
        # Every process must agree, or one would wait forever for the others' gradients.
        now = time.perf_counter()
        elapsed = torch.tensor([now - started, now - run_started], device=accelerator.device)
        total, this_run = accelerator.reduce(elapsed, "max").tolist()
        return ((args.max_minutes is not None and total > args.max_minutes * 60)
                or (args.max_minutes_this_run is not None and this_run > args.max_minutes_this_run * 60))

    while not stop and state.step < args.max_updates:
        sampler.set_epoch(state.epoch)
        batches = list(sampler)
        for batch_index in range(state.batch_in_epoch, len(batches)):
            model.train()
            batch = {k: v.to(accelerator.device) for k, v in collate([examples[i] for i in batches[batch_index]]).items()}
            lr = inverse_sqrt_lr(state.step + 1, args.lr, args.warmup)
            for group in optimizer.param_groups:
                group["lr"] = lr
            with accelerator.autocast():
                loss, parts = compute_loss(model, batch, state.generator, args.label_smoothing)
            accelerator.backward(loss)
            if args.clip_norm > 0:
                accelerator.clip_grad_norm_(model.parameters(), args.clip_norm)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            state.step += 1
            state.batch_in_epoch = batch_index + 1
            target_tokens = int((batch["labels"] != -100).sum())
            state.target_tokens += target_tokens
            window["loss"] += loss.item()
            window["n"] += 1
            window["tokens"] += target_tokens
            state.train_seconds = time.perf_counter() - started
            bar.set_postfix(step=state.step, loss=f"{window['loss'] / window['n']:.3f}", refresh=False)
            bar.update((round(state.train_seconds) if args.max_minutes else state.step) - bar.n)

            if state.step % args.log_every == 0:
                seconds = time.perf_counter() - window["start"]
                record = {"step": state.step, "epoch": state.epoch, "loss": window["loss"] / window["n"], "lr": lr,
                          "target_tokens_per_s": window["tokens"] * accelerator.num_processes / max(seconds, 1e-9),
                          **{k: float(v) for k, v in parts.items()}, "train_seconds": state.train_seconds}
                if accelerator.is_main_process:
                    with open(log_path, "a") as f:
                        f.write(json.dumps(record) + "\n")
                window = {"loss": 0.0, "n": 0, "tokens": 0, "start": time.perf_counter()}

            stop = state.step >= args.max_updates or out_of_time()
            if state.step % args.eval_every == 0 or stop:
                evaluate_and_keep_best(accelerator, unwrapped, tokenizer, valid, state, args, log_path)
            if state.step % args.save_every == 0 or stop:
                save_checkpoint(accelerator, state, args)
            if stop:
                break
        else:
            state.epoch += 1
            state.batch_in_epoch = 0
    bar.close()
    summary = {"updates": state.step, "epochs": state.epoch, "train_minutes": state.train_seconds / 60,
               "best_valid_bleu": state.best_bleu, "target_tokens": state.target_tokens,
               "processes": accelerator.num_processes, "mixed_precision": args.mixed_precision,
               "threads": torch.get_num_threads(), "args": vars(args)}
    if accelerator.is_main_process:
        save_model(unwrapped, tokenizer, os.path.join(args.output_dir, "final"), summary)
        if not os.path.isdir(os.path.join(args.output_dir, "best")):
            save_model(unwrapped, tokenizer, os.path.join(args.output_dir, "best"), summary)
        share_identical_weights(os.path.join(args.output_dir, "best"), os.path.join(args.output_dir, "final"))
        with open(os.path.join(args.output_dir, "summary.json"), "w") as f:
            json.dump(summary, f, indent=2)
    accelerator.wait_for_everyone()
    return summary


def evaluate_and_keep_best(accelerator, model, tokenizer, valid, state: TrainState, args, log_path: str) -> None:
    """Validation BLEU on the main process; a new best is saved to ``output_dir/best``."""
    if accelerator.is_main_process:
        scores = validate(model, tokenizer, valid, args)
        improved = scores["bleu"] > state.best_bleu
        if improved:
            state.best_bleu = scores["bleu"]
            save_model(model, tokenizer, os.path.join(args.output_dir, "best"),
                       {"step": state.step, "valid_bleu": scores["bleu"], "valid_chrf": scores["chrf"],
                        "train_minutes": state.train_seconds / 60, "args": vars(args)})
        with open(log_path, "a") as f:
            f.write(json.dumps({"step": state.step, "valid_bleu": scores["bleu"], "valid_chrf": scores["chrf"],
                                "best": improved, "train_seconds": state.train_seconds}) + "\n")
        accelerator.print(f"step {state.step}: valid BLEU {scores['bleu']:.2f} chrF {scores['chrf']:.2f}"
                          + (" (best)" if improved else ""))
    # Every process keeps the same best score, so checkpoints agree whichever rank writes them.
    best = torch.tensor([state.best_bleu], device=accelerator.device)
    state.best_bleu = accelerator.reduce(best, "max").item()
    model.train()


def main(argv: list[str] | None = None) -> dict:
    """Entry point: parse options and train."""
    return train(build_parser().parse_args(argv))


if __name__ == "__main__":
    main(sys.argv[1:])
