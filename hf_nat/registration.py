"""Registers every hf_nat family with the Auto classes, the "translation" pipeline and, for
families that read audio or images, transformers' "automatic-speech-recognition" and
"image-text-to-text" (alias "image-to-text") pipelines."""

from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForImageTextToText,
    AutoModelForSeq2SeqLM,
    AutoModelForSpeechSeq2Seq,
)
from transformers import pipelines as transformers_pipelines
from transformers.pipelines import PIPELINE_REGISTRY

from .models import NATImageToTextPipeline, NATSpeechRecognitionPipeline, NATTranslationPipeline
from .models.nat_registry import FAMILIES

SPEECH_TASK = "automatic-speech-recognition"
IMAGE_TASK = "image-text-to-text"  # where transformers 5 sends "image-to-text"


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
        if "audio" in family.config_class.source_modalities:
            AutoModelForSpeechSeq2Seq.register(family.config_class, family.head_class, exist_ok=True)
        if "image" in family.config_class.source_modalities:
            AutoModelForImageTextToText.register(family.config_class, family.head_class, exist_ok=True)
    # transformers 5 rejects the task name "translation" before it looks at the registry: lift
    # that ban, since the name now resolves to our pipeline.
    getattr(transformers_pipelines, "REMOVED_TASKS", {}).pop("translation", None)
    PIPELINE_REGISTRY.register_pipeline(
        "translation", pipeline_class=NATTranslationPipeline, pt_model=AutoModelForSeq2SeqLM, type="text"
    )
    # The speech and image pipelines keep transformers' entries (its model classes and default) with our
    # subclass as the implementation: it behaves as transformers' own for every other model.
    # (register_pipeline would warn about overwriting a built-in task on every import.)
    for task, implementation in ((SPEECH_TASK, NATSpeechRecognitionPipeline), (IMAGE_TASK, NATImageToTextPipeline)):
        PIPELINE_REGISTRY.supported_tasks[task] = {**PIPELINE_REGISTRY.supported_tasks[task], "impl": implementation}
    resolve = getattr(transformers_pipelines, "_resolve_deprecated_task", None)
    if resolve is not None and not getattr(resolve, "hf_nat_quiet_image_to_text", False):
        transformers_pipelines._resolve_deprecated_task = _quiet_image_to_text(resolve)


def _quiet_image_to_text(resolve):
    """transformers' task renaming, with "image-to-text" sent to "image-text-to-text" without its
    notice: that notice passes a warning class as a format argument, so logging prints a traceback
    (and pytest fails) on every ``pipeline("image-to-text", ...)``."""

    def resolve_task(task):
        return IMAGE_TASK if task == "image-to-text" else resolve(task)

    resolve_task.hf_nat_quiet_image_to_text = True
    return resolve_task
