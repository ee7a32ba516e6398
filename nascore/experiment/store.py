"""The experiment store: one SQLite database (WAL mode) per experiment.

Layout: ``<experiment_dir>/<experiment id>/experiment.db`` next to ``trials/<trial id>/`` folders
for logs. Every state change of a trial is committed before it is acted on, so a killed experiment
resumes without losing or repeating finished trials. Nothing in the store is a pickle: samples,
metrics, the configuration and strategy state are JSON. A store opened read-only refuses writes.
"""

from __future__ import annotations

import json
import math
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from nascore.engine import TrialStatus
from nascore.errors import ExperimentNotFoundError, ReadOnlyError, StoreError
from nascore.record import TrialRecord
from nascore.space import Sample

__all__ = ["ExperimentStore", "DB_NAME", "list_experiments"]

DB_NAME = "experiment.db"
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS trials (
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
CREATE TABLE IF NOT EXISTS metrics (
    trial_id INTEGER NOT NULL REFERENCES trials(id),
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL,
    value REAL,
    payload TEXT NOT NULL,
    time REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS metrics_by_trial ON metrics (trial_id, seq);
"""


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
    """Read and write one experiment's database. Thread-safe (engines report from their threads)."""

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        self.path = Path(path)
        self.root = self.path.parent
        self.readonly = readonly
        self._lock = threading.RLock()
        try:
            if readonly:
                self._conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)
            else:
                self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
                self._conn.execute("PRAGMA journal_mode=WAL")
                self._conn.execute("PRAGMA synchronous=NORMAL")
                self._conn.executescript(_SCHEMA)
            self._conn.execute("PRAGMA busy_timeout=5000")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the experiment store {str(self.path)!r}: {exc}") from exc
        self._metric_seq: dict[int, int] = {}

    # --- opening ----------------------------------------------------------------------------------

    @classmethod
    def create(cls, experiment_dir: Path, experiment_id: str) -> ExperimentStore:
        root = Path(experiment_dir) / experiment_id
        if (root / DB_NAME).exists():
            raise StoreError(
                f"experiment {experiment_id!r} already exists in {str(experiment_dir)!r}; "
                "use Experiment.resume() to continue it"
            )
        root.mkdir(parents=True, exist_ok=True)
        store = cls(root / DB_NAME)
        store.set_meta("schema_version", SCHEMA_VERSION)
        store.set_meta("experiment_id", experiment_id)
        store.set_meta("created", time.time())
        return store

    @classmethod
    def open(cls, experiment_dir: Path, experiment_id: str, *, readonly: bool = False) -> ExperimentStore:
        path = Path(experiment_dir) / experiment_id / DB_NAME
        if not path.exists():
            raise ExperimentNotFoundError(
                f"no experiment {experiment_id!r} in {str(experiment_dir)!r} "
                "(`nascore list --experiment-dir DIR` shows the experiments there)"
            )
        return cls(path, readonly=readonly)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> ExperimentStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def trial_dir(self, trial_id: int) -> Path:
        return self.root / "trials" / str(trial_id)

    # --- writing ----------------------------------------------------------------------------------

    def _write(self, sql: str, params: tuple[Any, ...] = ()) -> sqlite3.Cursor:
        if self.readonly:
            raise ReadOnlyError(f"the experiment store {str(self.path)!r} is open read-only")
        with self._lock:
            try:
                return self._conn.execute(sql, params)
            except sqlite3.Error as exc:
                raise StoreError(f"cannot write to the experiment store {str(self.path)!r}: {exc}") from exc

    def set_meta(self, key: str, value: Any) -> None:
        self._write("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, _dumps(value)))

    def add_trial(self, sample: Sample, *, strategy_state: dict[str, Any] | None = None) -> int:
        """Record a new WAITING trial (and the strategy's state after proposing it) in one transaction."""
        with self._lock:
            self._write("BEGIN IMMEDIATE")
            try:
                cursor = self._write(
                    "INSERT INTO trials (sample, status, submitted) VALUES (?, ?, ?)",
                    (_dumps(sample), TrialStatus.WAITING.value, time.time()),
                )
                if strategy_state is not None:
                    self._write(
                        "INSERT OR REPLACE INTO meta (key, value) VALUES ('strategy_state', ?)", (_dumps(strategy_state),)
                    )
                self._write("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        return int(cursor.lastrowid)  # type: ignore[arg-type]

    def restart_trial(self, trial_id: int) -> None:
        """Put an interrupted trial back to WAITING for another attempt (on resume)."""
        self._write(
            "UPDATE trials SET status=?, started=NULL, ended=NULL, error=NULL, metric=NULL, metrics=NULL, "
            "attempt=attempt+1 WHERE id=?",
            (TrialStatus.WAITING.value, trial_id),
        )
        self._write("DELETE FROM metrics WHERE trial_id=?", (trial_id,))
        self._metric_seq.pop(trial_id, None)

    def set_status(self, trial_id: int, status: TrialStatus, *, error: str | None = None, at: float | None = None) -> None:
        at = time.time() if at is None else at
        if status is TrialStatus.RUNNING:
            self._write("UPDATE trials SET status=?, started=? WHERE id=?", (status.value, at, trial_id))
        elif status in (TrialStatus.SUCCEEDED, TrialStatus.FAILED, TrialStatus.INTERRUPTED):
            self._write("UPDATE trials SET status=?, ended=?, error=? WHERE id=?", (status.value, at, error, trial_id))
        else:
            self._write("UPDATE trials SET status=? WHERE id=?", (status.value, trial_id))

    def add_metric(self, trial_id: int, kind: str, value: float, payload: dict[str, Any], at: float | None = None) -> None:
        at = time.time() if at is None else at
        with self._lock:
            seq = self._metric_seq.get(trial_id, 0) + 1
            self._metric_seq[trial_id] = seq
            self._write("BEGIN IMMEDIATE")
            try:
                self._write(
                    "INSERT INTO metrics (trial_id, seq, kind, value, payload, time) VALUES (?, ?, ?, ?, ?, ?)",
                    (trial_id, seq, kind, value, _dumps(payload), at),
                )
                if kind == "final":
                    self._write(
                        "UPDATE trials SET metric=?, metrics=? WHERE id=?",
                        (None if math.isnan(value) else value, _dumps(payload), trial_id),
                    )
                self._write("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise

    def interrupt_unfinished(self) -> list[int]:
        """Mark every WAITING or RUNNING trial INTERRUPTED; returns their ids."""
        ids = [t.id for t in self.trials() if not t.status.finished and t.status is not TrialStatus.INTERRUPTED]
        for trial_id in ids:
            self.set_status(trial_id, TrialStatus.INTERRUPTED, error="the experiment stopped before the trial ended")
        return ids

    # --- reading ----------------------------------------------------------------------------------

    def _read(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return self._conn.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"cannot read the experiment store {str(self.path)!r}: {exc}") from exc

    def get_meta(self, key: str, default: Any = None) -> Any:
        rows = self._read("SELECT value FROM meta WHERE key=?", (key,))
        return json.loads(rows[0][0]) if rows else default

    def meta(self) -> dict[str, Any]:
        return {key: json.loads(value) for key, value in self._read("SELECT key, value FROM meta")}

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
            yield kind, value, json.loads(payload)

    def count_trials(self) -> int:
        return int(self._read("SELECT COUNT(*) FROM trials")[0][0])

    def status_counts(self) -> dict[str, int]:
        return dict(self._read("SELECT status, COUNT(*) FROM trials GROUP BY status"))  # type: ignore[arg-type]

    @staticmethod
    def _record(row: tuple[Any, ...]) -> TrialRecord:
        trial_id, sample, status, metric, metrics, error, submitted, started, ended, attempt = row
        return TrialRecord(
            id=trial_id,
            sample=json.loads(sample),
            status=TrialStatus(status),
            metric=metric,
            metrics=json.loads(metrics) if metrics else None,
            error=error,
            submitted=submitted,
            started=started,
            ended=ended,
            attempt=attempt,
        )


def list_experiments(experiment_dir: Path) -> list[dict[str, Any]]:
    """Summaries of the experiments stored in ``experiment_dir`` (read-only), oldest first."""
    experiment_dir = Path(experiment_dir)
    summaries = []
    if not experiment_dir.is_dir():
        return summaries
    for db in sorted(experiment_dir.glob(f"*/{DB_NAME}")):
        try:
            with ExperimentStore(db, readonly=True) as store:
                meta = store.meta()
                summaries.append({**meta, "id": db.parent.name, "trials": store.status_counts()})
        except StoreError as exc:
            summaries.append({"id": db.parent.name, "error": str(exc)})
    summaries.sort(key=lambda s: s.get("created", 0))
    return summaries
