"""What the dashboard shows, as JSON-ready data, read from experiment stores without ever writing to them.

Every read goes through :class:`~nascore.experiment.store.ExperimentStore` opened ``readonly``: a
running experiment is read with ``mode=ro`` (each query is its own short read transaction; no lock is
held between queries, so the experiment's writes never wait), a stopped one ``immutable`` (read-only
media work), a killed one's leftover WAL from a private copy. Nothing here writes a file.

Live updates fetch only what changed (:meth:`DashboardData.changes`), with two cursors the page
keeps: the highest trial id it has and the highest ``metrics`` row it has seen. It also sends the
ids of its trials that may still change (waiting, running, interrupted); the answer holds the new
trials, those, and the trials with new metric rows, each with its intermediate results. So a refresh
of a 10,000-trial experiment reads a few rows.
"""

from __future__ import annotations

import contextlib
import json
import math
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from nascore.errors import ExperimentNotFoundError, NascoreError, StoreError
from nascore.experiment.lock import lock_holder
from nascore.experiment.report import experiments_summary
from nascore.experiment.store import DB_NAME, ExperimentStore, liveness
from nascore.record import TrialRecord

__all__ = [
    "DashboardData", "OPEN_STATUSES", "ARCHITECTURE_HISTORY_FILE", "LOG_TAIL_LINES", "trial_json", "finite",
]

#: Statuses of trials that may still change (an INTERRUPTED trial runs again on resume).
OPEN_STATUSES = frozenset({"WAITING", "RUNNING", "INTERRUPTED"})
#: The one-shot strategies' record of the architecture weights over training, in the strategy folder.
ARCHITECTURE_HISTORY_FILE = "architecture_weights.json"
#: How many lines of a failed trial's log the trial view shows.
LOG_TAIL_LINES = 40
_ERROR_SUMMARY = 300
_COLUMNS = "id, sample, status, metric, metrics, error, submitted, started, ended, attempt"
_CHUNK = 500


