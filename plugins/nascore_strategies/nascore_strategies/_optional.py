"""Optional dependencies of ``nascore-strategies``: imported when a strategy is used, not when it is imported."""

from __future__ import annotations

import importlib
from types import ModuleType

from nascore.errors import MissingDependencyError

__all__ = ["require"]


def require(module: str, *, extra: str, strategy: str) -> ModuleType:
    """Import ``module`` or raise :class:`MissingDependencyError` naming the ``pip install`` line."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        raise MissingDependencyError(
            f"the {strategy} strategy needs {top}, which is not installed ({exc}). "
            f'Install it with: pip install "nascore-strategies[{extra}]"'
        ) from exc
