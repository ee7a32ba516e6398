"""ReLUs that overwrite their input while a supernet trains: one activation-sized tensor less per ReLU, per step.

A ``nn.ReLU`` right after a convolution, a linear layer or a batch normalization in an ``nn.Sequential``
may run in place (``ReLU(inplace=True)``, as torchvision's ResNets are written): the backward pass of
those layers needs their input, not their output, and in a ``Sequential`` nothing but the ReLU reads
that output. Values and gradients are unchanged; each step allocates and writes one tensor less per
ReLU (about 5% of a RandomOneShot step of ``benchmarks/oneshot.py``'s medium regime on CPU, where
such element-wise passes are bound by memory bandwidth).

:func:`inplace_relus` switches those ReLUs on while the supernet trains and restores every one after,
so exported sub-nets hold the modules as the user wrote them. A ReLU is left as it is when it or the
layer before it has hooks (a hook may keep that output), or while any global module hook is
registered. Should something still need the overwritten output, autograd raises at the backward
pass (its version check) rather than computing a wrong gradient.
``OneShotStrategy(inplace_relu=False)`` turns it off.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch.nn as nn
from torch.nn.modules import module as _module

from nascore_strategies.oneshot.supermodule.base import BaseSuperNetModule
from nascore_strategies.oneshot.supermodule.operation import MixedOperation

__all__ = ["inplace_relus", "relus_that_may_run_in_place"]

#: Layers whose backward pass does not read their output, so a ReLU after them may overwrite it.
_OUTPUT_NOT_NEEDED = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear, nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def relus_that_may_run_in_place(module: nn.Module) -> list[nn.ReLU]:
    """The ReLUs of ``module`` (not in place yet) that may overwrite their input.

    Each place the ReLU is used must be in a plain ``nn.Sequential`` (not a subclass with its own
    ``forward``), right after a layer of :data:`_OUTPUT_NOT_NEEDED`, with no hooks on either. Of the
    supernet modules, only nascore's mixed operations that sample or mix qualify (their output is a new
    tensor); not Proxyless ones, whose binary gate keeps the output for the architecture gradient, nor
    other supernet modules. None while a global module hook is registered.
    """
    if _global_hooks():
        return []
    eligible: dict[int, nn.ReLU] = {}
    refused: set[int] = set()
    for parent in module.modules():
        children = list(parent._modules.values())
        for position, child in enumerate(children):
            if type(child) is not nn.ReLU:
                continue
            before = children[position - 1] if position > 0 else None
            if (type(parent).forward is nn.Sequential.forward and isinstance(parent, nn.Sequential)
                    and isinstance(before, _OUTPUT_NOT_NEEDED) and _output_is_new(before)
                    and not child.inplace and not _hooked(before) and not _hooked(child)):
                eligible[id(child)] = child
            else:
                refused.add(id(child))
    return [relu for key, relu in eligible.items() if key not in refused]


@contextlib.contextmanager
def inplace_relus(module: nn.Module, enabled: bool = True) -> Iterator[int]:
    """Inside, the ReLUs of :func:`relus_that_may_run_in_place` run in place; yields how many."""
    relus = relus_that_may_run_in_place(module) if enabled else []
    for relu in relus:
        relu.inplace = True
    try:
        yield len(relus)
    finally:
        for relu in relus:
            relu.inplace = False


def _output_is_new(layer: nn.Module) -> bool:
    """Whether nothing but the next module reads ``layer``'s output (a user's layer, or a mixed operation
    that samples or mixes)."""
    if isinstance(layer, MixedOperation):
        return layer.mode in ("sampling", "differentiable")
    return not isinstance(layer, BaseSuperNetModule)


def _hooked(module: nn.Module) -> bool:
    return bool(module._forward_hooks or module._forward_pre_hooks or module._backward_hooks
                or getattr(module, "_backward_pre_hooks", None))


def _global_hooks() -> bool:
    names = ("_global_forward_hooks", "_global_forward_pre_hooks", "_global_backward_hooks",
             "_global_backward_pre_hooks")
    return any(getattr(_module, name, None) for name in names)
