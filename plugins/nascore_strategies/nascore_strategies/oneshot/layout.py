"""The memory layout a supernet trains in: ``channels_last`` for convolutional supernets on CPU.

PyTorch's CPU kernels for 2-D pooling and oneDNN's convolutions are much faster on
``channels_last`` (NHWC) tensors than on the default NCHW layout: a 3x3 max pooling of a
64x16x16x16 batch takes about 0.6 ms instead of 4.7 ms on one core. A differentiable supernet runs
every candidate of every choice, pooling among them, so the layout decides much of a step's time.

:attr:`OneShotStrategy.memory_format <nascore_strategies.oneshot.base.OneShotStrategy>` picks it:

* ``"auto"`` (default): ``channels_last`` when the supernet trains on CPU and has 2-D
  convolutions or pooling, and a trial forward pass on the first training batch succeeds in that
  layout (a ``.view()`` on a spatial tensor raises on NHWC, so such models keep the contiguous
  layout, with a log message saying why). The choice is deterministic: it never depends on timing.
* ``"channels_last"``: always (on any device); an error in that layout is the user's to fix.
* ``"contiguous"``: never; the supernet trains as built.

Only 4-D tensors change layout (weights of 2-D convolutions, 4-D batch tensors); values are the
same, only their order in memory differs, so results match the contiguous layout up to float
rounding.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn as nn

from nascore.errors import StrategyError

__all__ = ["MEMORY_FORMATS", "check_memory_format", "convert_batch", "convert_module", "has_spatial_ops",
           "keep_gradient_layout", "trial_run"]

MEMORY_FORMATS = ("auto", "channels_last", "contiguous")

_FORMATS = {"channels_last": torch.channels_last, "contiguous": torch.contiguous_format}
_POOLS_2D = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, nn.LPPool2d)


def check_memory_format(value: Any, owner: str) -> str:
    """``value`` if it is one of :data:`MEMORY_FORMATS`; a :class:`StrategyError` naming ``owner`` otherwise."""
    if value not in MEMORY_FORMATS:
        raise StrategyError(f"{owner}: memory_format must be one of {', '.join(map(repr, MEMORY_FORMATS))}, got {value!r}")
    return str(value)


def has_spatial_ops(module: nn.Module) -> bool:
    """Whether ``module`` has 2-D convolutions (a 4-D weight) or 2-D pooling layers."""
    if any(p.dim() == 4 for p in module.parameters()):
        return True
    return any(isinstance(m, _POOLS_2D) for m in module.modules())


def convert_module(module: nn.Module, layout: str) -> None:
    """Store ``module``'s 4-D parameters and buffers in ``layout``, in place (the Parameter objects stay)."""
    module.to(memory_format=_FORMATS[layout])


def convert_batch(batch: Any, layout: str) -> Any:
    """``batch`` with its 4-D floating-point tensors in ``layout`` (tuples, lists and dicts are walked)."""
    fmt = _FORMATS[layout]
    if isinstance(batch, torch.Tensor):
        if batch.dim() == 4 and batch.is_floating_point():
            return batch.contiguous(memory_format=fmt)
        return batch
    if isinstance(batch, dict):
        return type(batch)((k, convert_batch(v, layout)) for k, v in batch.items())
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):  # named tuple
        return type(batch)(*(convert_batch(v, layout) for v in batch))
    if isinstance(batch, (list, tuple)):
        return type(batch)(convert_batch(v, layout) for v in batch)
    return batch


def _is_global(pool: nn.Module) -> bool:
    size = pool.output_size  # type: ignore[attr-defined]
    sizes = size if isinstance(size, tuple) else (size, size)
    return all(s == 1 for s in sizes)


def _channels_last_grad(x: Any) -> bool:
    """Whether ``x`` is a 4-D ``channels_last`` (and not also contiguous) tensor that takes a gradient."""
    return (isinstance(x, torch.Tensor) and x.requires_grad and x.dim() == 4
            and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous())


class _GlobalAvgPool2d(nn.AdaptiveAvgPool2d):
    """``nn.AdaptiveAvgPool2d(1)`` whose backward hands the gradient back in its input's layout.

    On a ``channels_last`` input that takes a gradient, the mean over the spatial dimensions is
    taken as a sum divided by the area: the sum's backward hands back the pooled gradient
    *expanded* (stride 0 over the spatial dimensions), which costs nothing, and the next backward
    kernel writes its result in its own input's layout. PyTorch's own backward materializes that
    gradient in NCHW whatever the input's layout, and the elementwise backward before it (a ReLU's)
    then converts it: two passes over an activation-sized tensor, freshly allocated each step. Any
    other input goes to PyTorch's pooling. The values equal the mean up to float rounding.

    :func:`keep_gradient_layout` gives a plain ``AdaptiveAvgPool2d(1)`` this class while a supernet
    trains (and takes it back after). A class, not a forward hook: a module with hooks takes
    PyTorch's slow call path, and the hook an autograd function of its own (about 13 us of a
    40 us pooling forward and backward of a small batch).
    """

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if _channels_last_grad(input):
            return input.sum((2, 3), keepdim=True).div_(input.shape[2] * input.shape[3])
        return super().forward(input)


class _ClassRestore:
    """A handle that gives ``module`` its class back (see :func:`keep_gradient_layout`)."""

    def __init__(self, module: nn.Module, cls: type[nn.Module]) -> None:
        self.module = module
        self.cls = cls

    def remove(self) -> None:
        if type(self.module) is _GlobalAvgPool2d:
            self.module.__class__ = self.cls


def keep_gradient_layout(module: nn.Module) -> list[Any]:
    """Make the global pooling layers of ``module`` hand back cheap gradients in their inputs' layout.

    * a plain ``AdaptiveAvgPool2d(1)``: while the handle is held, it is a :class:`_GlobalAvgPool2d`,
      which hands its gradient back expanded from the pooled gradient, never materialized;
    * other ``AdaptiveAvgPool2d`` / ``AdaptiveMaxPool2d`` (subclasses included): their backward returns
      an NCHW gradient whatever the input's layout, and the layer before (a ReLU, typically) would
      then run its backward on mixed layouts, several times slower on CPU than on one layout; a
      gradient hook on the pooling input converts the gradient once.

    Returns the handles (``handle.remove()`` undoes each).
    """

    def to_input_layout(grad: torch.Tensor) -> torch.Tensor:
        return grad.contiguous(memory_format=torch.channels_last)

    def pre_hook(_: nn.Module, args: tuple[Any, ...]) -> None:
        x = args[0] if args else None
        if _channels_last_grad(x):
            x.register_hook(to_input_layout)

    handles: list[Any] = []
    for m in module.modules():
        if type(m) is nn.AdaptiveAvgPool2d and _is_global(m):
            m.__class__ = _GlobalAvgPool2d
            handles.append(_ClassRestore(m, nn.AdaptiveAvgPool2d))
        elif isinstance(m, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)) and type(m) is not _GlobalAvgPool2d:
            handles.append(m.register_forward_pre_hook(pre_hook))
    return handles


def trial_run(module: nn.Module, forward: Callable[[], None]) -> BaseException | None:
    """Run ``forward`` without gradients, then restore ``module``'s buffers; return what it raised, if anything.

    The buffers (BatchNorm's running statistics) are restored so the trial leaves no trace in training.
    """
    saved = [(b, b.detach().clone()) for b in module.buffers()]
    try:
        with torch.no_grad():
            forward()
    except Exception as exc:  # noqa: BLE001 - any failure means: do not use this layout
        return exc
    finally:
        with torch.no_grad():
            for buffer, value in saved:
                buffer.copy_(value)
    return None
