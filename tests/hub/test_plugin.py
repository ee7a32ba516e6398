"""The nascore-hub distribution: its evaluators are registered, and a NAS-Bench-201 search runs end to end."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from nascore.experiment import Experiment, ExperimentConfig
from nascore.plugin import get_plugins
from nascore_hub.benchmarks import NasBench201Benchmark, NasBenchGraphBenchmark
from nascore_hub.spaces import NasBench201


def test_the_benchmark_evaluators_are_registered_and_listed():
    for name, cls, dataset in [("nasbench201", NasBench201Benchmark, "cifar100"),
                               ("nasbenchgraph", NasBenchGraphBenchmark, "pubmed")]:
        entry = get_plugins().evaluators.registration(name)
        assert entry.distribution == "nascore-hub"
        evaluator = entry.obj(dataset)
        assert isinstance(evaluator, cls) and evaluator.dataset == dataset
    rows = json.loads(subprocess.check_output([sys.executable, "-m", "nascore", "plugins", "--json"]))
    for name in ("nasbench201", "nasbenchgraph"):
        assert {"kind": "evaluator", "name": name, "distribution": "nascore-hub"}.items() <= next(
            row for row in rows if row["name"] == name
        ).items()


@pytest.mark.parametrize("strategy", ["random", "evolution"])
def test_a_nasbench201_search_answers_every_trial_from_the_table(tmp_path, strategy):
    evaluator = NasBench201Benchmark("cifar10")
    config = ExperimentConfig(max_trials=30, seed=0, experiment_dir=tmp_path, engine="sequential", format="raw")
    experiment = Experiment(NasBench201(stem_out_channels=4, num_modules_per_stack=1), evaluator, strategy, config)
    experiment.run()
    records = [r for r in experiment.trials() if r.succeeded]
    assert len(records) == 30
    for record in records:
        expected = evaluator.query(record.sample)
        assert record.metric == pytest.approx(expected["val_acc"])
        # the extra metrics are recorded, and the simulated training time for equal-budget comparisons
        assert record.metrics["train_time"] == pytest.approx(expected["train_time"])
        assert record.metrics["simulated_time"] == pytest.approx(expected["train_time"]) and expected["train_time"] > 0
    best = experiment.export_top_models(top_k=1)[0]
    assert evaluator.query(best)["val_acc"] == pytest.approx(max(r.metric for r in records))
