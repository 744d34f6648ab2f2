"""Registers every hf_nat family with the Auto classes and the "translation" pipeline."""

from transformers import AutoConfig, AutoModel, AutoModelForSeq2SeqLM
from transformers import pipelines as transformers_pipelines
from transformers.pipelines import PIPELINE_REGISTRY

from .models import (CMLMConfig, CMLMForConditionalGeneration, CMLMModel, CTCNATConfig,
                     CTCNATForConditionalGeneration, CTCNATModel, FertilityNATConfig,
                     FertilityNATForConditionalGeneration, FertilityNATModel, ImputerConfig,
                     ImputerForConditionalGeneration, ImputerModel, InsertionTransformerConfig,
                     InsertionTransformerForConditionalGeneration, InsertionTransformerModel, IterativeNATConfig,
                     IterativeNATForConditionalGeneration, IterativeNATModel, LevenshteinConfig, LevenshteinModel,
                     LevenshteinTransformerForConditionalGeneration, NATTranslationPipeline)

# (config, base model, model with generation head) for each family.
FAMILIES = [
    (CMLMConfig, CMLMModel, CMLMForConditionalGeneration),
    (CTCNATConfig, CTCNATModel, CTCNATForConditionalGeneration),
    (ImputerConfig, ImputerModel, ImputerForConditionalGeneration),
    (FertilityNATConfig, FertilityNATModel, FertilityNATForConditionalGeneration),
    (IterativeNATConfig, IterativeNATModel, IterativeNATForConditionalGeneration),
    (LevenshteinConfig, LevenshteinModel, LevenshteinTransformerForConditionalGeneration),
    (InsertionTransformerConfig, InsertionTransformerModel, InsertionTransformerForConditionalGeneration),
]


def register_all() -> None:
    """Register configs and models with AutoConfig/AutoModel/AutoModelForSeq2SeqLM and register the
    translation pipeline. Safe to call twice. A plain ``save_pretrained`` folder stays plain (no
    ``auto_map``, no code copies: an unknown ``model_type`` then gets transformers' own clear
    error); ``training/export.py`` makes folders that load without hf_nat."""
    for config_class, base_class, head_class in FAMILIES:
        AutoConfig.register(config_class.model_type, config_class, exist_ok=True)
        AutoModel.register(config_class, base_class, exist_ok=True)
        AutoModelForSeq2SeqLM.register(config_class, head_class, exist_ok=True)
    # transformers 5 rejects the task name "translation" before it looks at the registry: lift
    # that ban, since the name now resolves to our pipeline.
    getattr(transformers_pipelines, "REMOVED_TASKS", {}).pop("translation", None)
    PIPELINE_REGISTRY.register_pipeline("translation", pipeline_class=NATTranslationPipeline,
                                        pt_model=AutoModelForSeq2SeqLM, type="text")
