"""Objects as data: import paths of classes and functions, and JSON-able arguments.

What crosses a process boundary or goes into the store is data, not a pickle of live objects: a
class or function is its import path (``"package.module:Name"``) and its arguments must be JSON.
"""

from __future__ import annotations

import importlib
import json
from typing import Any

from nascore.errors import ShippingError

__all__ = ["import_path", "resolve", "is_json_data", "object_spec", "build_from_spec"]


def import_path(obj: Any) -> str | None:
    """``"module:qualname"`` if ``obj`` can be imported again by that name, else ``None``."""
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None)
    if not module or not qualname or module == "__main__" or "<" in qualname:
        return None
    try:
        found = resolve(f"{module}:{qualname}")
    except ShippingError:
        return None
    return f"{module}:{qualname}" if found is obj or found == obj else None


def resolve(path: str) -> Any:
    """The object named by an import path ``"module:qualname"``."""
    module_name, _, qualname = path.partition(":")
    try:
        target: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as exc:
        raise ShippingError(f"cannot import {path!r}: {exc}") from exc
    return target


def is_json_data(value: Any) -> bool:
    """Whether ``value`` survives a JSON round trip unchanged."""
    try:
        return json.loads(json.dumps(value)) == value
    except (TypeError, ValueError):
        return False


def object_spec(factory: Any, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None) -> dict[str, Any]:
    """``{"factory": path, "args": [...], "kwargs": {...}}``; raises :class:`ShippingError` saying why not."""
    path = import_path(factory)
    name = getattr(factory, "__qualname__", repr(factory))
    if path is None:
        raise ShippingError(
            f"{name} cannot be referred to by an import path (it is defined in __main__ or inside a function); "
            "move it to an importable module"
        )
    kwargs = dict(kwargs or {})
    if not is_json_data(list(args)) or not is_json_data(kwargs):
        raise ShippingError(f"the arguments of {name} are not plain JSON data (numbers, strings, lists, dicts)")
    return {"factory": path, "args": list(args), "kwargs": kwargs}


def build_from_spec(spec: dict[str, Any]) -> Any:
    """Call the factory of an :func:`object_spec` with its arguments."""
    return resolve(spec["factory"])(*spec.get("args", ()), **spec.get("kwargs", {}))
