"""A cost penalty on the architecture: prefer cheaper architectures (FLOPs or measured latency).

:class:`ExpectedCostPenalty` adds ``weight * E[cost] / reference`` to the loss of each architecture
step of DARTS, GumbelDARTS and Proxyless, where ``E[cost]`` is the expected cost of the
architecture under the current probabilities: for every ``LayerChoice`` the probability-weighted
cost of its candidates, for every ``Repeat`` the probability-weighted cost of its depths. Costs are
measured once, at the first architecture step, on the inputs the modules receive then (FLOPs
counted as multiply-accumulates of ``Conv2d`` and ``Linear`` layers, or wall-clock latency, or any
``cost(module, args, kwargs) -> float``). ``reference`` defaults to the cost of the most expensive
architecture, so the penalty lies in ``[0, weight]``. Decisions of inputs, cells and mixed
operations add no cost.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn as nn

from nascore.errors import StrategyError
from nascore_strategies.oneshot.supermodule._primitives import MixedLayerBase, MixedRepeatBase
from nascore_strategies.oneshot.supermodule.base import ArchParameters, BaseSuperNetModule

__all__ = ["ExpectedCostPenalty", "count_flops", "measure_latency"]

CostFunction = Callable[[nn.Module, tuple[Any, ...], dict[str, Any]], float]


def count_flops(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> float:
    """Multiply-accumulates of the ``Conv2d`` and ``Linear`` layers in one forward of ``module``."""
    total = 0.0

    def conv_hook(layer: nn.Module, _: Any, output: torch.Tensor) -> None:
        nonlocal total
        weight = layer.weight
        total += float(output.numel()) * weight.shape[1] * weight.shape[2] * weight.shape[3]

    def linear_hook(layer: nn.Module, _: Any, output: torch.Tensor) -> None:
        nonlocal total
        total += float(output.numel()) * layer.weight.shape[1]

    handles = []
    for sub in module.modules():
        if isinstance(sub, nn.Conv2d):
            handles.append(sub.register_forward_hook(conv_hook))
        elif isinstance(sub, nn.Linear):
            handles.append(sub.register_forward_hook(linear_hook))
    try:
        module(*args, **kwargs)
    finally:
        for handle in handles:
            handle.remove()
    return total


def measure_latency(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], repeat: int = 3) -> float:
    """Median wall-clock seconds of a forward of ``module`` (after one warm-up run)."""
    cuda = any(isinstance(a, torch.Tensor) and a.is_cuda for a in args)
    module(*args, **kwargs)
    times = []
    for _ in range(repeat):
        if cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        module(*args, **kwargs)
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


class ExpectedCostPenalty:
    """``weight * E[cost] / reference`` added to the architecture loss.

    :param cost: ``"flops"``, ``"latency"``, or ``cost(module, args, kwargs) -> float``.
    :param weight: strength of the penalty.
    :param reference: the cost that counts as 1 (default: the most expensive architecture's).
    """

    def __init__(self, cost: str | CostFunction = "flops", weight: float = 0.1, reference: float | None = None) -> None:
        if isinstance(cost, str):
            functions = {"flops": count_flops, "latency": measure_latency}
            if cost not in functions:
                raise StrategyError(f"unknown cost {cost!r}; use 'flops', 'latency' or a function (module, args, kwargs) -> float")
            self.cost_function: CostFunction = functions[cost]
        elif callable(cost):
            self.cost_function = cost
        else:
            raise StrategyError(f"cost must be 'flops', 'latency' or a function, got {cost!r}")
        self.weight = weight
        self.reference = reference
        self.label_costs: dict[str, torch.Tensor] = {}
        self.repeat_costs: list[tuple[MixedRepeatBase, torch.Tensor]] = []
        self.profiled = False

    def profile(self, modules: Sequence[BaseSuperNetModule], run_forward: Callable[[], Any]) -> None:
        """Record each module's inputs during ``run_forward()``, then measure the cost of every choice."""
        recorded: dict[int, tuple[tuple[Any, ...], dict[str, Any]]] = {}
        handles = []
        for module in modules:
            if isinstance(module, (MixedLayerBase, MixedRepeatBase)):
                def record(mod: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
                    recorded.setdefault(id(mod), (args, kwargs))

                handles.append(module.register_forward_pre_hook(record, with_kwargs=True))
        try:
            with torch.no_grad():
                run_forward()
        finally:
            for handle in handles:
                handle.remove()
        with torch.no_grad():
            for module in modules:
                if id(module) not in recorded:
                    continue
                args, kwargs = recorded[id(module)]
                if isinstance(module, MixedLayerBase):
                    costs = torch.tensor([self._measure(c, args, kwargs) for c in module.candidates])
                    known = self.label_costs.get(module.label)
                    self.label_costs[module.label] = costs if known is None else known + costs
                elif isinstance(module, MixedRepeatBase):
                    self.repeat_costs.append((module, self._depth_costs(module, args, kwargs)))
        if self.reference is None:
            worst = sum(float(c.max()) for c in self.label_costs.values())
            worst += sum(float(c.max()) for _, c in self.repeat_costs)
            self.reference = worst if worst > 0 else 1.0
        self.profiled = True

    def _measure(self, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> float:
        training = module.training
        module.eval()
        try:
            return float(self.cost_function(module, args, kwargs))
        finally:
            module.train(training)

    def _depth_costs(self, repeat: MixedRepeatBase, args: tuple[Any, ...], kwargs: dict[str, Any]) -> torch.Tensor:
        x = args[0] if args else next(iter(kwargs.values()))
        block_costs = []
        for block in repeat.blocks[: max(repeat.depth.values)]:
            block_costs.append(self._measure(block, (x,), {}))
            x = block(x)
        prefix = [0.0]
        for cost in block_costs:
            prefix.append(prefix[-1] + cost)
        return torch.tensor([prefix[d] for d in repeat.depth.values])

    def expected_cost(self, arch: ArchParameters) -> torch.Tensor:
        """``E[cost]`` under the current probabilities (differentiable in the architecture parameters)."""
        total: Any = 0.0
        for label, costs in self.label_costs.items():
            probs = arch.probs(label)
            total = total + (probs * costs.to(probs)).sum()
        for repeat, costs in self.repeat_costs:
            weights = repeat.depth.weights({label: arch.probs(label) for label in repeat.depth.labels})
            total = total + (weights * costs.to(weights)).sum()
        if not isinstance(total, torch.Tensor):
            total = torch.zeros(())
        return total

    def __call__(self, arch: ArchParameters) -> torch.Tensor:
        return self.weight * self.expected_cost(arch) / float(self.reference or 1.0)

    def __repr__(self) -> str:
        return f"ExpectedCostPenalty(weight={self.weight}, reference={self.reference})"
