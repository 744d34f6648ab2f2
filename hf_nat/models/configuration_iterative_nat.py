"""Configuration of the iterative refinement NAT (Lee et al., 2018)."""

from .configuration_nat import NATConfig

__all__ = ["IterativeNATConfig"]


class IterativeNATConfig(NATConfig):
    """Iterative refinement NAT: a first non-causal decoder pass reads the uniformly copied source,
    later passes read the previous pass's output.

    By default one decoder serves every pass and a refinement pass reads the previous pass's tokens.
    The paper's variant gives refinement passes their own decoder (``separate_refine_decoder``) that
    reads the embeddings of the previous tokens plus the previous pass's final decoder states
    (``refine_reads_states``). On distilled Multi30k at 66 CPU minutes the default scored 21.9 BLEU
    and improved up to 4 passes; the paper's variant scored 18.3 and refinement changed nothing.

    Training unrolls ``train_passes`` passes and sums their cross-entropies. The tokens read by each
    refinement pass are, with probability ``corruption_prob`` per sentence, the gold target
    corrupted by denoising noise instead of the previous pass's output: every target token is,
    with probability ``corruption_token_prob``, replaced by a random token, replaced by its left
    neighbour (repeat) or swapped with its right neighbour (one of the three at random). Only
    content tokens are corrupted; bos, eos and padding never are.

    The training techniques of ``NATConfig`` apply to the first pass (a one-pass vanilla NAT with
    uniform copy): the bag-of-n-grams mix replaces its cross-entropy, the regularisers and hints
    read its decoder.
    """

    model_type = "iterative_nat"
    training_techniques = ("similarity", "reconstruction", "bag_of_ngrams", "hints")

    train_passes: int = 3
    corruption_prob: float = 0.5
    corruption_token_prob: float = 0.15
    separate_refine_decoder: bool = False
    refine_reads_states: bool = False

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        if self.train_passes < 1:
            raise ValueError(f"train_passes must be >= 1, got {self.train_passes}")
