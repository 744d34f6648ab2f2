"""hf_nat: non-autoregressive sequence generation native to Hugging Face transformers.

Importing the package registers every family (each registers itself in ``FAMILIES``) with
AutoConfig, AutoModel and AutoModelForSeq2SeqLM, and registers the "translation" pipeline.
"""

from .assisted import assisted_generate
from .models import *  # noqa: F401,F403
from .models import __all__ as _model_names
from .registration import register_all

register_all()

__version__ = "0.1.0"
__all__ = [*_model_names, "assisted_generate", "register_all"]
