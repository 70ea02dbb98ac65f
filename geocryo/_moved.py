"""Deprecated aliases of modules that moved: each old path keeps working for one release."""

from __future__ import annotations

import importlib
import sys
import warnings
from types import ModuleType

__all__ = ["alias", "warn_moved"]


def warn_moved(old: str, new: str, stacklevel: int = 3) -> None:
    """Warn that ``old`` is now ``new``."""
    warnings.warn(
        f"{old} is now {new}; the old name goes in the next release",
        DeprecationWarning,
        stacklevel=stacklevel,
    )


def alias(old: str, new: str) -> ModuleType:
    """Make the module ``old`` (being imported) the module ``new``, with a warning."""
    warn_moved(old, new, stacklevel=4)
    module = importlib.import_module(new)
    sys.modules[old] = module
    return module
