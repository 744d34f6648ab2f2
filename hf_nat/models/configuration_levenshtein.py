"""Configuration of the Levenshtein Transformer (Gu et al., 2019)."""

from .configuration_nat import NATConfig

__all__ = ["LevenshteinConfig"]


class LevenshteinConfig(NATConfig):
    """Levenshtein Transformer: generates by repeated deletion, placeholder insertion and filling.

    A non-causal decoder serves the deletion head (keep/delete per token) and token filling (the
    tied output projection, at placeholders); placeholder insertion (0..``max_insertions`` new
    tokens per slot between adjacent tokens, read from the two tokens' states) has its own
    ``insertion_decoder_layers``-layer decoder over the shared embeddings (0 = share the main
    decoder: its gradients then keep token filling on a long plateau). Training
    is imitation learning of the shortest insertion/deletion edit script; every head is in the
    loss, weighted by ``deletion_loss_weight`` / ``insertion_loss_weight`` / 1. Deletion is learned
    on the model's own filled output and, for a ``draft_noise_prob`` share of sentences, on the
    target with denoising noise (each token replaced, repeated or swapped with probability
    ``draft_noise_token_prob``), so that drafts from elsewhere get their wrong words deleted.
    """

    model_type = "levenshtein_transformer"

    max_insertions: int = 32
    insertion_decoder_layers: int = 1
    deletion_loss_weight: float = 1.0
    insertion_loss_weight: float = 1.0
    draft_noise_prob: float = 0.5
    draft_noise_token_prob: float = 0.15
