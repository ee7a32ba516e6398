"""Setup mistakes are found before the first trial, or stop the run after the first few trials."""

from __future__ import annotations

import pytest

import nascore
from nascore.engine import TrialStatus
from nascore.errors import EvaluatorError, ExperimentError
from nascore.evaluator import Evaluator
from nascore.evaluators import FunctionalEvaluator
from nascore.experiment import Experiment, ExperimentConfig
from nascore.nn import ModelSpace, MutableLinear


class Space(ModelSpace):
    def __init__(self):
        super().__init__()
        self.fc = MutableLinear(2, nascore.choice("width", [1, 2, 3, 4, 5, 6, 7, 8]))


def width(model):
    return float(nascore.get_current_sample()["width"])


def config(tmp_path, **kw):
    return ExperimentConfig(**{"experiment_dir": tmp_path, "max_trials": 6, "seed": 0, **kw})


def test_a_plain_function_as_evaluator_is_refused_with_the_fix(tmp_path):
    with pytest.raises(ExperimentError, match=r"FunctionalEvaluator\(width\)"):
        Experiment(Space(), width, "random", config(tmp_path))
    with pytest.raises(ExperimentError, match="must be a nascore Evaluator, got int"):
        Experiment(Space(), 3, "random", config(tmp_path))


def typo(model):
    raise TypeError("Trainer.__init__() got an unexpected keyword argument 'max_epoch'")


def test_same_error_in_the_first_trials_stops_the_run_and_resume_reruns_them(tmp_path):
    exp = Experiment(Space(), FunctionalEvaluator(typo), "random", config(tmp_path), id="exp")
    with pytest.raises(ExperimentError) as info:
        exp.run()
    message = str(info.value)
    assert "first 3 trials (1, 2, 3) all failed with the same error" in message
    assert "max_epoch" in message and "fail_fast=0" in message and "Experiment.resume('exp'" in message
    view = Experiment.view("exp", experiment_dir=tmp_path)
    assert view.status == "FAILED" and [t.status for t in view.trials()] == [TrialStatus.INTERRUPTED] * 3
    view.close()

    resumed = Experiment.resume("exp", evaluator=FunctionalEvaluator(width), experiment_dir=tmp_path)
    assert resumed.run() == "DONE"
    trials = resumed.trials()
    assert [t.status for t in trials] == [TrialStatus.SUCCEEDED] * 6
    assert [t.attempt for t in trials] == [2, 2, 2, 1, 1, 1]


def flaky(model):
    w = nascore.get_current_sample()["width"]
    if w % 2:
        raise ValueError(f"odd width {w} is not supported" if w > 4 else "a different problem")
    return float(w)


@pytest.mark.parametrize("fail_fast", [0, 3])
def test_failures_that_differ_or_fail_fast_zero_do_not_stop(tmp_path, fail_fast):
    evaluator = FunctionalEvaluator(typo if fail_fast == 0 else flaky)
    exp = Experiment(Space(), evaluator, "grid", config(tmp_path, fail_fast=fail_fast))
    assert exp.run() == "DONE" and len(exp.trials()) == 6


class Error(Evaluator):
    """A made-up evaluator whose metric is an error to minimize."""

    optimize_mode = "minimize"

    def evaluate_module(self, module):
        return float(nascore.get_current_sample()["width"])


def test_the_experiment_follows_the_evaluators_direction(tmp_path):
    exp = Experiment(Space(), Error(), "grid", config(tmp_path, max_trials=8))
    exp.run()
    assert exp.config.optimize_mode == "minimize"
    assert exp.best_trial().metric == 1.0 and exp.export_top_models() == [{"width": 1}]
    view = Experiment.view(exp.id, experiment_dir=tmp_path)
    assert view.config.optimize_mode == "minimize" and view.best_trial().metric == 1.0
    view.close()


def test_a_direction_that_contradicts_the_evaluator_is_an_error_before_any_trial(tmp_path):
    exp = Experiment(Space(), Error(), "grid", config(tmp_path, optimize_mode="maximize"))
    with pytest.raises(ExperimentError, match="optimize_mode='maximize' contradicts the evaluator: Error reports a metric to minimize"):
        exp.run()
    assert not exp.path.exists()
    assert Experiment(Space(), Error(), "grid", config(tmp_path, optimize_mode="minimize")).run() == "DONE"


class Misconfigured(Error):
    def check(self):
        raise EvaluatorError("Misconfigured: unknown Trainer argument 'max_epoch'; did you mean 'max_epochs'?")


def test_evaluator_check_runs_before_the_first_trial(tmp_path):
    exp = Experiment(Space(), Misconfigured(), "grid", config(tmp_path))
    with pytest.raises(EvaluatorError, match="max_epoch"):
        exp.run()
    assert not exp.path.exists()
