"""The training loop of every hf_nat family and of the AR baseline, with Accelerate.

``train(args)`` takes the options of ``hf-nat train`` (:mod:`hf_nat.cli`): it loads the corpus
(:data:`TASKS`: a parallel corpus, or audio with transcripts for ``--task speech``; training the
tokenizer on it if needed), builds the model, trains it under a token budget per batch with an
inverse-square-root schedule, validates with the model's own ``generate()`` every ``eval_every``
updates (BLEU, or WER for speech; keeping the best as ``best/``), checkpoints every ``save_every``
updates (resumable bit-identically) and stops at ``max_updates`` or the time budget. Data-parallel
under ``accelerate launch``; every process agrees when to stop.
"""

from __future__ import annotations

import json
import math
import os
import time

import torch
import torch.nn.functional as F
from accelerate import Accelerator
from accelerate.utils import set_seed
from tqdm.auto import tqdm
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

from hf_nat.auxiliary_ctc import AuxiliaryCTC
from hf_nat.checkpoints import (
    TrainState,
    drop_log_records_after,
    resume,
    save_checkpoint,
    save_model,
    share_identical_weights,
)
from hf_nat.data import (
    Seq2SeqCollator,
    TokenBudgetBatchSampler,
    load_parallel_corpus,
    require_pairs,
    source_token_limit,
    special_token_ids,
    tokenize_corpus,
    train_joint_tokenizer,
)
from hf_nat.data.fertility import attach_fertility
from hf_nat.distillation import check_same_tokenizer
from hf_nat.metrics import corpus_scores
from hf_nat.model_builder import build_model, load_initial_weights
from hf_nat.translate import translate

__all__ = ["compute_loss", "inverse_sqrt_lr", "progress_bar", "train"]


def compute_loss(model, batch: dict, generator: torch.Generator, label_smoothing: float):
    """(loss, named parts) for a batch: NAT families return their own loss; AR models get
    label-smoothed cross-entropy over the shifted target (plus CTC on the encoder under ``--ctc_weight``)."""
    inner = getattr(model, "module", model)  # DDP wraps the model in .module
    if getattr(inner, "is_nat", False):
        out = model(**batch, generator=generator)
        return out.loss, out.losses
    if isinstance(inner, AuxiliaryCTC):
        return model(**batch, label_smoothing=label_smoothing)
    logits = model(**batch).logits
    loss = F.cross_entropy(
        logits.float().flatten(0, 1), batch["labels"].flatten(), ignore_index=-100, label_smoothing=label_smoothing
    )
    return loss, {"tokens": loss.detach()}


def inverse_sqrt_lr(step: int, base_lr: float, warmup: int) -> float:
    """Linear warm-up to ``base_lr`` over ``warmup`` updates, then decay ∝ 1/sqrt(step)."""
    step = max(step, 1)
    return base_lr * min(step / max(warmup, 1), math.sqrt(max(warmup, 1) / step))


def prepare_tokenizer(args, accelerator: Accelerator, texts) -> object:
    """Load ``--tokenizer``, or train one on ``texts()`` (main process) and share it."""
    path = args.tokenizer or os.path.join(args.output_dir, "tokenizer")
    if not os.path.exists(os.path.join(path, "tokenizer.json")):
        if args.tokenizer:
            raise FileNotFoundError(f"no tokenizer.json in --tokenizer {args.tokenizer}")
        if accelerator.is_main_process:
            train_joint_tokenizer(
                texts(), vocab_size=args.vocab_size, output_dir=path, model_max_length=args.max_positions
            )
        accelerator.wait_for_everyone()
    return AutoTokenizer.from_pretrained(path)


