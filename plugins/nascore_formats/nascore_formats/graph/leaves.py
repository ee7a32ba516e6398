"""Leaf modules: which modules the graph keeps opaque, and how each one is rebuilt from its init arguments.

A leaf is a basic unit (a :class:`~nascore.nn.ParametrizedModule`: a ``Mutable<Layer>`` wrapper,
a user subclass, or a class decorated with :func:`~nascore.nn.basic_unit`) or a layer of
``torch.nn``. A graph model ships and generates code for a leaf as its class and init
arguments. Basic units record their arguments; for a plain ``torch.nn`` layer they are read back
from the layer's attributes and checked by rebuilding the layer (on the ``meta`` device) and
comparing it with the original. A layer that does not pass that check is an error that names
the wrapper that records its arguments instead.
"""

from __future__ import annotations

import inspect
import itertools
import warnings
from typing import Any

import torch
import torch.nn as nn

from nascore.nn import MutableModule, ParametrizedModule
from nascore.space import collect_mutables
from nascore_formats.graph.errors import GraphConversionError
from nascore_formats.graph.ir import LeafModule

__all__ = ["is_leaf_module", "leaf_module_spec", "class_path"]

_CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)
_UNSET = object()


def class_path(cls: type) -> str:
    """``"module:QualName"`` of a class, for messages."""
    return f"{cls.__module__}:{cls.__qualname__}"


def is_leaf_module(module: nn.Module) -> bool:
    """Whether the graph keeps ``module`` as one opaque node (basic units and ``torch.nn`` layers)."""
    if isinstance(module, ParametrizedModule):
        return True
    if isinstance(module, MutableModule) or isinstance(module, _CONTAINERS):
        return False
    return type(module).__module__.startswith(("torch.nn.", "torch.ao.nn."))


def leaf_module_spec(module: nn.Module, path: str) -> LeafModule:
    """The class and init arguments that rebuild ``module`` (found at ``path`` in the space)."""
    if isinstance(module, ParametrizedModule):
        return _basic_unit_spec(module, path)
    return _torch_layer_spec(module, path)


def _basic_unit_spec(module: ParametrizedModule, path: str) -> LeafModule:
    cls = type(module)
    factory = cls.wrapped_layer() or cls
    args, kwargs = module.trace_args, module.trace_kwargs
    own = {id(m) for m in collect_mutables((args, kwargs))}
    inner = [m for m in module.leaf_mutables() if id(m) not in own]
    if inner:
        labels = sorted({m.label for m in inner})
        raise GraphConversionError(
            f"basic unit {cls.__name__} at {path!r} contains search decisions of its own ({', '.join(map(repr, labels))}); "
            "a basic unit is one opaque node, so nothing inside it can be searched in the graph format. "
            "Pass the choice as an init argument of the basic unit instead, or do not make the module a basic unit "
            "(plain nn.Module subclasses are traced and their primitives searched)",
            module_path=path,
        )
    return LeafModule(factory, tuple(_module_arguments(args, path)), _module_arguments(kwargs, path))


def _module_arguments(value: Any, path: str) -> Any:
    """Init arguments with modules in them described as leaf modules where possible."""
    if isinstance(value, nn.Module):
        if is_leaf_module(value):
            try:
                return leaf_module_spec(value, f"{path} (argument)")
            except GraphConversionError:
                return value
        return value
    if isinstance(value, list):
        return [_module_arguments(v, path) for v in value]
    if isinstance(value, tuple) and not hasattr(value, "_fields"):
        return tuple(_module_arguments(v, path) for v in value)
    if isinstance(value, dict):
        return {k: _module_arguments(v, path) for k, v in value.items()}
    return value


# --- torch.nn layers ------------------------------------------------------------------------------------


def _plain(value: Any) -> bool:
    if value is None or isinstance(value, (bool, int, float, str, torch.dtype)):
        return True
    if isinstance(value, (tuple, list)):
        return all(_plain(v) for v in value)
    return False


def _fingerprint(module: nn.Module) -> str:
    """What must be equal between a layer and its rebuild: classes, plain attributes, tensor shapes."""
    parts = []
    for name, sub in module.named_modules():
        attributes = {
            key: value
            for key, value in vars(sub).items()
            if not key.startswith("_") and key != "training" and _plain(value)
        }
        parts.append(f"{name}:{type(sub).__qualname__}:{sorted(attributes.items(), key=lambda kv: kv[0])!r}")
    for name, tensor in itertools.chain(module.named_parameters(), module.named_buffers()):
        grad = getattr(tensor, "requires_grad", False) if isinstance(tensor, nn.Parameter) else None
        parts.append(f"{name}:{tuple(tensor.shape)}:{tensor.dtype}:{grad}")
    return "\n".join(parts)


