"""Configuration of KERMIT (Chan et al., 2019): one insertion Transformer over both sides of a pair."""

from .configuration_insertion import InsertionTransformerConfig

__all__ = ["KERMIT_MODES", "KermitConfig", "parse_training_modes"]

# What a training example asks the model to insert: "y|x" the y side given the whole x side,
# "x|y" the reverse, "xy" both sides together (both partial), "x" / "y" one side with the other absent.
KERMIT_MODES = ("y|x", "x|y", "xy", "x", "y")


def parse_training_modes(spec: str) -> dict[str, float]:
    """``"y|x:2 x|y:2 xy:1"`` → {mode: weight}; unknown modes, bad or negative weights and an
    all-zero mixture are errors."""
    weights = {}
    for item in spec.split():
        mode, _, weight = item.partition(":")
        if mode not in KERMIT_MODES or mode in weights:
            raise ValueError(f"training_modes: unknown or repeated mode {mode!r} in {spec!r}; modes are {KERMIT_MODES}")
        try:
            weights[mode] = float(weight) if weight else 1.0
        except ValueError:
            raise ValueError(f"training_modes: weight of {mode!r} must be a number, got {weight!r}") from None
        if not weights[mode] >= 0:
            raise ValueError(f"training_modes: weight of {mode!r} must be >= 0, got {weight!r}")
    if not any(weights.values()):
        raise ValueError(f"training_modes {spec!r} gives no mode a positive weight")
    return weights


class KermitConfig(InsertionTransformerConfig):
    """KERMIT: one Transformer without encoder and without causal mask over the canvas
    ``[bos] x [eos] [bos] y [eos]`` (a side embedding tells the sides apart). Every slot between
    two adjacent tokens of a side predicts a token or "no insertion", trained with the Insertion
    Transformer's slot loss (``insertion_loss``, ``tree_temperature``). Its one stack has
    ``encoder_layers + decoder_layers`` layers (an encoder-decoder's depth, one set of weights).

    ``x_language`` / ``y_language`` name the sides (the pipeline's ``src_lang``/``tgt_lang``);
    ``training_modes`` the mixture of what training examples ask (see :data:`KERMIT_MODES`), as
    ``"mode:weight"`` items. A direction of weight 0 was not trained: decoding it is an error.
    """

    model_type = "kermit"

    x_language: str = "en"
    y_language: str = "de"
    training_modes: str = "y|x:2 x|y:2 xy:1 x:0.5 y:0.5"

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        parse_training_modes(self.training_modes)
        if self.x_language == self.y_language:
            raise ValueError(f"x_language and y_language must differ, got {self.x_language!r} twice")
