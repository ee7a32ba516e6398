"""Latency from a lookup table measured on the target device.

A :class:`LatencyTable` maps ``(op, input shape)`` to a latency the user measured on their device
(:meth:`LatencyTable.measure` times a module where the table is filled, or entries come from
elsewhere with :meth:`LatencyTable.add`). :class:`LatencyProfiler` estimates the latency of a
sample of a space as the sum of the table's entries for the ops its frozen model runs in one
forward; :meth:`LatencyTable.cost_function` is the same lookup as a one-shot cost. The table is
saved and loaded as JSON. A missing entry is an error (:class:`MissingLatencyError`) naming the op
and the input shape, and the shapes the table has for that op.

*Op identity* (:func:`op_key`): the module's class and its ``extra_repr()`` on one line, e.g.
``"Conv2d(3, 16, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))"``, the same for equal
configurations wherever they appear. *Input shape*: the shapes of the tensor positional inputs,
``"1x3x32x32"`` (several joined by ``","``; a non-tensor input is ``"-"``).
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from nascore.space import Mutable
from nascore_hub.profiler.flops import ModelProfiler, _as_inputs, _eval_mode

__all__ = ["LatencyTable", "LatencyProfiler", "MissingLatencyError", "op_key", "shape_key"]


class MissingLatencyError(KeyError):
    """The latency table has no entry for an op on an input shape."""

    def __init__(self, op: str, shape: str, known: list[str]) -> None:
        self.op = op
        self.shape = shape
        self.known = known
        hint = f"; it has this op on {', '.join(known)}" if known else "; it has no entry for this op"
        super().__init__(f"the latency table has no entry for op {op!r} on input shape {shape!r}{hint}")

    def __str__(self) -> str:
        return str(self.args[0])


def op_key(module: nn.Module | str) -> str:
    """An op's identity in a latency table: ``"ClassName(extra_repr)"`` on one line (a string is kept)."""
    if isinstance(module, str):
        return module
    if len(list(module.children())) == 0:
        text = f"{type(module).__name__}({module.extra_repr()})"
    else:
        text = repr(module)
    return " ".join(text.split())


def shape_key(inputs: Any) -> str:
    """The input shape of an entry: ``"1x3x32x32"``; several inputs joined by ``","``.

    Takes a tensor, a ``torch.Size`` / tuple of ints (one shape), a string (kept) or a sequence of these.
    """
    if isinstance(inputs, str):
        return inputs
    if isinstance(inputs, torch.Tensor):
        return "x".join(map(str, inputs.shape))
    if isinstance(inputs, (tuple, list, torch.Size)):
        if all(isinstance(d, int) for d in inputs):
            return "x".join(map(str, inputs))
        return ",".join(
            shape_key(x) if isinstance(x, (torch.Tensor, tuple, list, torch.Size, str)) else "-"
            for x in inputs
        )
    return "-"


