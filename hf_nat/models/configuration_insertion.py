"""Configuration of the Insertion Transformer (Stern et al., 2019)."""

from .configuration_nat import NATConfig
from .nat_slot_loss import SLOT_WEIGHTINGS

__all__ = ["InsertionTransformerConfig"]


class InsertionTransformerConfig(NATConfig):
    """Insertion Transformer: inserts tokens into the slots between adjacent tokens, in parallel.

    Every slot has a distribution over the vocabulary plus "no insertion". Training subsamples
    each target and scores the missing tokens of every slot with ``insertion_loss``:
    ``"binary_tree"`` weights them by exp(-distance to the span's middle / ``tree_temperature``),
    which teaches a balanced, about log2(n)-step order; ``"uniform"`` weights them equally.
    """

    model_type = "insertion_transformer"

    insertion_loss: str = "binary_tree"
    tree_temperature: float = 1.0

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        if self.insertion_loss not in SLOT_WEIGHTINGS:
            raise ValueError(f"insertion_loss must be one of {SLOT_WEIGHTINGS}, got {self.insertion_loss!r}")
