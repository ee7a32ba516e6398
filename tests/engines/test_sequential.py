"""The sequential engine: trials in-process, one at a time, events in order, failures recorded."""

from __future__ import annotations

import pytest

import nascore
from nascore.engine import EngineContext, TrialStatus, TrialSubmission
from nascore.errors import EngineError
from nascore.evaluators import FunctionalEvaluator
from nascore.experiment import ExperimentConfig
from nascore.experiment.config import trial_resources
from nascore.plugin import get_plugins
from nascore.space import Categorical
from nascore.testing.fakes import DictSpace, RecordingSink
from nascore_engines import SequentialEngine


def make_engine(tmp_path):
    sink = RecordingSink()
    engine = SequentialEngine()
    engine.start(EngineContext("exp", tmp_path, trial_resources(ExperimentConfig(experiment_dir=tmp_path)), sink))
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


def test_a_trial_starts_from_its_seed(tmp_path):
    import torch

    engine, sink = make_engine(tmp_path)
    for trial_id in (1, 2):
        model = DictSpace([Categorical([1, 2], label="a")]).freeze({"a": 1})
        engine.submit(TrialSubmission(trial_id, model, FunctionalEvaluator(lambda m: torch.rand(1).item()),
                                      tmp_path / "trials" / str(trial_id), model.sample, seed=5))
        engine.wait()
    finals = [e.value for e in sink.events if e.kind == "final"]
    torch.manual_seed(5)
    assert finals == [torch.rand(1).item()] * 2


def test_a_read_only_trials_folder_aborts_only_the_trials_that_write_to_it(tmp_path, mounts):
    engine, sink = make_engine(tmp_path)
    trials = tmp_path / "trials"
    trials.mkdir()
    mounts.read_only(trials)
    engine.submit(submission(tmp_path, 1, lambda m: 1.0))  # writes nothing there: needs no folder
    engine.wait()
    assert sink.end(1).status is TrialStatus.SUCCEEDED and not (trials / "1").exists()

    def broken(model):
        raise RuntimeError("out of cheese")

    engine.submit(submission(tmp_path, 2, broken))  # its traceback cannot be written
    engine.wait()
    abort = sink.events[-1]
    assert abort.kind == "abort" and abort.trial_id == 2 and engine.running() == 0
    assert abort.error.startswith(f"cannot write trial 2's folder {trials / '2'}: ")
    assert "make it writable (or free disk space) and resume the experiment" in abort.error
    mounts.writable(trials)
    engine.submit(submission(tmp_path, 2, broken))
    engine.wait()
    assert sink.end(2).status is TrialStatus.FAILED and "out of cheese" in (trials / "2" / "trial.log").read_text()


def test_a_failing_trial_whose_log_cannot_be_written_is_aborted_not_failed(tmp_path, mounts):
    engine, sink = make_engine(tmp_path)
    folder = tmp_path / "trials" / "1"
    folder.mkdir(parents=True)

    def broken(model):
        mounts.read_only(folder)  # the folder goes read-only under the running trial
        raise RuntimeError("out of cheese")

    engine.submit(submission(tmp_path, 1, broken))
    engine.wait()  # no OSError out of the engine
    assert [e.kind for e in sink.events] == ["status", "abort"]  # RUNNING, then the abort instead of FAILED
    assert sink.events[0].status is TrialStatus.RUNNING
    assert sink.events[-1].error.startswith(f"cannot write trial 1's folder {folder}: ")