def finite(value: Any) -> Any:
    """``value`` with every float that is not finite replaced by ``None`` (JSON has no NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def trial_json(t: TrialRecord, *, full_error: bool = False) -> dict[str, Any]:
    """One trial as the page reads it (the error's first line only unless ``full_error``)."""
    error = t.error
    if error and not full_error:
        error = error.strip().splitlines()[0][:_ERROR_SUMMARY] if error.strip() else error
    return {
        "id": t.id, "status": t.status.value, "metric": finite(t.metric), "metrics": finite(t.metrics),
        "sample": t.sample, "submitted": t.submitted, "started": t.started, "ended": t.ended,
        "duration": t.duration, "attempt": t.attempt, "error": error,
    }


def _status(meta: dict[str, Any], alive: bool | None) -> str:
    status = meta.get("status", "UNKNOWN")
    return "DEAD" if status == "RUNNING" and alive is False else status


class DashboardData:
    """Read-only views of the experiments in ``experiment_dir``. Thread-safe."""

    def __init__(self, experiment_dir: str | Path) -> None:
        self.experiment_dir = Path(experiment_dir).expanduser()
        self._lock = threading.Lock()
        self._stores: dict[str, tuple[tuple[Any, ...], ExperimentStore]] = {}
        self._code_spaces: dict[str, Any] = {}

    # --- opening ---------------------------------------------------------------------------------

    def _root(self, experiment_id: str) -> Path:
        if not experiment_id or "/" in experiment_id or "\\" in experiment_id or experiment_id.startswith("."):
            raise ExperimentNotFoundError(f"no experiment {experiment_id!r} in {str(self.experiment_dir)!r}")
        return self.experiment_dir / experiment_id

    @staticmethod
    def _signature(root: Path) -> tuple[Any, ...] | None:
        """What identifies a stopped store's content (``None`` while a writer holds it: never cached then)."""
        if lock_holder(root) is not None:
            return None
        parts: list[Any] = []
        for name in (DB_NAME, DB_NAME + "-wal"):
            try:
                st = (root / name).stat()
                parts.append((st.st_mtime_ns, st.st_size, st.st_ino))
            except OSError:
                parts.append(None)
        return tuple(parts)

    @contextlib.contextmanager
    def store(self, experiment_id: str) -> Iterator[ExperimentStore]:
        """The experiment's store, read-only. A stopped experiment's store stays open between calls (its
        files cannot change without a writer); a running one's is opened for the call and closed after."""
        root = self._root(experiment_id)
        signature = self._signature(root)
        if signature is None:
            with self._lock:
                self._drop(experiment_id)
            with ExperimentStore.open(self.experiment_dir, experiment_id, readonly=True) as store:
                yield store
            return
        with self._lock:
            cached = self._stores.get(experiment_id)
            if cached is None or cached[0] != signature:
                self._drop(experiment_id)
                cached = (signature, ExperimentStore.open(self.experiment_dir, experiment_id, readonly=True))
                self._stores[experiment_id] = cached
        yield cached[1]

    def _drop(self, experiment_id: str) -> None:
        cached = self._stores.pop(experiment_id, None)
        if cached is not None:
            cached[1].close()

    def close(self) -> None:
        with self._lock:
            for experiment_id in list(self._stores):
                self._drop(experiment_id)

    # --- views -----------------------------------------------------------------------------------

    def experiments(self) -> list[dict[str, Any]]:
        """One summary per experiment (as ``nascore list --json``), newest first."""
        if not self.experiment_dir.is_dir():
            return []
        rows = experiments_summary(self.experiment_dir)
        return list(reversed(rows))

    def experiment(self, experiment_id: str) -> dict[str, Any]:
        """The experiment's config, status, budget, strategy, search space and trial counts."""
        with self.store(experiment_id) as store:
            meta = store.meta()
            counts = store.status_counts()
            root = store.root
        return self._experiment_json(experiment_id, root, meta, counts)

    def _experiment_json(self, experiment_id: str, root: Path, meta: dict[str, Any], counts: dict[str, int]) -> dict[str, Any]:
        state = liveness(root, meta)
        config = meta.get("config") or {}
        strategy_state = meta.get("strategy_state") or {}
        exported = strategy_state.get("exported") if isinstance(strategy_state, dict) else None
        return {
            "id": experiment_id,
            "name": meta.get("experiment_name"),
            "path": str(root),
            "status": _status(meta, state["alive"]),
            "holder": state["holder"],
            "heartbeat": state["heartbeat"],
            "created": meta.get("created"),
            "updated": meta.get("updated"),
            "elapsed": meta.get("elapsed"),
            "now": time.time(),
            "config": config,
            "budget": {"max_trials": config.get("max_trials"), "max_duration": config.get("max_duration")},
            "optimize_mode": config.get("optimize_mode") or "maximize",
            "format": config.get("format"),
            "strategy": meta.get("strategy"),
            "space": meta.get("space") or [],
            "counts": counts,
            "exported": exported,
            "architecture_history": (root / "strategy" / ARCHITECTURE_HISTORY_FILE).is_file(),
        }

    def changes(self, experiment_id: str, since_trial: int = 0, since_metric: int = 0,
                open_ids: Iterable[int] = ()) -> dict[str, Any]:
        """What changed since the cursors ``(since_trial, since_metric)`` (``0, 0``: everything).

        ``{"trials": [...], "intermediates": {id: [values]}, "cursor": {"trial", "metric"}, "experiment": {...}}``:
        trials newer than ``since_trial``, those of ``open_ids`` (the page's trials that may still change) and
        those with metric rows after ``since_metric``, each with its intermediate results in full.
        """
        since_trial, since_metric = int(since_trial), int(since_metric)
        open_ids = sorted({int(i) for i in open_ids if int(i) <= since_trial})
        with self.store(experiment_id) as store:
            top_metric = int(store._read("SELECT COALESCE(MAX(rowid), 0) FROM metrics")[0][0])
            touched: set[int] = set(open_ids)
            if top_metric > since_metric and since_trial > 0:
                touched.update(r[0] for r in store._read(
                    "SELECT DISTINCT trial_id FROM metrics WHERE rowid > ? AND trial_id <= ?", (since_metric, since_trial)))
            rows = store._read(f"SELECT {_COLUMNS} FROM trials WHERE id > ? ORDER BY id", (since_trial,))
            ids = sorted(touched)
            for start in range(0, len(ids), _CHUNK):
                chunk = ids[start:start + _CHUNK]
                rows += store._read(f"SELECT {_COLUMNS} FROM trials WHERE id IN ({','.join('?' * len(chunk))})", tuple(chunk))
            records = [store._record(row) for row in rows]
            returned = [r.id for r in records]
            intermediates: dict[int, list[Any]] = {i: [] for i in returned}
            if since_trial == 0:
                inter_rows = store._read("SELECT trial_id, value FROM metrics WHERE kind='intermediate' ORDER BY trial_id, seq")
            else:
                inter_rows = []
                for start in range(0, len(returned), _CHUNK):
                    chunk = returned[start:start + _CHUNK]
                    inter_rows += store._read(
                        f"SELECT trial_id, value FROM metrics WHERE kind='intermediate' AND trial_id IN "
                        f"({','.join('?' * len(chunk))}) ORDER BY trial_id, seq", tuple(chunk))
            for trial_id, value in inter_rows:
                if trial_id in intermediates:
                    intermediates[trial_id].append(finite(value))
            meta = store.meta()
            counts = store.status_counts()
            root = store.root
        new_top = max([since_trial, *(r.id for r in records)])
        return {
            "trials": [trial_json(r) for r in sorted(records, key=lambda r: r.id)],
            "intermediates": {str(k): v for k, v in intermediates.items() if v},
            "cursor": {"trial": new_top, "metric": top_metric},
            "experiment": self._experiment_json(experiment_id, root, meta, counts),
        }

    def trial(self, experiment_id: str, trial_id: int) -> dict[str, Any]:
        """One trial in full: its record with the whole error, every metric event and the end of its log."""
        with self.store(experiment_id) as store:
            record = store.trial(int(trial_id))
            events = [
                {"kind": kind, "value": finite(value), "payload": finite(payload)}
                for kind, value, payload in store.metric_events(int(trial_id))
            ]
            log_path = store.trial_dir(int(trial_id)) / "trial.log"
            fmt = (store.get_meta("config") or {}).get("format")
        result = trial_json(record, full_error=True)
        result["intermediates"] = [finite(v) for v in record.intermediates]
        result["events"] = events
        result["log_tail"] = _tail(log_path, LOG_TAIL_LINES)
        result["log_path"] = str(log_path) if log_path.is_file() else None
        result["code_available"] = fmt == "graph"
        return result

    def oneshot(self, experiment_id: str) -> dict[str, Any]:
        """The architecture weights over training (one-shot strategies that have them) and the exported architectures."""
        root = self._root(experiment_id)
        detail = self.experiment(experiment_id)
        history = None
        path = root / "strategy" / ARCHITECTURE_HISTORY_FILE
        if path.is_file():
            try:
                history = json.loads(path.read_text())
            except (OSError, ValueError) as exc:
                history = {"error": f"cannot read {path}: {exc}"}
        return {"history": history, "exported": detail["exported"], "strategy": detail["strategy"]}

    def code(self, experiment_id: str, trial_id: int) -> dict[str, Any]:
        """The generated code of a graph-format trial's architecture (``{"code"}``, or ``{"error"}`` saying why not).

        The space is rebuilt from the store (it must be importable, as for ``Experiment.view``) and kept for
        the next trial of the experiment; building it imports the plugins and torch.
        """
        with self.store(experiment_id) as store:
            sample = store.trial(int(trial_id)).sample
            fmt = (store.get_meta("config") or {}).get("format")
        if fmt != "graph":
            return {"error": f"the experiment's format is {fmt!r}: only the graph format generates code"}
        try:
            space = self._code_space(experiment_id)
            from nascore.experiment.space import SearchSpace, model_sample

            model_space = space.model_space if isinstance(space, SearchSpace) else space
            return {"code": model_space.freeze(model_sample(space, sample)).to_code()}
        except (NascoreError, NotImplementedError, ImportError) as exc:
            return {"error": f"cannot generate the code of trial {trial_id}: {exc}"}

    def _code_space(self, experiment_id: str) -> Any:
        with self._lock:
            space = self._code_spaces.get(experiment_id)
        if space is None:
            from nascore.experiment import Experiment

            view = Experiment.view(experiment_id, experiment_dir=self.experiment_dir)
            try:
                space = view.executable_space()
            finally:
                view.close()
            with self._lock:
                self._code_spaces[experiment_id] = space
        return space

    def snapshot(self, experiment_id: str, *, code_limit: int = 20) -> dict[str, Any]:
        """Everything the page shows of one experiment, for the self-contained HTML report.

        Includes every trial, the full error and log tail of failed trials, the architecture weights
        and, for a graph-format experiment, the generated code of the ``code_limit`` best trials.
        """
        changes = self.changes(experiment_id)
        experiment = changes["experiment"]
        details: dict[str, Any] = {}
        with self.store(experiment_id) as store:
            for t in changes["trials"]:
                if t["status"] == "FAILED":
                    record = store.trial(t["id"])
                    details[str(t["id"])] = {
                        "error": record.error, "log_tail": _tail(store.trial_dir(t["id"]) / "trial.log", LOG_TAIL_LINES),
                    }
        code: dict[str, Any] = {}
        if experiment["format"] == "graph" and code_limit > 0:
            maximize = experiment["optimize_mode"] != "minimize"
            done = [t for t in changes["trials"] if t["status"] == "SUCCEEDED" and t["metric"] is not None]
            done.sort(key=lambda t: t["metric"], reverse=maximize)
            for t in done[:code_limit]:
                code[str(t["id"])] = self.code(experiment_id, t["id"])
        summaries = [s for s in self.experiments() if s.get("id") == experiment_id]
        return {
            "experiments": summaries, "experiment": experiment, "changes": changes, "details": details,
            "code": code, "oneshot": self.oneshot(experiment_id), "generated": time.time(),
        }


def _tail(path: Path, lines: int) -> str | None:
    """The last ``lines`` lines of the text file ``path`` (``None`` if there is none), read without writing."""
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - 64 * 1024))
            data = f.read()
    except OSError:
        return None
    return "\n".join(data.decode("utf-8", "replace").splitlines()[-lines:])


def check_experiment_dir(experiment_dir: Path) -> None:
    """A :class:`~nascore.errors.StoreError` when ``experiment_dir`` is not a readable folder."""
    if not experiment_dir.is_dir():
        raise StoreError(f"no such folder: {experiment_dir} (pass --experiment-dir DIR: the folder experiments are stored in)")
