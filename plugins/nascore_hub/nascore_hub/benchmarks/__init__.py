"""Offline tabular NAS benchmarks as nascore evaluators (answer a trial from a table, without training)."""

from __future__ import annotations

from nascore_hub.benchmarks.nasbench201 import (
    DATASETS,
    EDGES,
    METRICS,
    OPS,
    NasBench201Benchmark,
    simulated_time_curve,
    to_arch_string,
)

__all__ = ["NasBench201Benchmark", "simulated_time_curve", "to_arch_string", "EDGES", "OPS", "DATASETS", "METRICS"]
