"""The registry of hf_nat families: each family's modeling file registers its generation class with
:func:`register_family` (fairseq's ``@register_model`` style), and shared code (registration with
the Auto classes, the pipeline, export, the benchmark, the contract tests) reads :data:`FAMILIES`
instead of listing families.

Imports nothing but the standard library, so any modeling file (and a Hub export of it) can use it.
"""

import copy
from dataclasses import dataclass

__all__ = ["FAMILIES", "Family", "family_of", "register_family"]


@dataclass(frozen=True)
class Family:
    """What a family declares: its ``model_type``, the classes AutoConfig, AutoModel and
    AutoModelForSeq2SeqLM load, and the ``generate()`` option dicts the benchmark runs by default."""

    model_type: str
    config_class: type
    base_class: type
    head_class: type
    benchmark_settings: tuple[dict, ...]


FAMILIES: dict[str, Family] = {}


def register_family(base_class: type, benchmark_settings: list[dict]):
    """Class decorator for a family's ``...ForConditionalGeneration`` class: records the family
    under ``head_class.config_class.model_type``. ``benchmark_settings`` are JSON-able dicts of
    ``generate()`` options. Registering another class under a taken model type is an error."""
    settings = tuple(copy.deepcopy(dict(setting)) for setting in benchmark_settings)
    if not settings:
        raise ValueError("benchmark_settings must hold at least one setting")

    def register(head_class: type) -> type:
        model_type = head_class.config_class.model_type
        known = FAMILIES.get(model_type)
        if known is not None and _qualified_name(known.head_class) != _qualified_name(head_class):
            raise ValueError(f"model_type {model_type!r} is already registered by {_qualified_name(known.head_class)}")
        FAMILIES[model_type] = Family(
            model_type=model_type,
            config_class=head_class.config_class,
            base_class=base_class,
            head_class=head_class,
            benchmark_settings=settings,
        )
        return head_class

    return register


def family_of(model_type: str) -> Family:
    """The registered family of ``model_type``; ``ValueError`` listing the known model types otherwise."""
    try:
        return FAMILIES[model_type]
    except KeyError:
        raise ValueError(
            f"unknown hf_nat model_type {model_type!r}; the registered families are {sorted(FAMILIES)}"
        ) from None


def _qualified_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"