class TranslationData:
    """A parallel corpus (``--data``, ``--src``, ``--tgt``): token-id examples, validation BLEU.

    Both splits must hold pairs: an empty training split would fail deep inside training, an empty
    validation split only after it, in the scorer, with nothing saved. Checked before the tokenizer
    is trained, so no tokenizer of an empty corpus is left behind.
    """

    def __init__(self, args, accelerator: Accelerator):
        self.args = args
        self.corpus = load_parallel_corpus(args.data, args.src, args.tgt, splits=[args.train_split, args.valid_split])
        require_pairs(self.corpus, f"{args.data} ({args.src}-{args.tgt})")
        train = self.corpus[args.train_split]
        self.tokenizer = prepare_tokenizer(args, accelerator, lambda: list(train["source"]) + list(train["target"]))
        self.saved_with_model = self.tokenizer
        self.model_overrides: dict = {}
        self.collate = Seq2SeqCollator(pad_token_id=self.tokenizer.pad_token_id)

    def examples(self, model) -> tuple[list[dict], list[int]]:
        """Tokenized training examples and their lengths for the batch sampler.

        Training pairs are dropped when the source is longer than ``--max_length`` or than ``model``
        accepts (its own source limit: an upsampling CTC/Imputer model reads only
        ``max_position_embeddings // upsample_ratio`` tokens), or the target longer than ``--max_length``.
        """
        args = self.args
        source_limit = min(args.max_length, source_token_limit(model, default=args.max_length))
        train = tokenize_corpus(
            self.corpus[args.train_split],
            self.tokenizer,
            max_source_length=source_limit,
            max_target_length=args.max_length,
            filter_splits=[args.train_split],
        )
        require_pairs(
            {args.train_split: train},
            f"{args.data} within the length limits (source <= {source_limit}, "
            f"target <= {args.max_length} tokens); raise --max_length or --max_positions",
        )
        examples = [{"input_ids": s, "labels": t} for s, t in zip(train["input_ids"], train["labels"])]
        if args.fertility:
            attach_fertility(examples, train, self.tokenizer, args.fertility, args.train_split)
        valid = self.corpus[args.valid_split]
        if args.eval_sentences:
            valid = valid.select(range(min(args.eval_sentences, len(valid))))
        self.valid = (list(valid["source"]), list(valid["target"]))
        return examples, [max(len(e["input_ids"]), len(e["labels"])) for e in examples]

    def validate(self, model) -> tuple[float, dict]:
        """(score to maximise, named validation metrics): BLEU and chrF of the model's own decoding."""
        args = self.args
        hyps = translate(model, self.tokenizer, self.valid[0], args.eval_batch_size, **args.eval_generate_kwargs)
        scores = corpus_scores(hyps, self.valid[1])
        return scores["bleu"], scores


class SpeechData:
    """A speech corpus (``--task speech``): log-mel features from a fresh Speech2Text feature
    extractor (``--num_mel_bins``, saved with the model as a ``Speech2TextProcessor``), a tokenizer
    trained on the transcripts, validation WER (the score maximised is its negative).

    Clips longer than the model's source positions and transcripts longer than ``--max_length``
    tokens are dropped from training, and transcripts holding characters outside the tokenizer
    are counted (their characters train as ``<unk>``); both are reported.
    """

    def __init__(self, args, accelerator: Accelerator):
        from transformers import Speech2TextFeatureExtractor, Speech2TextProcessor

        from hf_nat.data.speech import SpeechCollator, load_speech_corpus

        self.args, self.accelerator = args, accelerator
        self.corpus = load_speech_corpus(
            args.data,
            [args.train_split, args.valid_split],
            audio_column=args.audio_column,
            text_column=args.text_column,
        )
        train = self.corpus[args.train_split]
        self.tokenizer = prepare_tokenizer(args, accelerator, lambda: list(train["target"]))
        self.feature_extractor = Speech2TextFeatureExtractor(
            feature_size=args.num_mel_bins, num_mel_bins=args.num_mel_bins, normalize_vars=False
        )
        self.saved_with_model = Speech2TextProcessor(self.feature_extractor, self.tokenizer)
        self.model_overrides = {
            "source_modality": "audio",
            "num_mel_bins": args.num_mel_bins,
            "subsampling_conv_layers": args.subsampling_conv_layers,
        }
        self.collate = SpeechCollator()

    def examples(self, model) -> tuple[list[dict], list[int]]:
        """Training examples (features, token ids) and their lengths (feature frames) for the sampler."""
        from hf_nat.data.speech import speech_features

        args = self.args
        max_frames = speech_source_frames(model)
        train = self.corpus[args.train_split]
        features = speech_features(train["audio"], self.feature_extractor, max_frames=max_frames)
        labels = self.tokenizer(list(train["target"]))["input_ids"]
        unk = self.tokenizer.unk_token_id
        with_unknown = sum(unk in ids for ids in labels)
        examples = [
            {"input_features": f, "labels": ids}
            for f, ids in zip(features, labels)
            if f is not None and len(ids) <= args.max_length
        ]
        self.accelerator.print(
            f"speech training examples: {len(examples)} of {len(labels)} (dropped {len(labels) - len(examples)} "
            f"longer than {max_frames} frames or {args.max_length} tokens); {with_unknown} transcripts hold "
            "characters outside the tokenizer (trained as <unk>)"
        )
        require_pairs({args.train_split: examples}, f"{args.data} within the length limits")
        valid = self.corpus[args.valid_split]
        if args.eval_sentences:
            valid = valid.select(range(min(args.eval_sentences, len(valid))))
        self.valid = (speech_features(valid["audio"], self.feature_extractor), list(valid["target"]))
        return examples, [len(e["input_features"]) for e in examples]

    def validate(self, model) -> tuple[float, dict]:
        """(minus WER, named metrics): WER and CER (percent) of the model's own decoding."""
        from hf_nat.data.speech import transcribe
        from hf_nat.metrics import error_rates

        args = self.args
        hyps = transcribe(model, self.tokenizer, self.valid[0], args.eval_batch_size, **args.eval_generate_kwargs)
        scores = error_rates(hyps, self.valid[1])
        return -scores["wer"], scores


