"""End to end: experiments with the built-in plugins on the sequential engine."""

from __future__ import annotations

import math
import sys

import pytest
import torch
import torch.nn as nn

import nascore
from nascore.engine import TrialStatus
from nascore.errors import ExperimentError, SampleValueError, UnknownPluginError
from nascore.evaluators import FunctionalEvaluator
from nascore.experiment import Experiment, ExperimentConfig
from nascore.nn import LayerChoice, ModelSpace, MutableLinear
from nascore.strategy import MultiTrialStrategy
from nascore_strategies import GridSearch, Random


class Space(ModelSpace):
    def __init__(self):
        super().__init__()
        self.fc = MutableLinear(3, nascore.choice("width", [2, 4, 8]))
        self.act = LayerChoice([nn.ReLU(), nn.Sigmoid()], label="act")
        self.out = MutableLinear(nascore.choice("width", [2, 4, 8]), 1)

    def forward(self, x):
        return self.out(self.act(self.fc(x)))


def evaluate(model):
    sample = nascore.get_current_sample()
    for epoch in range(3):
        nascore.report_intermediate_result(epoch / 10)
    params = sum(p.numel() for p in model.parameters())
    nascore.report_final_result({"default": sample["width"] + sample["act"] / 10, "params": params})


def config(tmp_path, **kw):
    return ExperimentConfig(experiment_dir=tmp_path, **kw)


def test_grid_search_covers_space_and_exports(tmp_path):
    exp = Experiment(Space(), FunctionalEvaluator(evaluate), "grid", config(tmp_path))
    assert exp.run() == "DONE"
    trials = exp.trials()
    assert len(trials) == 6 and all(t.status is TrialStatus.SUCCEEDED for t in trials)
    assert all(t.intermediates == [0.0, 0.1, 0.2] for t in trials)
    assert trials[0].metrics["params"] > 0
    assert exp.export_top_models(top_k=2) == [{"width": 8, "act": 1}, {"width": 8, "act": 0}]
    [best] = exp.export_top_models(formatter="instance")
    assert isinstance(best, Space) and best.fc.out_features == 8 and isinstance(best.act, nn.Sigmoid)
    assert best(torch.randn(2, 3)).shape == (2, 1)


def test_minimize_and_max_trials(tmp_path):
    exp = Experiment(Space(), FunctionalEvaluator(evaluate), Random(seed=1), config(tmp_path, max_trials=4, optimize_mode="minimize"))
    exp.run()
    trials = exp.trials()
    assert len(trials) == 4
    best = exp.export_top_models()[0]
    assert best == min((t.sample for t in trials), key=lambda s: s["width"] + s["act"] / 10)


def test_failing_trials_never_fail_the_experiment(tmp_path):
    def flaky(model):
        if nascore.get_current_sample()["act"] == 1:
            raise ValueError("diverged")
        return 1.0

    exp = Experiment(Space(), FunctionalEvaluator(flaky), "grid", config(tmp_path))
    assert exp.run() == "DONE"
    failed = [t for t in exp.trials() if t.status is TrialStatus.FAILED]
    assert len(failed) == 3
    assert all("ValueError: diverged" in t.error and "Traceback" in t.error for t in failed)
    assert all(t.sample["act"] == 0 for t in exp.export_top_models(top_k=10, formatter="dict") for t in [type("T", (), {"sample": t})])


def test_unknown_names_list_the_registered_ones(tmp_path):
    with pytest.raises(UnknownPluginError, match=r"unknown strategy 'evolutionary'.*grid.*random"):
        Experiment(Space(), FunctionalEvaluator(evaluate), "evolutionary", config(tmp_path)).run()
    with pytest.raises(UnknownPluginError, match="engine.*sequential"):
        Experiment(Space(), FunctionalEvaluator(evaluate), "random", config(tmp_path, engine="warp")).run()
    with pytest.raises(UnknownPluginError, match="format.*raw.*simplified"):
        Experiment(Space(), FunctionalEvaluator(evaluate), "random", config(tmp_path, format="onnx")).run()


