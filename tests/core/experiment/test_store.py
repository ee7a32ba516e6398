"""The SQLite store: WAL mode, trial life cycle, metrics, read-only access."""

from __future__ import annotations

import sqlite3

import pytest

from nascore.engine import TrialStatus
from nascore.errors import ExperimentNotFoundError, ReadOnlyError, StoreError
from nascore.experiment.store import DB_NAME, ExperimentStore, list_experiments


@pytest.fixture
def store(tmp_path):
    s = ExperimentStore.create(tmp_path, "exp1")
    yield s
    s.close()


def test_created_in_wal_mode(store, tmp_path):
    assert (tmp_path / "exp1" / DB_NAME).exists()
    mode = sqlite3.connect(tmp_path / "exp1" / DB_NAME).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_trial_life_cycle_is_visible_to_other_readers_at_once(store, tmp_path):
    trial_id = store.add_trial({"a": 1, "b": [1, 2]}, strategy_state={"rng": [1]})
    reader = ExperimentStore.open(tmp_path, "exp1", readonly=True)
    try:
        assert reader.trial(trial_id).status is TrialStatus.WAITING
        store.set_status(trial_id, TrialStatus.RUNNING)
        store.add_metric(trial_id, "intermediate", 0.1, {"default": 0.1})
        store.add_metric(trial_id, "intermediate", 0.2, {"default": 0.2})
        assert reader.trial(trial_id).status is TrialStatus.RUNNING
        store.add_metric(trial_id, "final", 0.3, {"default": 0.3, "params": 5})
        store.set_status(trial_id, TrialStatus.SUCCEEDED)
        record = reader.trial(trial_id)
        assert record.status is TrialStatus.SUCCEEDED
        assert record.sample == {"a": 1, "b": [1, 2]}
        assert record.metric == 0.3 and record.metrics == {"default": 0.3, "params": 5}
        assert record.intermediates == [0.1, 0.2]
        assert record.started is not None and record.ended >= record.started
        assert reader.get_meta("strategy_state") == {"rng": [1]}
    finally:
        reader.close()


def test_failed_trial_keeps_error(store):
    trial_id = store.add_trial({"a": 1})
    store.set_status(trial_id, TrialStatus.FAILED, error="ValueError: boom\nTraceback ...")
    record = store.trial(trial_id)
    assert record.status is TrialStatus.FAILED and record.error.startswith("ValueError: boom")
    assert not record.succeeded


def test_nan_final_metric_is_stored_as_no_metric(store):
    trial_id = store.add_trial({"a": 1})
    store.add_metric(trial_id, "final", float("nan"), {"default": float("nan")})
    store.set_status(trial_id, TrialStatus.SUCCEEDED)
    assert store.trial(trial_id).metric is None


def test_interrupt_and_restart(store):
    done = store.add_trial({"a": 1})
    store.set_status(done, TrialStatus.SUCCEEDED)
    running = store.add_trial({"a": 2})
    store.set_status(running, TrialStatus.RUNNING)
    store.add_metric(running, "intermediate", 0.5, {"default": 0.5})
    assert store.interrupt_unfinished() == [running]
    assert store.trial(running).status is TrialStatus.INTERRUPTED
    store.restart_trial(running)
    record = store.trial(running)
    assert record.status is TrialStatus.WAITING and record.attempt == 2 and record.intermediates == []
    assert store.trial(done).status is TrialStatus.SUCCEEDED


def test_read_only_refuses_writes(store, tmp_path):
    store.add_trial({"a": 1})
    reader = ExperimentStore.open(tmp_path, "exp1", readonly=True)
    try:
        with pytest.raises(ReadOnlyError, match="read-only"):
            reader.add_trial({"a": 2})
        with pytest.raises(ReadOnlyError):
            reader.set_meta("status", "X")
        assert reader.count_trials() == 1
    finally:
        reader.close()


def test_create_twice_and_open_missing(store, tmp_path):
    with pytest.raises(StoreError, match="already exists"):
        ExperimentStore.create(tmp_path, "exp1")
    with pytest.raises(ExperimentNotFoundError, match="nascore list"):
        ExperimentStore.open(tmp_path, "nope")


def test_list_experiments(tmp_path):
    for name in ("b", "a"):
        with ExperimentStore.create(tmp_path, name) as s:
            s.set_meta("status", "DONE")
            s.set_status(s.add_trial({"x": 1}), TrialStatus.SUCCEEDED)
    rows = list_experiments(tmp_path)
    assert [r["id"] for r in rows] == ["b", "a"]  # oldest first
    assert rows[0]["status"] == "DONE" and rows[0]["trials"] == {"SUCCEEDED": 1}
    assert list_experiments(tmp_path / "missing") == []
