"""Entry point of the ``nascore-hub`` distribution: the hub's evaluators."""

from __future__ import annotations

from typing import Any

from nascore.evaluator import Evaluator
from nascore.plugin.spec import RegisterFn, hookimpl


def nasbench201(*args: Any, **kwargs: Any) -> Evaluator:
    """NAS-Bench-201 tabular evaluator (``nascore_hub.benchmarks.NasBench201Benchmark``); needs the ``nasbench201`` extra."""
    from nascore_hub.benchmarks import NasBench201Benchmark

    return NasBench201Benchmark(*args, **kwargs)


def nasbenchgraph(*args: Any, **kwargs: Any) -> Evaluator:
    """NAS-Bench-Graph tabular evaluator (``nascore_hub.benchmarks.NasBenchGraphBenchmark``); needs the ``nasbenchgraph`` extra."""
    from nascore_hub.benchmarks import NasBenchGraphBenchmark

    return NasBenchGraphBenchmark(*args, **kwargs)


@hookimpl
def nascore_register_evaluators(register: RegisterFn) -> None:
    register(
        "nasbench201",
        nasbench201,
        description="NAS-Bench-201 table (CIFAR-10/100, ImageNet16-120): answers a trial without training",
    )
    register(
        "nasbenchgraph",
        nasbenchgraph,
        description="NAS-Bench-Graph table (nine node-classification datasets): answers a trial without training",
    )
