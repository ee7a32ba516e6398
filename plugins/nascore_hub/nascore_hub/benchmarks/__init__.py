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
from nascore_hub.benchmarks.nasbenchgraph import GRAPH_DATASETS, GRAPH_METRICS, NasBenchGraphBenchmark
from nascore_hub.benchmarks.tabular import TabularBenchmark

__all__ = [
    "TabularBenchmark",
    "NasBench201Benchmark",
    "NasBenchGraphBenchmark",
    "simulated_time_curve",
    "to_arch_string",
    "EDGES",
    "OPS",
    "DATASETS",
    "METRICS",
    "GRAPH_DATASETS",
    "GRAPH_METRICS",
]
