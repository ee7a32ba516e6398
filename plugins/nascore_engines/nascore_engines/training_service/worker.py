"""A warm worker process: imports torch once, then runs trial after trial until told to stop.

Started by :class:`~nascore_engines.training_service.pool.WorkerPool` as
``python -u -m nascore_engines.training_service.worker``. It keeps private copies of its stdin and
stdout for protocol messages (:mod:`.protocol`) and points file descriptors 1 and 2 at the running
trial's ``trial.log`` (at the worker log between trials), so whatever a trial prints, from Python
or native code, lands in its folder. When its stdin closes (the pool stopped it, or the experiment
process died) it exits at once, even mid-trial.

Trials are isolated from each other although the process is shared: every trial gets an evaluator
deserialized afresh from its shipment (kept from the first trial that brought it) and starts from
its own seed (``run_trial(seed=...)``). A trial whose folder or log cannot be created or written
(read-only folder, full disk) is not run or not ended: the worker sends an ``abort`` event naming
the folder and stays ready for the next trial.

Messages in: ``init`` (sys.path, name), ``run`` (one trial), ``stop``.
Messages out: ``ready`` (pid, versions), ``event`` (a :class:`~nascore.engine.TrialEvent`).
"""

from __future__ import annotations

import faulthandler
import os
import queue
import resource
import sys
import threading
import traceback
from pathlib import Path
from typing import IO, Any

__all__ = ["main", "is_out_of_memory", "flush_std", "limit_memory"]

_OOM_MARKERS = ("MemoryError", "can't allocate memory", "CUDA out of memory", "OutOfMemoryError", "Cannot allocate memory")


def is_out_of_memory(error: str) -> bool:
    """Whether a trial's error text is an allocation failure (Python, torch CPU or CUDA)."""
    first = error.strip().splitlines()[0] if error.strip() else ""
    return any(marker in first for marker in _OOM_MARKERS)


class _Worker:
    def __init__(self, inbox: IO[bytes], outbox: IO[bytes]) -> None:
        from nascore_engines.training_service import protocol

        self.protocol = protocol
        self.out = outbox
        self.lock = threading.Lock()
        self.messages: queue.SimpleQueue[dict[str, Any] | None] = queue.SimpleQueue()
        self.evaluators: dict[str, dict[str, Any]] = {}  # evaluator key -> its shipment (not the evaluator)
        self.name = "worker"
        threading.Thread(target=self._read, args=(inbox,), name="nascore-worker-inbox", daemon=True).start()

    # --- talking to the pool ------------------------------------------------------------------

    def _read(self, inbox: IO[bytes]) -> None:
        for line in inbox:
            self.messages.put(self.protocol.decode(line))
        # The pool closed our stdin, or the process that started us is gone: stop now, mid-trial too.
        os._exit(0)

    def send(self, message: dict[str, Any]) -> None:
        data = self.protocol.encode(message)
        with self.lock:
            try:
                self.out.write(data)
                self.out.flush()
            except (OSError, ValueError):
                os._exit(0)  # nobody is listening any more

    # --- the loop -------------------------------------------------------------------------------

    def serve(self) -> None:
        import nascore

        faulthandler.disable()  # forked from a template: drop the handler state the experiment process had
        faulthandler.enable(file=sys.stderr, all_threads=False)  # native crashes leave a traceback in the log
        self.send({"op": "ready", "pid": os.getpid(), "python": sys.version.split()[0], "nascore": nascore.__version__})
        while True:
            message = self.messages.get()
            if message is None or message["op"] == "stop":
                return
            if message["op"] == "init":
                self.name = message.get("name", self.name)
                for entry in reversed(message.get("sys_path", [])):
                    if entry not in sys.path:
                        sys.path.insert(0, entry)
            elif message["op"] == "run":
                self.run(message)

    def send_event(self, event: Any) -> None:
        self.send({"op": "event", "event": self.protocol.event_to_dict(event)})

    def run(self, message: dict[str, Any]) -> None:
        from nascore.engine import TrialEvent, TrialStatus
        from nascore_engines.folders import cannot_write

        trial_id = int(message["trial_id"])
        if message.get("evaluator") is not None:  # sent once per worker: kept even if this trial cannot run
            self.evaluators[message["evaluator_key"]] = message["evaluator"]
        log_path = Path(message["log_path"])
        output = _TrialOutput(log_path)
        try:
            output.open()
        except OSError as exc:  # where the trial runs is broken, not the trial: it reruns on resume
            self.send_event(TrialEvent.abort(trial_id, cannot_write(trial_id, log_path.parent, exc)))
            return
        ended: list[TrialEvent] = []

        def emit(event: TrialEvent) -> None:
            if event.ends_trial:  # held back until the trial's output is flushed and fds restored
                ended.append(event)
            else:
                self.send_event(event)

        log = _TrialLog()
        saved_env = {key: os.environ.get(key) for key in message.get("env", {})}
        os.environ.update(message.get("env", {}))
        memory_limit = message.get("memory_limit")
        timeout = message.get("timeout")
        with output:
            limit_memory(memory_limit)
            if timeout:
                faulthandler.dump_traceback_later(max(timeout * 0.95, timeout - 1.0), exit=False)
            try:
                model, evaluator = self._load(message)
            except Exception as exc:
                text = traceback.format_exc()
                log.write(text)
                emit(TrialEvent(trial_id, "status", status=TrialStatus.RUNNING))
                emit(TrialEvent.failed(trial_id, f"cannot load the shipped trial in worker {self.name}: "
                                                 f"{type(exc).__name__}: {exc}\n\n{text}"))
            else:
                self._run_trial(trial_id, model, evaluator, emit, message.get("experiment_id"), message.get("seed"), log)
            finally:
                if timeout:
                    faulthandler.cancel_dump_traceback_later()
                limit_memory(None)
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        if log.error is not None:
            # The trial's log could not be written (disk full, folder gone read-only): whatever the trial
            # did, its end cannot be recorded faithfully here. It is aborted, and reruns on resume.
            ended = [TrialEvent.abort(trial_id, cannot_write(trial_id, log_path.parent, log.error))]
        for event in ended:
            if event.status is TrialStatus.FAILED and event.error and is_out_of_memory(event.error):
                limit = f" of {memory_limit / 2**20:.0f} MiB (trial_memory_limit)" if memory_limit else ""
                event = TrialEvent.failed(
                    trial_id, f"out of memory: trial {trial_id} tried to allocate more than its limit{limit} "
                              f"or than the machine has\n\n{event.error}"
                )
            self.send_event(event)

    def _load(self, message: dict[str, Any]) -> tuple[Any, Any]:
        """The trial's model and a fresh evaluator, deserialized from the shipment for this trial alone.

        The pool sends an evaluator's shipment once per worker; the worker keeps the shipment, not the
        evaluator, so no state (a DataLoader's generator, counters, caches) carries from one trial to
        the next: every trial starts from the evaluator as submitted.
        """
        from nascore.errors import EngineError
        from nascore.serialization import load_shipped_evaluator, load_shipped_model

        key = message["evaluator_key"]
        if key not in self.evaluators:
            raise EngineError(f"the pool sent no evaluator {key!r} to worker {self.name} before this trial")
        return load_shipped_model(message["model"]), load_shipped_evaluator(self.evaluators[key])

    def _run_trial(
        self, trial_id: int, model: Any, evaluator: Any, emit: Any, experiment_id: str | None, seed: int | None,
        log: _TrialLog,
    ) -> None:
        from nascore.engine import TrialEvent
        from nascore.trial import run_trial

        try:
            run_trial(trial_id, model, evaluator, emit, experiment_id=experiment_id, log=log.write, seed=seed)
        except KeyboardInterrupt:  # raised by the trial itself (no Ctrl-C reaches a worker): it ends the trial only
            log.write(traceback.format_exc())
            emit(TrialEvent.failed(trial_id, "the trial was interrupted (KeyboardInterrupt)"))


