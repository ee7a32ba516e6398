"""``@basic_unit``: mark a module class as one opaque unit whose init arguments may be choices.

A basic unit is never looked into: the graph format keeps it as a single node built from its
class and init arguments, which is also how to make code ``torch.fx`` cannot trace part of a
graph space. Its init arguments may be decisions (``nascore.choice``, expressions of choices):
built as a space it is constructed with their defaults and holds the decisions; built inside
:func:`nascore.fixed_arch`, with their values. Every :class:`~nascore.nn.ParametrizedModule` is a
basic unit; the decorator makes an ordinary ``nn.Module`` subclass one::

    @basic_unit
    class SqueezeExcite(nn.Module):
        def __init__(self, channels: int, reduction: int = 4) -> None: ...

    se = SqueezeExcite(32, reduction=nascore.choice("se", [2, 4]))
"""

from __future__ import annotations

from typing import Any, TypeVar

import torch.nn as nn

from nascore.errors import SearchSpaceError
from nascore.nn.base import MutableModule, ParametrizedModule

__all__ = ["basic_unit", "is_basic_unit"]

M = TypeVar("M", bound=type)


def basic_unit(cls: M) -> M:
    """Class decorator: return ``cls`` as a basic unit (a subclass that also derives ParametrizedModule).

    The returned class keeps the name, module, qualified name and docstring of ``cls``, so it is
    importable where ``cls`` was and instances are still instances of ``cls``.
    """
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise SearchSpaceError(f"@basic_unit decorates nn.Module subclasses, got {cls!r}")
    if issubclass(cls, ParametrizedModule):
        return cls
    if issubclass(cls, MutableModule):
        raise SearchSpaceError(
            f"{cls.__qualname__} is a {MutableModule.__name__} (a model space or a search primitive) and cannot be a "
            "basic unit: a basic unit is opaque, its inside is never searched"
        )
    namespace: dict[str, Any] = {
        "__module__": cls.__module__,
        "__qualname__": cls.__qualname__,
        "__doc__": cls.__doc__,
        "__init__": cls.__init__,
    }
    return type(cls.__name__, (cls, ParametrizedModule), namespace)  # type: ignore[return-value]


def is_basic_unit(obj: Any) -> bool:
    """Whether a module (or a module class) is a basic unit."""
    cls = obj if isinstance(obj, type) else type(obj)
    return issubclass(cls, ParametrizedModule)
