"""Turning a model space into a supernet: mutation hooks and the walk that applies them.

A *mutation hook* is ``hook(module, name, memo, mutate_kwargs)``:

* ``module``: a submodule of the space (the root itself is never given to hooks);
* ``name``: its full path in the space (``"body.blocks.0.conv"``);
* ``memo``: a dict shared by all hook calls of one conversion, for hooks to read and write;
* ``mutate_kwargs``: the algorithm's settings (``mode``: ``"differentiable"``, ``"sampling"`` or
  ``"proxyless"``; ``arch``: the :class:`~nascore_strategies.oneshot.supermodule.ArchParameters`
  of differentiable and proxyless algorithms; ``strategy``: the strategy's name, for messages).

It returns one of:

* ``None`` or ``False``: leave the module, let the next hooks look at it;
* ``True``: leave the module, and call no further hook on it;
* a module: replace ``module`` with it, and call no further hook on it;
* ``(module_or_None, suppress)``: replace (unless ``None``), and stop the later hooks if ``suppress``.

For each submodule (top-down: a module before its children, the children of a replacement
included), the user's hooks run first, then the strategy's defaults, the last of which,
:func:`no_default_hook`, refuses any module still holding decisions, naming its path and labels.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, Union

import torch.nn as nn

from nascore.errors import StrategyError
from nascore.nn import MutableModule, ParametrizedModule
from nascore.space import collect_mutables
from nascore_strategies.oneshot.supermodule import (
    DifferentiableMixedCell,
    DifferentiableMixedInput,
    DifferentiableMixedLayer,
    DifferentiableMixedRepeat,
    PathSamplingCell,
    PathSamplingInput,
    PathSamplingLayer,
    PathSamplingRepeat,
    ProxylessMixedCell,
    ProxylessMixedInput,
    ProxylessMixedLayer,
    ProxylessMixedRepeat,
)
from nascore_strategies.oneshot.supermodule.base import BaseSuperNetModule
from nascore_strategies.oneshot.supermodule.operation import NATIVE_MIXED_OPERATIONS, mixed_operation_hook

__all__ = [
    "MutationHook",
    "default_mutation_hooks",
    "no_default_hook",
    "traverse_and_mutate_submodules",
]

_log = logging.getLogger(__name__)

MutationHookResult = Union[nn.Module, bool, None, tuple[Union[nn.Module, None], bool]]
MutationHook = Callable[[nn.Module, str, dict[str, Any], dict[str, Any]], MutationHookResult]


def default_mutation_hooks(mode: str) -> list[MutationHook]:
    """The built-in hooks of an algorithm family, :func:`no_default_hook` last."""
    if mode == "differentiable":
        classes: Sequence[type[BaseSuperNetModule]] = (
            DifferentiableMixedCell, DifferentiableMixedLayer, DifferentiableMixedInput, DifferentiableMixedRepeat,
        )
    elif mode == "sampling":
        classes = (PathSamplingCell, PathSamplingLayer, PathSamplingInput, PathSamplingRepeat)
    elif mode == "proxyless":
        classes = (ProxylessMixedCell, ProxylessMixedLayer, ProxylessMixedInput, ProxylessMixedRepeat)
    else:
        raise StrategyError(f"unknown supernet mode {mode!r}")
    return [*(cls.mutate for cls in classes), mixed_operation_hook, no_default_hook]


def no_default_hook(module: nn.Module, name: str, memo: dict[str, Any], mutate_kwargs: dict[str, Any]) -> MutationHookResult:
    """The last hook: a module that still holds decisions of its own is one the strategy cannot search.

    :raises StrategyError: naming the module's path, its type, its labels and what to do.
    """
    if isinstance(module, BaseSuperNetModule) or not isinstance(module, MutableModule):
        return None
    labels = sorted({m.label for m in collect_mutables(module.mutables)})
    if not labels:
        return None
    strategy = mutate_kwargs.get("strategy") or "this one-shot strategy"
    where = f"module {name!r} ({type(module).__name__}, label{'s' if len(labels) > 1 else ''} {', '.join(map(repr, labels))})"
    wrapped = type(module).wrapped_layer(inherited=True) if isinstance(module, ParametrizedModule) else None
    if wrapped is not None:
        supported = ", ".join(sorted(f"nn.{t.__name__}" for t in NATIVE_MIXED_OPERATIONS))
        raise StrategyError(
            f"{strategy} cannot search {where}: its choices are arguments of nn.{wrapped.__name__}, and there is no "
            f"mixed operation sharing weights for nn.{wrapped.__name__} (there is one for {supported}). Make the "
            "choice a LayerChoice between fixed layers, pass a mutation hook for it (mutation_hooks=[...]), or use "
            "a multi-trial strategy (random, evolution, ...)"
        )
    raise StrategyError(
        f"{strategy} cannot search {where}: it holds decisions of its own and no mutation hook turned it into a "
        "supernet module (one-shot strategies know LayerChoice, InputChoice, Repeat, Cell and the Mutable<Layer> "
        "wrappers of Conv2d, Linear, BatchNorm2d, LayerNorm and MultiheadAttention). Pass a mutation hook for "
        f"{type(module).__name__} (mutation_hooks=[...]), or use a multi-trial strategy"
    )


def _parse(result: Any, hook: MutationHook, name: str) -> tuple[nn.Module | None, bool]:
    if isinstance(result, tuple):
        if len(result) != 2 or not isinstance(result[1], bool) or not (result[0] is None or isinstance(result[0], nn.Module)):
            raise StrategyError(
                f"mutation hook {_hook_name(hook)} returned {result!r} for module {name!r}; a tuple must be "
                "(module or None, suppress: bool)"
            )
        return result[0], result[1]
    if result is True:
        return None, True
    if result is None or result is False:
        return None, False
    if isinstance(result, nn.Module):
        return result, True
    raise StrategyError(
        f"mutation hook {_hook_name(hook)} returned a {type(result).__name__} for module {name!r}; return None, "
        "a bool, a module, or (module or None, suppress)"
    )


def _hook_name(hook: Any) -> str:
    return getattr(hook, "__qualname__", None) or repr(hook)


def _apply_hooks(
    module: nn.Module, name: str, hooks: Sequence[MutationHook], memo: dict[str, Any], mutate_kwargs: dict[str, Any]
) -> nn.Module | None:
    replaced = False
    for hook in hooks:
        new, suppress = _parse(hook(module, name, memo, mutate_kwargs), hook, name)
        if new is not None:
            if not isinstance(new, BaseSuperNetModule):
                _log.debug("Mutation hook %s replaced %s with a %s", _hook_name(hook), name, type(new).__name__)
            module, replaced = new, True
        if suppress:
            break
    return module if replaced else None


def traverse_and_mutate_submodules(
    root: nn.Module,
    hooks: Sequence[MutationHook],
    mutate_kwargs: dict[str, Any],
    *,
    memo: dict[str, Any] | None = None,
    topdown: bool = True,
) -> dict[str, nn.Module]:
    """Call ``hooks`` on every submodule of ``root`` (in place) and return the replacements by path.

    ``topdown``: hooks see a module before its children (the children of a replacement are visited
    too); otherwise after them.
    """
    memo = {} if memo is None else memo
    replaced: dict[str, nn.Module] = {}

    def visit(parent: nn.Module, prefix: str) -> None:
        for child_name, child in list(parent.named_children()):
            path = f"{prefix}.{child_name}" if prefix else child_name
            if not topdown:
                visit(child, path)
            new = _apply_hooks(child, path, hooks, memo, mutate_kwargs)
            if new is not None:
                parent._modules[child_name] = new
                replaced[path] = new
                child = new
            if topdown:
                visit(child, path)

    visit(root, "")
    return replaced
