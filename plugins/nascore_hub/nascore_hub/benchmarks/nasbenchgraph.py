"""NAS-Bench-Graph as a tabular evaluator: a graph neural network is looked up, not trained.

The tables are the "light" ones shipped inside the ``nas-bench-graph`` wheel (the ``nasbenchgraph``
extra of ``nascore-hub``): for each of nine node-classification datasets and each of the 26,206
architectures (2,021 on ogbn-proteins, which used five operators) they hold the validation and test
performance, the inference latency and the parameter count. Nothing is downloaded. The full tables
(per-epoch curves and training time) are a separate download that this evaluator does not use, so
its results hold no training time: compare NAS-Bench-Graph searches at equal trial counts.

An architecture is the hub's :class:`~nascore_hub.spaces.NasBenchGraph` sample: the operators
``op0`` .. ``op3`` and the links ``lk1`` .. ``lk3``. The package's own canonical form
(``Arch(links, ops).valid_hash()``) maps it onto the table, so isomorphic architectures answer alike.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from nascore.errors import EvaluatorError, MissingDependencyError
from nascore_hub.benchmarks.tabular import TabularBenchmark, require_package

__all__ = ["NasBenchGraphBenchmark", "GRAPH_DATASETS", "GRAPH_METRICS"]

#: The datasets of the benchmark (the tables' names).
GRAPH_DATASETS: tuple[str, ...] = (
    "cora", "citeseer", "pubmed", "cs", "physics", "photo", "computers", "arxiv", "proteins",
)
#: The metrics a main metric may be, and which way each is better.
GRAPH_METRICS: dict[str, str] = {"val_acc": "maximize", "latency": "minimize", "params": "minimize"}
_INSTALL_HINT = "pip install nascore-hub[nasbenchgraph]"
_OPERATORS = ("gat", "gcn", "gin", "cheb", "sage", "arma", "graph", "fc", "skip")
_PROTEINS_OPERATORS = ("gcn", "sage", "arma", "fc", "skip")
_NUM_NODES = 4


def _require_package() -> None:
    require_package(
        "nas_bench_graph", "NasBenchGraphBenchmark needs the tables of the 'nas-bench-graph' package", _INSTALL_HINT
    )


@functools.cache
def _table(dataset: str) -> dict[int, dict[str, Any]]:
    """The package's light table of ``dataset`` ``{hash: {"valid_perf", "perf", "latency", "para"}}``."""
    _require_package()
    from nas_bench_graph import light_read

    try:
        return light_read(dataset)
    except FileNotFoundError as exc:  # pragma: no cover - a broken installation
        raise MissingDependencyError(
            f"the installed nas_bench_graph has no table for {dataset!r} ({exc}); reinstall it: {_INSTALL_HINT}"
        ) from exc


