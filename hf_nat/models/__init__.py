"""Model code of every hf_nat family (flat: a Hub checkpoint copies these files as they are)."""

from .configuration_cmlm import CMLMConfig
from .configuration_nat import NATConfig
from .modeling_cmlm import CMLMForConditionalGeneration, CMLMModel, CMLMPreTrainedModel
from .modeling_nat import NATModel, NATPreTrainedModel
from .nat_generation import NATGenerateOutput, NATGenerationMixin
from .pipeline_translation import NATTranslationPipeline

__all__ = ["CMLMConfig", "CMLMForConditionalGeneration", "CMLMModel", "CMLMPreTrainedModel", "NATConfig",
           "NATGenerateOutput", "NATGenerationMixin", "NATModel", "NATPreTrainedModel", "NATTranslationPipeline"]