class LatencyTable:
    """Latencies of ops on input shapes, measured on one device: ``table[op, shape] -> float``.

    :param entries: ``{(op, shape): latency}`` to start from (``op`` a module or :func:`op_key` string,
        ``shape`` anything :func:`shape_key` takes).
    :param unit: the unit of the latencies (a label only, saved with the table; default ``"ms"``).
    :param device: where they were measured (a label only).
    """

    def __init__(
        self, entries: dict[tuple[Any, Any], float] | None = None, *, unit: str = "ms", device: str = ""
    ) -> None:
        self.unit = unit
        self.device = device
        self.entries: dict[tuple[str, str], float] = {}
        for (op, shape), latency in (entries or {}).items():
            self.add(op, shape, latency)

    def add(self, op: nn.Module | str, input_shape: Any, latency: float) -> None:
        """Set the latency of ``op`` on ``input_shape``."""
        self.entries[op_key(op), shape_key(input_shape)] = float(latency)

    def lookup(self, op: nn.Module | str, input_shape: Any) -> float:
        """The latency of ``op`` on ``input_shape``; :class:`MissingLatencyError` if the table lacks it."""
        key = op_key(op), shape_key(input_shape)
        value = self.entries.get(key)
        if value is None:
            known = sorted(shape for o, shape in self.entries if o == key[0])
            raise MissingLatencyError(key[0], key[1], known)
        return value

    def __getitem__(self, key: tuple[Any, Any]) -> float:
        return self.lookup(*key)

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, tuple) or len(key) != 2:
            return False
        return (op_key(key[0]), shape_key(key[1])) in self.entries

    def __len__(self) -> int:
        return len(self.entries)

    def measure(
        self, module: nn.Module, *inputs: Any, repeat: int = 10, warmup: int = 2, scale: float = 1e3
    ) -> float:
        """Time ``module(*inputs)`` here (median of ``repeat`` runs, after ``warmup``; in eval mode, no grad),
        store it as the entry of ``(module, inputs' shape)`` and return it. ``scale`` turns seconds into
        the table's unit (1e3: milliseconds)."""
        cuda = any(isinstance(x, torch.Tensor) and x.is_cuda for x in inputs)
        times = []
        with _eval_mode(module), torch.no_grad():
            for i in range(warmup + repeat):
                if cuda:
                    torch.cuda.synchronize()
                start = time.perf_counter()
                module(*inputs)
                if cuda:
                    torch.cuda.synchronize()
                if i >= warmup:
                    times.append(time.perf_counter() - start)
        latency = statistics.median(times) * scale
        self.add(module, inputs, latency)
        return latency

    def cost_function(self) -> Callable[[nn.Module, tuple[Any, ...], dict[str, Any]], float]:
        """A ``cost(module, args, kwargs)`` for the one-shot ``ExpectedCostPenalty(cost=...)``: the entry of
        the module (a ``LayerChoice`` candidate) on its input shape; a missing entry raises."""

        def cost(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> float:
            return self.lookup(module, args)

        return cost

    # --- JSON ---------------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The table as JSON-able data."""
        return {
            "unit": self.unit,
            "device": self.device,
            "entries": [
                {"op": op, "input_shape": shape, "latency": v}
                for (op, shape), v in sorted(self.entries.items())
            ],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LatencyTable:
        table = cls(unit=data.get("unit", "ms"), device=data.get("device", ""))
        for entry in data.get("entries", []):
            table.add(entry["op"], entry["input_shape"], entry["latency"])
        return table

    def save(self, path: str | Path) -> None:
        """Write the table to ``path`` as JSON."""
        Path(path).write_text(json.dumps(self.to_dict(), indent=1))

    @classmethod
    def load(cls, path: str | Path) -> LatencyTable:
        """Read a table :meth:`save` wrote."""
        return cls.from_dict(json.loads(Path(path).read_text()))

    def __repr__(self) -> str:
        return f"LatencyTable({len(self.entries)} entries, unit={self.unit!r}, device={self.device!r})"


def _leaf(module: nn.Module) -> bool:
    return len(list(module.children())) == 0


class LatencyProfiler(ModelProfiler):
    """``profiler(sample) -> float``: the sum of the table's latencies of the ops the frozen model runs.

    :param space: a nascore model space.
    :param example_inputs: the input of the forward (a tensor or a tuple of positional inputs).
    :param table: the :class:`LatencyTable` measured on the target device.
    :param ops: which modules are ops looked up in the table: a tuple of module classes or a
        predicate ``f(module) -> bool``; default: every leaf module (no children). The submodules of
        an op are not looked up. Each call of an op counts (a module called twice counts twice).

    Work outside the selected modules (functional calls, ``x + y`` of a residual) is not counted.
    :meth:`record` lists the ``(op, shape)`` pairs a model needs, to fill the table.
    """

    def __init__(
        self,
        space: Mutable,
        example_inputs: Any,
        table: LatencyTable,
        *,
        ops: tuple[type[nn.Module], ...] | Callable[[nn.Module], bool] | None = None,
        cache: bool = True,
    ) -> None:
        super().__init__(space, cache=cache)
        self.example_inputs = _as_inputs(example_inputs)
        self.table = table
        if ops is None:
            self.is_op: Callable[[nn.Module], bool] = _leaf
        elif isinstance(ops, tuple):
            self.is_op = lambda m: isinstance(m, ops)
        else:
            self.is_op = ops

    def _op_modules(self, model: nn.Module) -> Iterable[nn.Module]:
        def walk(module: nn.Module) -> Iterable[nn.Module]:
            if self.is_op(module):
                yield module
                return
            for child in module.children():
                yield from walk(child)

        return list(walk(model))

    def record(self, model: nn.Module) -> list[tuple[nn.Module, str]]:
        """The ops ``model`` runs in one forward of the example inputs, with their input shapes, in order."""
        calls: list[tuple[nn.Module, str]] = []

        def hook(module: nn.Module, args: tuple[Any, ...]) -> None:
            calls.append((module, shape_key(args)))

        handles = [m.register_forward_pre_hook(hook) for m in self._op_modules(model)]
        try:
            with _eval_mode(model), torch.no_grad():
                model(*self.example_inputs)
        finally:
            for handle in handles:
                handle.remove()
        return calls

    def measure(self, model: nn.Module) -> float:
        return float(sum(self.table.lookup(module, shape) for module, shape in self.record(model)))

    def __repr__(self) -> str:
        return f"LatencyProfiler({self.table!r}, cached={len(self.cache)})"
