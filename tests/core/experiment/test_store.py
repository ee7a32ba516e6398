"""The SQLite store: WAL mode, trial life cycle, metrics, read-only access."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys

import pytest

from nascore.engine import TrialStatus
from nascore.errors import (
    ExperimentLockedError,
    ExperimentNotFoundError,
    ReadOnlyError,
    StoreDamagedError,
    StoreError,
)
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


# --- a store that survives its worst day ----------------------------------------------------------


def _files(folder):
    """Every file under ``folder`` with its size and modification time: what a reader must not change."""
    return sorted((str(p.relative_to(folder)), p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file())


def _finished(tmp_path, name="exp1", trials=2):
    with ExperimentStore.create(tmp_path, name, {"status": "DONE"}) as s:
        for i in range(trials):
            trial_id = s.add_trial({"a": i})
            s.add_metric(trial_id, "final", 0.5 + i, {"default": 0.5 + i})
            s.set_status(trial_id, TrialStatus.SUCCEEDED)
    return tmp_path / name


def test_created_whole_in_one_step_and_private(tmp_path):
    store = ExperimentStore.create(tmp_path, "exp1", {"config": {"max_trials": 3}})
    try:
        meta = store.meta()
        assert meta["config"] == {"max_trials": 3} and meta["schema_version"] == 1 and meta["experiment_id"] == "exp1"
        assert (tmp_path / "exp1").stat().st_mode & 0o777 == 0o700
        assert (tmp_path / "exp1" / DB_NAME).stat().st_mode & 0o777 == 0o600
        assert [p.name for p in tmp_path.iterdir()] == ["exp1"]  # no staging folder left behind
    finally:
        store.close()


KILLED_WHILE_CREATING = """
import os, signal, sys
from nascore.experiment import store
real_rename = os.rename
def die(*args):
    if sys.argv[2] == "after":
        real_rename(*args)
    os.kill(os.getpid(), signal.SIGKILL)
