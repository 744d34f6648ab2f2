"""Data pipeline: parallel corpus loading, joint tokenizer, tokenization and batching."""

from hf_nat.data.batching import Seq2SeqCollator, TokenBudgetBatchSampler
from hf_nat.data.corpus import load_parallel_corpus, parallel_columns, require_pairs
from hf_nat.data.preprocess import source_token_limit, tokenize_corpus
from hf_nat.data.tokenizer import (
    BLANK,
    BOS,
    EOS,
    MASK,
    PAD,
    PLACEHOLDER,
    SPECIAL_TOKENS,
    UNK,
    special_token_ids,
    train_joint_tokenizer,
)

__all__ = [
    "BLANK",
    "BOS",
    "EOS",
    "MASK",
    "PAD",
    "PLACEHOLDER",
    "SPECIAL_TOKENS",
    "UNK",
    "Seq2SeqCollator",
    "TokenBudgetBatchSampler",
    "load_parallel_corpus",
    "parallel_columns",
    "require_pairs",
    "source_token_limit",
    "special_token_ids",
    "tokenize_corpus",
    "train_joint_tokenizer",
]