def speech_source_frames(model) -> int:
    """The longest clip, in feature frames, that a speech ``model`` (hf_nat or transformers) reads."""
    model = getattr(model, "module", model)
    stated = getattr(model, "max_source_positions", None)
    if callable(stated):
        return int(stated())
    config = model.config
    return int(config.max_source_positions) * 2 ** int(config.num_conv_layers)


class CaptionData:
    """An image–caption corpus (``--task captioning``): pixels from the model's image processor (a
    fresh ViT processor at ``--image_size``, or ``--vision_encoder``'s), saved with the tokenizer as a
    ``TrOCRProcessor``; one training example per (image, caption) pair; a tokenizer trained on the
    captions; validation BLEU-4 against all of an image's captions.

    The image encoder is a ViT of the model's size (``--layers`` layers, ``--patch_size`` patches)
    or the pretrained ``--vision_encoder``; a NAT gets no encoder layers of its own on top, so it and
    the VisionEncoderDecoder baseline share one encoder design. Captions longer than
    ``--max_length`` tokens are dropped from training and counted.
    """

    def __init__(self, args, accelerator: Accelerator):
        from transformers import AutoImageProcessor, TrOCRProcessor, ViTConfig, ViTImageProcessor

        from hf_nat.data.captions import load_caption_corpus
        from hf_nat.data.images import CaptionCollator

        self.args, self.accelerator = args, accelerator
        self.corpus = load_caption_corpus(
            args.data,
            [args.train_split, args.valid_split],
            image_column=args.image_column,
            caption_columns=args.caption_columns,
        )
        train = self.corpus[args.train_split]
        self.tokenizer = prepare_tokenizer(args, accelerator, lambda: [c for refs in train["references"] for c in refs])
        if args.vision_encoder:
            from transformers import AutoConfig

            self.image_processor = AutoImageProcessor.from_pretrained(args.vision_encoder)
            vision_config = AutoConfig.from_pretrained(args.vision_encoder).to_dict()
        else:
            side = args.image_size
            self.image_processor = ViTImageProcessor(
                size={"height": side, "width": side}, image_mean=[0.5] * 3, image_std=[0.5] * 3
            )
            vision_config = ViTConfig(
                hidden_size=args.d_model,
                num_hidden_layers=args.layers,
                num_attention_heads=args.heads,
                intermediate_size=args.ffn_dim,
                hidden_dropout_prob=args.dropout,
                image_size=side,
                patch_size=args.patch_size,
            ).to_dict()
        self.saved_with_model = TrOCRProcessor(image_processor=self.image_processor, tokenizer=self.tokenizer)
        self.model_overrides = {"source_modality": "image", "vision_config": vision_config, "encoder_layers": 0}
        self.collate = CaptionCollator()

    def examples(self, model) -> tuple[list[dict], list[int]]:
        """Training examples (pixels, caption ids), one per caption, and their lengths for the
        sampler: the encoder states of an image."""
        from hf_nat.data.images import image_pixels, image_states

        args = self.args
        train = self.corpus[args.train_split]
        pixels = image_pixels(train["image"], self.image_processor)
        examples, long_captions = [], 0
        for image, references in enumerate(train["references"]):
            for ids in self.tokenizer(list(references))["input_ids"]:
                if len(ids) > args.max_length:
                    long_captions += 1
                    continue
                examples.append({"pixel_values": pixels[image], "labels": ids})
        self.accelerator.print(
            f"captioning training examples: {len(examples)} captions of {len(train)} images "
            f"(dropped {long_captions} captions longer than {args.max_length} tokens)"
        )
        require_pairs({args.train_split: examples}, f"{args.data} within the length limits")
        valid = self.corpus[args.valid_split]
        if args.eval_sentences:
            valid = valid.select(range(min(args.eval_sentences, len(valid))))
        self.valid = (image_pixels(valid["image"], self.image_processor), [list(r) for r in valid["references"]])
        states = image_states(self.model_overrides["vision_config"])
        return examples, [states] * len(examples)

    def validate(self, model) -> tuple[float, dict]:
        """(BLEU-4, named metrics) of the model's own captions against all references."""
        from hf_nat.data.images import caption_pixels
        from hf_nat.metrics import caption_scores

        args = self.args
        hyps = caption_pixels(model, self.tokenizer, self.valid[0], args.eval_batch_size, **args.eval_generate_kwargs)
        scores = caption_scores(hyps, self.valid[1])
        return scores["bleu4"], scores


