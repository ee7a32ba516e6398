"""When the experiment's folder fails under a run: full disk, read-only trial folders, a locked store.

Every case on both engines that run trials in the experiment process's store: the run stops with an
error naming the folder and the cause (it never hangs and never blames the trial), what was recorded
stays, and after the fix resume reruns the affected trial and finishes.
"""

from __future__ import annotations

import textwrap

import pytest

from nascore.engine import TrialStatus
from nascore.errors import ExperimentError, StoreError
from nascore.experiment import Experiment, ExperimentConfig

FAULTS = textwrap.dedent(
    '''
    import os
    import sqlite3
    import subprocess
    from pathlib import Path

    import nascore
    from nascore.evaluators import FunctionalEvaluator

    HELD = []

    def _count(folder):
        marker = Path(folder) / "calls"
        with open(marker, "a") as f:
            f.write("x")
        return marker.stat().st_size

    def faulty(model, fault, at, folder, target):
        """Trial number ``at`` (counted over runs) breaks ``target`` in the way ``fault`` says, then succeeds."""
        sample = nascore.get_current_sample()
        if _count(folder) == at:
            if fault == "full":
                with open(target, "wb") as f:
                    try:
                        while True:
                            f.write(b"x" * 65536)
                            f.flush()
                    except OSError:
                        pass
            elif fault == "locked":
                conn = sqlite3.connect(target, isolation_level=None)
                conn.execute("BEGIN IMMEDIATE")
                HELD.append(conn)  # the write transaction stays open after the trial
            elif fault == "read-only":
                os.makedirs(target, exist_ok=True)
                if os.geteuid() == 0:
                    subprocess.run(["mount", "--bind", target, target], check=True)
                    subprocess.run(["mount", "-o", "remount,bind,ro", target], check=True)
                else:
                    os.chmod(target, 0o500)
        return sample["width"] / 32 + sample["depth"] / 10

    def faults(fault, at, folder, target):
        return FunctionalEvaluator(faulty, fault=fault, at=at, folder=str(folder), target=str(target))
    '''
)

ENGINES = ["sequential", "training-service"]


@pytest.fixture
def faults(job):
    with open(job.path / "job.py", "a") as f:
        f.write(FAULTS)
    import job as module

    yield module
    for conn in module.HELD:
        conn.close()


def _experiment(module, engine, exps, evaluator):
    config = ExperimentConfig(max_trials=5, seed=1, experiment_dir=exps, engine=engine)
    return Experiment(module.Space(), evaluator, "random", config, id="exp")


def _check_resumed(exps, cut_trial):
    assert Experiment.resume("exp", experiment_dir=exps).run() == "DONE"
    view = Experiment.view("exp", experiment_dir=exps)
    trials = view.trials()
    view.close()
    assert [t.status for t in trials] == [TrialStatus.SUCCEEDED] * 5
    assert [t.attempt for t in trials] == [2 if t.id == cut_trial else 1 for t in trials]


def _statuses(exps):
    view = Experiment.view("exp", experiment_dir=exps)
    trials = view.trials()
    view.close()
    return [t.status for t in trials]


@pytest.mark.parametrize("engine", ENGINES)
def test_full_disk_stops_with_a_clear_error_and_loses_nothing(job, faults, mounts, engine):
    exps = mounts.small_disk(job.path / "disk", "4m")
    filler = exps / "filler"
    exp = _experiment(faults, engine, exps, faults.faults("full", 3, job.path, filler))
    with pytest.raises(StoreError) as info:
        exp.run()
    assert "is full" in str(info.value) and str(exps / "exp") in str(info.value)
    assert _statuses(exps)[:2] == [TrialStatus.SUCCEEDED] * 2
    assert TrialStatus.FAILED not in _statuses(exps)
    filler.unlink()
    _check_resumed(exps, cut_trial=3)


@pytest.mark.parametrize("engine", ENGINES)
def test_a_write_lock_held_past_the_busy_timeout_stops_the_run(job, faults, monkeypatch, engine):
    monkeypatch.setattr("nascore.experiment.store.BUSY_TIMEOUT_MS", 300)
    exps = job.path / "exps"
    exp = _experiment(faults, engine, exps, faults.faults("locked", 2, job.path, exps / "exp" / "experiment.db"))
    with pytest.raises(StoreError, match="another process has held a write transaction"):
        exp.run()  # on training-service the worker holding it is stopped with the run
    for conn in faults.HELD:
        conn.close()
    assert TrialStatus.FAILED not in _statuses(exps)  # the store error is not the trial's failure
    _check_resumed(exps, cut_trial=2)


@pytest.mark.parametrize("engine", ENGINES)
def test_trial_folders_made_read_only_mid_run(job, faults, mounts, engine):
    exps = job.path / "exps"
    trials = exps / "exp" / "trials"
    mounts.expect(trials)
    exp = _experiment(faults, engine, exps, faults.faults("read-only", 2, job.path, trials))
    if engine == "sequential":  # its trials write nothing to their folders unless they fail: all succeed
        assert exp.run() == "DONE" and _statuses(exps) == [TrialStatus.SUCCEEDED] * 5
        return  # a failing trial there is aborted instead: tests/engines/test_sequential.py
    with pytest.raises(ExperimentError) as info:
        exp.run()
    message = str(info.value)
    assert str(trials) in message and "resume" in message and "native code" not in message
    assert TrialStatus.FAILED not in _statuses(exps)
    mounts.writable(trials)
    _check_resumed(exps, cut_trial=3)  # recorded, then its folder could not be made: it runs on resume
