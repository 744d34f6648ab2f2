"""A toy translation task small enough to learn in seconds: copy a sentence of words."""

import random
from dataclasses import dataclass

import torch
from tokenizers import Tokenizer, models, pre_tokenizers, processors
from transformers import MarianConfig, MarianMTModel, PreTrainedTokenizerFast

from hf_nat import CMLMConfig, CMLMForConditionalGeneration
from hf_nat.data import SPECIAL_TOKENS, Seq2SeqCollator

WORDS = [f"w{i}" for i in range(16)]


def toy_tokenizer() -> PreTrainedTokenizerFast:
    """Word-level tokenizer over WORDS with hf_nat's special tokens (ids 0..6) and eos appended."""
    vocab = {token: i for i, token in enumerate(SPECIAL_TOKENS + WORDS)}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    backend.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 2)])
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token="<pad>",
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        mask_token="<mask>",
        extra_special_tokens=["<plh>", "<blank>"],
        model_max_length=32,
    )


def toy_sentences(n: int, seed: int, min_len: int = 2, max_len: int = 7) -> list[str]:
    """``n`` random sentences of WORDS."""
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(min_len, max_len))) for _ in range(n)]


def toy_config(tokenizer, **overrides) -> CMLMConfig:
    """A CMLM small enough to train on CPU in seconds."""
    return CMLMConfig(**toy_shape(tokenizer, **overrides))


def toy_batch(tokenizer, sentences: list[str]) -> dict:
    """Source = target = the sentences, collated like the training script does."""
    enc = tokenizer(sentences, text_target=sentences)
    rows = [{"input_ids": s, "labels": t} for s, t in zip(enc["input_ids"], enc["labels"])]
    return Seq2SeqCollator(tokenizer.pad_token_id)(rows)


@dataclass
class Toy:
    model: CMLMForConditionalGeneration
    tokenizer: PreTrainedTokenizerFast
    test_sentences: list


def train_toy_cmlm(steps: int = 1500, seed: int = 0) -> Toy:
    """Train a tiny CMLM on the copy task for at least 400 updates and until one-shot and
    4-iteration decoding copy 95% of the held-out sentences (at most ``steps`` updates); returns it
    in eval mode with those sentences."""
    torch.manual_seed(seed)
    tokenizer = toy_tokenizer()
    model = CMLMForConditionalGeneration(toy_config(tokenizer))
    held_out = toy_sentences(40, seed=7)

    def copies_held_out(m) -> bool:
        return all(exact_match(m, tokenizer, held_out, max_iterations=t, length_beam=1) >= 0.95 for t in (1, 4))

    train_toy_model(
        model,
        lambda step: toy_batch(tokenizer, toy_sentences(64, seed=1000 + step)),
        steps,
        seed,
        until=copies_held_out,
        min_steps=400,
    )
    return Toy(model=model, tokenizer=tokenizer, test_sentences=held_out)


def exact_match(model, tokenizer, sentences: list[str], **generate_kwargs) -> float:
    """Share of sentences the model copies exactly."""
    batch = tokenizer(sentences, return_tensors="pt", padding=True)
    out = model.generate(**batch, **generate_kwargs)
    hyps = tokenizer.batch_decode(out, skip_special_tokens=True)
    return sum(h == s for h, s in zip(hyps, sentences)) / len(sentences)


def toy_ar_model(tokenizer, seed: int = 0, **overrides) -> MarianMTModel:
    """An untrained AR model sharing the toy tokenizer (its scores are arbitrary but fixed)."""
    torch.manual_seed(seed)
    config = MarianConfig(
        **{
            **dict(
                vocab_size=len(tokenizer),
                d_model=32,
                encoder_layers=1,
                decoder_layers=1,
                encoder_attention_heads=2,
                decoder_attention_heads=2,
                encoder_ffn_dim=64,
                decoder_ffn_dim=64,
                max_position_embeddings=64,
                pad_token_id=0,
                eos_token_id=2,
                bos_token_id=1,
                decoder_start_token_id=1,
            ),
            **overrides,
        }
    )
    return MarianMTModel(config).eval()


def toy_shape(tokenizer, **overrides) -> dict:
    """Config fields of a model small enough to train on CPU in seconds (any family)."""
    shape = dict(
        vocab_size=len(tokenizer),
        d_model=64,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=4,
        decoder_attention_heads=4,
        encoder_ffn_dim=128,
        decoder_ffn_dim=128,
        dropout=0.0,
        max_position_embeddings=32,
        label_smoothing=0.0,
    )
    return {**shape, **overrides}


def train_toy_model(
    model,
    make_batch,
    steps: int,
    seed: int = 0,
    lr: float = 3e-3,
    until=None,
    check_every: int = 100,
    min_steps: int = 0,
) -> list[dict]:
    """Train ``model`` on ``make_batch(step)`` for ``steps`` updates; returns each step's named losses.

    With ``until`` (a function of the model in eval mode returning True once it has learned what
    the test needs), training stops at the first multiple of ``check_every`` from ``min_steps`` on
    where it holds, and ``steps`` is only the cap. How many updates a toy needs depends on the CPU's kernels (the
    numerics of AVX-512, AVX2 and plain code differ), so learning tests train to a criterion
    instead of for a fixed count.
    """
    torch.manual_seed(seed)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    generator = torch.Generator().manual_seed(seed)
    history = []
    for step in range(steps):
        model.train()
        out = model(**make_batch(step), generator=generator)
        out.loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        history.append({k: float(v) for k, v in out.losses.items()})
        if until is not None and step + 1 >= min_steps and (step + 1) % check_every == 0:
            model.eval()
            if until(model):
                break
    model.eval()
    return history


def train_toy_ar(steps: int = 100, seed: int = 0) -> MarianMTModel:
    """A tiny Marian AR model after ``steps`` updates on the copy task: enough to end its outputs
    with eos at varied lengths (what it copies need not be right); returned in eval mode."""
    tokenizer = toy_tokenizer()
    model = toy_ar_model(tokenizer, seed=seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for step in range(steps):
        batch = toy_batch(tokenizer, toy_sentences(64, seed=5000 + step))
        model(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"]
        ).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    return model.eval()
