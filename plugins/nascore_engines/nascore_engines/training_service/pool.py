"""A pool of warm worker processes on one machine: trials in, events out.

One worker per :class:`~nascore_engines.training_service.gpu.Seat`. A worker runs trial after trial
(``python -m nascore_engines.training_service.worker``); the pool sends it a trial only when it is
free, reads its events on a thread of its own and passes them on. A worker that dies mid-trial
(an exception in native code, ``os._exit``, a signal, the kernel's OOM killer) or that outruns
``trial_timeout`` (the pool kills it) is replaced, and its trial ends FAILED with the reason and
the last lines of its output. The same pool runs trials in the experiment process (the ``local``
service) and on every remote machine (inside the agent).

How a worker starts is ``worker_start``: ``"spawn"`` runs a new interpreter per worker (it imports
torch: about a second); ``"auto"`` (the local service) forks workers from a template process that
has imported torch and nascore already (:mod:`.template`: milliseconds per worker), and falls back to
``"spawn"``, with a log line, where no template can run; ``"fork"`` and ``"exec"`` ask for one kind
of template (tests).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs

from nascore.engine import TrialEvent, TrialStatus
from nascore.errors import EngineError
from nascore_engines.training_service import protocol
from nascore_engines.training_service.gpu import Seat
from nascore_engines.training_service.template import ForkedProcess, Template, TemplateError

__all__ = ["PoolTrial", "WorkerPool", "tail", "describe_exit", "WORKER_STARTS"]

_log = logging.getLogger(__name__)

#: Workers that die before they are ready this many times in a row break the pool (no endless respawning).
MAX_START_FAILURES = 3
#: Lines of a trial's output quoted in the error of a trial whose worker died.
TAIL_LINES = 30
#: How workers may start (see the module docstring).
WORKER_STARTS = ("spawn", "auto", "fork", "exec")

_Process = subprocess.Popen[bytes] | ForkedProcess


@attrs.define
class PoolTrial:
    """One trial for a pool: shipped model and evaluator, where its output goes, and its seed.

    ``seed`` is the trial's :attr:`~nascore.engine.TrialSubmission.seed`: the worker hands it to
    :func:`nascore.trial.run_trial`, so the trial starts from the same random state wherever it runs.
    """

    trial_id: int
    model: dict[str, Any]
    evaluator_key: str
    evaluator: dict[str, Any]
    log_path: Path
    experiment_id: str | None = None
    env: dict[str, str] = attrs.field(factory=dict)
    seed: int | None = None

    @property
    def reporting_ids(self) -> set[int]:
        """The trials this one reports for: itself, and the members of a model group (their own results)."""
        members = self.model.get("trial_ids", []) if self.model.get("kind") == "group" else []
        return {self.trial_id, *members}

    def message(self, with_evaluator: bool, timeout: float | None, memory_limit: int | None) -> dict[str, Any]:
        return {
            "op": "run",
            "trial_id": self.trial_id,
            "experiment_id": self.experiment_id,
            "model": self.model,
            "evaluator_key": self.evaluator_key,
            "evaluator": self.evaluator if with_evaluator else None,
            "log_path": str(self.log_path),
            "env": {**self.env, "NASCORE_TRIAL_ID": str(self.trial_id), "NASCORE_TRIAL_DIR": str(self.log_path.parent)},
            "timeout": timeout,
            "memory_limit": memory_limit,
            "seed": self.seed,
        }


def tail(path: Path, lines: int = TAIL_LINES) -> str:
    """The last ``lines`` lines of a text file ("" if it does not exist)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 16384))
            data = f.read()
    except OSError:
        return ""
    return "\n".join(data.decode("utf-8", "replace").splitlines()[-lines:])


