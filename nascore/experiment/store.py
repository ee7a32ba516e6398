"""The experiment store: one SQLite database per experiment.

Layout: ``<experiment_dir>/<experiment id>/experiment.db`` next to ``trials/<trial id>/`` folders
for logs and ``writer.lock`` (:mod:`nascore.experiment.lock`). Every state change of a trial is
committed before it is acted on, so a killed experiment resumes without losing or repeating finished
trials. Nothing in the store is a pickle: samples, metrics, the configuration and strategy state are
JSON.

How a store survives its worst day:

- *One writer.* A store opened for writing holds the experiment's exclusive lock; a second writer is
  refused with a message naming the holder. The OS releases the lock when the process dies.
- *Atomic creation.* A new experiment is built completely (schema, meta, configuration) in a hidden
  folder, then renamed into place: after any kill its id either does not exist or is whole.
- *Clear write errors.* A failed write names the file, the cause (disk full, read-only folder, another
  process holding a write transaction past the busy timeout) and the fix; a failed transaction is
  rolled back without hiding the real error.
- *Damaged stores are refused.* A broken row, a truncated file or a store from a newer nascore raises
  :class:`~nascore.errors.StoreDamagedError` naming the file and the row; nascore never opens for
  writing a store it could not read.
- *Readers never write.* While it runs, the store is in WAL mode; when its writer closes it, it is
  checkpointed into the one file. Readers of a stopped experiment open it ``immutable`` (read-only
  media work); readers of a running one open it ``mode=ro``; a killed experiment's leftover WAL is read
  from a private copy.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import secrets
import shutil
import sqlite3
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from nascore.engine import TrialStatus
from nascore.errors import ExperimentNotFoundError, ReadOnlyError, StoreDamagedError, StoreError
from nascore.experiment.lock import WriterLock, lock_holder
from nascore.record import TrialRecord
from nascore.space import Sample

__all__ = ["ExperimentStore", "DB_NAME", "SCHEMA_VERSION", "HEARTBEAT_INTERVAL", "list_experiments", "liveness"]

DB_NAME = "experiment.db"
SCHEMA_VERSION = 1
#: Seconds between the heartbeats a running experiment records (``meta.heartbeat``).
HEARTBEAT_INTERVAL = 10.0
#: How long a write waits for another process's write transaction before it fails.
BUSY_TIMEOUT_MS = 5000
_CREATING = ".creating-"

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE trials (
    id INTEGER PRIMARY KEY,
    sample TEXT NOT NULL,
    status TEXT NOT NULL,
    metric REAL,
    metrics TEXT,
    error TEXT,
    submitted REAL NOT NULL,
    started REAL,
    ended REAL,
    attempt INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE metrics (
    trial_id INTEGER NOT NULL REFERENCES trials(id),
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL,
    value REAL,
    payload TEXT NOT NULL,
    time REAL NOT NULL
);
CREATE INDEX metrics_by_trial ON metrics (trial_id, seq);
"""

_RECOVERY = (
    "nascore will not write to it. Keep a copy of the file before trying to repair it (the sqlite3 shell's "
    "`.recover`); each trial's output is still in its log under {trials}"
)


def _dumps(value: Any) -> str:
    return json.dumps(value, default=_json_default, allow_nan=True)


def _json_default(value: Any) -> Any:
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item"):
        return value.item()
    return repr(value)


