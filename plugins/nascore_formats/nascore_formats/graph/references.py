"""Import paths of the functions and classes a graph model refers to (for JSON and generated code)."""

from __future__ import annotations

import builtins
import importlib
import operator
from typing import Any

__all__ = ["reference_of", "resolve_reference"]


def resolve_reference(module: str, qualname: str) -> Any:
    """The object named ``qualname`` in ``module``."""
    target: Any = importlib.import_module(module)
    for part in qualname.split("."):
        target = getattr(target, part)
    return target


def reference_of(obj: Any) -> tuple[str, str] | None:
    """``(module, qualname)`` under which ``obj`` can be imported again, preferring public torch names."""
    if getattr(builtins, getattr(obj, "__name__", ""), None) is obj:
        return "builtins", obj.__name__
    name = getattr(obj, "__name__", None)
    if name and getattr(operator, name, None) is obj:
        return "operator", name
    candidates: list[tuple[str, str]] = []
    if name:
        candidates += [("torch.nn.functional", name), ("torch", name)]
    try:
        from torch.fx.node import _get_qualified_name

        qualified = _get_qualified_name(obj)
        module, _, qualname = qualified.rpartition(".")
        candidates.append((module, qualname))
        if module.startswith("torch.Tensor"):
            candidates.append(("torch", f"Tensor.{qualname}"))
    except Exception:  # noqa: BLE001 - not a function fx knows how to name
        pass
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None)
    if module and qualname and "<" not in qualname and module != "__main__":
        candidates.append((module, qualname))
    for module, qualname in candidates:
        if not module or "<" in qualname:
            continue
        try:
            if resolve_reference(module, qualname) is obj:
                return module, qualname
        except Exception:  # noqa: BLE001 - try the next candidate
            continue
    return None

