"""Configuration of the vanilla NAT with fertility (Gu et al., 2018) and its simpler copy variants."""

from .configuration_nat import NATConfig

__all__ = ["FertilityNATConfig"]

DECODER_INPUTS = ("fertility", "uniform_copy", "soft_copy")


class FertilityNATConfig(NATConfig):
    """Vanilla NAT: a one-pass non-causal decoder reading copied source embeddings.

    ``decoder_input`` chooses what the decoder reads:

    - ``"fertility"``: every source token copied as many times as its fertility (0..
      ``max_fertility``), which the encoder predicts; the target length is their sum. Training
      needs fertility labels from a word aligner (``training/align_fertility.py``) and adds
      ``fertility_loss_weight`` × their cross-entropy. With ``fertility_reinforce_weight`` > 0 the
      fertility predictor is also trained by REINFORCE with ``reinforce_samples`` samples per
      sentence (the fine-tuning stage of the paper).
    - ``"uniform_copy"``: target position t of n reads source token round(t·S/n); the length
      comes from the length predictor.
    - ``"soft_copy"``: a softmax over source positions around t·S/n (``soft_copy_temperature``).

    ``draft_prefix_prob``: the share of training sentences whose decoder input shows the gold
    tokens' embeddings over a random prefix (0..n-1 tokens) instead of the copied source, as when
    drafting the continuation of a prefix an AR model has verified (``hf_nat.assisted_generate``).

    Every decoder input supports the training techniques of ``NATConfig`` (similarity and
    reconstruction regularisation, the bag-of-n-grams loss, an AR teacher's hints).
    """

    model_type = "fertility_nat"
    training_techniques = ("similarity", "reconstruction", "bag_of_ngrams", "hints")

    decoder_input: str = "fertility"
    max_fertility: int = 10
    fertility_loss_weight: float = 1.0
    fertility_reinforce_weight: float = 0.0
    reinforce_samples: int = 4
    soft_copy_temperature: float = 1.0
    draft_prefix_prob: float = 0.0

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        if self.decoder_input not in DECODER_INPUTS:
            raise ValueError(f"decoder_input must be one of {DECODER_INPUTS}, got {self.decoder_input!r}")
        if not 0.0 <= self.draft_prefix_prob <= 1.0:
            raise ValueError(f"draft_prefix_prob must lie in [0, 1], got {self.draft_prefix_prob}")
