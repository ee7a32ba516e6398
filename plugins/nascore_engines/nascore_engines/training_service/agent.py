"""The agent started on each remote machine: a local worker pool driven over the SSH channel.

Started by :class:`~nascore_engines.training_service.remote.RemoteService` as
``python -u -m nascore_engines.training_service.agent`` inside the machine's copy of the code. It
reads messages on stdin and writes them on stdout (:mod:`.protocol`); both are the SSH channel, so
metrics travel over the connection itself and no port is opened back to the experiment's machine.

Messages in: ``start`` (the settings; answered by ``ready`` or ``error``), ``run`` (a trial),
``shutdown``. Messages out: ``ready``, ``error``, ``event``, ``log`` (a trial's output, sent when
the trial ends and before its last event) and ``beat`` (a heartbeat, so the engine notices a
silent machine). When stdin closes (the connection dropped), the agent kills its workers and exits.

Everything the agent and its workers write (experiment folders, worker and trial logs, whatever a
trial saves) is the login's only: the agent runs with umask ``077``, and makes the experiment
folders ``0700`` even when an earlier version created them open to others.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from pathlib import Path
from typing import IO, Any

__all__ = ["main"]

_log = logging.getLogger("nascore_engines.agent")

#: A trial's output travels back in messages of at most this many characters.
LOG_CHUNK = 1 << 20

#: New files 0600 and folders 0700: other users of the machine cannot read experiments or logs.
PRIVATE_UMASK = 0o077


class Agent:
    """Runs trials for one engine on this machine."""

    def __init__(self, inbox: IO[bytes], outbox: IO[bytes]) -> None:
        from nascore_engines.training_service import protocol

        self.protocol = protocol
        self.inbox = inbox
        self.out = protocol.Outbox(outbox, "agent", on_broken=lambda exc: os._exit(0))
        self.evaluators: dict[str, dict[str, Any]] = {}
        self.pool: Any = None
        self.stop = threading.Event()

    def serve(self) -> int:
        first = self._next()
        if first is None or first.get("op") != "start":
            return 2
        try:
            self._start(first)
        except Exception as exc:  # noqa: BLE001 - any failure to start is reported to the engine
            from nascore.errors import NascoreError

            message = str(exc) if isinstance(exc, NascoreError) else f"{type(exc).__name__}: {exc}"
            self.out.send({"op": "error", "message": message})
            self.out.close()
            return 2
        try:
            while (message := self._next()) is not None:
                if message["op"] == "run":
                    self._run(message)
                elif message["op"] == "shutdown":
                    break
        finally:
            self.stop.set()
            self.pool.shutdown()
            self.out.close()
        return 0

    def _next(self) -> dict[str, Any] | None:
        line = self.inbox.readline()
        return self.protocol.decode(line) if line else None

    def _start(self, settings: dict[str, Any]) -> None:
        import nascore
        from nascore.errors import EngineError
        from nascore_engines.training_service.gpu import detect_gpus, plan_seats
        from nascore_engines.training_service.pool import WorkerPool

        if settings.get("protocol") != self.protocol.PROTOCOL_VERSION:
            raise EngineError(
                f"the engine speaks protocol {settings.get('protocol')} but this machine's nascore-engines speaks "
                f"{self.protocol.PROTOCOL_VERSION}: install the same nascore-engines version on both"
            )
        self.machine = settings["machine"]
        self.workdir = Path(settings["workdir"]) / "experiments" / str(settings["experiment_id"])
        for folder in (self.workdir.parent, self.workdir):
            try:
                folder.mkdir(mode=0o700, parents=True, exist_ok=True)
                folder.chmod(0o700)
            except OSError as exc:
                raise EngineError(
                    f"cannot make the private experiment folder {folder} on machine {self.machine}: "
                    f"{exc.strerror or exc}; set {settings.get('field', 'engine_options.machines[?]')}.workdir "
                    "to a folder of your own"
                ) from None
        self.experiment_id = settings["experiment_id"]
        code_dir = settings["code_dir"]
        gpus = detect_gpus()
        seats = plan_seats(
            available=gpus,
            trial_gpu_number=settings["trial_gpu_number"],
            concurrency=settings["max_trials"],
            gpu_indices=settings.get("gpu_indices"),
            max_trials_per_gpu=settings["max_trials_per_gpu"],
            where=f"machine {self.machine}",
            field=settings.get("field", "engine_options.machines[?]"),
        )
        self.pool = WorkerPool(
            seats,
            on_event=self._relay,
            log_dir=self.workdir / "workers",
            python=sys.executable,
            sys_path=[code_dir],
            cwd=Path(code_dir),
            trial_timeout=settings.get("trial_timeout"),
            memory_limit=settings.get("memory_limit"),
            env={"NASCORE_MACHINE": self.machine},
            name=f"machine {self.machine}",
        )
        self.pool.start(wait_ready=float(settings.get("ready_timeout", 300)))
        self.out.send({
            "op": "ready", "seats": len(seats), "gpus": gpus, "pid": os.getpid(), "nascore": nascore.__version__,
        })
        beat = float(settings.get("heartbeat", 30)) / 3
        threading.Thread(target=self._beat, args=(beat,), name="nascore-agent-heartbeat", daemon=True).start()

    def _beat(self, interval: float) -> None:
        while not self.stop.wait(interval):
            self.out.send({"op": "beat"})

    def _run(self, message: dict[str, Any]) -> None:
        from nascore.engine import TrialEvent
        from nascore.errors import EngineError
        from nascore_engines.training_service.pool import PoolTrial

        trial_id = int(message["trial_id"])
        key = message["evaluator_key"]
        if message.get("evaluator") is not None:
            self.evaluators[key] = message["evaluator"]
        log_path = self.workdir / "trials" / str(trial_id) / "trial.log"
        if log_path.exists():
            log_path.unlink()  # an earlier attempt's output was sent already
        trial = PoolTrial(trial_id, message["model"], key, self.evaluators[key], log_path, self.experiment_id,
                          seed=message.get("seed"))
        try:
            self.pool.run(trial)
        except EngineError as exc:
            self._relay(TrialEvent.failed(trial_id, f"trial {trial_id} could not start on machine {self.machine}: {exc}"))

    def _relay(self, event: Any) -> None:
        if event.ends_trial:
            path = self.workdir / "trials" / str(event.trial_id) / "trial.log"
            try:
                text = path.read_text(errors="replace")
            except OSError:
                text = ""
            for start in range(0, max(len(text), 1), LOG_CHUNK):  # an empty log still makes the file
                self.out.send({"op": "log", "trial_id": event.trial_id, "text": text[start : start + LOG_CHUNK]})
        self.out.send({"op": "event", "event": self.protocol.event_to_dict(event)})


def main() -> None:
    """Serve one engine on this process's stdin/stdout (see the module docstring)."""
    inbox = os.fdopen(os.dup(0), "rb")
    outbox = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # stray prints must not corrupt the protocol
    os.umask(PRIVATE_UMASK)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    sys.exit(Agent(inbox, outbox).serve())


if __name__ == "__main__":
    main()
