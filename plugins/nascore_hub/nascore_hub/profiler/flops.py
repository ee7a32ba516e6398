"""FLOPs and parameter counts of models and of the samples of a model space.

Conventions: a multiply-add (``y += w * x``) is **1 MAC = 2 FLOPs**. The counts come from
:class:`torch.utils.flop_counter.FlopCounterMode`, which counts the floating-point work of matrix
products (``mm``, ``addmm``, ``bmm``, ``baddbmm``), convolutions (also transposed) and attention
(``scaled_dot_product_attention``) as 2 FLOPs per multiply-add, and nothing else: biases,
batch/layer normalisation, activations, pooling, element-wise additions (a residual) and softmax
outside attention count **0**. Every function and profiler here takes ``unit="mac"`` (the default,
what papers call "FLOPs" in ``MobileNet``/``ResNet`` tables: ``Conv2d(C, C, 3)`` on ``HxW`` with
padding 1 is ``C*C*9*H*W``) or ``unit="flop"`` (twice that, PyTorch's convention).

* :func:`count_flops` / :func:`count_parameters`: exact counts of a plain (frozen) ``nn.Module``.
* :class:`FlopsProfiler` / :class:`ParamsProfiler`: ``profiler(sample) -> float`` for the samples of
  a nascore model space, building the frozen model once per sample (``space.freeze(sample)``) and
  caching the answer by the canonical sample.
* :func:`flops_filter` / :func:`budget_filter`: a strategy's ``model_filter``.
* :class:`ProfilerConstraint`: a constraint of the space (``space.add_mutable(...)``).
* :func:`flops_cost`: a ``cost(module, args, kwargs)`` for the one-shot strategies'
  ``ExpectedCostPenalty``.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode

from nascore.space import LabelledMutable, Mutable, Sample, sample_key
from nascore.space.conditions import Constraint

__all__ = [
    "count_flops",
    "count_parameters",
    "flops_cost",
    "ModelProfiler",
    "FlopsProfiler",
    "ParamsProfiler",
    "ProfilerConstraint",
    "budget_filter",
    "flops_filter",
    "params_filter",
]

_UNITS = ("mac", "flop")


def _check_unit(unit: str) -> str:
    if unit not in _UNITS:
        raise ValueError(
            f"unit must be 'mac' (1 per multiply-add) or 'flop' (2 per multiply-add), got {unit!r}"
        )
    return unit


def _as_inputs(example_inputs: Any) -> tuple[Any, ...]:
    return tuple(example_inputs) if isinstance(example_inputs, (tuple, list)) else (example_inputs,)


def _convert(flops: int, unit: str) -> int:
    # FlopCounterMode counts 2 per multiply-add for every op it knows, so the total is even.
    return flops if unit == "flop" else flops // 2


def _count(run: Callable[[], Any], unit: str) -> int:
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        run()
    return _convert(counter.get_total_flops(), unit)


class _eval_mode:  # noqa: N801
    """Run ``module`` in eval mode (batch norm uses its statistics and keeps them), then restore its modes."""

    def __init__(self, module: nn.Module) -> None:
        self.module = module
        self.modes: list[tuple[nn.Module, bool]] = []

    def __enter__(self) -> nn.Module:
        self.modes = [(m, m.training) for m in self.module.modules()]
        self.module.eval()
        return self.module

    def __exit__(self, *exc: object) -> None:
        for m, training in self.modes:
            m.training = training


def count_flops(model: nn.Module, *example_inputs: Any, unit: str = "mac", **kwargs: Any) -> int:
    """The floating-point work of one forward ``model(*example_inputs, **kwargs)``, exactly.

    :param unit: ``"mac"`` (default): multiply-adds, 1 per ``y += w * x``; ``"flop"``: 2 per
        multiply-add (``torch.utils.flop_counter``'s convention). Only matrix products,
        convolutions and attention count; biases, normalisation, activations, pooling and
        element-wise ops count 0 (see the module docstring).

    The count is for the whole batch of ``example_inputs`` (a batch of 8 costs 8 times a batch of
    1). ``model`` runs once in eval mode under ``torch.no_grad()``; its train/eval modes are restored.

    >>> count_flops(nn.Linear(10, 4), torch.randn(1, 10))
    40
    """
    _check_unit(unit)
    with _eval_mode(model):
        return _count(lambda: model(*example_inputs, **kwargs), unit)


def count_parameters(model: nn.Module, *, trainable_only: bool = False) -> int:
    """The number of parameter elements of ``model`` (a parameter shared by two layers counts once).

    Buffers (batch norm's running statistics) are not parameters and do not count.
    With ``trainable_only=True``, only those with ``requires_grad``.
    """
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def flops_cost(unit: str = "mac") -> Callable[[nn.Module, tuple[Any, ...], dict[str, Any]], float]:
    """A ``cost(module, args, kwargs) -> float`` counting exact FLOPs with :func:`count_flops`.

    For the one-shot strategies' cost penalty::

        from nascore_strategies.oneshot import ExpectedCostPenalty
        penalty = ExpectedCostPenalty(cost=flops_cost(), weight=0.1)

    ``ExpectedCostPenalty("flops")`` counts only ``Conv2d`` and ``Linear`` multiply-adds; this counts
    everything :func:`count_flops` counts (grouped/transposed/3-d convolutions, ``matmul``,
    attention), in ``unit``.
    """
    _check_unit(unit)

    def cost(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> float:
        return float(count_flops(module, *args, unit=unit, **kwargs))

    cost.__name__ = f"flops_cost_{unit}"
    return cost


# --- profiling the samples of a space -------------------------------------------------------------


_building = threading.local()


def _is_building(profiler: ModelProfiler) -> bool:
    return id(profiler) in getattr(_building, "ids", set())


class ModelProfiler:
    """Base class: ``profiler(sample) -> float``, a number measured on the frozen model of ``sample``.

    ``space`` is a nascore model space (a ``ModelSpace`` / ``MutableModule``, or an ``ExecutableSpace``
    of a format); each sample is frozen once (``space.freeze(sample)``, which validates it) and
    :meth:`measure` is called on the built ``nn.Module``. Answers are cached by the canonical sample
    (``space.canonical_sample``), so samples that differ only in inactive decisions share one
    entry. ``profiler(x)`` also takes an ``ExecutableModel`` (what ``model_filter`` receives; its
    ``sample`` is used) or a plain ``nn.Module`` (measured directly, not cached).

    Subclasses implement :meth:`measure`.
    """

    def __init__(self, space: Mutable, *, cache: bool = True) -> None:
        if not isinstance(space, Mutable):
            raise TypeError(
                f"{type(self).__name__} needs a nascore model space (a Mutable), got {type(space).__name__}"
            )
        self.space = space
        self.cache_enabled = cache
        self.cache: dict[str, float] = {}
        self.builds = 0  # how many models were built (cache misses)

    def measure(self, model: nn.Module) -> float:
        """The measured number of one built (frozen) model."""
        raise NotImplementedError

    def build(self, sample: Sample) -> nn.Module:
        """The frozen ``nn.Module`` of ``sample`` (validated by the space)."""
        with self.asking_space():
            frozen = self.space.freeze(sample)
        if not isinstance(frozen, nn.Module) and hasattr(frozen, "build"):  # an ExecutableModel
            frozen = frozen.build()
        if not isinstance(frozen, nn.Module):
            raise TypeError(f"freezing the space gave {type(frozen).__name__}, not an nn.Module")
        self.builds += 1
        return frozen

    @contextlib.contextmanager
    def asking_space(self) -> Iterator[None]:
        """While the profiler has the space validate or freeze a sample, its own
        :class:`ProfilerConstraint` in that space holds without asking it again (no recursion)."""
        ids = getattr(_building, "ids", None)
        if ids is None:
            ids = _building.ids = set()
        ids.add(id(self))
        try:
            yield
        finally:
            ids.discard(id(self))

    def profile(self, sample: Sample) -> float:
        """The number for ``sample``, uncached: :meth:`measure` of its built model (a subclass may
        compute it without building, see :mod:`nascore_hub.profiler.symbolic`)."""
        return self.measure(self.build(sample))

    def key(self, sample: Sample) -> str:
        """The cache key of ``sample``: its canonical form (only active decisions)."""
        try:
            sample = self.space.canonical_sample(sample)
        except Exception:  # noqa: BLE001 - an invalid sample is refused by freeze, with the space's message
            pass
        return sample_key(sample)

    def __call__(self, sample: Any) -> float:
        """The number for a ``{label: value}`` dict, an ``ExecutableModel`` or an ``nn.Module``."""
        if isinstance(sample, nn.Module):
            return self.measure(sample)
        if not isinstance(sample, dict) and isinstance(getattr(sample, "sample", None), dict):
            sample = sample.sample
        if not isinstance(sample, dict):
            raise TypeError(
                f"{type(self).__name__} takes a sample dict, an ExecutableModel or an nn.Module, "
                f"got {sample!r}"
            )
        if not self.cache_enabled:
            return self.profile(sample)
        key = self.key(sample)
        value = self.cache.get(key)
        if value is None:
            value = self.cache[key] = self.profile(sample)
        return value


class FlopsProfiler(ModelProfiler):
    """``profiler(sample) -> float``: the multiply-adds (or FLOPs) of one forward of the frozen model.

    :param space: a nascore model space.
    :param example_inputs: the input of the forward (a tensor, or a tuple of the positional inputs);
        the count is for this whole batch.
    :param unit: ``"mac"`` (default; 1 per multiply-add) or ``"flop"`` (2 per multiply-add).

    Each sample is built once (``space.freeze(sample)``) and counted with :func:`count_flops`; the
    answer is cached by the canonical sample. For a space whose decisions are all ``LayerChoice``
    with candidates that keep their input's output shape, :class:`~nascore_hub.profiler.SymbolicFlopsProfiler`
    gives the same numbers without building a model per sample.

    >>> profiler = FlopsProfiler(space, torch.randn(1, 3, 32, 32))
    >>> profiler({"op": "conv3x3", "width": 16})
    """

    def __init__(self, space: Mutable, example_inputs: Any, *, unit: str = "mac", cache: bool = True) -> None:
        super().__init__(space, cache=cache)
        self.example_inputs = _as_inputs(example_inputs)
        self.unit = _check_unit(unit)

    def measure(self, model: nn.Module) -> float:
        return float(count_flops(model, *self.example_inputs, unit=self.unit))

    def __repr__(self) -> str:
        shapes = ", ".join(
            str(tuple(x.shape)) if isinstance(x, torch.Tensor) else repr(x) for x in self.example_inputs
        )
        return f"FlopsProfiler(inputs=[{shapes}], unit={self.unit!r}, cached={len(self.cache)})"


class ParamsProfiler(ModelProfiler):
    """``profiler(sample) -> float``: the parameters of the frozen model (see :func:`count_parameters`)."""

    def __init__(self, space: Mutable, *, trainable_only: bool = False, cache: bool = True) -> None:
        super().__init__(space, cache=cache)
        self.trainable_only = trainable_only

    def measure(self, model: nn.Module) -> float:
        return float(count_parameters(model, trainable_only=self.trainable_only))

    def __repr__(self) -> str:
        return f"ParamsProfiler(cached={len(self.cache)})"


# --- integrations ---------------------------------------------------------------------------------


def budget_filter(
    profiler: Callable[[Any], float], max_value: float | None = None, *, min_value: float | None = None
) -> Callable[[Any], bool]:
    """A ``model_filter`` for the multi-trial strategies: accepts a model whose profiled value lies in
    ``[min_value, max_value]`` (a bound left ``None`` is open).

    The strategies call ``model_filter(model)`` with the ``ExecutableModel`` of each proposal
    (``space.freeze(sample)`` of the format); the profiler is asked about ``model.sample`` (so its
    cache is used), or about the built module when the model has no sample::

        strategy = nascore_strategies.Random(model_filter=flops_filter(FlopsProfiler(space, x), 5e6))
    """
    if max_value is None and min_value is None:
        raise ValueError("budget_filter needs max_value or min_value")

    def model_filter(model: Any) -> bool:
        target = model
        if not isinstance(model, (dict, nn.Module)):
            sample = getattr(model, "sample", None)
            target = sample if isinstance(sample, dict) else model.build()
        value = profiler(target)
        return (max_value is None or value <= max_value) and (min_value is None or value >= min_value)

    model_filter.__name__ = f"budget_filter({profiler!r}, max={max_value}, min={min_value})"
    return model_filter


def flops_filter(profiler: FlopsProfiler, max_flops: float) -> Callable[[Any], bool]:
    """A ``model_filter`` rejecting models with more than ``max_flops`` (in the profiler's unit)."""
    return budget_filter(profiler, max_flops)


def params_filter(profiler: ParamsProfiler, max_params: float) -> Callable[[Any], bool]:
    """A ``model_filter`` rejecting models with more than ``max_params`` parameters."""
    return budget_filter(profiler, max_params)


class ProfilerConstraint(Constraint):
    """A constraint of the space: ``min_value <= profiler(sample) <= max_value``.

    Add it to the space the profiler profiles, like an ``ExpressionConstraint``::

        profiler = FlopsProfiler(space, torch.randn(1, 3, 32, 32))
        space.add_mutable(ProfilerConstraint(profiler, max_value=5e6, label="flops"))

    Then random sampling redraws, ``grid()`` / ``space_size()`` skip, strategies never propose, and
    ``freeze`` / ``contains`` refuse (naming ``label``) the samples beyond the budget. Each sample
    checked is built once (answers cached by the profiler); ``space_size()`` and ``grid()`` build
    every architecture of the space, so keep it to spaces small enough to enumerate, or use
    :func:`budget_filter` as ``model_filter`` (only proposals are built). The constraint reads no
    decision, so it applies to every sample. Samples given to it are built without asking the
    constraint again (the profiler's own ``freeze`` skips it).
    """

    def __init__(
        self,
        profiler: ModelProfiler,
        max_value: float | None = None,
        *,
        min_value: float | None = None,
        label: str | None = None,
    ) -> None:
        from nascore.space.label import auto_label, check_label

        if max_value is None and min_value is None:
            raise ValueError("ProfilerConstraint needs max_value or min_value")
        self.profiler = profiler
        self.max_value = max_value
        self.min_value = min_value
        self.label = check_label(label) if label is not None else auto_label("constraint")

    def leaf_mutables(self) -> Iterator[LabelledMutable]:
        return iter(())

    def conditional_leaves(self) -> Iterator[tuple[Any, tuple[Any, ...]]]:
        yield self, ()

    def satisfied(self, sample: Sample) -> bool:
        if _is_building(self.profiler):  # the profiler's own freeze validates the sample: do not recurse
            return True
        value = self.profiler(sample)
        return (self.max_value is None or value <= self.max_value) and (
            self.min_value is None or value >= self.min_value
        )

    def describe(self) -> str:
        what = type(self.profiler).__name__
        if self.min_value is not None and self.max_value is not None:
            return f"{self.min_value} <= {what} <= {self.max_value}"
        return f"{what} <= {self.max_value}" if self.max_value is not None else f"{what} >= {self.min_value}"

    def __deepcopy__(self, memo: dict[int, Any]) -> ProfilerConstraint:
        # Freezing a space deep-copies it, with its mutables: the constraint (and its profiler) is shared.
        return self

    def __repr__(self) -> str:
        return f"ProfilerConstraint({self.describe()}, label={self.label!r})"
