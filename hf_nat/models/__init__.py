"""Model code of every hf_nat family (flat: a Hub checkpoint copies these files as they are)."""

from .configuration_cmlm import CMLMConfig
from .configuration_ctc import CTCNATConfig
from .configuration_imputer import ImputerConfig
from .configuration_nat import NATConfig
from .modeling_cmlm import CMLMForConditionalGeneration, CMLMModel, CMLMPreTrainedModel
from .modeling_ctc import CTCNATForConditionalGeneration, CTCNATModel, CTCNATPreTrainedModel
from .modeling_imputer import ImputerForConditionalGeneration, ImputerModel, ImputerPreTrainedModel
from .modeling_nat import NATModel, NATPreTrainedModel
from .nat_generation import NATGenerateOutput, NATGenerationMixin
from .pipeline_translation import NATTranslationPipeline

__all__ = ["CMLMConfig", "CMLMForConditionalGeneration", "CMLMModel", "CMLMPreTrainedModel", "CTCNATConfig",
           "CTCNATForConditionalGeneration", "CTCNATModel", "CTCNATPreTrainedModel", "ImputerConfig",
           "ImputerForConditionalGeneration", "ImputerModel", "ImputerPreTrainedModel", "NATConfig",
           "NATGenerateOutput", "NATGenerationMixin", "NATModel", "NATPreTrainedModel", "NATTranslationPipeline"]
