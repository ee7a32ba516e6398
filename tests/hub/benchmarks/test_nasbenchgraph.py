"""NasBenchGraphBenchmark: the package's table answers a sample, isomorphic samples alike, errors, the trial path."""

from __future__ import annotations

import pickle

import pytest

from nascore.engine import TrialStatus
from nascore.errors import EvaluatorError, MissingDependencyError
from nascore.experiment import Experiment, ExperimentConfig
from nascore.serialization import load_shipped_evaluator, ship_evaluator
from nascore.trial import run_trial
from nascore_hub.benchmarks import GRAPH_DATASETS, NasBenchGraphBenchmark, tabular
from nascore_hub.benchmarks import nasbenchgraph as module
from nascore_hub.spaces import NasBenchGraph

#: The architecture of the package's README figure: node 0 on the input, nodes 1 and 3 on node 0, node 2 on node 1.
FIGURE = {"op0": "gcn", "op1": "gin", "op2": "fc", "op3": "cheb", "lk1": 1, "lk2": 2, "lk3": 1}
#: The same network with nodes 2 and 3 written the other way round (the README's second spelling).
FIGURE_REORDERED = {"op0": "gcn", "op1": "cheb", "op2": "gin", "op3": "fc", "lk1": 1, "lk2": 1, "lk3": 3}


def package_row(dataset: str, links: list[int], ops: list[str]) -> dict:
    """The row the package's own API gives (its reader and its canonical hash)."""
    from nas_bench_graph import Arch, light_read

    return light_read(dataset)[Arch(links, ops).valid_hash()]


@pytest.mark.parametrize("dataset", ["cora", "proteins"])
def test_known_architectures_give_the_tables_numbers(dataset):
    bench = NasBenchGraphBenchmark(dataset)
    ops = ["gcn", "sage", "arma", "fc"] if dataset == "proteins" else ["gcn", "gin", "fc", "cheb"]
    sample = {**{f"op{i}": op for i, op in enumerate(ops)}, "lk1": 1, "lk2": 2, "lk3": 1}
    row = package_row(dataset, [0, 1, 2, 1], ops)
    result = bench.query(sample)
    assert result["val_acc"] == pytest.approx(float(row["valid_perf"])) == result["default"]
    assert result["test_acc"] == pytest.approx(float(row["perf"]))
    assert result["latency"] == pytest.approx(float(row["latency"]))
    assert result["params"] == pytest.approx(float(row["para"]))
    assert 0.0 < result["val_acc"] < 1.0 and result["dataset"] == dataset


def test_isomorphic_architectures_answer_alike():
    bench = NasBenchGraphBenchmark("citeseer")
    assert bench.query(FIGURE) == bench.query(FIGURE_REORDERED)
    assert bench.query(FIGURE)["key"] != bench.query({**FIGURE, "op3": "gat"})["key"]


def test_every_sample_of_the_space_is_in_the_table():
    """All 157,440 samples of NasBenchGraph map onto the 26,206 entries of a table, and cover them."""
    import itertools

    bench = NasBenchGraphBenchmark("cora")
    space = NasBenchGraph(4, 3)
    keys = set()
    for links in NasBenchGraph.all_links():
        for ops in itertools.product(module._OPERATORS, repeat=4):
            sample = {**dict(zip(NasBenchGraph.op_labels(), ops)), **dict(zip(NasBenchGraph.link_labels(), links))}
            if set(ops) == {"skip"}:
                assert not space.contains(sample)  # the space's constraint excludes what the table lacks
                continue
            keys.add(bench.query(sample)["key"])
    assert len(keys) == len(module._table("cora")) == 26206


def test_metrics_and_directions():
    assert NasBenchGraphBenchmark().optimize_mode == "maximize"
    latency = NasBenchGraphBenchmark("pubmed", "latency")
    assert latency.optimize_mode == "minimize"
    assert latency.query(FIGURE)["default"] == latency.query(FIGURE)["latency"]


@pytest.mark.parametrize(
    "kwargs, text",
    [
        ({"dataset": "mnist"}, r"unknown dataset 'mnist'.*'cora'"),
        ({"metric": "test_acc"}, r"unknown metric 'test_acc'.*'val_acc'"),
        ({"prefix": 3}, "prefix must be a string"),
    ],
)
def test_bad_arguments(kwargs, text):
    with pytest.raises(EvaluatorError, match=text):
        NasBenchGraphBenchmark(**kwargs)


def test_bad_samples_name_the_label_and_what_is_valid():
    bench = NasBenchGraphBenchmark()
    with pytest.raises(EvaluatorError, match=r"label 'op2' holds 'mlp'.*gat, gcn"):
        bench.query({**FIGURE, "op2": "mlp"})
    with pytest.raises(EvaluatorError, match=r"label 'lk2' holds 3; node 2 reads the input \(0\) or an earlier node"):
        bench.query({**FIGURE, "lk2": 3})
    with pytest.raises(EvaluatorError, match=r"no label 'g/op0'.*NasBenchGraph space"):
        NasBenchGraphBenchmark(prefix="g/").query(FIGURE)
    with pytest.raises(EvaluatorError, match=r"'proteins' table has the operators gcn, sage, arma, fc, skip"):
        NasBenchGraphBenchmark("proteins").query(FIGURE)
    with pytest.raises(EvaluatorError, match="skip connections only is not an architecture"):
        bench.query({**FIGURE, "op0": "skip", "op1": "skip", "op2": "skip", "op3": "skip"})


def test_missing_package_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(tabular.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(MissingDependencyError, match=r"pip install nascore-hub\[nasbenchgraph\]"):
        NasBenchGraphBenchmark()


def test_a_trial_reports_the_tables_metrics_after_shipping():
    evaluator = NasBenchGraphBenchmark("photo", prefix="")
    shipped = load_shipped_evaluator(ship_evaluator(evaluator))  # as a worker process gets it
    assert isinstance(shipped, NasBenchGraphBenchmark) and repr(shipped) == repr(evaluator)
    assert pickle.loads(pickle.dumps(evaluator)).query(FIGURE) == evaluator.query(FIGURE)
    from nascore.plugin import create_format

    model = create_format("raw").build(NasBenchGraph(4, 3, hidden=4)).freeze(FIGURE)
    events: list = []
    assert run_trial(3, model, shipped, events.append)
    assert events[-1].status is TrialStatus.SUCCEEDED
    (final,) = [e for e in events if e.kind == "final"]
    assert final.metric == evaluator.query(FIGURE)


def test_a_search_answers_every_trial_from_the_table(tmp_path):
    evaluator = NasBenchGraphBenchmark("cora")
    config = ExperimentConfig(max_trials=25, seed=0, experiment_dir=tmp_path, engine="sequential", format="raw")
    experiment = Experiment(NasBenchGraph(4, 3, hidden=4), evaluator, "evolution", config)
    experiment.run()
    records = [r for r in experiment.trials() if r.succeeded]
    assert len(records) == 25
    for record in records:
        assert record.metric == pytest.approx(evaluator.query(record.sample)["val_acc"])
        assert record.metrics["test_acc"] == pytest.approx(evaluator.query(record.sample)["test_acc"])


def test_the_datasets():
    assert GRAPH_DATASETS == ("cora", "citeseer", "pubmed", "cs", "physics", "photo", "computers", "arxiv", "proteins")