class ExperimentStore:
    """Read and write one experiment's database. Thread-safe (engines report from their threads).

    Opened for writing (the default), it holds the experiment's writer lock until :meth:`close`. Use
    :meth:`create` for a new experiment and :meth:`open` for an existing one.
    """

    def __init__(self, path: Path, *, readonly: bool = False, _lock: WriterLock | None = None) -> None:
        self.path = Path(path)
        self.root = self.path.parent
        self.readonly = readonly
        self._lock = threading.RLock()
        self._writer: WriterLock | None = None
        self._snapshot: Path | None = None
        self._immutable = False
        self._metric_seq: dict[int, int] = {}
        if readonly:
            self._conn = self._connect_readonly()
        else:
            self._writer = _lock or WriterLock(self.root)
            self._writer.acquire()
            try:
                self._conn = self._connect(sqlite3.connect, str(self.path), check_same_thread=False, isolation_level=None)
                self._check_schema()
                self._execute("PRAGMA journal_mode=WAL")
                self._execute("PRAGMA synchronous=NORMAL")
            except BaseException:
                self._release()
                raise

    def _connect(self, connect: Any, *args: Any, **kwargs: Any) -> sqlite3.Connection:
        try:
            conn = connect(*args, **kwargs)
            conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            return conn
        except sqlite3.Error as exc:
            raise self._error("open", exc) from None

    def _connect_readonly(self) -> sqlite3.Connection:
        """A connection that never writes to the store's files (see the module docstring)."""
        uri = self.path.absolute().as_uri()
        wal = self.path.with_name(self.path.name + "-wal")
        if lock_holder(self.root) is not None:
            conn = self._connect(sqlite3.connect, f"{uri}?mode=ro", uri=True, check_same_thread=False)
        elif not wal.exists() or wal.stat().st_size == 0:
            conn = self._connect(sqlite3.connect, f"{uri}?immutable=1", uri=True, check_same_thread=False)
            self._immutable = True
        else:  # a killed run left a WAL: read it from a private copy, so the store stays untouched
            self._snapshot = Path(tempfile.mkdtemp(prefix="nascore-read-"))
            copy = self._snapshot / DB_NAME
            shutil.copyfile(self.path, copy)
            shutil.copyfile(wal, copy.with_name(copy.name + "-wal"))
            conn = self._connect(sqlite3.connect, str(copy), check_same_thread=False)
        self._conn = conn
        try:
            self._check_schema()
        except BaseException:
            self._discard_connection()
            raise
        return conn

    def _check_schema(self) -> None:
        try:
            rows = self._conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchall()
        except sqlite3.Error as exc:
            raise self._error("read", exc) from None
        version = _load_json(rows[0][0], self.path, "meta row 'schema_version'") if rows else None
        if not isinstance(version, int):
            raise StoreDamagedError(
                f"the experiment store {str(self.path)!r} has no valid schema version (meta 'schema_version' is "
                f"{version!r}); it is damaged or was not made by nascore. " + _RECOVERY.format(trials=self.root / "trials")
            )
        if version > SCHEMA_VERSION:
            raise StoreDamagedError(
                f"the experiment store {str(self.path)!r} was written by a newer nascore (store schema version "
                f"{version}; this nascore reads versions up to {SCHEMA_VERSION}): upgrade nascore to open it"
            )

    # --- opening ----------------------------------------------------------------------------------

    @classmethod
    def create(cls, experiment_dir: Path, experiment_id: str, meta: dict[str, Any] | None = None) -> ExperimentStore:
        """Create the experiment ``experiment_id`` whole, with ``meta``, and open it for writing.

        The store is built in a hidden folder and renamed into place, so a kill at any moment leaves
        either no experiment of that id or a complete one. The folder is readable by its owner only.
        """
        experiment_dir = Path(experiment_dir)
        root = experiment_dir / experiment_id
        if root.exists():
            raise StoreError(
                f"experiment {experiment_id!r} already exists in {str(experiment_dir)!r}; "
                "use Experiment.resume() to continue it"
            )
        _make_experiment_dir(experiment_dir)
        _remove_abandoned_creations(experiment_dir, experiment_id)
        staging = experiment_dir / f"{_CREATING}{experiment_id}-{secrets.token_hex(4)}"
        try:
            staging.mkdir(mode=0o700)
        except OSError as exc:
            raise StoreError(_folder_problem(experiment_dir, exc)) from None
        lock = WriterLock(staging)
        try:
            lock.acquire()
            _write_new_database(staging / DB_NAME, {
                **(meta or {}),
                "schema_version": SCHEMA_VERSION,
                "experiment_id": experiment_id,
                "created": time.time(),
            })
            os.rename(staging, root)
        except BaseException as exc:
            lock.release()
            shutil.rmtree(staging, ignore_errors=True)
            if isinstance(exc, OSError):
                if root.exists():
                    raise StoreError(
                        f"experiment {experiment_id!r} was created in {str(experiment_dir)!r} by another process "
                        "at the same moment; use Experiment.resume() to continue it"
                    ) from None
                raise StoreError(_folder_problem(experiment_dir, exc)) from None
            raise
        lock.path = root / lock.path.name
        return cls(root / DB_NAME, _lock=lock)

    @classmethod
    def open(cls, experiment_dir: Path, experiment_id: str, *, readonly: bool = False) -> ExperimentStore:
        """Open an existing experiment, for writing (taking its lock) or ``readonly`` (never writes)."""
        path = Path(experiment_dir) / experiment_id / DB_NAME
        if not path.exists():
            raise ExperimentNotFoundError(
                f"no experiment {experiment_id!r} in {str(experiment_dir)!r} "
                "(`nascore list --experiment-dir DIR` shows the experiments there)"
            )
        return cls(path, readonly=readonly)

    def close(self) -> None:
        """Close the store; a writer checkpoints it into one file and releases the experiment's lock."""
        with self._lock:
            if self._writer is not None and self._writer.held:
                with contextlib.suppress(sqlite3.Error):  # a store that failed keeps its WAL: readers copy it
                    self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                    self._conn.execute("PRAGMA journal_mode=DELETE")
            self._discard_connection()
            self._release()

    def _discard_connection(self) -> None:
        with contextlib.suppress(sqlite3.Error, AttributeError):
            self._conn.close()
        if self._snapshot is not None:
            shutil.rmtree(self._snapshot, ignore_errors=True)
            self._snapshot = None

    def _release(self) -> None:
        if self._writer is not None:
            self._writer.release()

    def __enter__(self) -> ExperimentStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def trial_dir(self, trial_id: int) -> Path:
        return self.root / "trials" / str(trial_id)

    # --- writing ----------------------------------------------------------------------------------

    def _execute(self, sql: str, params: tuple[Any, ...] = ()) -> sqlite3.Cursor:
        if self.readonly:
            raise ReadOnlyError(f"the experiment store {str(self.path)!r} is open read-only")
        with self._lock:
            try:
                return self._conn.execute(sql, params)
            except sqlite3.Error as exc:
                raise self._error("write to", exc) from None

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        """One write transaction; on any error it is rolled back (if SQLite has not already) and the error kept."""
        with self._lock:
            self._execute("BEGIN IMMEDIATE")
            try:
                yield
                self._execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        self._conn.execute("ROLLBACK")
                raise

    def _error(self, action: str, exc: sqlite3.Error) -> StoreError:
        """A StoreError for ``exc`` that names the file, the cause in words and the fix."""
        text = str(exc)
        lowered = text.lower()
        where = repr(str(self.path))
        if "locked" in lowered or "busy" in lowered:
            return StoreError(
                f"cannot {action} the experiment store {where}: another process has held a write transaction "
                f"on it for longer than {BUSY_TIMEOUT_MS / 1000:g} s ({text}); close that process (a sqlite3 shell, "
                "a backup or sync tool) and resume the experiment"
            )
        if "full" in lowered:
            return StoreError(
                f"cannot {action} the experiment store {where}: the disk holding {str(self.root)!r} is full ({text}); "
                "free space and resume the experiment"
            )
        if "readonly" in lowered or "read-only" in lowered:
            return StoreError(
                f"cannot {action} the experiment store {where}: the file or its folder {str(self.root)!r} is "
                f"read-only ({text}); make it writable and resume the experiment"
            )
        if "not a database" in lowered or "malformed" in lowered or "no such table" in lowered:
            return StoreDamagedError(
                f"the experiment store {where} is damaged ({text}). " + _RECOVERY.format(trials=self.root / "trials")
            )
        if "unable to open" in lowered:
            return StoreError(f"cannot {action} the experiment store {where}: {text} (is its folder readable?)")
        return StoreError(f"cannot {action} the experiment store {where}: {text}")

    def set_meta(self, key: str, value: Any) -> None:
        self._execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, _dumps(value)))

    def add_trial(self, sample: Sample, *, strategy_state: dict[str, Any] | None = None) -> int:
        """Record a new WAITING trial (and the strategy's state after proposing it) in one transaction."""
        with self._transaction():
            cursor = self._execute(
                "INSERT INTO trials (sample, status, submitted) VALUES (?, ?, ?)",
                (_dumps(sample), TrialStatus.WAITING.value, time.time()),
            )
            if strategy_state is not None:
                self._execute(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES ('strategy_state', ?)", (_dumps(strategy_state),)
                )
        return int(cursor.lastrowid)  # type: ignore[arg-type]

    def restart_trial(self, trial_id: int) -> None:
        """Put an interrupted trial back to WAITING for another attempt (on resume)."""
        with self._transaction():
            self._execute(
                "UPDATE trials SET status=?, started=NULL, ended=NULL, error=NULL, metric=NULL, metrics=NULL, "
                "attempt=attempt+1 WHERE id=?",
                (TrialStatus.WAITING.value, trial_id),
            )
            self._execute("DELETE FROM metrics WHERE trial_id=?", (trial_id,))
        self._metric_seq.pop(trial_id, None)

    def set_status(self, trial_id: int, status: TrialStatus, *, error: str | None = None, at: float | None = None) -> None:
        """Record a trial's new status. A FAILED trial keeps no metric (a failed trial has no result)."""
        at = time.time() if at is None else at
        if status is TrialStatus.RUNNING:
            self._execute("UPDATE trials SET status=?, started=? WHERE id=?", (status.value, at, trial_id))
        elif status is TrialStatus.SUCCEEDED:
            self._execute("UPDATE trials SET status=?, ended=?, error=? WHERE id=?", (status.value, at, error, trial_id))
        elif status in (TrialStatus.FAILED, TrialStatus.INTERRUPTED):
            self._execute(
                "UPDATE trials SET status=?, ended=?, error=?, metric=NULL, metrics=NULL WHERE id=?",
                (status.value, at, error, trial_id),
            )
        else:
            self._execute("UPDATE trials SET status=? WHERE id=?", (status.value, trial_id))

    def add_metric(self, trial_id: int, kind: str, value: float, payload: dict[str, Any], at: float | None = None) -> None:
        at = time.time() if at is None else at
        with self._lock:
            seq = self._metric_seq.get(trial_id, 0) + 1
            with self._transaction():
                self._execute(
                    "INSERT INTO metrics (trial_id, seq, kind, value, payload, time) VALUES (?, ?, ?, ?, ?, ?)",
                    (trial_id, seq, kind, value, _dumps(payload), at),
                )
                if kind == "final":
                    self._execute(
                        "UPDATE trials SET metric=?, metrics=? WHERE id=?",
                        (None if math.isnan(value) else value, _dumps(payload), trial_id),
                    )
            self._metric_seq[trial_id] = seq

    def interrupt_unfinished(self) -> list[int]:
        """Mark every WAITING or RUNNING trial INTERRUPTED; returns their ids."""
        ids = [t.id for t in self.trials() if not t.status.finished and t.status is not TrialStatus.INTERRUPTED]
        self.interrupt(ids, "the experiment stopped before the trial ended")
        return ids

    def interrupt(self, trial_ids: list[int], reason: str) -> None:
        """Mark these trials INTERRUPTED (whatever their state) with ``reason``: resume runs them again."""
        if not trial_ids:
            return
        with self._transaction():
            for trial_id in trial_ids:
                self.set_status(trial_id, TrialStatus.INTERRUPTED, error=reason)

    def beat(self) -> None:
        """Record that the experiment's process is alive (``meta.heartbeat``)."""
        self.set_meta("heartbeat", time.time())

    # --- reading ----------------------------------------------------------------------------------

    def _read(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return self._conn.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                if not (self._immutable and lock_holder(self.root) is not None):
                    raise self._error("read", exc) from None
            # A writer started after this reader opened the store as immutable: read it live instead.
            self._discard_connection()
            self._immutable = False
            self._conn = self._connect_readonly()
            try:
                return self._conn.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise self._error("read", exc) from None

    def get_meta(self, key: str, default: Any = None) -> Any:
        rows = self._read("SELECT value FROM meta WHERE key=?", (key,))
        return _load_json(rows[0][0], self.path, f"meta row {key!r}") if rows else default

    def meta(self) -> dict[str, Any]:
        return {key: _load_json(value, self.path, f"meta row {key!r}") for key, value in self._read("SELECT key, value FROM meta")}

    def trials(self, *, with_intermediates: bool = False) -> list[TrialRecord]:
        rows = self._read(
            "SELECT id, sample, status, metric, metrics, error, submitted, started, ended, attempt FROM trials ORDER BY id"
        )
        records = [self._record(row) for row in rows]
        if with_intermediates:
            by_id = {r.id: r for r in records}
            for trial_id, value in self._read(
                "SELECT trial_id, value FROM metrics WHERE kind='intermediate' ORDER BY trial_id, seq"
            ):
                if trial_id in by_id:
                    by_id[trial_id].intermediates.append(value)
        return records

    def trial(self, trial_id: int) -> TrialRecord:
        rows = self._read(
            "SELECT id, sample, status, metric, metrics, error, submitted, started, ended, attempt FROM trials WHERE id=?",
            (trial_id,),
        )
        if not rows:
            raise StoreError(f"no trial {trial_id} in {str(self.path)!r}")
        record = self._record(rows[0])
        record.intermediates = [
            v for (v,) in self._read("SELECT value FROM metrics WHERE trial_id=? AND kind='intermediate' ORDER BY seq", (trial_id,))
        ]
        return record

    def metric_events(self, trial_id: int) -> Iterator[tuple[str, float, dict[str, Any]]]:
        for kind, value, payload in self._read(
            "SELECT kind, value, payload FROM metrics WHERE trial_id=? ORDER BY seq", (trial_id,)
        ):
            yield kind, value, _load_json(payload, self.path, f"metrics row of trial {trial_id}")

    def check_rows(self) -> None:
        """Raise :class:`~nascore.errors.StoreDamagedError` naming the first row that does not read back.

        Checks every JSON column of every row in SQLite itself (``json_valid``), fast even for 10,000 trials.
        """
        checks = [
            ("SELECT key FROM meta WHERE NOT json_valid(value) LIMIT 1", "meta row {!r}", "value"),
            ("SELECT id FROM trials WHERE NOT json_valid(sample) LIMIT 1", "trials row id={}", "sample"),
            ("SELECT id FROM trials WHERE metrics IS NOT NULL AND NOT json_valid(metrics) LIMIT 1", "trials row id={}", "metrics"),
            ("SELECT trial_id FROM metrics WHERE NOT json_valid(payload) LIMIT 1", "metrics row of trial {}", "payload"),
        ]
        for sql, where, column in checks:
            rows = self._read(sql)
            if rows:
                raise StoreDamagedError(
                    f"the experiment store {str(self.path)!r} is damaged: {where.format(rows[0][0])}, column {column} "
                    "is not valid JSON. " + _RECOVERY.format(trials=self.root / "trials")
                )
        statuses = {status for (status,) in self._read("SELECT DISTINCT status FROM trials")}
        unknown = sorted(statuses - {s.value for s in TrialStatus})
        if unknown:
            raise StoreDamagedError(
                f"the experiment store {str(self.path)!r} is damaged: trials hold the unknown status {unknown[0]!r}. "
                + _RECOVERY.format(trials=self.root / "trials")
            )

    def count_trials(self) -> int:
        return int(self._read("SELECT COUNT(*) FROM trials")[0][0])

    def status_counts(self) -> dict[str, int]:
        return dict(self._read("SELECT status, COUNT(*) FROM trials GROUP BY status"))  # type: ignore[arg-type]

    def _record(self, row: tuple[Any, ...]) -> TrialRecord:
        trial_id, sample, status, metric, metrics, error, submitted, started, ended, attempt = row
        where = f"trials row id={trial_id}"
        try:
            status = TrialStatus(status)
        except ValueError:
            raise StoreDamagedError(
                f"the experiment store {str(self.path)!r} is damaged: {where} has the unknown status {status!r}. "
                + _RECOVERY.format(trials=self.root / "trials")
            ) from None
        return TrialRecord(
            id=trial_id,
            sample=_load_json(sample, self.path, f"{where}, column sample"),
            status=status,
            metric=metric,
            metrics=_load_json(metrics, self.path, f"{where}, column metrics") if metrics else None,
            error=error,
            submitted=submitted,
            started=started,
            ended=ended,
            attempt=attempt,
        )


def _load_json(text: Any, path: Path, where: str) -> Any:
    try:
        return json.loads(text)
    except (TypeError, ValueError) as exc:
        raise StoreDamagedError(
            f"the experiment store {str(path)!r} is damaged: {where} is not valid JSON ({exc}). "
            + _RECOVERY.format(trials=path.parent / "trials")
        ) from None


def _write_new_database(path: Path, meta: dict[str, Any]) -> None:
    """Schema and meta in one transaction, synced to disk; readable by the owner only."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("BEGIN IMMEDIATE")
        for statement in filter(str.strip, _SCHEMA.split(";")):
            conn.execute(statement)
        conn.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", [(k, _dumps(v)) for k, v in meta.items()])
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    except sqlite3.Error as exc:
        raise OSError(f"cannot write {path}: {exc}") from exc
    finally:
        conn.close()


def _make_experiment_dir(experiment_dir: Path) -> None:
    if experiment_dir.exists() and not experiment_dir.is_dir():
        raise StoreError(
            f"experiment_dir {str(experiment_dir)!r} is a file, not a folder; set experiment_dir "
            "(or $NASCORE_EXPERIMENT_DIR) to a folder"
        )
    try:
        experiment_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(_folder_problem(experiment_dir, exc)) from None


def _folder_problem(experiment_dir: Path, exc: OSError) -> str:
    return (
        f"cannot create an experiment in {str(experiment_dir)!r}: {exc.strerror or exc}; set experiment_dir "
        "(or $NASCORE_EXPERIMENT_DIR) to a folder you can write to"
    )


def _remove_abandoned_creations(experiment_dir: Path, experiment_id: str) -> None:
    """Staging folders left by processes killed while creating an experiment (nobody holds their lock).

    Those of ``experiment_id`` go at once; others once they are a minute old, so that a creation under
    way in another process (between making its folder and locking it) is never disturbed.
    """
    now = time.time()
    for staging in experiment_dir.glob(f"{_CREATING}*"):
        ours = staging.name.startswith(f"{_CREATING}{experiment_id}-")
        try:
            old = now - staging.stat().st_mtime > 60
        except OSError:
            continue
        if staging.is_dir() and (ours or old) and lock_holder(staging) is None:
            shutil.rmtree(staging, ignore_errors=True)


def liveness(root: Path, meta: dict[str, Any]) -> dict[str, Any]:
    """Whether the experiment in ``root`` is really running.

    ``{"alive": bool | None, "holder": {...} | None, "heartbeat": float | None}``: alive when a process
    holds its writer lock; for an experiment recorded RUNNING that nobody holds, ``alive`` is False (it
    was killed or crashed); ``None`` when it is not recorded RUNNING.
    """
    holder = lock_holder(root)
    heartbeat = meta.get("heartbeat")
    if holder is not None:
        return {"alive": True, "holder": holder, "heartbeat": heartbeat}
    if meta.get("status") != "RUNNING":
        return {"alive": None, "holder": None, "heartbeat": heartbeat}
    if not (root / "writer.lock").exists():  # a store older than the lock: only the heartbeat can tell
        recent = heartbeat is not None and time.time() - heartbeat < 3 * HEARTBEAT_INTERVAL
        return {"alive": recent, "holder": None, "heartbeat": heartbeat}
    return {"alive": False, "holder": None, "heartbeat": heartbeat}


def list_experiments(experiment_dir: Path) -> list[dict[str, Any]]:
    """Summaries of the experiments stored in ``experiment_dir`` (read-only), oldest first.

    Each is the experiment's meta plus ``id``, ``trials`` (counts by status), ``best`` (the best metric
    of a successful trial) and ``liveness``; a store that cannot be read gives ``{"id", "error"}``.
    """
    experiment_dir = Path(experiment_dir)
    summaries: list[dict[str, Any]] = []
    if not experiment_dir.is_dir():
        return summaries
    for db in sorted(experiment_dir.glob(f"*/{DB_NAME}")):
        if db.parent.name.startswith("."):
            continue
        try:
            with ExperimentStore(db, readonly=True) as store:
                store.check_rows()
                meta = store.meta()
                mode = (meta.get("config") or {}).get("optimize_mode") or "maximize"
                best = store._read(
                    f"SELECT {'MAX' if mode == 'maximize' else 'MIN'}(metric) FROM trials WHERE status=?",
                    (TrialStatus.SUCCEEDED.value,),
                )[0][0]
                summaries.append({
                    **meta, "id": db.parent.name, "trials": store.status_counts(), "best": best,
                    "liveness": liveness(db.parent, meta),
                })
        except StoreError as exc:
            summaries.append({"id": db.parent.name, "error": str(exc)})
    summaries.sort(key=lambda s: s.get("created", 0))
    return summaries
