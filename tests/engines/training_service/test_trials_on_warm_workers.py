"""Trials on warm local workers: each starts from its seed and from the evaluator as submitted, and a
trial folder that cannot be written aborts the trial (not a failure) while the worker stays usable."""

from __future__ import annotations

import os

import pytest

from nascore.engine import TrialStatus
from nascore.evaluators import FunctionalEvaluator
from nascore.experiment import ExperimentConfig
from nascore.experiment.config import create_engine_for
from nascore.testing.fakes import RecordingSink
from nascore.trial import seed_everything

from .harness import run_all, space, start


def started(tmp_path, sink, dict_space, concurrency, evaluator):
    config = ExperimentConfig(experiment_dir=tmp_path, engine="training-service", trial_concurrency=concurrency)
    engine = create_engine_for(config)
    engine.check(evaluator)
    start(engine, config, tmp_path, sink, dict_space)
    return engine


def test_each_trial_starts_from_its_seed_whichever_worker_runs_it(tmp_path, tsjob):
    sink = RecordingSink()
    dict_space = space("x", [0, 1, 2, 3])
    evaluator = FunctionalEvaluator(tsjob.draws)
    engine = started(tmp_path, sink, dict_space, 2, evaluator)
    seeds = {0: 11, 1: 22, 2: 11, 3: 22}
    try:
        ids = run_all(engine, dict_space, evaluator, [{"x": x} for x in seeds], tmp_path, seed=lambda s: seeds[s["x"]])
    finally:
        engine.shutdown()
    metrics = {x: next(e.metric for e in sink.of(trial_id) if e.kind == "final") for x, trial_id in zip(seeds, ids)}
    for seed in (11, 22):  # what the same trial gives in this process, seeded the same way
        seed_everything(seed)
        expected = tsjob.draws(None)
        assert [metrics[x] for x, s in seeds.items() if s == seed] == [expected, expected]
    assert metrics[0] != metrics[1]


def test_every_trial_starts_from_the_evaluator_as_submitted_whatever_ran_before_it(tmp_path, tsjob):
    """The worker keeps the shipped evaluator, not the one a trial used: a DataLoader's own generator
    does not carry its state from one trial to the next."""
    sink = RecordingSink()
    dict_space = space("x", [0, 1, 2])
    evaluator = FunctionalEvaluator(tsjob.data_order, loader=tsjob.shuffled_data(0))
    engine = started(tmp_path, sink, dict_space, 1, evaluator)
    try:
        ids = run_all(engine, dict_space, evaluator, [{"x": x} for x in (0, 1, 2)], tmp_path)
    finally:
        engine.shutdown()
    orders = [next(e.metric["order"] for e in sink.of(trial_id) if e.kind == "final") for trial_id in ids]
    alone = [int(x) for (batch,) in tsjob.shuffled_data(0) for x in batch]  # a fresh loader's first epoch
    assert orders == [alone, alone, alone]


def test_a_read_only_trials_folder_aborts_the_trial_and_the_worker_stays_usable(tmp_path, tsjob, mounts):
    sink = RecordingSink()
    dict_space = space("what", ["ok"])
    evaluator = FunctionalEvaluator(tsjob.behave)
    engine = started(tmp_path, sink, dict_space, 1, evaluator)
    trials = tmp_path / "trials"
    trials.mkdir()
    try:
        [pid] = engine.service.pool.pids
        mounts.read_only(trials)
        [first] = run_all(engine, dict_space, evaluator, [{"what": "ok"}], tmp_path)
        assert engine.running() == 0  # the aborted trial gave its seat back
        mounts.writable(trials)
        [second] = run_all(engine, dict_space, evaluator, [{"what": "ok"}], tmp_path, first_id=2)
        assert engine.service.pool.pids == [pid]  # the same worker ran the next trial
    finally:
        engine.shutdown()
    [abort] = sink.of(first)
    assert abort.kind == "abort" and not abort.ends_trial
    assert abort.error.startswith(f"cannot write trial {first}'s folder {trials / str(first)}: ")
    assert "make it writable (or free disk space) and resume the experiment" in abort.error
    assert "native code" not in abort.error
    assert sink.end(second).status is TrialStatus.SUCCEEDED
    assert sink.intermediates(second)[0]["pid"] == pid


def test_a_full_disk_under_the_trial_log_aborts_the_trial_instead_of_failing_it(tmp_path, tsjob, mounts):
    sink = RecordingSink()
    dict_space = space("what", ["ok"])
    evaluator = FunctionalEvaluator(tsjob.behave)
    engine = started(tmp_path, sink, dict_space, 1, evaluator)
    trials = mounts.small_disk(tmp_path / "trials", "1m")
    filler = trials / "filler"
    with open(filler, "wb") as f:
        try:
            while True:
                f.write(b"x" * 65536)
                f.flush()
        except OSError:
            pass
    try:
        [pid] = engine.service.pool.pids
        [first] = run_all(engine, dict_space, evaluator, [{"what": "ok"}], tmp_path)  # its print hits the full disk
        filler.unlink()
        [second] = run_all(engine, dict_space, evaluator, [{"what": "ok"}], tmp_path, first_id=2)
    finally:
        engine.shutdown()
    events = sink.of(first)
    assert [e.kind for e in events] == ["status", "abort"]  # RUNNING, then no end: its first print failed
    assert events[-1].error.startswith(f"cannot write trial {first}'s folder {trials / str(first)}: No space left on device")
    assert sink.end(second).status is TrialStatus.SUCCEEDED
    assert sink.intermediates(second)[0]["pid"] == pid


class FlakySink(RecordingSink):
    """A sink whose first intermediate event raises, as a broken store would."""

    def __init__(self) -> None:
        super().__init__()
        self.raised = False

    def emit(self, event):
        if event.kind == "intermediate" and not self.raised:
            self.raised = True
            raise RuntimeError("the store broke")
        super().emit(event)


def test_a_sink_that_raises_does_not_stop_the_events_of_later_trials(tmp_path, tsjob):
    sink = FlakySink()
    dict_space = space("what", ["ok"])
    evaluator = FunctionalEvaluator(tsjob.behave)
    engine = started(tmp_path, sink, dict_space, 1, evaluator)
    try:
        ids = run_all(engine, dict_space, evaluator, [{"what": "ok"}, {"what": "ok"}], tmp_path, deadline=60)
    finally:
        engine.shutdown()
    assert sink.raised
    assert [sink.end(trial_id).status for trial_id in ids] == [TrialStatus.SUCCEEDED] * 2
    assert len(sink.intermediates(ids[1])) == 1


@pytest.mark.skipif(os.name != "posix", reason="worker fds are POSIX")
def test_sys_exit_in_a_trial_fails_the_trial_and_the_worker_goes_on(tmp_path, tsjob):
    sink = RecordingSink()
    dict_space = space("what", ["sysexit", "ok"])
    evaluator = FunctionalEvaluator(tsjob.behave)
    engine = started(tmp_path, sink, dict_space, 1, evaluator)
    try:
        [pid] = engine.service.pool.pids
        ids = run_all(engine, dict_space, evaluator, [{"what": "sysexit"}, {"what": "ok"}], tmp_path)
        assert engine.service.pool.pids == [pid]
    finally:
        engine.shutdown()
    failed = sink.end(ids[0])
    assert failed.status is TrialStatus.FAILED and "sys.exit(4)" in failed.error
    assert sink.end(ids[1]).status is TrialStatus.SUCCEEDED
