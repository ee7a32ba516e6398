"""The ``remote`` training service: trials on remote machines over SSH.

For each machine in ``engine_options.machines`` the service connects with paramiko (host keys
verified, see :mod:`.ssh`), checks that the machine's Python has the same nascore as this one,
copies the code directory there (only what changed and only what is code: no ignored files, no
secrets, see :mod:`.selection` and :mod:`.codesync`), and starts an agent (:mod:`.agent`) that runs
a pool of warm workers on the machine. What nascore writes on a machine (the code copy, experiment
folders, logs) is readable by the login only. Trials, events and trial output
travel over the SSH channel itself. A machine that drops (the connection breaks, or it stays
silent for ``heartbeat`` seconds) has its trials re-queued on the others and is reconnected with
exponential back-off.
"""

from __future__ import annotations

import json
import logging
import posixpath
import shlex
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

import nascore
from nascore.engine import TrialEvent, TrialResources
from nascore.errors import EngineError
from nascore_engines.training_service import protocol
from nascore_engines.training_service.codesync import CodeDirectory, make_private_dir
from nascore_engines.training_service.engine import ServiceLink
from nascore_engines.training_service.options import RemoteMachine, TrainingServiceOptions
from nascore_engines.training_service.pool import PoolTrial
from nascore_engines.training_service.ssh import (
    ConnectError,
    HostKeys,
    SSHError,
    connect,
    import_paramiko,
    run_command,
)

__all__ = ["RemoteService", "check_settings", "PROBE"]

_log = logging.getLogger(__name__)

#: How long to wait for a machine's agent to start its first worker (imports torch).
READY_TIMEOUT = 300.0

#: Run with the machine's Python: what is installed there (imports nothing heavy).
PROBE = """
import json, os, platform, sys
from importlib.metadata import PackageNotFoundError, version
def v(name):
    try:
        return version(name)
    except PackageNotFoundError:
        return None
print(json.dumps({"python": platform.python_version(), "executable": sys.executable, "home": os.path.expanduser("~"),
                  "nascore": v("nascore"), "nascore_engines": v("nascore-engines")}))
"""

def shell_path(path: str) -> str:
    """``path`` quoted for the remote shell, with a leading ``~/`` still meaning the login's home."""
    if path.startswith("~/"):
        return '"$HOME"/' + shlex.quote(path[2:])
    return shlex.quote(path)


def _engines_version() -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("nascore-engines")
    except PackageNotFoundError:
        return None


def check_settings(settings: TrainingServiceOptions, experiments_root: Path | None = None) -> None:
    """Errors that need no connection.

    Paramiko missing, no way to log in, a key file that does not exist, and a code directory that is
    missing, unset while the current folder is the home folder, or over ``code_max_size``/``code_max_files``
    (``experiments_root``, the folder experiments are stored in, is never copied).
    """
    import_paramiko()
    for index, machine in enumerate(settings.machines):
        field = f"engine_options.machines[{index}]"
        if machine.key_file is None and not machine.use_agent:
            raise EngineError(f"{field} ({machine.label}): set key_file, or use_agent = true to log in with the SSH agent")
        if machine.key_file is not None and not machine.key_file.is_file():
            raise EngineError(f"{field}.key_file: {str(machine.key_file)!r} does not exist ({machine.label})")
    CodeDirectory.from_settings(settings, experiments_root).select()


class _Machine:
    """One remote machine: its connection, agent and the trials running there."""

    def __init__(self, index: int, spec: RemoteMachine) -> None:
        self.index = index
        self.spec = spec
        self.label = spec.label
        self.field = f"engine_options.machines[{index}]"
        self.up = False
        self.client: Any = None
        self.channel: Any = None
        self.outbox: protocol.Outbox | None = None
        self.seats = 0
        self.trials: dict[int, PoolTrial] = {}
        self.evaluator_keys: set[str] = set()
        self.generation = 0
        self.stdout: Any = None
        self.stderr: deque[str] = deque(maxlen=40)
        self.reconnecting = False

    def free(self) -> int:
        return self.seats - len(self.trials) if self.up else 0