def _attribute(module: nn.Module, name: str) -> Any:
    if name in vars(module) and not name.startswith("_"):
        return vars(module)[name]
    for table in ("_parameters", "_buffers", "_modules"):
        entries = vars(module).get(table, {})
        if name in entries:
            return entries[name]
    prop = getattr(type(module), name, None)
    if isinstance(prop, property):
        try:
            return getattr(module, name)
        except Exception:  # noqa: BLE001 - a failing property is just not a source of arguments
            return _UNSET
    return _UNSET


def _rebuild_matches(cls: type[nn.Module], args: list[Any], kwargs: dict[str, Any], expected: str) -> bool:
    try:
        with warnings.catch_warnings(), torch.device("meta"):
            warnings.simplefilter("ignore")
            rebuilt = cls(*args, **kwargs)
    except Exception:  # noqa: BLE001 - a wrong guess of the arguments; try the next one
        return False
    return _fingerprint(rebuilt) == expected


def _torch_layer_spec(module: nn.Module, path: str) -> LeafModule:
    cls = type(module)
    failure = (
        f"cannot recover the init arguments of {cls.__name__} at {path!r} from its attributes, so the graph format "
        f"cannot rebuild it in a trial. Build it with nascore.nn.Mutable{cls.__name__}(...) (same arguments; it "
        "records them), or wrap it in a class decorated with @nascore.nn.basic_unit"
    )
    try:
        signature = inspect.signature(cls)
    except (TypeError, ValueError):
        raise GraphConversionError(failure, module_path=path) from None
    expected = _fingerprint(module)
    positional: list[tuple[str, Any]] = []
    keywords: dict[str, Any] = {}
    unknown_flags: list[tuple[str, bool]] = []
    for name, parameter in signature.parameters.items():
        if parameter.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            continue
        if name in ("device", "dtype"):
            continue
        value = _attribute(module, name)
        default = parameter.default
        if isinstance(default, bool) and (value is None or isinstance(value, (torch.Tensor, nn.Module))):
            value = value is not None  # ``bias=True`` is stored as a Parameter (or None)
        if value is _UNSET or isinstance(value, (torch.Tensor, nn.Module)):
            if default is inspect.Parameter.empty:
                raise GraphConversionError(failure, module_path=path)
            if isinstance(default, bool):
                unknown_flags.append((name, default))
            continue
        if default is inspect.Parameter.empty and parameter.kind is not inspect.Parameter.KEYWORD_ONLY:
            positional.append((name, value))
        elif default is inspect.Parameter.empty or not _same(value, default):
            keywords[name] = value
    args = [value for _, value in positional]
    cache_key = (cls, expected, repr(args), repr(sorted(keywords.items())), tuple(unknown_flags))
    cached = _SPEC_CACHE.get(cache_key)
    if cached is not None:
        return cached
    # Flags without an attribute (``nn.MultiheadAttention(bias=...)``): try their values, default first.
    for flips in itertools.product((False, True), repeat=min(len(unknown_flags), 4)):
        trial = dict(keywords)
        for (name, default), flip in zip(unknown_flags, flips):
            if flip:
                trial[name] = not default
        if _rebuild_matches(cls, args, trial, expected):
            short = _shortest(cls, args, trial, expected)  # may also shorten ``args`` in place
            spec = LeafModule(cls, tuple(args), short)
            _SPEC_CACHE[cache_key] = spec
            return spec
    raise GraphConversionError(failure, module_path=path)


_SPEC_CACHE: dict[Any, LeafModule] = {}


def _shortest(cls: type[nn.Module], args: list[Any], kwargs: dict[str, Any], expected: str) -> dict[str, Any]:
    """Drop keyword arguments the layer gets right without, and write ``(3, 3)`` as ``3`` (readable code)."""
    kwargs = dict(kwargs)
    for name in list(kwargs):
        trial = {k: v for k, v in kwargs.items() if k != name}
        if _rebuild_matches(cls, args, trial, expected):
            kwargs = trial
    for index, value in enumerate(args):
        if _uniform_tuple(value):
            trial_args = list(args)
            trial_args[index] = value[0]
            if _rebuild_matches(cls, trial_args, kwargs, expected):
                args[index] = value[0]
    for name, value in list(kwargs.items()):
        if _uniform_tuple(value) and _rebuild_matches(cls, args, {**kwargs, name: value[0]}, expected):
            kwargs[name] = value[0]
    return kwargs


def _uniform_tuple(value: Any) -> bool:
    return isinstance(value, tuple) and len(value) >= 1 and all(type(v) is int and v == value[0] for v in value)


def _same(a: Any, b: Any) -> bool:
    try:
        return type(a) is type(b) and bool(a == b)
    except Exception:  # noqa: BLE001
        return False
