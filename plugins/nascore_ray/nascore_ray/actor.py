"""The warm trial actor: one per seat, it imports torch and nascore once and runs trial after trial.

:class:`TrialActor` is a plain class; :mod:`nascore_ray.service` makes it a Ray actor (``ray.remote``)
with the trial's resources. A trial runs on the actor's trial thread; the driver follows it with
plain actor calls that wait for news (long polling): :meth:`~TrialActor.start` hands the trial over
and :meth:`~TrialActor.poll` is called again until the trial's end. Each call returns a batch
``{"events": [...], "log": text, "done": bool}``: the events that came (the JSON form of
:mod:`nascore_engines.training_service.protocol`) and what the trial printed (file descriptors 1 and
2 point at a node-local file during the trial), so the driver records metrics while the trial runs and
writes its output into the experiment's trial folder, wherever the node is. No port beyond Ray's own is
opened.

A call returns as soon as an event came, after gathering what follows it within :data:`COALESCE`
seconds (a short trial's start, metrics and end come back in one call); with output but no event, every
:data:`LOG_POLL` seconds; with neither, after :data:`POLL_MAX` seconds. One plain call per short trial
is what Ray does fastest: on two cores a call takes 1.5 ms where a streaming generator of three items
takes 2.9 ms. Messages and batches cross Ray as pickled bytes (:func:`pack`, :func:`unpack`): Ray
then copies one buffer instead of walking nested dicts (about 0.1 ms of a 0.7 ms call at concurrency 4).

Trials are isolated as in the local workers: every trial gets an evaluator deserialized afresh from
its shipment (fetched from the object store once per actor and kept as data) and starts from its seed.
"""

from __future__ import annotations

import codecs
import faulthandler
import os
import pickle
import queue
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path
from typing import IO, Any

import attrs

from nascore_engines.training_service.worker import flush_std, limit_memory

__all__ = ["TrialActor", "load_evaluator_shipment", "pack", "store_shipment", "unpack"]

#: Seconds a call gathers what follows the first event it saw (a short trial's events come back in one call).
COALESCE = 0.01
#: Seconds between two looks at the trial's output while nothing else happens.
LOG_POLL = 0.25
#: Seconds a call waits at most when nothing happens at all (then it returns an empty batch).
POLL_MAX = 5.0
#: Most bytes of output sent in one log item.
LOG_CHUNK = 1 << 20


def pack(value: Any) -> bytes:
    """A trial's message or a batch as it crosses Ray: pickled bytes (plain data only; see :func:`unpack`)."""
    return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


def unpack(data: bytes) -> Any:
    """The message or batch in what :func:`pack` made (sent between the driver and its own actors)."""
    return pickle.loads(data)  # noqa: S301 - bytes this engine's driver and actors made for each other


def store_shipment(shipment: dict[str, Any]) -> dict[str, Any]:
    """An evaluator shipment as it goes into Ray's object store: a cloudpickle's bytes unwrapped from base64."""
    if shipment.get("kind") == "cloudpickle" and isinstance(shipment.get("data"), str):
        import base64

        return {**shipment, "data": base64.b64decode(shipment["data"])}
    return shipment


def load_evaluator_shipment(shipment: dict[str, Any]) -> Any:
    """The evaluator of a :func:`store_shipment` (raw cloudpickle bytes) or of a plain shipment."""
    from nascore.serialization import load_shipped_evaluator

    if shipment.get("kind") == "cloudpickle" and isinstance(shipment.get("data"), bytes):
        import cloudpickle

        from nascore.errors import ShippingError

        try:
            return cloudpickle.loads(shipment["data"])
        except Exception as exc:
            raise ShippingError(
                f"cannot load the shipped {shipment.get('what', 'evaluator')} (cloudpickle): {type(exc).__name__}: "
                f"{exc}. The Ray workers must import every module it refers to: give them the code and its "
                "requirements through engine_options.runtime_env"
            ) from exc
    return load_shipped_evaluator(shipment)


