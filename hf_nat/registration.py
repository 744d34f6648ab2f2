"""Registers every hf_nat family with the Auto classes and the "translation" pipeline."""

from transformers import AutoConfig, AutoModel, AutoModelForSeq2SeqLM
from transformers import pipelines as transformers_pipelines
from transformers.pipelines import PIPELINE_REGISTRY

from .models import NATTranslationPipeline
from .models.nat_registry import FAMILIES


def register_all() -> None:
    """Register the config and models of every family in :data:`FAMILIES` with
    AutoConfig/AutoModel/AutoModelForSeq2SeqLM and register the translation pipeline. Safe to call
    twice. A plain ``save_pretrained`` folder stays plain (no ``auto_map``, no code copies: an
    unknown ``model_type`` then gets transformers' own clear error);
    :func:`hf_nat.hub_export.export_model` makes folders that load without hf_nat."""
    for family in FAMILIES.values():
        AutoConfig.register(family.model_type, family.config_class, exist_ok=True)
        AutoModel.register(family.config_class, family.base_class, exist_ok=True)
        AutoModelForSeq2SeqLM.register(family.config_class, family.head_class, exist_ok=True)
    # transformers 5 rejects the task name "translation" before it looks at the registry: lift
    # that ban, since the name now resolves to our pipeline.
    getattr(transformers_pipelines, "REMOVED_TASKS", {}).pop("translation", None)
    PIPELINE_REGISTRY.register_pipeline(
        "translation", pipeline_class=NATTranslationPipeline, pt_model=AutoModelForSeq2SeqLM, type="text"
    )