class RemoteService:
    """Runs trials on the machines of ``engine_options.machines``.

    :param link: the engine's callbacks (from the service's threads): trial events, trials whose machine
        dropped (with the reason and how many times each dropped), and a machine that came (back) up, so
        queued trials can start.
    """

    name = "remote"

    def __init__(
        self,
        resources: TrialResources,
        settings: TrainingServiceOptions,
        experiment_id: str,
        link: ServiceLink,
        experiments_root: Path | None = None,
    ) -> None:
        self.resources = resources
        self.settings = settings
        self.experiment_id = experiment_id
        self.on_event = link.emit
        self.on_requeue = link.requeue
        self.on_change = link.kick
        self.machines = [_Machine(i, m) for i, m in enumerate(settings.machines)]
        self.host_keys = HostKeys(settings)
        self.code = CodeDirectory.from_settings(settings, experiments_root)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._drops: dict[int, int] = {}
        self._down_since: float | None = None
        self._threads: list[threading.Thread] = []

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        """Bring every machine up (in parallel).

        :raises EngineError: a machine's host key, login, nascore version or GPUs are wrong, or no
            machine can be reached at all. Machines merely unreachable while others work are retried.
        """
        self.code.select()  # a code directory over its limits is one error, not one per machine
        errors: dict[int, BaseException] = {}

        def up(machine: _Machine) -> None:
            try:
                self._bring_up(machine)
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors[machine.index] = exc

        threads = [threading.Thread(target=up, args=(m,), name=f"nascore-connect-{m.label}") for m in self.machines]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        fatal = [e for e in errors.values() if not isinstance(e, ConnectError)]
        if fatal or len(errors) == len(self.machines):
            self.shutdown()
            problems = fatal or list(errors.values())
            if len(problems) == 1:
                raise problems[0]
            raise EngineError(f"{len(problems)} remote machines cannot be used:\n- " + "\n- ".join(map(str, problems)))
        for index, exc in errors.items():
            machine = self.machines[index]
            _log.warning("Machine %s is unreachable (%s); retrying with back-off", machine.label, exc)
            self._schedule_reconnect(machine)
        _log.info("Remote training service: %s", ", ".join(f"{m.label} ({m.seats} seat(s))" for m in self.machines if m.up))

    def shutdown(self) -> None:
        self._stop.set()
        with self._lock:
            machines = list(self.machines)
            for machine in machines:
                machine.up = False
                machine.trials.clear()
        for machine in machines:
            self._close(machine, graceful=True)
        for thread in list(self._threads):
            if thread is not threading.current_thread():
                thread.join(timeout=10)

    # --- the engine's view ----------------------------------------------------------------------

    def capacity(self) -> int:
        total = 0
        for machine in self.machines:
            if machine.seats:
                total += machine.seats
            else:  # not connected yet: its configured size
                total += machine.spec.max_trials or self.resources.trial_concurrency
        return total

    def free_seats(self) -> int:
        with self._lock:
            if self._stop.is_set():
                return 0
            return sum(m.free() for m in self.machines)

    def running(self) -> int:
        with self._lock:
            return sum(len(m.trials) for m in self.machines)

    def run(self, trial: PoolTrial) -> None:
        with self._lock:
            candidates = [m for m in self.machines if m.free() > 0]
            if not candidates:
                raise EngineError(f"no remote machine has a free seat for trial {trial.trial_id}")
            machine = max(candidates, key=lambda m: (m.free(), -m.index))
            machine.trials[trial.trial_id] = trial
            with_evaluator = trial.evaluator_key not in machine.evaluator_keys
            machine.evaluator_keys.add(trial.evaluator_key)
            assert machine.outbox is not None
            machine.outbox.send({
                "op": "run", "trial_id": trial.trial_id, "model": trial.model, "evaluator_key": trial.evaluator_key,
                "evaluator": trial.evaluator if with_evaluator else None, "seed": trial.seed,
            })
        _log.debug("Trial %d -> machine %s", trial.trial_id, machine.label)

    def unavailable(self) -> str | None:
        with self._lock:
            if any(m.up for m in self.machines):
                return None
            down_since = self._down_since
        timeout = float(self.settings.all_down_timeout)  # type: ignore[arg-type]
        if down_since is not None and time.monotonic() - down_since > timeout:
            last = "; ".join(f"{m.label}: {m.stderr[-1] if m.stderr else 'unreachable'}" for m in self.machines)
            return (f"no remote machine has been reachable for {timeout:g} s (engine_options.all_down_timeout); "
                    f"last: {last}")
        return None

    # --- machines -----------------------------------------------------------------------------

    def _bring_up(self, machine: _Machine) -> None:
        spec = machine.spec
        client = connect(spec, self.settings, self.host_keys, machine.index)
        try:
            info = self._probe(client, machine)
            workdir = spec.workdir
            if workdir.startswith("~/"):
                workdir = workdir[2:]
            if not workdir.startswith("/"):
                workdir = posixpath.join(info["home"], workdir)
            code_dir = posixpath.join(workdir, "code", self.code.remote_name)
            sftp = client.open_sftp()
            try:
                started = time.monotonic()
                try:
                    make_private_dir(sftp, posixpath.join(workdir, "code"))
                except OSError as exc:
                    raise EngineError(
                        f"machine {machine.label}: cannot make the private folder {workdir}/code there ({exc}); set "
                        f"{machine.field}.workdir to a folder of your own"
                    ) from None
                report = self.code.sync(sftp, code_dir)
            finally:
                sftp.close()
            _log.info(
                "Machine %s: code directory synced to %s (%d file(s) copied, %d unchanged, %d deleted) in %.2fs",
                machine.label, code_dir, len(report.uploaded), report.unchanged, len(report.deleted),
                time.monotonic() - started,
            )
            channel, outbox, ready = self._start_agent(client, machine, workdir, code_dir)
        except BaseException:
            client.close()
            raise
        with self._lock:
            if self._stop.is_set():
                client.close()
                return
            machine.client, machine.channel, machine.outbox = client, channel, outbox
            machine.seats = int(ready["seats"])
            machine.trials.clear()
            machine.evaluator_keys.clear()
            machine.generation += 1
            machine.up = True
            self._down_since = None
            generation = machine.generation
        reader = threading.Thread(target=self._read, args=(machine, generation), name=f"nascore-remote-{machine.label}", daemon=True)
        self._threads.append(reader)
        reader.start()
        _log.info("Machine %s is up: %d seat(s), GPUs %s, agent pid %s", machine.label, machine.seats, ready.get("gpus") or "none", ready.get("pid"))

    def _probe(self, client: Any, machine: _Machine) -> dict[str, Any]:
        spec = machine.spec
        python = spec.python_command
        where = f"{machine.field}.{'virtualenv' if spec.virtualenv else 'python'}"
        status, out, err = run_command(client, f"{shell_path(python)} -c {shlex.quote(PROBE)}",
                                       float(self.settings.connect_timeout) * 4, machine.label)  # type: ignore[arg-type]
        if status != 0:
            raise EngineError(
                f"machine {machine.label}: cannot run {python!r} there (exit status {status}: "
                f"{err.strip().splitlines()[-1] if err.strip() else 'no output'}); set {where} to a Python that has "
                "nascore and nascore-engines installed"
            )
        try:
            info = json.loads(out.strip().splitlines()[-1])
        except (ValueError, IndexError):
            raise EngineError(f"machine {machine.label}: {python!r} printed something unexpected: {out[-300:]!r}") from None
        local, local_engines = nascore.__version__, _engines_version()
        install = f"`{python} -m pip install nascore=={local} nascore-engines=={local_engines}`"
        if info.get("nascore") is None or info.get("nascore_engines") is None:
            missing = "nascore" if info.get("nascore") is None else "nascore-engines"
            raise EngineError(
                f"machine {machine.label}: {missing} is not installed for {info.get('executable', python)}; "
                f"install it there with {install}, or set {where} to a Python that has it"
            )
        if info["nascore"] != local or info["nascore_engines"] != local_engines:
            raise EngineError(
                f"machine {machine.label} has nascore {info['nascore']} and nascore-engines {info['nascore_engines']} "
                f"({info.get('executable', python)}), but this experiment runs nascore {local} and nascore-engines "
                f"{local_engines}: install the same versions there with {install}, or set {where} to a Python that has them"
            )
        return info

    def _start_agent(self, client: Any, machine: _Machine, workdir: str, code_dir: str) -> tuple[Any, protocol.Outbox, dict]:
        spec = machine.spec
        command = (  # umask: the experiment folders and logs the agent and its workers write are the login's only
            f"umask 077 && cd {shlex.quote(code_dir)} && PYTHONPATH={shlex.quote(code_dir)}${{PYTHONPATH:+:$PYTHONPATH}} "
            f"exec {shell_path(spec.python_command)} -u -m nascore_engines.training_service.agent"
        )
        transport = client.get_transport()
        channel = transport.open_session()
        channel.exec_command(command)
        stdout = channel.makefile("rb")
        stderr = channel.makefile_stderr("rb")
        threading.Thread(target=self._read_stderr, args=(machine, channel, stderr),
                         name=f"nascore-remote-{machine.label}-stderr", daemon=True).start()
        outbox = protocol.Outbox(channel.makefile_stdin("wb"), f"remote-{machine.label}")
        outbox.send({
            "op": "start",
            "protocol": protocol.PROTOCOL_VERSION,
            "machine": machine.label,
            "field": machine.field,
            "experiment_id": self.experiment_id,
            "workdir": workdir,
            "code_dir": code_dir,
            "trial_gpu_number": self.resources.trial_gpu_number,
            "gpu_indices": spec.gpu_indices,
            "max_trials_per_gpu": spec.max_trials_per_gpu,
            "max_trials": spec.max_trials or self.resources.trial_concurrency,
            "trial_timeout": self.resources.trial_timeout,
            "memory_limit": self.resources.trial_memory_limit,
            "heartbeat": self.settings.heartbeat,
            "ready_timeout": READY_TIMEOUT,
        })
        channel.settimeout(READY_TIMEOUT)
        try:
            line = stdout.readline()
        except (TimeoutError, OSError) as exc:
            raise ConnectError(f"machine {machine.label}: the agent did not answer: {exc}", machine.label) from None
        if not line:
            status = channel.recv_exit_status()
            raise EngineError(
                f"machine {machine.label}: the agent exited (status {status}) before it was ready; its last output:\n"
                + "\n".join(machine.stderr)
            )
        answer = protocol.decode(line)
        if answer["op"] == "error":
            raise EngineError(f"machine {machine.label}: {answer['message']}")
        if answer["op"] != "ready":
            raise EngineError(f"machine {machine.label}: unexpected answer from the agent: {answer}")
        channel.settimeout(float(self.settings.heartbeat))  # type: ignore[arg-type]
        machine.stdout = stdout
        return channel, outbox, answer

    def _read_stderr(self, machine: _Machine, channel: Any, stream: Any) -> None:
        """Keep the agent's log (its stderr) flowing, so a full channel window never blocks it."""
        while True:
            try:
                raw = stream.readline()
            except TimeoutError:  # the channel's timeout is the heartbeat's; quiet stderr is fine
                if channel.closed or self._stop.is_set():
                    return
                continue
            except (OSError, EOFError):
                return
            if not raw:
                return
            line = raw.decode("utf-8", "replace").rstrip()
            machine.stderr.append(line)
            _log.debug("[%s] %s", machine.label, line)

    def _read(self, machine: _Machine, generation: int) -> None:
        stdout = machine.stdout
        reason = "the connection closed"
        try:
            for line in stdout:
                message = protocol.decode(line)
                op = message["op"]
                if op == "event":
                    self._on_event(machine, generation, protocol.event_from_dict(message["event"]))
                elif op == "log":
                    self._on_log(machine, int(message["trial_id"]), message["text"])
                elif op == "error":
                    _log.error("Machine %s: %s", machine.label, message.get("message"))
        except TimeoutError:
            reason = f"it sent nothing for {float(self.settings.heartbeat):g} s (engine_options.heartbeat)"  # type: ignore[arg-type]
        except (OSError, EOFError, EngineError) as exc:
            reason = f"{type(exc).__name__}: {exc}"
        except Exception as exc:  # paramiko.SSHException and friends
            reason = f"{type(exc).__name__}: {exc}"
        channel = machine.channel
        if channel is not None and channel.exit_status_ready():  # the agent ended; the connection may be fine
            last = "\n".join(list(machine.stderr)[-5:])
            reason = f"its agent exited with status {channel.recv_exit_status()}" + (f"; its last output:\n{last}" if last else "")
        self._lost(machine, generation, reason)

    def _on_event(self, machine: _Machine, generation: int, event: TrialEvent) -> None:
        with self._lock:
            reporting = {i for trial in machine.trials.values() for i in trial.reporting_ids}  # members of groups too
            if machine.generation != generation or event.trial_id not in reporting:
                return
            if event.ends_trial or event.kind == "abort":  # an aborted trial no longer holds its seat
                del machine.trials[event.trial_id]
        self.on_event(event)

    def _on_log(self, machine: _Machine, trial_id: int, text: str) -> None:
        with self._lock:
            trial = machine.trials.get(trial_id)
        if trial is None:
            return
        try:
            trial.log_path.parent.mkdir(parents=True, exist_ok=True)
            with open(trial.log_path, "a", encoding="utf-8") as f:
                f.write(text)
        except OSError as exc:  # this machine is fine; the experiment's folder is not: abort, do not drop the machine
            from nascore_engines.folders import cannot_write

            with self._lock:
                if machine.trials.pop(trial_id, None) is None:
                    return
            self.on_event(TrialEvent.abort(trial_id, cannot_write(trial_id, trial.log_path.parent, exc)))

    def _lost(self, machine: _Machine, generation: int, reason: str) -> None:
        with self._lock:
            if machine.generation != generation or not machine.up or self._stop.is_set():
                return
            machine.up = False
            trials = list(machine.trials.values())
            machine.trials.clear()
            for trial in trials:
                self._drops[trial.trial_id] = self._drops.get(trial.trial_id, 0) + 1
            drops = dict(self._drops)
            if not any(m.up for m in self.machines):
                self._down_since = time.monotonic()
        text = f"machine {machine.label} dropped: {reason}"
        _log.warning("%s; re-queueing its %d trial(s) %s", text, len(trials), [t.trial_id for t in trials])
        self._close(machine, graceful=False)
        if trials:
            self.on_requeue(trials, text, drops)
        self._schedule_reconnect(machine)

    def _close(self, machine: _Machine, graceful: bool) -> None:
        outbox, client = machine.outbox, machine.client
        machine.outbox, machine.client, machine.channel = None, None, None
        if outbox is not None and graceful:
            outbox.send({"op": "shutdown"})
            outbox.close(timeout=2.0)
        if client is not None:
            try:
                client.close()
            except Exception:  # noqa: BLE001 - closing a broken connection may fail in many ways
                pass

    def _schedule_reconnect(self, machine: _Machine) -> None:
        with self._lock:
            if machine.reconnecting or self._stop.is_set():
                return
            machine.reconnecting = True
        thread = threading.Thread(target=self._reconnect, args=(machine,), name=f"nascore-reconnect-{machine.label}", daemon=True)
        self._threads.append(thread)
        thread.start()

    def _reconnect(self, machine: _Machine) -> None:
        delay = float(self.settings.retry_delay)  # type: ignore[arg-type]
        attempt = 0
        try:
            while not self._stop.wait(delay):
                attempt += 1
                try:
                    self._bring_up(machine)
                except (SSHError, EngineError, OSError) as exc:
                    machine.stderr.append(str(exc).splitlines()[0])
                    delay = min(delay * 2, float(self.settings.retry_max_delay))  # type: ignore[arg-type]
                    _log.info("Machine %s: reconnection attempt %d failed (%s); next in %.1fs", machine.label, attempt,
                              str(exc).splitlines()[0], delay)
                    continue
                _log.warning("Machine %s is back after %d attempt(s)", machine.label, attempt)
                self.on_change()
                return
        finally:
            with self._lock:
                machine.reconnecting = False
