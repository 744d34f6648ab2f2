"""Model code of every hf_nat family (flat: a Hub checkpoint copies these files as they are).

Nothing here lists the families: every sibling module is imported (so that each family's
modeling file registers itself in :data:`nat_registry.FAMILIES`) and the names in its ``__all__``
are re-exported.
"""

import importlib
import pkgutil

__all__ = []


def _export_siblings() -> None:
    """Import every module of this folder and re-export its ``__all__``; two modules exporting
    the same name is an error (one of them would silently shadow the other)."""
    owners = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda info: info.name):
        module = importlib.import_module(f".{info.name}", __name__)
        for name in module.__all__:
            if name in owners:
                raise ImportError(f"{name!r} is exported by both {owners[name]} and {info.name}")
            owners[name] = info.name
            globals()[name] = getattr(module, name)
    __all__.extend(sorted(owners))


_export_siblings()
