"""Configuration of the Directed Acyclic Transformer (DA-Transformer, Huang et al., 2022)."""

from .configuration_nat import NATConfig

__all__ = ["DATransformerConfig"]


class DATransformerConfig(NATConfig):
    """DA-Transformer: the decoder reads the encoder output upsampled ``upsample_ratio`` (λ) times
    into the L = λ·|x| vertices of a directed acyclic graph; every vertex predicts a token and a
    distribution over the later vertices to go to next. A translation is a path from the first
    vertex to the last.

    ``transition_heads``: query/key heads of the transition scores, mixed by a learned gate.
    ``glancing`` (a field of every NAT config) reveals reference tokens at the vertices of their
    best path. ``label_smoothing`` is not used: the loss sums over paths, as CTC does.
    """

    model_type = "da_transformer"

    upsample_ratio: int = 4
    transition_heads: int = 4

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        if self.upsample_ratio < 1:
            raise ValueError(f"upsample_ratio must be >= 1, got {self.upsample_ratio}")
        if self.transition_heads < 1 or self.d_model % self.transition_heads:
            raise ValueError(
                f"transition_heads must be >= 1 and divide d_model={self.d_model}, got {self.transition_heads}"
            )
