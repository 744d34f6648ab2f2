"""Configuration of the Conditional Masked Language Model (Ghazvininejad et al., 2019)."""

from .configuration_nat import NATConfig

__all__ = ["CMLMConfig"]


class CMLMConfig(NATConfig):
    """CMLM / Mask-Predict: a non-causal decoder that fills masked target positions.

    Training masks a uniformly drawn number (1..n) of the n target tokens and learns to predict
    them (label-smoothed cross-entropy) together with the target length (``length_loss_weight``).
    Decoding defaults (iterations, length beam) live in the generation config.
    """

    model_type = "cmlm"
