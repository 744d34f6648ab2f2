"""Model code of every hf_nat family (flat: a Hub checkpoint copies these files as they are)."""

from .configuration_cmlm import CMLMConfig
from .configuration_ctc import CTCNATConfig
from .configuration_fertility_nat import FertilityNATConfig
from .configuration_imputer import ImputerConfig
from .configuration_insertion import InsertionTransformerConfig
from .configuration_iterative_nat import IterativeNATConfig
from .configuration_levenshtein import LevenshteinConfig
from .configuration_nat import NATConfig
from .modeling_cmlm import CMLMForConditionalGeneration, CMLMModel, CMLMPreTrainedModel
from .modeling_ctc import CTCNATForConditionalGeneration, CTCNATModel, CTCNATPreTrainedModel
from .modeling_fertility_nat import (FertilityNATForConditionalGeneration, FertilityNATModel,
                                     FertilityNATPreTrainedModel)
from .modeling_imputer import ImputerForConditionalGeneration, ImputerModel, ImputerPreTrainedModel
from .modeling_insertion import (InsertionTransformerForConditionalGeneration, InsertionTransformerModel,
                                InsertionTransformerPreTrainedModel)
from .modeling_iterative_nat import (IterativeNATForConditionalGeneration, IterativeNATModel,
                                     IterativeNATPreTrainedModel)
from .modeling_levenshtein import (LevenshteinModel, LevenshteinPreTrainedModel,
                                  LevenshteinTransformerForConditionalGeneration)
from .modeling_nat import NATModel, NATPreTrainedModel
from .nat_generation import NATGenerateOutput, NATGenerationMixin
from .pipeline_translation import NATTranslationPipeline

__all__ = ["CMLMConfig", "CMLMForConditionalGeneration", "CMLMModel", "CMLMPreTrainedModel", "CTCNATConfig",
           "CTCNATForConditionalGeneration", "CTCNATModel", "CTCNATPreTrainedModel", "FertilityNATConfig",
           "FertilityNATForConditionalGeneration", "FertilityNATModel", "FertilityNATPreTrainedModel", "ImputerConfig",
           "ImputerForConditionalGeneration", "ImputerModel", "ImputerPreTrainedModel", "InsertionTransformerConfig",
           "InsertionTransformerForConditionalGeneration", "InsertionTransformerModel",
           "InsertionTransformerPreTrainedModel", "IterativeNATConfig",
           "IterativeNATForConditionalGeneration", "IterativeNATModel", "IterativeNATPreTrainedModel", "LevenshteinConfig",
           "LevenshteinModel", "LevenshteinPreTrainedModel", "LevenshteinTransformerForConditionalGeneration", "NATConfig",
           "NATGenerateOutput", "NATGenerationMixin", "NATModel", "NATPreTrainedModel", "NATTranslationPipeline"]