def test_strategy_proposing_an_invalid_sample_is_reported(tmp_path):
    class Broken(MultiTrialStrategy):
        def propose(self):
            return {"width": 5, "act": 0}

    with pytest.raises(SampleValueError, match="value 5 for label 'width'"):
        Experiment(Space(), FunctionalEvaluator(evaluate), Broken(), config(tmp_path)).run()


def test_max_duration_stops_submitting(tmp_path):
    import time

    def slow(model):
        time.sleep(0.05)  # a trial that takes time, so the duration budget is reached
        return 1.0

    exp = Experiment(Space(), FunctionalEvaluator(slow), Random(dedup=False), config(tmp_path, max_duration=0.2))
    exp.run()
    assert 2 <= len(exp.trials()) <= 6


def test_raw_format_end_to_end(tmp_path):
    exp = Experiment(Space(), FunctionalEvaluator(evaluate), GridSearch(), config(tmp_path, format="raw"))
    exp.run()
    assert len(exp.trials()) == 6
    assert isinstance(exp.export_top_models(formatter="instance")[0].act, nn.Sigmoid)


def test_export_errors(tmp_path):
    exp = Experiment(Space(), FunctionalEvaluator(evaluate), "grid", config(tmp_path, max_trials=1))
    exp.run()
    with pytest.raises(ExperimentError, match="unknown formatter"):
        exp.export_top_models(formatter="onnx")
    with pytest.raises(ExperimentError, match="graph"):
        exp.export_top_models(formatter="code")


def test_view_is_read_only_and_exports(tmp_path):
    exp = Experiment(Space(), FunctionalEvaluator(evaluate), "grid", config(tmp_path, max_trials=3))
    exp.run()
    view = Experiment.view(exp.id, Space(), experiment_dir=tmp_path)
    assert view.status == "DONE" and len(view.trials()) == 3
    assert view.export_top_models() == exp.export_top_models()
    with pytest.raises(ExperimentError):
        view.run()
    view.close()


def test_nan_and_inf_are_trial_failures_everywhere(tmp_path):
    from nascore.experiment.report import experiment_detail, experiments_summary

    values = iter([math.nan, math.inf, 0.5, -math.inf, 0.7, 0.6])
    exp = Experiment(Space(), FunctionalEvaluator(lambda m: next(values)), "grid", config(tmp_path, max_trials=6))
    exp.run()
    trials = exp.trials()
    assert [t.status for t in trials] == [TrialStatus.FAILED, TrialStatus.FAILED, TrialStatus.SUCCEEDED,
                                          TrialStatus.FAILED, TrialStatus.SUCCEEDED, TrialStatus.SUCCEEDED]
    assert [t.metric for t in trials] == [None, None, 0.5, None, 0.7, 0.6]
    assert "(nan)" in trials[0].error and "(inf)" in trials[1].error and "(-inf)" in trials[3].error
    assert exp.best_trial().id == 5 and exp.best_trial().metric == 0.7
    # the list, the detail view and the experiment agree with the store
    [row] = experiments_summary(tmp_path)
    assert (row["best"], row["succeeded"], row["failed"]) == (0.7, 3, 3)
    detail = experiment_detail(tmp_path, exp.id)
    assert detail["best"][0]["id"] == 5


def test_sys_exit_in_an_evaluator_fails_only_that_trial_on_the_sequential_engine(tmp_path):
    def exits(model):
        if nascore.get_current_sample()["width"] == 4:
            sys.exit(2)
        return 1.0

    exp = Experiment(Space(), FunctionalEvaluator(exits), GridSearch(shuffle=False), config(tmp_path, max_trials=6))
    assert exp.run() == "DONE"
    failed = [t for t in exp.trials() if t.status is TrialStatus.FAILED]
    assert failed and all("sys.exit(2)" in t.error and t.sample["width"] == 4 for t in failed)
    assert len(exp.trials()) == 6