class TrialActor:
    """Runs trials one after the other in a Ray worker process (see the module documentation)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.shipments: dict[str, dict[str, Any]] = {}  # evaluator key -> its shipment (data, not the evaluator)
        self.scratch = Path(tempfile.mkdtemp(prefix="nascore-ray-"))
        self._inbox: queue.SimpleQueue[tuple[dict[str, Any], _Job]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._job: _Job | None = None

    def ready(self, sys_path: list[str] | None = None, probe: tuple[str, str] | None = None) -> dict[str, Any]:
        """Import what trials need (torch, nascore) and say where this actor runs.

        ``probe`` is a file of the experiment's folder and its text, as the driver wrote them: when this actor reads
        the same text there (``shares_files`` in the answer), it shares the driver's files and writes each trial's
        output straight into the trial's log (``log_in_place`` in a trial's message) instead of sending it back.
        """
        for entry in sys_path or []:
            if entry not in sys.path and os.path.isdir(entry):
                sys.path.append(entry)  # after the node's own entries: never shadows what the node has installed
        import socket

        import torch  # noqa: F401 - the import a cold worker would pay in its first trial

        import nascore

        faulthandler.enable(file=sys.stderr, all_threads=False)
        node_id = ""
        try:
            import ray

            node_id = ray.get_runtime_context().get_node_id()
        except Exception:  # noqa: BLE001 - outside Ray (tests of this class)
            pass
        return {"pid": os.getpid(), "host": socket.gethostname(), "node_id": node_id, "nascore": nascore.__version__,
                "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"), "shares_files": _reads(probe)}

    def pid(self) -> int:
        return os.getpid()

    def start(self, packed: bytes, refs: list[Any]) -> bytes:
        """Start one trial on the trial thread; return its first batch (see the module documentation).

        ``packed`` is the trial's message (:func:`pack`); the batch comes back packed too. ``refs`` holds the
        object-store reference of the trial's evaluator shipment the first time this actor meets that evaluator,
        and nothing after (the actor keeps the shipment).
        """
        message = unpack(packed)
        trial_id = int(message["trial_id"])
        if self._job is not None and self._job.end is None:
            raise RuntimeError(f"actor {self.name} was given trial {trial_id} while trial {self._job.trial_id} runs")
        self._close_job()
        key = message["evaluator_key"]
        if key not in self.shipments:
            if not refs:
                raise RuntimeError(f"actor {self.name} was not given evaluator {key} (the driver passes it once)")
            import ray

            self.shipments[key] = ray.get(refs[0])  # once per actor: from the object store, put once per experiment
        if self._thread is None:
            self._thread = threading.Thread(target=self._trials, name=f"nascore-trials-{self.name}", daemon=True)
            self._thread.start()
        self._job = _open_job(trial_id, message, self.scratch)
        self._inbox.put((message, self._job))
        return pack(self._collect(self._job))

    def poll(self, trial_id: int) -> bytes:
        """The next batch of the running trial ``trial_id`` (packed)."""
        job = self._job
        if job is None or job.trial_id != trial_id:
            raise RuntimeError(f"actor {self.name} runs no trial {trial_id}")
        return pack(self._collect(job))

    def _collect(self, job: _Job) -> dict[str, Any]:
        """The trial's next batch: wait for its end, an event or output (see the module documentation).

        This thread sleeps while the trial runs: it wakes for the trial's end, for the first event of a batch
        (then it lets the trial run :data:`COALESCE` seconds more before it gathers), or on its timers.
        """
        from nascore.engine import TrialEvent
        from nascore_engines.training_service import protocol

        events: list[dict[str, Any]] = []

        def take(item: Any) -> None:
            if isinstance(item, TrialEvent):
                events.append(protocol.event_to_dict(item))
            else:  # the trial is over and its output restored: its end events
                job.end = [protocol.event_to_dict(event) for event in item]

        def drain() -> None:
            while job.end is None:
                try:
                    take(job.items.get_nowait())
                except queue.Empty:
                    return

        if job.end is None:
            job.ended.wait(COALESCE)  # a short trial ends here: one call for all of it
            drain()
        give_up = time.monotonic() + POLL_MAX
        while job.end is None and not events:
            now = time.monotonic()
            try:
                take(job.items.get(timeout=max(0.0, min(give_up, now + LOG_POLL) - now)))
            except queue.Empty:
                if time.monotonic() >= give_up or job.has_output():
                    break
                continue
            job.ended.wait(COALESCE)
            drain()
        log = job.read()
        if job.end is not None and not job.has_output():  # its end goes last, after all of its output
            events.extend(job.end)
            self._close_job()
            return {"events": events, "log": log, "done": True}
        return {"events": events, "log": log, "done": False}

    def _close_job(self) -> None:
        job, self._job = self._job, None
        if job is not None and job.reader is not None:
            job.reader.close()
            job.path.unlink(missing_ok=True)

    def _trials(self) -> None:
        """The trial thread: runs the trials it is given, one after the other."""
        from nascore.engine import TrialEvent

        while True:
            message, job = self._inbox.get()
            try:
                self._trial(message, job)
            except BaseException as exc:  # noqa: BLE001 - the driver must never wait for an end that cannot come
                job.items.put([TrialEvent.failed(job.trial_id, f"the trial actor {self.name} failed around trial "
                                                               f"{job.trial_id}: {type(exc).__name__}: {exc}")])
            job.ended.set()

    # --- inside the trial's thread --------------------------------------------------------------

    def _trial(self, message: dict[str, Any], job: _Job) -> None:
        from nascore.engine import TrialEvent, TrialStatus
        from nascore_engines.training_service.worker import is_out_of_memory

        trial_id = int(message["trial_id"])
        items = job.items
        ended: list[TrialEvent] = []
        started: list[bool] = []

        def emit(event: TrialEvent) -> None:
            if event.ends_trial:  # held back until the trial's output is flushed and fds restored
                ended.append(event)
            else:
                started.append(True)
                items.put(event)

        env = dict(message.get("env", {}))
        trial_dir = env.get("NASCORE_TRIAL_DIR")
        in_place = job.reader is None and str(job.path.parent) == trial_dir  # _open_job made the folder, and wrote in it
        if trial_dir and not in_place and not _usable_folder(trial_dir):  # a node without the experiment's file system
            env["NASCORE_TRIAL_DIR"] = str(self.scratch / f"trial-{trial_id}")
            os.makedirs(env["NASCORE_TRIAL_DIR"], exist_ok=True)
        saved_env = {key: os.environ.get(key) for key in env}
        os.environ.update(env)
        memory_limit = message.get("memory_limit")
        timeout = message.get("timeout")
        try:
            with _Output(job.path):
                limit_memory(memory_limit)
                if timeout:  # where the trial hung reaches its log before the driver kills this actor
                    faulthandler.dump_traceback_later(max(timeout * 0.95, timeout - 1.0), exit=False)
                try:
                    self._run(message, emit)
                finally:
                    if timeout:
                        faulthandler.cancel_dump_traceback_later()
                    limit_memory(None)
        except BaseException as exc:  # noqa: BLE001 - never leave the driver waiting for an end
            if not ended:
                if not started:
                    items.put(TrialEvent(trial_id, "status", status=TrialStatus.RUNNING))
                ended.append(TrialEvent.failed(trial_id, f"the trial actor {self.name} failed around trial {trial_id}: "
                                                         f"{type(exc).__name__}: {exc}\n\n{traceback.format_exc()}"))
        finally:
            for key, value in saved_env.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        final = []
        for event in ended:
            if event.status is TrialStatus.FAILED and event.error and is_out_of_memory(event.error):
                limit = f" of {memory_limit / 2**20:.0f} MiB (trial_memory_limit)" if memory_limit else ""
                event = TrialEvent.failed(
                    trial_id, f"out of memory: trial {trial_id} tried to allocate more than its limit{limit} "
                              f"or than the node has\n\n{event.error}"
                )
            final.append(event)
        items.put(final)

    def _run(self, message: dict[str, Any], emit: Any) -> None:
        from nascore.engine import TrialEvent, TrialStatus
        from nascore.serialization import load_shipped_model
        from nascore.trial import run_trial

        trial_id = int(message["trial_id"])
        try:
            model = load_shipped_model(message["model"])
            evaluator = load_evaluator_shipment(self.shipments[message["evaluator_key"]])
        except Exception as exc:
            text = traceback.format_exc()
            sys.stderr.write(text)
            emit(TrialEvent(trial_id, "status", status=TrialStatus.RUNNING))
            emit(TrialEvent.failed(trial_id, f"cannot load the shipped trial in Ray actor {self.name}: "
                                             f"{type(exc).__name__}: {exc}\n\n{text}"))
            return

        def log(text: str) -> None:
            sys.stderr.write(text)
            sys.stderr.flush()

        try:
            run_trial(trial_id, model, evaluator, emit, experiment_id=message.get("experiment_id"), log=log,
                      seed=message.get("seed"))
        except KeyboardInterrupt:  # raised by the trial itself: it ends the trial only
            log(traceback.format_exc())
            emit(TrialEvent.failed(trial_id, "the trial was interrupted (KeyboardInterrupt)"))


@attrs.define(eq=False)
class _Job:
    """The trial this actor runs: its items (events, then the list of its end events) and its output file.

    ``reader`` reads a node-local output file back for the driver; it is ``None`` when the output goes straight
    into the trial's log in the experiment's folder (nothing to send).
    """

    trial_id: int
    path: Path
    reader: IO[bytes] | None
    items: queue.SimpleQueue[Any] = attrs.field(factory=queue.SimpleQueue)
    end: list[dict[str, Any]] | None = None
    ended: threading.Event = attrs.field(factory=threading.Event)  # set once the end events are in ``items``
    decoder: codecs.IncrementalDecoder = attrs.field(factory=lambda: codecs.getincrementaldecoder("utf-8")("replace"))

    def has_output(self) -> bool:
        """Whether the trial printed something not read yet."""
        if self.reader is None:
            return False
        try:
            return os.fstat(self.reader.fileno()).st_size > self.reader.tell()
        except OSError:
            return False

    def read(self) -> str:
        """What the trial printed since the last read (at most :data:`LOG_CHUNK` bytes)."""
        if self.reader is None:
            return ""
        data = self.reader.read(LOG_CHUNK)
        return self.decoder.decode(data, final=self.end is not None and not self.has_output())


def _open_job(trial_id: int, message: dict[str, Any], scratch: Path) -> _Job:
    """The job of a trial: its output in the trial's own log when the driver says this actor shares its files (and
    that log can be written), else in a node-local file read back for the driver."""
    if message.get("log_in_place") and message.get("log_path"):
        path = Path(message["log_path"])
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
            return _Job(trial_id, path, None)
        except OSError:  # sent back instead: the driver writes it, or says why it cannot
            pass
    path = scratch / f"trial-{trial_id}.log"
    path.write_bytes(b"")
    return _Job(trial_id, path, open(path, "rb"))  # noqa: SIM115 - closed with the job


def _reads(probe: tuple[str, str] | list[str] | None) -> bool:
    """Whether this node sees the driver's probe file with the driver's text in it (it shares the driver's files)."""
    if not probe:
        return False
    path, token = probe
    try:
        with open(path, encoding="utf-8") as f:
            return f.read(200) == token
    except (OSError, ValueError):
        return False


def _usable_folder(path: str) -> bool:
    try:
        os.makedirs(path, exist_ok=True)
    except OSError:
        return False
    return os.access(path, os.W_OK)


class _Output:
    """Point file descriptors 1 and 2 at a node-local file for the duration of a trial."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __enter__(self) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        flush_std()
        self.saved = (os.dup(1), os.dup(2))
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)

    def __exit__(self, *exc: object) -> None:
        flush_std()
        os.dup2(self.saved[0], 1)
        os.dup2(self.saved[1], 2)
        os.close(self.saved[0])
        os.close(self.saved[1])