TASKS = {"translation": TranslationData, "speech": SpeechData, "captioning": CaptionData}
# How a training summary names the best validation score of each task (and its sign).
BEST_SCORE_NAMES = {"translation": ("best_valid_bleu", 1), "speech": ("best_valid_wer", -1),
                    "captioning": ("best_valid_bleu4", 1)}  # fmt: skip


def progress_bar(args, state: TrainState, disable: bool) -> tqdm:
    """The training bar: over the time budget (seconds, with total and ETA) when ``--max_minutes``
    is set, else over ``--max_updates``; its postfix shows the update and the running loss."""
    if args.max_minutes:
        budget = round(args.max_minutes * 60)
        return tqdm(
            total=budget,
            initial=min(round(state.train_seconds), budget),
            disable=disable,
            desc=f"train {args.model_type}",
            unit="s",
            bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}<{remaining}{postfix}",
        )
    return tqdm(
        total=args.max_updates, initial=state.step, disable=disable, desc=f"train {args.model_type}", unit="update"
    )


def attach_hint_teacher(model, path: str | None, tokenizer, device) -> None:
    """Load the AR teacher of ``--hint_teacher`` and give it to a model whose config asks for hints;
    a teacher without a model asking for it, a model asking without one, another tokenizer or a
    teacher without cross-attention are errors before the first update."""
    wants = getattr(model, "uses_decoder_internals", False)
    if path is None:
        if wants:
            raise ValueError("hint_hidden_weight / hint_alignment_weight > 0 need `--hint_teacher PATH` (an AR model)")
        return
    if not wants:
        raise ValueError("--hint_teacher is given but the config enables no hint (hint_*_weight > 0)")
    if not os.path.isfile(os.path.join(path, "config.json")):
        raise FileNotFoundError(f"--hint_teacher: no model folder (config.json) at {path}")
    teacher_tokenizer, teacher = AutoTokenizer.from_pretrained(path), AutoModelForSeq2SeqLM.from_pretrained(path)
    check_same_tokenizer(teacher_tokenizer, tokenizer, "Hints need a teacher trained with the student's tokenizer.")
    model.attach_hint_teacher(teacher.to(device))


