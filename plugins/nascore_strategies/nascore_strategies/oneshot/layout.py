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


class _GlobalMeanGradient(torch.autograd.Function):
    """The identity on a global average pooling's output ``y = mean(x)``, whose backward gives ``x`` the
    gradient ``g / (H * W)`` *expanded* to ``x``'s shape (stride 0 over the spatial dimensions).

    PyTorch's own backward materializes that gradient in NCHW, whatever ``x``'s layout; the
    elementwise backward before it (a ReLU's) then converts it to ``channels_last``: two passes
    over a full activation-sized tensor, freshly allocated each step. The expanded gradient costs
    nothing, and the next backward kernel writes its result in its own input's layout.
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.input_shape = x.shape
        ctx.area = x.shape[-1] * x.shape[-2]
        return y.view_as(y)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        return (grad / ctx.area).expand(ctx.input_shape), None


def _is_global(pool: nn.Module) -> bool:
    size = pool.output_size  # type: ignore[attr-defined]
    sizes = size if isinstance(size, tuple) else (size, size)
    return all(s == 1 for s in sizes)


def keep_gradient_layout(module: nn.Module) -> list[Any]:
    """Make the global pooling layers of ``module`` hand back cheap gradients in their inputs' layout.

    * ``AdaptiveAvgPool2d(1)`` on a ``channels_last`` input: its gradient is handed back expanded
      from the pooled gradient, never materialized (see :class:`_GlobalMeanGradient`); the forward
      pass is PyTorch's own.
    * other ``AdaptiveAvgPool2d`` / ``AdaptiveMaxPool2d``: their backward returns an NCHW gradient
      whatever the input's layout, and the layer before (a ReLU, typically) would then run its
      backward on mixed layouts, several times slower on CPU than on one layout; a gradient hook
      on the pooling input converts the gradient once.

    Returns the hook handles (``handle.remove()`` undoes it).
    """

    def to_input_layout(grad: torch.Tensor) -> torch.Tensor:
        return grad.contiguous(memory_format=torch.channels_last)

    def channels_last_grad(x: Any) -> bool:
        return (isinstance(x, torch.Tensor) and x.requires_grad and x.dim() == 4
                and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous())

    def pre_hook(_: nn.Module, args: tuple[Any, ...]) -> None:
        x = args[0] if args else None
        if channels_last_grad(x):
            x.register_hook(to_input_layout)

    def global_mean_hook(_: nn.Module, args: tuple[Any, ...], output: Any) -> Any:
        x = args[0] if args else None
        if channels_last_grad(x) and isinstance(output, torch.Tensor) and torch.is_grad_enabled():
            return _GlobalMeanGradient.apply(x, output.detach())
        return None

    handles = []
    for m in module.modules():
        if isinstance(m, nn.AdaptiveAvgPool2d) and _is_global(m):
            handles.append(m.register_forward_hook(global_mean_hook))
        elif isinstance(m, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
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
