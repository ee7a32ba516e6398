"""The sequential engine: trials in-process, one at a time, events in order, failures recorded."""

from __future__ import annotations

import pytest

import nascore
from nascore.engine import EngineContext, TrialStatus, TrialSubmission
from nascore.errors import EngineError
from nascore.evaluators import FunctionalEvaluator
from nascore.experiment import ExperimentConfig
from nascore.plugin import get_plugins
from nascore.space import Categorical
from nascore.testing.fakes import DictSpace, RecordingSink
from nascore_engines import SequentialEngine


def make_engine(tmp_path):
    sink = RecordingSink()
    engine = SequentialEngine.from_config(ExperimentConfig(experiment_dir=tmp_path))
    engine.start(EngineContext("exp", tmp_path, ExperimentConfig(experiment_dir=tmp_path), sink))
    return engine, sink


def submission(tmp_path, trial_id, fn, value=1):
    model = DictSpace([Categorical([1, 2], label="a")]).freeze({"a": value})
    return TrialSubmission(trial_id, model, FunctionalEvaluator(fn), tmp_path / "trials" / str(trial_id), model.sample)


def test_runs_one_trial_per_wait(tmp_path):
    engine, sink = make_engine(tmp_path)
    assert engine.idle_slots() == 1
    engine.submit(submission(tmp_path, 1, lambda m: nascore.get_current_sample()["a"] / 10, value=2))
    assert engine.idle_slots() == 0 and engine.running() == 1
    assert sink.events == []  # submit does not run the trial
    engine.wait()
    assert engine.running() == 0
    assert [e.kind for e in sink.events] == ["status", "final", "status"]
    assert sink.events[1].value == 0.2 and sink.events[-1].status is TrialStatus.SUCCEEDED


def test_failure_is_an_event_and_a_log_file(tmp_path):
    engine, sink = make_engine(tmp_path)

    def broken(model):
        raise RuntimeError("out of cheese")

    engine.submit(submission(tmp_path, 3, broken))
    engine.wait()
    assert sink.events[-1].status is TrialStatus.FAILED and "out of cheese" in sink.events[-1].error
    log = (tmp_path / "trials" / "3" / "trial.log").read_text()
    assert "RuntimeError: out of cheese" in log


def test_submit_before_start_is_an_error(tmp_path):
    with pytest.raises(EngineError, match="before start"):
        SequentialEngine().submit(submission(tmp_path, 1, lambda m: 1.0))


def test_shutdown_drops_queued_trials(tmp_path):
    engine, sink = make_engine(tmp_path)
    engine.submit(submission(tmp_path, 1, lambda m: 1.0))
    engine.shutdown()
    assert engine.running() == 0 and sink.events == []


def test_registered_as_sequential():
    entry = get_plugins().engines.registration("sequential")
    assert entry.obj is SequentialEngine and entry.distribution == "nascore-engines"