def describe_exit(returncode: int, timed_out: float | None = None, during_trial: bool = True) -> str:
    """Why a worker process ended, in words."""
    if timed_out is not None:
        return f"timed out after {timed_out:g} s (trial_timeout) and was killed"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        text = f"was killed by {name}"
        if -returncode == signal.SIGKILL:
            text += " (by the trial itself, by another process, or by the kernel when the machine ran out of memory)"
        return text
    if not during_trial:
        return f"exited with code {returncode}"
    return f"exited with code {returncode} in the middle of the trial (os._exit, or a crash in native code)"


class _Worker:
    """One worker process and what it is doing."""

    def __init__(self, seat: Seat, generation: int, proc: _Process, outbox: protocol.Outbox) -> None:
        self.seat = seat
        self.generation = generation
        self.proc = proc
        self.outbox = outbox
        self.trial: PoolTrial | None = None
        self.deadline: float | None = None
        self.timed_out: float | None = None
        self.evaluator_keys: set[str] = set()
        self.ready = False
        self.reader: threading.Thread | None = None
        self.started = time.perf_counter()

    @property
    def name(self) -> str:
        return f"worker {self.seat.index}.{self.generation} (pid {self.proc.pid})"


class WorkerPool:
    """Warm worker processes, one per seat, running the trials given to :meth:`run`.

    :param seats: where workers sit (:func:`~nascore_engines.training_service.gpu.plan_seats`).
    :param on_event: receives every :class:`~nascore.engine.TrialEvent`, from the pool's threads;
        when it receives a trial's SUCCEEDED or FAILED event, or an ``abort`` (the trial could not run
        there: its folder cannot be written, the disk is full), the trial's seat is already free.
    :param log_dir: folder for the workers' own logs (``worker-<seat>.log``).
    :param python: the workers' interpreter (default: this one).
    :param sys_path: entries put in front of the workers' ``sys.path`` (default: this process's).
    :param trial_timeout: seconds a trial may run before its worker is killed.
    :param memory_limit: bytes a trial may allocate beyond what its worker holds.
    :param env: extra environment variables for the workers.
    :param name: the machine, in messages.
    :param worker_start: ``"spawn"``, ``"auto"``, ``"fork"`` or ``"exec"`` (see the module docstring).
    """

    def __init__(
        self,
        seats: Sequence[Seat],
        *,
        on_event: Callable[[TrialEvent], None],
        log_dir: Path,
        python: str | None = None,
        sys_path: Sequence[str] | None = None,
        cwd: Path | None = None,
        trial_timeout: float | None = None,
        memory_limit: int | None = None,
        env: dict[str, str] | None = None,
        name: str = "local",
        worker_start: str = "spawn",
        template: Template | None = None,
    ) -> None:
        if worker_start not in WORKER_STARTS:
            raise EngineError(f"{name}: worker_start must be one of {', '.join(WORKER_STARTS)}, got {worker_start!r}")
        if not seats:
            raise EngineError(f"{name}: a worker pool needs at least one seat")
        self.seats = list(seats)
        self.on_event = on_event
        self.log_dir = Path(log_dir)
        self.python = python or sys.executable
        self.sys_path = [p or os.getcwd() for p in (sys.path if sys_path is None else sys_path)]
        self.cwd = cwd
        self.trial_timeout = trial_timeout
        self.memory_limit = memory_limit
        self.env = dict(env or {})
        self.name = name
        self.worker_start = worker_start
        #: The process workers fork from; given (made before the experiment opened its store) or made in start().
        self.template: Template | None = template
        #: Seconds from asking for each worker to its ``ready`` message, in the order they became ready.
        self.startup_seconds: list[float] = []
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._workers: dict[int, _Worker] = {}
        self._generation: dict[int, int] = {}
        self._start_failures = 0
        self._closing = False
        self.broken: str | None = None
        self.ever_ready = False
        self._monitor: threading.Thread | None = None

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self, wait_ready: float | None = None) -> None:
        """Start one worker per seat; with ``wait_ready``, wait that long for the first to be ready.

        :raises EngineError: no worker could start (the message quotes the worker's output).
        """
        self.log_dir.mkdir(parents=True, exist_ok=True)
        if self.template is not None:
            _log.debug("%s: workers fork from a %s template made earlier (pid %d)", self.name, self.template.kind,
                       self.template.pid)
        elif self.worker_start != "spawn":
            self.template = Template.start(
                self.log_dir / "template.log", kind=self.worker_start, python=self.python, sys_path=self.sys_path,
                cwd=self.cwd, env=self.env, ready_timeout=300.0 if wait_ready is None else wait_ready,
            )
            if self.template is not None:
                _log.debug("%s: workers fork from a %s template (pid %d), started in %.3f s", self.name,
                           self.template.kind, self.template.pid, self.template.started_in or 0.0)
        with self._lock:
            for seat in self.seats:
                self._spawn(seat)
        self._monitor = threading.Thread(target=self._watch_deadlines, name=f"nascore-pool-{self.name}-timeouts", daemon=True)
        self._monitor.start()
        if wait_ready is not None:
            with self._changed:
                self._changed.wait_for(lambda: self.ever_ready or self.broken is not None, timeout=wait_ready)
                if self.broken is not None:
                    raise EngineError(self.broken)
                if not self.ever_ready:
                    raise EngineError(
                        f"{self.name}: no worker process was ready after {wait_ready:g} s ({self.python}); "
                        f"see the worker logs in {self.log_dir}"
                    )

    def shutdown(self) -> None:
        """Kill every worker (trials still running are abandoned: they end as INTERRUPTED upstream)."""
        with self._lock:
            self._closing = True
            workers = list(self._workers.values())
            self._changed.notify_all()
        for worker in workers:
            _kill_group(worker.proc)
            worker.outbox.close(timeout=1.0)
        for worker in workers:
            try:
                worker.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL does not fail
                _log.error("%s: %s did not exit after SIGKILL", self.name, worker.name)
            if worker.reader is not None and worker.reader is not threading.current_thread():
                worker.reader.join(timeout=10)
        if self._monitor is not None:
            self._monitor.join(timeout=10)
        template, self.template = self.template, None
        if template is not None:
            template.close()

    @property
    def pids(self) -> list[int]:
        """Process ids of the current workers."""
        with self._lock:
            return [w.proc.pid for w in self._workers.values()]

    # --- trials -------------------------------------------------------------------------------

    def free_seats(self) -> int:
        with self._lock:
            if self.broken is not None or self._closing:
                return 0
            return sum(1 for w in self._workers.values() if w.trial is None)

    def running(self) -> int:
        with self._lock:
            return sum(1 for w in self._workers.values() if w.trial is not None)

    def running_trials(self) -> list[int]:
        with self._lock:
            return [w.trial.trial_id for w in self._workers.values() if w.trial is not None]

    def run(self, trial: PoolTrial) -> None:
        """Start ``trial`` on a free worker. :raises EngineError: no worker is free."""
        with self._lock:
            if self.broken is not None:
                raise EngineError(self.broken)
            free = [w for w in self._workers.values() if w.trial is None]
            worker = next((w for w in free if w.ready), free[0] if free else None)  # warm ones first
            if worker is None or self._closing:
                raise EngineError(f"{self.name}: no free worker for trial {trial.trial_id}")
            worker.trial = trial
            worker.timed_out = None
            worker.deadline = None
            with_evaluator = trial.evaluator_key not in worker.evaluator_keys
            worker.evaluator_keys.add(trial.evaluator_key)
            env = {**trial.env, "CUDA_VISIBLE_DEVICES": worker.seat.cuda_visible_devices}
            message = attrs.evolve(trial, env=env).message(with_evaluator, self.trial_timeout, self.memory_limit)
            worker.outbox.send(message)

    # --- workers ------------------------------------------------------------------------------

    def _spawn(self, seat: Seat) -> _Worker:
        """Start a worker on ``seat`` (called with the lock held)."""
        generation = self._generation.get(seat.index, 0) + 1
        self._generation[seat.index] = generation
        env = {**os.environ, **self.env, "CUDA_VISIBLE_DEVICES": seat.cuda_visible_devices, "PYTHONUNBUFFERED": "1"}
        env.setdefault("NASCORE_MACHINE", self.name)
        log_path = self.log_dir / f"worker-{seat.index}.log"
        with open(log_path, "ab") as log:
            how = f"forked by the {self.template.kind} template" if self.template is not None else "new process"
            log.write(f"--- worker {seat.index}.{generation} starting ({seat.describe()}, {how}) ---\n".encode())
        started = time.perf_counter()
        proc = self._fork(env, log_path) if self.template is not None else None
        if proc is None:
            proc = self._popen(env, log_path)
        assert proc.stdin is not None
        worker = _Worker(seat, generation, proc, protocol.Outbox(proc.stdin, f"{self.name}-{seat.index}"))
        worker.started = started
        worker.outbox.send({"op": "init", "sys_path": self.sys_path, "name": f"{self.name}/{seat.index}.{generation}"})
        self._workers[seat.index] = worker
        worker.reader = threading.Thread(
            target=self._read, args=(worker,), name=f"nascore-pool-{self.name}-{seat.index}.{generation}", daemon=True
        )
        worker.reader.start()
        return worker

    def _fork(self, env: dict[str, str], log_path: Path) -> ForkedProcess | None:
        """A worker forked by the template; ``None`` (and no template from now on) when the template failed."""
        template = self.template
        assert template is not None
        try:
            return template.fork_worker(env=env, cwd=self.cwd, stderr_path=log_path)
        except TemplateError as exc:
            if exc.usable:  # this fork failed (out of memory or processes); the template may fork the next one
                _log.warning("%s: the worker template could not fork a worker (%s); this one starts as a new process",
                             self.name, exc)
                return None
            _log.warning("%s: the worker template failed (%s); workers start as new processes from now on", self.name, exc)
        self.template = None
        threading.Thread(target=template.close, name=f"nascore-pool-{self.name}-template", daemon=True).start()
        return None

    def _popen(self, env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
        """A worker started as a new interpreter (``python -m nascore_engines.training_service.worker``)."""
        with open(log_path, "ab") as log:
            try:
                return subprocess.Popen(
                    [self.python, "-u", "-m", "nascore_engines.training_service.worker"],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, env=env, cwd=self.cwd,
                    start_new_session=True,  # Ctrl-C in the terminal reaches the experiment, not the workers
                )
            except OSError as exc:
                raise EngineError(
                    f"{self.name}: cannot start a worker process with {self.python!r}: {exc.strerror or exc}; "
                    "set engine_options.python to a Python that has nascore and nascore-engines installed"
                ) from None

    def _read(self, worker: _Worker) -> None:
        assert worker.proc.stdout is not None
        try:
            for line in worker.proc.stdout:
                try:
                    message = protocol.decode(line)
                except EngineError as exc:
                    _log.warning("%s: %s: %s", self.name, worker.name, exc)
                    continue
                if message["op"] == "ready":
                    self._on_ready(worker)
                elif message["op"] == "event":
                    self._on_event(worker, protocol.event_from_dict(message["event"]))
        except (OSError, ValueError) as exc:
            _log.debug("%s: reading %s failed: %s", self.name, worker.name, exc)
        returncode = worker.proc.wait()
        self._on_exit(worker, returncode)

    def _on_ready(self, worker: _Worker) -> None:
        with self._lock:
            worker.ready = True
            self.startup_seconds.append(time.perf_counter() - worker.started)
            self.ever_ready = True
            self._start_failures = 0
            self._changed.notify_all()
        _log.debug("%s: %s ready", self.name, worker.name)

    def _on_event(self, worker: _Worker, event: TrialEvent) -> None:
        with self._lock:
            trial = worker.trial
            if trial is None or event.trial_id not in trial.reporting_ids or worker.timed_out is not None:
                _log.debug("%s: dropped a late event of trial %s from %s", self.name, event.trial_id, worker.name)
                return
            if event.kind == "status" and event.status is TrialStatus.RUNNING and self.trial_timeout:
                worker.deadline = time.monotonic() + self.trial_timeout
                self._changed.notify_all()
            if event.ends_trial or event.kind == "abort":  # an aborted trial did not run: the worker is free
                worker.trial = None
                worker.deadline = None
        self.on_event(event)

    def _on_exit(self, worker: _Worker, returncode: int) -> None:
        with self._lock:
            trial, worker.trial = worker.trial, None
            timed_out = worker.timed_out
            if self._workers.get(worker.seat.index) is worker:
                del self._workers[worker.seat.index]
            if self._closing:
                return
            if not worker.ready:
                self._start_failures += 1
            log = self.log_dir / f"worker-{worker.seat.index}.log"
            if self._start_failures >= MAX_START_FAILURES and not self.ever_ready:
                self.broken = (
                    f"{self.name}: worker processes exit before they are ready ({self.python}, exit code {returncode}); "
                    f"last lines of {log}:\n{tail(log)}"
                )
                self._changed.notify_all()
            elif self._start_failures >= MAX_START_FAILURES:
                self.broken = (
                    f"{self.name}: {MAX_START_FAILURES} worker processes in a row exited before they were ready "
                    f"(exit code {returncode}); last lines of {log}:\n{tail(log)}"
                )
                self._changed.notify_all()
            else:
                try:
                    self._spawn(worker.seat)
                except EngineError as exc:
                    self.broken = str(exc)
                    self._changed.notify_all()
        worker.outbox.close(timeout=0)
        if self.broken is not None:
            _log.error("%s", self.broken)
        if trial is None:
            if not worker.ready:
                _log.warning("%s: %s exited before it was ready (exit code %s); see %s", self.name, worker.name, returncode, log)
            else:
                _log.warning("%s: idle %s %s; it was replaced", self.name, worker.name,
                             describe_exit(returncode, during_trial=False))
            return
        output = tail(trial.log_path) if worker.ready else tail(log)
        where = trial.log_path if worker.ready else log
        reason = (
            f"trial {trial.trial_id} failed: its worker process ({worker.name} on {self.name}, "
            f"{worker.seat.describe()}) {describe_exit(returncode, timed_out)}"
            + (f" ({worker.proc.note})." if isinstance(worker.proc, ForkedProcess) and worker.proc.note else ".")
        )
        if output:
            reason += f"\nLast lines of its output ({where}):\n{output}"
        _log.debug("%s", reason)
        self.on_event(TrialEvent.failed(trial.trial_id, reason))

    def _watch_deadlines(self) -> None:
        with self._changed:
            while not self._closing:
                now = time.monotonic()
                deadlines = [w.deadline for w in self._workers.values() if w.deadline is not None and w.timed_out is None]
                for worker in list(self._workers.values()):
                    if worker.deadline is not None and worker.timed_out is None and worker.deadline <= now:
                        worker.timed_out = self.trial_timeout
                        trial_id = worker.trial.trial_id if worker.trial else None
                        _log.info("%s: trial %s ran past trial_timeout=%gs; killing %s", self.name, trial_id,
                                  self.trial_timeout or 0, worker.name)
                        _kill_group(worker.proc)
                pending = [d for d in deadlines if d > now]
                self._changed.wait(timeout=None if not pending else min(pending) - now)


def _kill_group(proc: _Process) -> None:
    """SIGKILL a worker and everything it started (it leads its own process group)."""
    if proc.poll() is not None:  # already reaped: its pid may belong to someone else now
        return
    if isinstance(proc, ForkedProcess):  # its template, which reaps it, kills it
        proc.kill()
        return
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        try:
            proc.kill()
        except ProcessLookupError:
            pass
