"""A joint source/target subword tokenizer with the special tokens non-autoregressive models need."""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

PAD, BOS, EOS, UNK, MASK, PLACEHOLDER, BLANK = "<pad>", "<s>", "</s>", "<unk>", "<mask>", "<plh>", "<blank>"
# Order fixes the ids: pad=0, bos=1, eos=2, unk=3, mask=4, placeholder=5 (Levenshtein), blank=6 (CTC).
SPECIAL_TOKENS = [PAD, BOS, EOS, UNK, MASK, PLACEHOLDER, BLANK]

_SPECIAL_NAMES = {
    "pad": PAD,
    "bos": BOS,
    "eos": EOS,
    "unk": UNK,
    "mask": MASK,
    "placeholder": PLACEHOLDER,
    "blank": BLANK,
}


def train_joint_tokenizer(
    texts: Iterable[str],
    vocab_size: int = 8000,
    output_dir: str | None = None,
    min_frequency: int = 2,
    model_max_length: int = 256,
    limit_alphabet: int = 200,
) -> PreTrainedTokenizerFast:
    """Train a joint BPE tokenizer on ``texts`` (source and target sentences together).

    The tokenizer applies NFKC normalisation, collapses runs of whitespace and strips the ends
    (so a whitespace-only text encodes as just ``</s>``), Metaspace pre-tokenization/decoding (so decoding
    restores the original spacing of ordinary sentences), maps characters outside the learned
    alphabet to ``<unk>`` (no byte fallback), and appends ``</s>`` to every encoded sequence.
    The special tokens of :data:`SPECIAL_TOKENS` get ids 0..6.

    Args:
        texts: training sentences.
        vocab_size: target vocabulary size, special tokens included.
        output_dir: if given, the tokenizer is saved there with ``save_pretrained`` so that
            ``AutoTokenizer.from_pretrained(output_dir)`` reloads it.
        min_frequency: minimum pair frequency for a BPE merge.
        model_max_length: maximum sequence length recorded in the tokenizer config.
        limit_alphabet: at most this many initial characters are kept; rarer ones become ``<unk>``.

    Returns:
        The trained tokenizer wrapped as a ``transformers`` fast tokenizer.
    """
    backend = Tokenizer(models.BPE(unk_token=UNK))
    # Runs of whitespace would otherwise become bare "▁" tokens: a whitespace-only text would
    # encode as content and be translated instead of giving an empty translation.
    backend.normalizer = normalizers.Sequence(
        [normalizers.NFKC(), normalizers.Replace(Regex(r"\s+"), " "), normalizers.Strip()]
    )
    backend.pre_tokenizer = pre_tokenizers.Metaspace()
    backend.decoder = decoders.Metaspace()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=SPECIAL_TOKENS,
        limit_alphabet=limit_alphabet,
        show_progress=False,
    )
    backend.train_from_iterator(texts, trainer=trainer)
    eos_id = backend.token_to_id(EOS)
    backend.post_processor = processors.TemplateProcessing(
        single=f"$A {EOS}",
        pair=f"$A {EOS} $B:1 {EOS}:1",
        special_tokens=[(EOS, eos_id)],
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token=PAD,
        bos_token=BOS,
        eos_token=EOS,
        unk_token=UNK,
        mask_token=MASK,
        # transformers 5 name; "additional_special_tokens" is only accepted as a deprecated alias.
        extra_special_tokens=[PLACEHOLDER, BLANK],
        model_max_length=model_max_length,
        padding_side="right",
        # The default clean-up would turn "a ." into "a." and break decode(encode(s)) == s.
        clean_up_tokenization_spaces=False,
    )
    if output_dir is not None:
        tokenizer.save_pretrained(output_dir)
    return tokenizer


def special_token_ids(tokenizer) -> dict[str, int]:
    """Return the ids of the special tokens, keyed ``pad, bos, eos, unk, mask, placeholder, blank``.

    Raises:
        ValueError: if one of the special tokens is not in the tokenizer's vocabulary.
    """
    vocab = tokenizer.get_vocab()
    missing = [token for token in _SPECIAL_NAMES.values() if token not in vocab]
    if missing:
        raise ValueError(
            f"Tokenizer lacks special token(s) {missing}; expected all of {SPECIAL_TOKENS} "
            "(train it with hf_nat.data.train_joint_tokenizer)"
        )
    return {name: vocab[token] for name, token in _SPECIAL_NAMES.items()}
