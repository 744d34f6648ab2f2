"""Configuration of the CTC non-autoregressive translation model (Libovický & Helcl, 2018)."""

from .configuration_nat import NATConfig


class CTCNATConfig(NATConfig):
    """CTC NAT: the decoder reads the encoder output upsampled ``upsample_ratio`` times and emits a
    token or a blank at every position; the output collapses repeats, then blanks.

    ``glancing`` turns on glancing training (GLAT, Qian et al., 2021): a first pass without
    gradient, then a share of the best alignment's tokens, proportional to that pass's errors, is
    revealed in the decoder input. The share falls linearly from ``glancing_ratio_start`` to
    ``glancing_ratio_end`` over ``glancing_anneal_steps`` training forward passes.
    """

    model_type = "ctc_nat"

    upsample_ratio: int = 2
    glancing: bool = False
    glancing_ratio_start: float = 0.5
    glancing_ratio_end: float = 0.3
    glancing_anneal_steps: int = 4000
