"""Configuration of the Conditional Masked Language Model (Ghazvininejad et al., 2019)."""

from .configuration_nat import NATConfig

__all__ = ["CMLMConfig"]


class CMLMConfig(NATConfig):
    """CMLM / Mask-Predict: a non-causal decoder that fills masked target positions.

    Training masks a uniformly drawn number (1..n) of the n target tokens and learns to predict
    them (label-smoothed cross-entropy) together with the target length (``length_loss_weight``).
    Decoding defaults (iterations, length beam) live in the generation config.

    ``draft_prefix_prob``: the share of training sentences masked after a random gold prefix
    instead (every token from position k on, k uniform in 0..n-1): the case of drafting the
    continuation of a prefix an AR model has verified (``hf_nat.assisted_generate``).
    """

    model_type = "cmlm"

    draft_prefix_prob: float = 0.0

    source_modalities = ("text", "image")

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        if not 0.0 <= self.draft_prefix_prob <= 1.0:
            raise ValueError(f"draft_prefix_prob must lie in [0, 1], got {self.draft_prefix_prob}")
