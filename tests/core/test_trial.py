"""The trial API: metric normalization, reporting, and run_trial's outcome events."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import nascore
from nascore.engine import TrialStatus
from nascore.errors import TrialError
from nascore.evaluators import FunctionalEvaluator
from nascore.space import Categorical
from nascore.testing.fakes import DictSpace
from nascore.trial import normalize_metric, run_trial


def test_metric_forms():
    assert normalize_metric(0.5) == (0.5, {"default": 0.5})
    assert normalize_metric(np.float32(0.25))[0] == 0.25
    assert normalize_metric(torch.tensor(0.75))[0] == 0.75
    value, record = normalize_metric({"default": 1, "loss": torch.tensor(2.0), "note": "x"})
    assert value == 1.0 and record == {"default": 1.0, "loss": 2.0, "note": "x"}


@pytest.mark.parametrize("bad", ["0.5", None, True, [1.0], {"acc": 0.5}, {"default": "high"}])
def test_bad_metric_is_a_clear_error(bad):
    with pytest.raises(TrialError, match="metric|default"):
        normalize_metric(bad)


def test_reporting_outside_a_trial_does_not_raise(caplog):
    nascore.report_intermediate_result(0.1)
    nascore.report_final_result(0.2)
    with pytest.raises(TrialError, match="outside a trial"):
        nascore.get_current_sample()


def _run(fn, sample=None):
    space = DictSpace([Categorical([1, 2], label="a")])
    model = space.freeze(sample or {"a": 2})
    events, logs = [], []
    ok = run_trial(7, model, FunctionalEvaluator(fn), events.append, log=logs.append)
    return ok, events, logs


def test_successful_trial_reports_in_order():
    def fn(model):
        assert isinstance(model, torch.nn.Module)
        assert nascore.get_current_sample() == {"a": 2}
        nascore.report_intermediate_result(0.1)
        nascore.report_intermediate_result({"default": 0.2, "loss": 1.0})
        nascore.report_final_result({"default": 0.3, "params": 10})

    ok, events, _ = _run(fn)
    assert ok
    kinds = [(e.kind, e.status) for e in events]
    assert kinds == [
        ("status", TrialStatus.RUNNING),
        ("intermediate", None),
        ("intermediate", None),
        ("final", None),
        ("status", TrialStatus.SUCCEEDED),
    ]
    assert events[3].metric == {"default": 0.3, "params": 10}
    assert all(e.trial_id == 7 for e in events)


def test_returned_value_counts_as_final():
    ok, events, _ = _run(lambda model: 0.9)
    assert ok and [e.value for e in events if e.kind == "final"] == [0.9]


def test_raising_evaluator_gives_failed_event_with_traceback():
    def fn(model):
        raise ValueError("shape mismatch in layer 3")

    ok, events, logs = _run(fn)
    assert not ok
    last = events[-1]
    assert last.status is TrialStatus.FAILED
    assert "ValueError: shape mismatch in layer 3" in last.error
    assert "Traceback" in last.error and "Traceback" in logs[0]


def test_no_final_result_is_a_failure_that_says_what_to_do():
    ok, events, _ = _run(lambda model: None)
    assert not ok
    assert "report_final_result" in events[-1].error


def test_final_result_twice_fails_the_trial():
    def fn(model):
        nascore.report_final_result(1.0)
        nascore.report_final_result(2.0)

    ok, events, _ = _run(fn)
    assert not ok and "reported a final result twice" in events[-1].error
    assert not [e for e in events if e.kind == "final"], "a failed trial must not leave its first value recorded"


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_final_result_is_a_failure_naming_the_value(value):
    ok, events, _ = _run(lambda model: value)
    assert not ok
    assert events[-1].status is TrialStatus.FAILED and str(value) in events[-1].error
    assert not [e for e in events if e.kind == "final"]


def test_sys_exit_in_the_evaluator_fails_only_the_trial():
    def fn(model):
        raise SystemExit(3)

    ok, events, _ = _run(fn)
    assert not ok and "sys.exit(3)" in events[-1].error


def test_seed_makes_model_and_evaluator_start_from_the_same_state():
    def fn(model):
        weights = sum(float(p.sum()) for p in model.parameters())
        return weights + float(torch.rand(1))

    first = _run_seeded(fn, seed=123)
    assert first == _run_seeded(fn, seed=123)
    assert first != _run_seeded(fn, seed=124)


def _run_seeded(fn, seed):
    space = DictSpace([Categorical([1, 2], label="a")])
    events = []
    torch.manual_seed(seed + 1000)  # whatever state the process is in before
    run_trial(1, space.freeze({"a": 2}), FunctionalEvaluator(fn), events.append, seed=seed)
    return [e.value for e in events if e.kind == "final"]


def test_trial_seed_depends_on_experiment_seed_and_sample_only():
    from nascore.trial import trial_seed

    assert trial_seed(None, {"a": 1}) is None
    assert trial_seed(0, {"a": 1, "b": 2}) == trial_seed(0, {"b": 2, "a": 1})
    assert trial_seed(0, {"a": 1}) != trial_seed(1, {"a": 1}) != trial_seed(0, {"a": 2})
