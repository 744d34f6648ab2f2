"""Configuration of the CTC non-autoregressive translation model (Libovický & Helcl, 2018)."""

from .configuration_nat import NATConfig

__all__ = ["CTCNATConfig"]


class CTCNATConfig(NATConfig):
    """CTC NAT: the decoder reads the encoder output upsampled ``upsample_ratio`` times and emits a
    token or a blank at every position; the output collapses repeats, then blanks.

    ``glancing`` (a field of every NAT config) turns on glancing training: the revealed tokens are
    those of the target's best alignment under the first pass. The source may be text or audio
    (``source_modality="audio"``: speech recognition from log-mel features).
    """

    model_type = "ctc_nat"
    source_modalities = ("text", "audio", "image")

    upsample_ratio: int = 2
