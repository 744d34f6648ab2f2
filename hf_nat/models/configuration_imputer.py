"""Configuration of the Imputer (Chan et al., 2020; Saharia et al., 2020)."""

from .configuration_ctc import CTCNATConfig

__all__ = ["ImputerConfig"]


class ImputerConfig(CTCNATConfig):
    """Imputer: a CTC model whose decoder also reads a partially known alignment and imputes the
    rest. Training masks a uniformly drawn share of the best alignment; decoding fills the
    alignment block by block in ``max_iterations`` steps (1 = plain CTC decoding)."""

    model_type = "imputer"
