"""``Mutable<Layer>`` wrappers: every ``torch.nn`` layer with init arguments that may be choices.

``MutableConv2d(3, nascore.choice("width", [16, 32]), kernel_size=3)`` is a search space over the
width; built frozen it is a plain ``nn.Conv2d``. The wrappers are generated from ``torch.nn``'s
public layer classes when this module is imported, so every layer of the installed torch has one.
"""

from __future__ import annotations

import warnings

import torch.nn as nn

from nascore.nn.base import ParametrizedModule

_CONTAINERS = {"Module", "Sequential", "ModuleList", "ModuleDict", "ParameterList", "ParameterDict", "Container"}


def _wrappable_layers() -> dict[str, type[nn.Module]]:
    layers = {}
    for name in sorted(getattr(nn.modules, "__all__", dir(nn))):
        cls = getattr(nn, name, None)
        if isinstance(cls, type) and issubclass(cls, nn.Module) and name not in _CONTAINERS:
            layers[name] = cls
    return layers


def _make_wrapper(name: str, layer: type[nn.Module]) -> type[ParametrizedModule]:
    wrapper = type(
        f"Mutable{name}",
        (ParametrizedModule, layer),
        {
            "__module__": __name__,
            "__qualname__": f"Mutable{name}",
            "__doc__": f"``nn.{name}`` whose init arguments may be choices; frozen, it is a plain ``nn.{name}``.",
        },
        wraps=layer,
    )
    return wrapper


WRAPPED_LAYERS: dict[str, type[nn.Module]] = _wrappable_layers()
__all__ = [f"Mutable{name}" for name in WRAPPED_LAYERS]
with warnings.catch_warnings():
    warnings.simplefilter("ignore", FutureWarning)  # deprecated layers (NLLLoss2d) warn on subclassing
    for _name, _layer in WRAPPED_LAYERS.items():
        globals()[f"Mutable{_name}"] = _make_wrapper(_name, _layer)
del _name, _layer
