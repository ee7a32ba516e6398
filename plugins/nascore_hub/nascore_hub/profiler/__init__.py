"""FLOPs, parameter and latency profilers for models and for the samples of a model space.

Convention: a multiply-add is **1 MAC = 2 FLOPs**; every FLOPs function and profiler takes
``unit="mac"`` (the default) or ``unit="flop"``. Counts are exact (``torch.utils.flop_counter``):
matrix products, convolutions and attention; biases, normalisation, activations, pooling and
element-wise additions count 0.

* :func:`count_flops`, :func:`count_parameters`: a plain ``nn.Module``.
* :class:`FlopsProfiler`, :class:`ParamsProfiler`, :class:`LatencyProfiler`: ``profiler(sample) -> float``
  for a nascore space (one build per sample, cached).
* :class:`SymbolicFlopsProfiler`, :class:`SymbolicParamsProfiler`: the same numbers summed over a space
  whose decisions are all ``LayerChoice`` (each candidate measured once), without building samples.
* as a strategy's ``model_filter``: :func:`flops_filter`, :func:`params_filter`, :func:`budget_filter`;
* as a constraint of the space: ``space.add_mutable(ProfilerConstraint(profiler, max_value=...))``;
* as the one-shot cost penalty: ``ExpectedCostPenalty(cost=flops_cost())`` or
  ``ExpectedCostPenalty(cost=table.cost_function())``.
* :class:`LatencyTable`: latencies per ``(op, input shape)`` measured on a device, saved as JSON.
"""

from nascore_hub.profiler.flops import (
    FlopsProfiler,
    ModelProfiler,
    ParamsProfiler,
    ProfilerConstraint,
    budget_filter,
    count_flops,
    count_parameters,
    flops_cost,
    flops_filter,
    params_filter,
)
from nascore_hub.profiler.latency import LatencyProfiler, LatencyTable, MissingLatencyError, op_key, shape_key
from nascore_hub.profiler.symbolic import NotSymbolicError, SymbolicFlopsProfiler, SymbolicParamsProfiler

__all__ = [
    "FlopsProfiler",
    "LatencyProfiler",
    "LatencyTable",
    "MissingLatencyError",
    "NotSymbolicError",
    "ModelProfiler",
    "ParamsProfiler",
    "ProfilerConstraint",
    "SymbolicFlopsProfiler",
    "SymbolicParamsProfiler",
    "budget_filter",
    "count_flops",
    "count_parameters",
    "flops_cost",
    "flops_filter",
    "op_key",
    "params_filter",
    "shape_key",
]