class _TrialLog:
    """The worker's writes to the running trial's log (fd 2); remembers the first write that failed."""

    def __init__(self) -> None:
        self.error: OSError | None = None

    def write(self, text: str) -> None:
        try:
            sys.stderr.write(text)
            sys.stderr.flush()
        except OSError as exc:
            if self.error is None:
                self.error = exc


class _TrialOutput:
    """Point file descriptors 1 and 2 at a trial's log file for the duration of the trial.

    :meth:`open` creates the trial's folder and opens its log first, so that a folder that cannot be
    written is an ``OSError`` before any file descriptor changes.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd: int | None = None

    def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    def __enter__(self) -> None:
        if self.fd is None:
            self.open()
        assert self.fd is not None
        flush_std()
        self.saved = os.dup(2)
        os.dup2(self.fd, 1)
        os.dup2(self.fd, 2)
        os.close(self.fd)
        self.fd = None

    def __exit__(self, *exc: object) -> None:
        flush_std()
        os.dup2(self.saved, 1)
        os.dup2(self.saved, 2)
        os.close(self.saved)


def flush_std() -> None:
    """Flush Python's stdout and stderr; a full disk or a closed stream is ignored."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):  # a full disk, a closed or absent stream must not stop it
            pass


_ORIGINAL_DATA_LIMIT = resource.getrlimit(resource.RLIMIT_DATA)


def limit_memory(limit: int | None) -> None:
    """Let the trial allocate ``limit`` more bytes of data memory than the worker holds now (None: as started)."""
    soft, hard = _ORIGINAL_DATA_LIMIT
    if limit is not None:
        wanted = _data_size() + int(limit)
        soft = wanted if soft == resource.RLIM_INFINITY else min(wanted, soft)
    resource.setrlimit(resource.RLIMIT_DATA, (soft, hard))


def _data_size() -> int:
    """This process's data segment size (``VmData``), which RLIMIT_DATA bounds."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmData:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def main() -> None:
    """Run the worker on this process's stdin/stdout (see the module docstring)."""
    inbox = os.fdopen(os.dup(0), "rb")
    outbox = os.fdopen(os.dup(1), "wb")
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)  # a trial reading stdin must not eat protocol messages
    os.close(devnull)
    os.dup2(2, 1)  # between trials, stray output goes to the worker log (our stderr)
    worker = _Worker(inbox, outbox)
    worker.serve()


if __name__ == "__main__":
    main()