def train(args) -> dict:
    """Run training; returns a summary (updates, wall time, best validation BLEU)."""
    if args.threads:
        torch.set_num_threads(args.threads)
    accelerator = Accelerator(mixed_precision=args.mixed_precision)
    set_seed(args.seed)
    os.makedirs(args.output_dir, exist_ok=True)
    data = TASKS[args.task](args, accelerator)
    tokenizer = data.tokenizer
    model = build_model(args, tokenizer, data.model_overrides)  # before the data: its own limits filter it
    examples, lengths = data.examples(model)
    if args.init_from and not args.resume:
        accelerator.print(f"initialised from {args.init_from}: {load_initial_weights(model, args.init_from)}")
    attach_hint_teacher(model, getattr(args, "hint_teacher", None), tokenizer, accelerator.device)
    if args.ctc_weight:
        model = AuxiliaryCTC(model, args.ctc_weight, special_token_ids(tokenizer)["blank"])
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": args.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=args.lr,
        betas=(0.9, 0.98),
        eps=1e-8,
    )
    model, optimizer = accelerator.prepare(model, optimizer)
    # Masking noise has its own generator (one stream per process), so it is saved and restored
    # with the checkpoint independently of the global RNG that dropout uses.
    generator = torch.Generator().manual_seed(args.seed * 1000 + accelerator.process_index)
    state = TrainState(generator=generator)
    accelerator.register_for_checkpointing(state)
    if args.resume:
        resume(accelerator, args.output_dir)
        if accelerator.is_main_process:
            drop_log_records_after(os.path.join(args.output_dir, "train_log.jsonl"), state.step)

    sampler = TokenBudgetBatchSampler(
        lengths,
        args.max_tokens,
        shuffle=True,
        seed=args.seed,
        num_replicas=accelerator.num_processes,
        rank=accelerator.process_index,
    )
    collate = data.collate
    unwrapped = accelerator.unwrap_model(model)
    unwrapped = getattr(unwrapped, "deployed_model", unwrapped)  # validated and saved without a training head
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
        return (args.max_minutes is not None and total > args.max_minutes * 60) or (
            args.max_minutes_this_run is not None and this_run > args.max_minutes_this_run * 60
        )

    while not stop and state.step < args.max_updates:
        sampler.set_epoch(state.epoch)
        batches = list(sampler)
        for batch_index in range(state.batch_in_epoch, len(batches)):
            model.train()
            batch = {
                k: v.to(accelerator.device) for k, v in collate([examples[i] for i in batches[batch_index]]).items()
            }
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
                record = {
                    "step": state.step,
                    "epoch": state.epoch,
                    "loss": window["loss"] / window["n"],
                    "lr": lr,
                    "target_tokens_per_s": window["tokens"] * accelerator.num_processes / max(seconds, 1e-9),
                    **{k: float(v) for k, v in parts.items()},
                    "train_seconds": state.train_seconds,
                }
                if accelerator.is_main_process:
                    with open(log_path, "a") as f:
                        f.write(json.dumps(record) + "\n")
                window = {"loss": 0.0, "n": 0, "tokens": 0, "start": time.perf_counter()}

            stop = state.step >= args.max_updates or out_of_time()
            if state.step % args.eval_every == 0 or stop:
                evaluate_and_keep_best(accelerator, unwrapped, data, state, args, log_path)
            if state.step % args.save_every == 0 or stop:
                save_checkpoint(accelerator, state, args.output_dir, args.keep_checkpoints)
            if stop:
                break
        else:
            state.epoch += 1
            state.batch_in_epoch = 0
    bar.close()
    summary = {
        "updates": state.step,
        "epochs": state.epoch,
        "train_minutes": state.train_seconds / 60,
        BEST_SCORE_NAMES[args.task][0]: BEST_SCORE_NAMES[args.task][1] * state.best_score,
        "target_tokens": state.target_tokens,
        "processes": accelerator.num_processes,
        "mixed_precision": args.mixed_precision,
        "threads": torch.get_num_threads(),
        "args": vars(args),
    }
    if accelerator.is_main_process:
        save_model(unwrapped, data.saved_with_model, os.path.join(args.output_dir, "final"), summary)
        if not os.path.isdir(os.path.join(args.output_dir, "best")):
            save_model(unwrapped, data.saved_with_model, os.path.join(args.output_dir, "best"), summary)
        share_identical_weights(os.path.join(args.output_dir, "best"), os.path.join(args.output_dir, "final"))
        with open(os.path.join(args.output_dir, "summary.json"), "w") as f:
            json.dump(summary, f, indent=2)
    accelerator.wait_for_everyone()
    return summary


def evaluate_and_keep_best(accelerator, model, data, state: TrainState, args, log_path: str) -> None:
    """Validation on the main process (BLEU, or WER for speech); a new best is saved to ``output_dir/best``."""
    if accelerator.is_main_process:
        score, metrics = data.validate(model)
        improved = score > state.best_score
        named = {f"valid_{name}": value for name, value in metrics.items()}
        if improved:
            state.best_score = score
            save_model(
                model,
                data.saved_with_model,
                os.path.join(args.output_dir, "best"),
                {"step": state.step, **named, "train_minutes": state.train_seconds / 60, "args": vars(args)},
            )
        with open(log_path, "a") as f:
            record = {"step": state.step, **named, "best": improved, "train_seconds": state.train_seconds}
            f.write(json.dumps(record) + "\n")
        shown = " ".join(f"{name} {value:.2f}" for name, value in metrics.items())
        accelerator.print(f"step {state.step}: valid {shown}" + (" (best)" if improved else ""))
    # Every process keeps the same best score, so checkpoints agree whichever rank writes them.
    best = torch.tensor([state.best_score], device=accelerator.device)
    state.best_score = accelerator.reduce(best, "max").item()
    model.train()
