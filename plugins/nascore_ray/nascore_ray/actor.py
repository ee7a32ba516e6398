"""The warm trial actor: one per seat, it imports torch and nascore once and runs trial after trial.

:class:`TrialActor` is a plain class; :mod:`nascore_ray.service` makes it a Ray actor (``ray.remote``)
with the trial's resources. Its :meth:`~TrialActor.run` is a Ray streaming generator: it runs the trial
on a thread of its own and yields, while the trial runs, each event (``{"event": ...}``, the
JSON form of :mod:`nascore_engines.training_service.protocol`) and what the trial printed
(``{"log": text}``; file descriptors 1 and 2 point at a node-local file during the trial), so that
the driver records metrics as they come and writes the trial's log into the experiment's trial
folder, wherever the node is. No port beyond Ray's own is opened.

Trials are isolated as in the local workers: every trial gets an evaluator deserialized afresh from
its shipment (fetched from the object store once per actor and kept as data) and starts from its seed.
"""

from __future__ import annotations

import faulthandler
import os
import queue
import sys
import tempfile
import threading
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from nascore_engines.training_service.worker import flush_std, limit_memory

__all__ = ["TrialActor", "load_evaluator_shipment", "store_shipment"]

#: Seconds between two looks at the trial's output while nothing else happens.
LOG_POLL = 0.25
#: Most bytes of output sent in one log item.
LOG_CHUNK = 1 << 20


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

    def ready(self, sys_path: list[str] | None = None) -> dict[str, Any]:
        """Import what trials need (torch, nascore) and say where this actor runs."""
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
                "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES")}

    def pid(self) -> int:
        return os.getpid()

    def run(self, message: dict[str, Any], refs: list[Any]) -> Iterator[dict[str, Any]]:
        """Run one trial; yield its events and output as they come (a Ray streaming generator)."""
        from nascore.engine import TrialEvent
        from nascore_engines.training_service import protocol

        trial_id = int(message["trial_id"])
        key = message["evaluator_key"]
        if key not in self.shipments:
            import ray

            self.shipments[key] = ray.get(refs[0])  # once per actor: from the object store, put once per experiment
        log_path = self.scratch / f"trial-{trial_id}.log"
        items: queue.SimpleQueue[Any] = queue.SimpleQueue()
        thread = threading.Thread(target=self._trial, args=(message, log_path, items), name=f"nascore-trial-{trial_id}",
                                  daemon=True)
        thread.start()
        offset = 0
        with open(log_path, "a+b") as reader:

            def output() -> Iterator[dict[str, Any]]:
                nonlocal offset
                while True:
                    reader.seek(offset)
                    data = reader.read(LOG_CHUNK)
                    if not data:
                        return
                    offset += len(data)
                    yield {"log": data.decode("utf-8", "replace")}

            while True:
                try:
                    item = items.get(timeout=LOG_POLL)
                except queue.Empty:
                    yield from output()
                    continue
                yield from output()
                if isinstance(item, TrialEvent):
                    yield {"event": protocol.event_to_dict(item)}
                else:  # the trial is over and its output restored: its end events
                    for event in item:
                        yield {"event": protocol.event_to_dict(event)}
                    break
        thread.join()
        log_path.unlink(missing_ok=True)

    # --- inside the trial's thread --------------------------------------------------------------

    def _trial(self, message: dict[str, Any], log_path: Path, items: queue.SimpleQueue[Any]) -> None:
        from nascore.engine import TrialEvent, TrialStatus
        from nascore_engines.training_service.worker import is_out_of_memory

        trial_id = int(message["trial_id"])
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
        if trial_dir and not _usable_folder(trial_dir):  # a node without the experiment's file system
            env["NASCORE_TRIAL_DIR"] = str(self.scratch / f"trial-{trial_id}")
            os.makedirs(env["NASCORE_TRIAL_DIR"], exist_ok=True)
        saved_env = {key: os.environ.get(key) for key in env}
        os.environ.update(env)
        memory_limit = message.get("memory_limit")
        timeout = message.get("timeout")
        try:
            with _Output(log_path):
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