class NasBenchGraphBenchmark(TabularBenchmark):
    """Answer a trial of a NAS-Bench-Graph architecture from the benchmark's table, without training.

    The trial's sample holds ``"op0"`` .. ``"op3"`` (operators) and ``"lk1"`` .. ``"lk3"`` (links), as
    :class:`~nascore_hub.spaces.NasBenchGraph` makes them (with ``prefix``: ``prefix + label``); other
    labels are ignored. The final result is a dict::

        {"default": <metric>, "val_acc": 0.7733, "test_acc": 0.797, "latency": 0.0059,
         "params": 1.7367, "dataset": "cora", "key": 0}

    ``val_acc`` and ``test_acc`` are the table's validation and test performance (fractions),
    ``latency`` and ``params`` its inference latency and parameter count as the package gives them,
    ``key`` the table's key of the architecture.

    :param dataset: one of :data:`GRAPH_DATASETS`.
    :param metric: the main metric, reported as ``"default"``: one of :data:`GRAPH_METRICS`.
    :param prefix: the labels are ``prefix + "op0"`` and so on (default: no prefix).
    :raises ~nascore.errors.MissingDependencyError: ``nas_bench_graph`` is not installed.
    :raises ~nascore.errors.EvaluatorError: an argument is not valid.
    """

    METRICS = GRAPH_METRICS

    def __init__(self, dataset: str = "cora", metric: str = "val_acc", *, prefix: str = "") -> None:
        if dataset not in GRAPH_DATASETS:
            raise EvaluatorError(
                f"NasBenchGraphBenchmark: unknown dataset {dataset!r}; NAS-Bench-Graph has "
                f"{', '.join(map(repr, GRAPH_DATASETS))}"
            )
        if metric not in GRAPH_METRICS:
            raise EvaluatorError(
                f"NasBenchGraphBenchmark: unknown metric {metric!r}; the table has {', '.join(map(repr, GRAPH_METRICS))}"
            )
        if not isinstance(prefix, str):
            raise EvaluatorError(f"NasBenchGraphBenchmark: prefix must be a string, got {prefix!r}")
        _require_package()
        self.dataset, self.metric, self.prefix = dataset, metric, prefix

    @property
    def operators(self) -> tuple[str, ...]:
        """The operators the table has for this dataset (five on ``"proteins"``)."""
        return _PROTEINS_OPERATORS if self.dataset == "proteins" else _OPERATORS

    def check(self) -> None:
        """Load the table now, so that a broken installation fails before the first trial."""
        _table(self.dataset)

    def arguments(self) -> dict[str, Any]:
        """The constructor's arguments (how the evaluator travels to a worker)."""
        return {"dataset": self.dataset, "metric": self.metric, "prefix": self.prefix}

    def query(self, arch: Mapping[str, Any]) -> dict[str, Any]:
        """The metrics of one architecture (a sample), as the evaluator reports them.

        :raises ~nascore.errors.EvaluatorError: a label is missing, a value is not valid, or the
            architecture is not in the table (every node a skip connection; an operator the dataset
            was not trained with).
        """
        from nas_bench_graph import Arch

        links, ops = self.architecture(arch)
        key = Arch(list(links), list(ops)).valid_hash()
        row = _table(self.dataset).get(key)
        if row is None:
            raise EvaluatorError(
                f"NasBenchGraphBenchmark: the architecture links={list(links)} ops={list(ops)} is not in the "
                f"{self.dataset!r} table"
                + ("; a network of skip connections only is not an architecture" if set(ops) == {"skip"} else "")
            )
        values = {
            "val_acc": float(row["valid_perf"]),
            "test_acc": float(row["perf"]),
            "latency": float(row["latency"]),
            "params": float(row["para"]),
        }
        return {"default": values[self.metric], **values, "dataset": self.dataset, "key": key}

    def architecture(self, arch: Mapping[str, Any]) -> tuple[tuple[int, ...], tuple[str, ...]]:
        """The links (node 0's first: always 0) and operators of a sample, validated."""
        if not isinstance(arch, Mapping):
            raise EvaluatorError(f"NasBenchGraphBenchmark: an architecture is a sample (a mapping), got {arch!r}")
        links = [0]
        ops = []
        for node in range(_NUM_NODES):
            op = self._value(arch, f"op{node}")
            if op not in self.operators:
                raise EvaluatorError(
                    f"NasBenchGraphBenchmark: label {self.prefix + f'op{node}'!r} holds {op!r}; the {self.dataset!r} "
                    f"table has the operators {', '.join(self.operators)}"
                )
            ops.append(op)
            if node:
                link = self._value(arch, f"lk{node}")
                if isinstance(link, bool) or not isinstance(link, int) or not 0 <= link <= node:
                    raise EvaluatorError(
                        f"NasBenchGraphBenchmark: label {self.prefix + f'lk{node}'!r} holds {link!r}; node {node} "
                        f"reads the input (0) or an earlier node (1 to {node})"
                    )
                links.append(link)
        return tuple(links), tuple(ops)

    def _value(self, arch: Mapping[str, Any], name: str) -> Any:
        label = self.prefix + name
        if label not in arch:
            raise EvaluatorError(
                f"NasBenchGraphBenchmark: the sample has no label {label!r}; it needs "
                f"{', '.join(repr(self.prefix + n) for n in ('op0', 'op1', 'op2', 'op3', 'lk1', 'lk2', 'lk3'))} "
                f"(the hub's NasBenchGraph space), got labels {sorted(map(str, arch))}"
            )
        return arch[label]