store.os.rename = die
store.ExperimentStore.create(sys.argv[1], "exp1", {"config": {"max_trials": 3}})
"""


@pytest.mark.parametrize("when", ["before", "after"])
def test_kill_minus_nine_while_creating_leaves_nothing_or_a_whole_store(tmp_path, when):
    result = subprocess.run([sys.executable, "-c", KILLED_WHILE_CREATING, str(tmp_path), when], capture_output=True)
    assert result.returncode == -signal.SIGKILL
    if when == "before":  # the id does not exist: it can be created again, and the debris is cleared
        assert not (tmp_path / "exp1").exists()
        ExperimentStore.create(tmp_path, "exp1", {"config": {}}).close()
        assert [p.name for p in tmp_path.iterdir()] == ["exp1"]
    with ExperimentStore.open(tmp_path, "exp1") as store:  # whole: opens for writing, config there
        assert "config" in store.meta() and store.count_trials() == 0


@pytest.mark.parametrize("damage", ["sample", "metrics", "meta"])
def test_damaged_row_is_refused_by_name_and_never_written(tmp_path, damage):
    root = _finished(tmp_path)
    conn = sqlite3.connect(root / DB_NAME)
    if damage == "meta":
        conn.execute("UPDATE meta SET value='{broken' WHERE key='status'")
    else:
        conn.execute(f"UPDATE trials SET {damage}='{{broken' WHERE id=2")
    conn.commit()
    conn.close()
    before = _files(root)
    with pytest.raises(StoreDamagedError) as info:
        with ExperimentStore.open(tmp_path, "exp1", readonly=True) as reader:
            reader.meta()
            reader.trials()
    message = str(info.value)
    assert str(root / DB_NAME) in message
    assert ("meta row 'status'" if damage == "meta" else f"trials row id=2, column {damage}") in message
    assert "will not write" in message and "trials" in message
    assert _files(root) == before


def test_list_marks_a_damaged_store_and_lists_the_rest(tmp_path):
    _finished(tmp_path, "good")
    bad = _finished(tmp_path, "bad")
    conn = sqlite3.connect(bad / DB_NAME)
    conn.execute("UPDATE meta SET value='{' WHERE key='status'")
    conn.commit()
    conn.close()
    rows = {r["id"]: r for r in list_experiments(tmp_path)}
    assert rows["good"]["trials"] == {"SUCCEEDED": 2} and rows["good"]["best"] == 1.5
    assert "damaged" in rows["bad"]["error"] and "meta row 'status'" in rows["bad"]["error"]


def test_truncated_store_is_reported_with_the_recovery(tmp_path):
    root = _finished(tmp_path)
    data = (root / DB_NAME).read_bytes()
    (root / DB_NAME).write_bytes(data[: len(data) // 3])
    with pytest.raises(StoreDamagedError, match=r"damaged .*will not write.*trials"):
        with ExperimentStore.open(tmp_path, "exp1", readonly=True) as reader:
            reader.trials()
    (root / DB_NAME).write_bytes(b"not a database at all" * 100)
    with pytest.raises(StoreDamagedError, match="damaged"):
        ExperimentStore.open(tmp_path, "exp1", readonly=True)


def test_store_from_a_newer_nascore_is_refused_naming_both_versions(tmp_path):
    root = _finished(tmp_path)
    conn = sqlite3.connect(root / DB_NAME)
    conn.execute("UPDATE meta SET value='7' WHERE key='schema_version'")
    conn.commit()
    conn.close()
    for readonly in (True, False):
        with pytest.raises(StoreDamagedError, match=r"schema version 7; this nascore reads versions up to 1"):
            ExperimentStore.open(tmp_path, "exp1", readonly=readonly)


def test_reading_a_finished_store_on_read_only_media_writes_nothing(tmp_path, mounts):
    root = _finished(tmp_path)
    assert not (root / f"{DB_NAME}-wal").exists()  # the writer checkpointed it into one file
    before = _files(root)
    mounts.read_only(root)
    with ExperimentStore.open(tmp_path, "exp1", readonly=True) as reader:
        assert [t.metric for t in reader.trials()] == [0.5, 1.5]
    assert list_experiments(tmp_path)[0]["best"] == 1.5
    assert _files(root) == before


KILLED_WRITER = """
import os, signal, sys
from nascore.engine import TrialStatus
from nascore.experiment.store import ExperimentStore
store = ExperimentStore.create(sys.argv[1], "exp1", {"status": "RUNNING"})
for i in range(3):
    trial_id = store.add_trial({"a": i})
    store.add_metric(trial_id, "final", float(i), {"default": float(i)})
    store.set_status(trial_id, TrialStatus.SUCCEEDED)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_killed_writers_wal_is_read_without_touching_the_store(tmp_path, mounts):
    result = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(tmp_path)], capture_output=True)
    assert result.returncode == -signal.SIGKILL
    root = tmp_path / "exp1"
    assert (root / f"{DB_NAME}-wal").stat().st_size > 0
    before = _files(root)
    mounts.read_only(root)
    with ExperimentStore.open(tmp_path, "exp1", readonly=True) as reader:
        assert [t.status for t in reader.trials()] == [TrialStatus.SUCCEEDED] * 3
    [row] = list_experiments(tmp_path)
    assert row["liveness"]["alive"] is False and row["best"] == 2.0
    assert _files(root) == before


def test_write_blocked_by_another_process_names_the_cause_not_the_rollback(tmp_path, monkeypatch):
    monkeypatch.setattr("nascore.experiment.store.BUSY_TIMEOUT_MS", 100)
    store = ExperimentStore.create(tmp_path, "exp1")
    other = sqlite3.connect(tmp_path / "exp1" / DB_NAME, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        for write in (lambda: store.add_trial({"a": 1}), lambda: store.set_meta("k", 1)):
            with pytest.raises(StoreError) as info:
                write()
            assert "another process has held a write transaction" in str(info.value)
            assert "rollback" not in str(info.value)
        other.execute("ROLLBACK")
        assert store.add_trial({"a": 1}) == 1  # the store works again once the other process lets go
    finally:
        other.close()
        store.close()


def test_experiment_dir_that_is_a_file_or_read_only_is_a_clear_error(tmp_path, mounts):
    (tmp_path / "file").write_text("x")
    with pytest.raises(StoreError, match="is a file, not a folder"):
        ExperimentStore.create(tmp_path / "file", "exp1")
    (tmp_path / "ro").mkdir()
    mounts.read_only(tmp_path / "ro")
    with pytest.raises(StoreError, match=r"cannot create an experiment in .*ro'.*experiment_dir"):
        ExperimentStore.create(tmp_path / "ro", "exp1")


def test_second_writer_is_refused(tmp_path):
    first = ExperimentStore.create(tmp_path, "exp1")
    try:
        with pytest.raises(ExperimentLockedError, match=f"pid {os.getpid()}"):
            ExperimentStore.open(tmp_path, "exp1")
        with ExperimentStore.open(tmp_path, "exp1", readonly=True) as reader:  # readers are welcome
            assert reader.count_trials() == 0
    finally:
        first.close()
    ExperimentStore.open(tmp_path, "exp1").close()
