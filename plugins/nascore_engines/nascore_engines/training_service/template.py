"""Warm workers in milliseconds: a template process forks them with torch and nascore already imported.

A worker started as a new interpreter (``python -m nascore_engines.training_service.worker``) spends
about a second importing torch, nascore and the user's modules before its first trial, which
dominates short searches. :class:`~.pool.WorkerPool` (``worker_start="auto"``, what the local
service uses) starts its workers from a *template* instead: a single-threaded process that has
already imported all that, and forks a worker (a few milliseconds) whenever the pool asks for one.
The template is per pool (so per experiment and engine), and shut down with the pool; its workers
are its children, it reaps them and tells the pool how each ended, so exit codes and signals read
as they do for spawned workers, and no zombie is left behind.

Two kinds of template, tried in this order:

``fork``
    The experiment process itself is forked once, when the pool starts: the template then has
    everything the experiment imported (torch, nascore, the user's modules and ``__main__``) at
    no cost. Refused (the next kind is used) when the process has touched CUDA (``torch.cuda`` was
    initialized or the CUDA driver is loaded: a forked child could not use the GPU) or when torch's
    OpenMP threads were already started (a forked child would hang in its first parallel op): the
    template checks that in a forked probe that runs one parallel op, killed if it hangs.
``exec``
    A fresh interpreter (``python -m nascore_engines.training_service.template``) that imports
    torch, nascore and the worker (and runs no torch op, so it starts no thread), then forks workers.

Forked workers keep the experiment's ``torch.get_num_threads()`` (``fork``) or torch's default
(``exec``), and otherwise start as a fresh worker would: their own session, the seat's environment
(``CUDA_VISIBLE_DEVICES``) and working directory, default signal handlers, fresh ``sys.std*``
streams and logging (the experiment's handlers are dropped), a new random state for torch and
numpy, none of the experiment's files or sockets (the ``fork`` template points every descriptor it
inherited at ``/dev/null``), and they leave with ``os._exit`` (never running the experiment's
``atexit`` handlers or finalizers). Where no template can be used (no ``os.fork``, a template that
fails to start) the pool starts workers as new interpreters, as before, and logs why.

The control channel is a ``SOCK_SEQPACKET`` Unix socket pair: one JSON message per packet, the
worker's stdin, stdout and stderr descriptors passed with ``SCM_RIGHTS``.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import queue
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nascore_engines.training_service.worker import flush_std

__all__ = ["ForkedProcess", "Template", "TemplateError", "fork_unfit_reason"]

_log = logging.getLogger(__name__)

#: Seconds the probe of a ``fork`` template may take to run one parallel torch op before it counts as hung.
PROBE_TIMEOUT = 2.0
#: Seconds to wait for the template to answer a fork request.
FORK_TIMEOUT = 20.0
#: Modules an ``exec`` template imports before it forks workers (what every trial needs).
PRELOAD = (
    "torch",
    "nascore",
    "nascore.engine",
    "nascore.serialization",
    "nascore.trial",
    "nascore_engines.folders",
    "nascore_engines.training_service.protocol",
    "nascore_engines.training_service.worker",
)
_BUFSIZE = 1 << 18
_MAXFDS = 3


class TemplateError(Exception):
    """The template cannot start a worker; ``usable``: it runs and may start the next one (a fork failed)."""

    def __init__(self, message: str, usable: bool = False) -> None:
        super().__init__(message)
        self.usable = usable


# --- the pool's side ------------------------------------------------------------------------------


class ForkedProcess:
    """A worker forked by a template; the parts of :class:`subprocess.Popen` the pool uses.

    ``returncode`` follows Popen's convention (negative: killed by that signal). It is known when the
    template reports the worker's end; a worker whose template died is killed, and ``note`` says so.
    """

    def __init__(self, template: Template, pid: int, stdin: int, stdout: int) -> None:
        self.template = template
        self.pid = pid
        self.stdin = os.fdopen(stdin, "wb")
        self.stdout = os.fdopen(stdout, "rb")
        self.returncode: int | None = None
        self.note: str | None = None
        self._ended = threading.Event()

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if not self._ended.wait(timeout):
            raise subprocess.TimeoutExpired(f"worker {self.pid}", timeout or 0.0)
        assert self.returncode is not None
        return self.returncode

    def kill(self) -> None:
        """SIGKILL the worker's process group (by its template, which knows whether it still runs)."""
        if self.returncode is None:
            self.template.kill(self)

    def _ended_with(self, returncode: int, note: str | None = None) -> None:
        if self.returncode is None:
            self.returncode, self.note = returncode, note
        self._ended.set()


class Template:
    """The pool's handle on a running template process (:meth:`start` makes one)."""

    def __init__(self, sock: socket.socket, kind: str, pid: int, popen: subprocess.Popen[bytes] | None) -> None:
        self.kind = kind
        self.pid = pid
        self._sock = sock
        self._popen = popen
        self._send_lock = threading.Lock()
        self._fork_lock = threading.Lock()
        self._replies: queue.SimpleQueue[dict[str, Any]] = queue.SimpleQueue()
        self._workers: dict[int, ForkedProcess] = {}
        self._workers_lock = threading.Lock()
        self._reaped = False
        self._closing = False
        self.alive = True
        self.started_in: float | None = None
        self._early_exits: dict[int, int] = {}  # workers whose end overtook the reply to their fork request
        self._reader = threading.Thread(target=self._read, name=f"nascore-template-{pid}", daemon=True)

    # --- starting -------------------------------------------------------------------------------

    @classmethod
    def start(
        cls,
        log_path: Path,
        *,
        kind: str = "auto",
        python: str | None = None,
        sys_path: Sequence[str] = (),
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
        ready_timeout: float = 300.0,
    ) -> Template | None:
        """A running template of ``kind`` (``auto``: ``fork`` where fit, else ``exec``), or ``None`` (logged).

        ``python``: the workers' interpreter; another than this one rules out ``fork``.
        """
        began = time.perf_counter()
        if not hasattr(os, "fork") or not hasattr(socket, "send_fds") or not sys.platform.startswith("linux"):
            # macOS can fork, but not safely once system frameworks are loaded (multiprocessing spawns there too)
            _log.info("Workers start as new processes: this platform (%s) cannot fork them from a template", sys.platform)
            return None
        kinds = ["fork", "exec"] if kind == "auto" else [kind]
        same_python = python is None or _same_file(python, sys.executable)
        for k in kinds:
            if k == "fork":
                why = "engine_options.python is another interpreter" if not same_python else fork_unfit_reason()
                if why is None:
                    template, why = cls._start_fork(log_path)
                    if template is not None:
                        template.started_in = time.perf_counter() - began
                        return template
                _log.info("Workers are not forked from the experiment process (%s)%s", why,
                          "; a fresh template process starts them" if "exec" in kinds else "")
            elif k == "exec":
                try:
                    template = cls._start_exec(log_path, python or sys.executable, sys_path, cwd, env, ready_timeout)
                except TemplateError as exc:
                    _log.warning("The worker template process did not start (%s); workers start as new processes", exc)
                    return None
                template.started_in = time.perf_counter() - began
                return template
            else:
                raise ValueError(f"unknown template kind {k!r} (auto, fork or exec)")
        _log.info("Workers start as new processes")
        return None

    @classmethod
    def _start_fork(cls, log_path: Path) -> tuple[Template | None, str]:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        flush_std()
        pid = os.fork()
        if pid == 0:  # the template
            code = 70
            try:
                ours.detach()  # its number is neutralized below with the rest of the parent's descriptors
                _become_fork_template(theirs, log_fd)
                code = 0
            except BaseException:  # noqa: BLE001 - nothing may unwind into the experiment's code in this process
                try:
                    traceback.print_exc()
                except BaseException:  # noqa: BLE001
                    pass
            finally:
                os._exit(code)
        theirs.close()
        os.close(log_fd)
        template = cls(ours, "fork", pid, None)
        try:
            hello = template._hello(PROBE_TIMEOUT + 10.0)
        except TemplateError as exc:
            template.close()
            return None, str(exc)
        if hello["op"] != "ready":
            template.close()
            return None, str(hello.get("why", hello))
        template._reader.start()
        return template, ""

    @classmethod
    def _start_exec(cls, log_path: Path, python: str, sys_path: Sequence[str], cwd: Path | None,
                    env: dict[str, str] | None, ready_timeout: float) -> Template:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            with open(log_path, "ab") as log:
                popen = subprocess.Popen(
                    [python, "-u", "-m", "nascore_engines.training_service.template", str(theirs.fileno())],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=log, pass_fds=(theirs.fileno(),), cwd=cwd,
                    env={**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"}, start_new_session=True,
                )
        except OSError as exc:
            ours.close()
            raise TemplateError(f"cannot start {python!r}: {exc.strerror or exc}") from None
        finally:
            theirs.close()
        template = cls(ours, "exec", popen.pid, popen)
        template._send({"op": "init", "sys_path": list(sys_path), "preload": list(PRELOAD)})
        try:
            hello = template._hello(ready_timeout)
        except TemplateError:
            template.close()
            raise
        if hello["op"] != "ready":
            template.close()
            raise TemplateError(str(hello.get("why", hello)))
        template._reader.start()
        return template

    def _hello(self, timeout: float) -> dict[str, Any]:
        """The template's first message (``ready``, or ``unfit`` with ``why``), before the reader thread runs."""
        self._sock.settimeout(timeout)
        try:
            data, _, _, _ = socket.recv_fds(self._sock, _BUFSIZE, _MAXFDS)
        except TimeoutError:
            raise TemplateError(f"the template process (pid {self.pid}) was not ready after {timeout:g} s") from None
        except OSError as exc:
            raise TemplateError(f"the template process (pid {self.pid}) failed: {exc}") from None
        finally:
            self._sock.settimeout(None)
        if not data:
            raise TemplateError(f"the template process (pid {self.pid}) exited before it was ready")
        return json.loads(data)

    # --- workers --------------------------------------------------------------------------------

    def fork_worker(self, *, env: dict[str, str], cwd: Path | None, stderr_path: Path) -> ForkedProcess:
        """A new worker: its stdin and stdout are pipes to this process, its stderr ``stderr_path`` (appended)."""
        stdin_r, stdin_w = os.pipe()
        stdout_r, stdout_w = os.pipe()
        try:
            err = os.open(stderr_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        except OSError:
            for fd in (stdin_r, stdin_w, stdout_r, stdout_w):
                os.close(fd)
            raise
        mine = [stdin_w, stdout_r]
        try:
            with self._fork_lock:
                if not self.alive:
                    raise TemplateError(f"the template process (pid {self.pid}) is gone")
                self._send({"op": "fork", "env": env, "cwd": None if cwd is None else str(cwd)}, [stdin_r, stdout_w, err])
                try:
                    reply = self._replies.get(timeout=FORK_TIMEOUT)
                except queue.Empty:
                    raise TemplateError(f"the template process (pid {self.pid}) did not fork a worker in {FORK_TIMEOUT:g} s") from None
                if reply["op"] != "forked":
                    raise TemplateError(str(reply.get("error", reply)), usable=self.alive)
                proc = ForkedProcess(self, int(reply["pid"]), stdin_w, stdout_r)
                mine = []
                with self._workers_lock:
                    self._workers[proc.pid] = proc
                    early = self._early_exits.pop(proc.pid, None)
                if early is not None:
                    proc._ended_with(early)
                return proc
        finally:
            for fd in (stdin_r, stdout_w, err, *mine):
                os.close(fd)

    def kill(self, proc: ForkedProcess) -> None:
        """SIGKILL a worker's process group; the template does it while it lives (no pid reuse race)."""
        if self.alive:
            try:
                self._send({"op": "kill", "pid": proc.pid})
                return
            except TemplateError:
                pass
        if proc.returncode is None:
            _killpg(proc.pid)

    # --- ending ---------------------------------------------------------------------------------

    def close(self, timeout: float = 10.0) -> None:
        """Stop the template: it kills and reaps the workers still running, then exits; reaped here."""
        self._closing = True
        if self.alive:
            try:
                self._send({"op": "stop"})
            except TemplateError:
                pass
        if not self._wait_exit(timeout):
            _log.warning("The worker template (pid %d) did not stop in %g s; killing it", self.pid, timeout)
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self._wait_exit(None)
        if self._reader.is_alive() and self._reader is not threading.current_thread():
            self._reader.join(timeout)
        self._sock.close()
        self._orphan_workers("the worker template was stopped")

    def _wait_exit(self, timeout: float | None) -> bool:
        if self._popen is not None:
            try:
                self._popen.wait(timeout)
            except subprocess.TimeoutExpired:
                return False
            return True
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._workers_lock:
                if self._reaped:
                    return True
                try:
                    pid, _ = os.waitpid(self.pid, 0 if deadline is None else os.WNOHANG)
                except ChildProcessError:
                    pid = self.pid
                if pid == self.pid:
                    self._reaped = True
                    return True
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(0.005)

    def _orphan_workers(self, why: str) -> None:
        """Workers whose template is gone: nobody can report their end any more, so they are killed."""
        with self._workers_lock:
            left = [p for p in self._workers.values() if p.returncode is None]
        for proc in left:
            _killpg(proc.pid)
            proc._ended_with(-signal.SIGKILL, why)

    # --- messages -------------------------------------------------------------------------------

    def _send(self, message: dict[str, Any], fds: Sequence[int] = ()) -> None:
        data = json.dumps(message).encode()
        with self._send_lock:
            try:
                socket.send_fds(self._sock, [data], list(fds))
            except OSError as exc:
                raise TemplateError(f"the template process (pid {self.pid}) is gone: {exc}") from None

    def _read(self) -> None:
        while True:
            try:
                data, fds, _, _ = socket.recv_fds(self._sock, _BUFSIZE, _MAXFDS)
            except OSError:
                data, fds = b"", []
            for fd in fds:
                os.close(fd)
            if not data:
                break
            message = json.loads(data)
            if message["op"] == "exit":
                pid, code = int(message["pid"]), int(message["returncode"])
                with self._workers_lock:
                    proc = self._workers.pop(pid, None)
                    if proc is None:
                        self._early_exits[pid] = code
                if proc is not None:
                    proc._ended_with(code)
            else:
                self._replies.put(message)
        self.alive = False
        self._replies.put({"op": "error", "error": f"the template process (pid {self.pid}) exited"})
        if not self._closing:
            _log.warning("The worker template process (pid %d) exited; its workers are stopped and new workers "
                         "start as new processes", self.pid)
            self._wait_exit(10.0)
            self._orphan_workers(f"its template process (pid {self.pid}) died")


def fork_unfit_reason() -> str | None:
    """Why this process must not be forked into a template (``None``: it may be, pending the OpenMP probe)."""
    torch = sys.modules.get("torch")
    if torch is not None:
        cuda = getattr(torch, "cuda", None)
        try:
            if cuda is not None and cuda.is_initialized():
                return "CUDA is initialized in the experiment process"
        except Exception:  # noqa: BLE001 - a broken torch.cuda: do not fork
            return "torch.cuda cannot say whether CUDA is initialized"
    try:
        with open("/proc/self/maps") as maps:
            if any("libcuda.so" in line for line in maps):
                return "the CUDA driver is loaded in the experiment process (torch.cuda.is_available() or similar ran)"
    except OSError:
        pass
    return None


# --- the template's side --------------------------------------------------------------------------


def _become_fork_template(sock: socket.socket, log_fd: int) -> None:
    """In the freshly forked experiment process: drop the experiment's state, probe OpenMP, then serve."""
    os.setsid()  # Ctrl-C in the terminal reaches the experiment, not the template
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    keep = {0, 1, 2, sock.fileno()}
    for fd in _open_fds():  # the experiment's files, pipes and sockets: released, their numbers kept busy
        if fd not in keep:
            try:
                os.dup2(devnull, fd)
            except OSError:
                pass
    _default_signal_handlers()
    _fresh_process_state()
    threads = _torch_threads()
    why = _openmp_probe(threads)
    if why is not None:
        _send(sock, {"op": "unfit", "why": why})
        return
    _preload(PRELOAD)  # what the experiment has not imported yet, once here rather than in every worker
    _send(sock, {"op": "ready", "pid": os.getpid()})
    # Workers fork from a thread of their own, so their stacks (and faulthandler's dumps of a crash or a
    # timeout) start there, not under the experiment's frames that this process was forked from.
    wake = _wakeup()
    serving = threading.Thread(target=_serve, args=(sock, threads, wake), name="nascore-template")
    serving.start()
    serving.join()


def _exec_main(argv: list[str]) -> None:
    """``python -m nascore_engines.training_service.template FD``: a fresh template on socket ``FD``."""
    sock = socket.socket(fileno=int(argv[0]))
    data, _, _, _ = socket.recv_fds(sock, _BUFSIZE, _MAXFDS)
    if not data:
        os._exit(0)
    init = json.loads(data)
    for entry in reversed(init.get("sys_path", [])):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    _preload(init.get("preload", []))
    _send(sock, {"op": "ready", "pid": os.getpid()})
    _serve(sock, None, _wakeup())


def _preload(modules: Sequence[str]) -> None:
    import importlib

    for name in modules:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - the worker imports it again and reports the error with its trial
            print(f"the template could not import {name}:\n{traceback.format_exc()}", file=sys.stderr)


def _wakeup() -> tuple[int, int, float]:
    """A pipe that SIGCHLD writes to (set up in the main thread), and how often to look without it."""
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    try:  # a worker's end wakes the loop at once
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.set_wakeup_fd(wake_w)
        return wake_r, wake_w, 1.0
    except ValueError:  # pragma: no cover - not the main thread after all: poll
        return wake_r, wake_w, 0.02


def _serve(sock: socket.socket, threads: int | None, wake: tuple[int, int, float]) -> None:
    """Fork workers on request, kill them on request, report each one's end; stop when told or orphaned."""
    children: set[int] = set()
    wake_r, wake_w, tick = wake
    selector = selectors.DefaultSelector()
    selector.register(sock, selectors.EVENT_READ)
    selector.register(wake_r, selectors.EVENT_READ)
    stopping = False
    while True:
        for key, _ in selector.select(timeout=tick):
            if key.fileobj == wake_r:
                try:
                    while os.read(wake_r, 4096):
                        pass
                except BlockingIOError:
                    pass
                continue
            try:
                data, fds, _, _ = socket.recv_fds(sock, _BUFSIZE, _MAXFDS)
            except OSError:
                data, fds = b"", []
            if not data:  # the pool's process is gone: take the workers with us
                stopping = True
                break
            message = json.loads(data)
            op = message["op"]
            if op == "fork":
                try:
                    pid = _fork_worker(message, fds, [sock.fileno(), wake_r, wake_w], threads)
                except OSError as exc:
                    _send(sock, {"op": "error", "error": f"fork failed: {exc}"})
                else:
                    children.add(pid)
                    _send(sock, {"op": "forked", "pid": pid})
                finally:
                    for fd in fds:
                        os.close(fd)
            elif op == "kill":
                if int(message["pid"]) in children:  # not reaped yet: the pid is still this worker's
                    _killpg(int(message["pid"]))
            elif op == "stop":
                stopping = True
        _reap(sock, children)
        if stopping:
            for pid in children:
                _killpg(pid)
            while children:
                try:
                    pid, status = os.waitpid(-1, 0)
                except ChildProcessError:
                    break
                if pid in children:
                    children.discard(pid)
                    _send(sock, {"op": "exit", "pid": pid, "returncode": os.waitstatus_to_exitcode(status)})
            return


def _reap(sock: socket.socket, children: set[int]) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        if pid in children:
            children.discard(pid)
            _send(sock, {"op": "exit", "pid": pid, "returncode": os.waitstatus_to_exitcode(status)})


def _fork_worker(message: dict[str, Any], fds: list[int], close: list[int], threads: int | None) -> int:
    if len(fds) != 3:
        raise OSError(errno.EINVAL, f"a fork request needs 3 descriptors, got {len(fds)}")
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        os.setsid()
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
        for fd in {*fds, *close}:
            if fd > 2:
                os.close(fd)
        try:
            signal.set_wakeup_fd(-1)
        except ValueError:  # pragma: no cover
            pass
        _default_signal_handlers()
        os.environ.clear()
        os.environ.update(message["env"])
        if message.get("cwd"):
            os.chdir(message["cwd"])
        if threads is not None:
            import torch

            torch.set_num_threads(threads)
        _reseed()
        from nascore_engines.training_service.worker import main

        main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # noqa: BLE001 - reported in the worker log; nothing may unwind into the template
        try:
            traceback.print_exc()
        except BaseException:  # noqa: BLE001
            pass
    finally:
        flush_std()
        os._exit(code)
    return 0  # pragma: no cover - never reached


def _openmp_probe(threads: int | None) -> str | None:
    """Whether a forked child can run a parallel torch op (it hangs when the parent started OpenMP's threads)."""
    if threads is None or threads <= 1:
        return None
    pid = os.fork()
    if pid == 0:
        try:
            import torch

            torch.ones(1 << 17).exp_()  # 4x torch's grain size: a parallel region on every thread
        finally:
            os._exit(0)
    deadline = time.monotonic() + PROBE_TIMEOUT
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            if os.waitstatus_to_exitcode(status) != 0:
                return f"a forked probe failed to run a parallel torch op (exit status {os.waitstatus_to_exitcode(status)})"
            return None
        time.sleep(0.002)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return (f"torch's OpenMP threads were started in the experiment process (a parallel op with "
            f"{threads} threads hangs in a forked child)")


def _torch_threads() -> int | None:
    torch = sys.modules.get("torch")
    return None if torch is None else int(torch.get_num_threads())


def _fresh_process_state() -> None:
    """``sys.std*`` and logging as a new interpreter has them (the experiment's may hold locks or sockets)."""
    import io

    sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False))
    sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), write_through=True)
    sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), write_through=True, errors="backslashreplace")
    sys.__stdin__, sys.__stdout__, sys.__stderr__ = sys.stdin, sys.stdout, sys.stderr
    manager = logging.Logger.manager
    loggers = [logging.getLogger(), *(v for v in manager.loggerDict.values() if isinstance(v, logging.Logger))]
    for logger in loggers:  # dropped, not closed: closing would flush the experiment's buffers a second time
        logger.handlers = [h for h in logger.handlers if isinstance(h, logging.NullHandler)]
        logger.disabled = False
    logging.getLogger().setLevel(logging.WARNING)


def _default_signal_handlers() -> None:
    fresh = {signal.SIGINT: signal.default_int_handler, signal.SIGPIPE: signal.SIG_IGN}
    if hasattr(signal, "SIGXFSZ"):
        fresh[signal.SIGXFSZ] = signal.SIG_IGN
    for sig in signal.valid_signals():
        if sig in (signal.SIGKILL, signal.SIGSTOP):
            continue
        wanted = fresh.get(sig, signal.SIG_DFL)
        try:
            if signal.getsignal(sig) is not wanted:
                signal.signal(sig, wanted)
        except (OSError, ValueError, TypeError):
            pass


def _reseed() -> None:
    """A new random state for torch and numpy (``random`` is reseeded by Python itself after a fork)."""
    torch = sys.modules.get("torch")
    if torch is not None:  # the CPU generator (accelerators' start from their fixed default, as in a new process)
        torch.default_generator.seed()
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        numpy.random.seed()


# --- helpers --------------------------------------------------------------------------------------


def _send(sock: socket.socket, message: dict[str, Any]) -> None:
    try:
        sock.send(json.dumps(message).encode())
    except OSError:
        pass  # the pool's process is gone; the select loop sees it


def _killpg(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def _open_fds() -> list[int]:
    try:
        return sorted(int(name) for name in os.listdir("/proc/self/fd"))
    except OSError:
        import resource

        limit = min(resource.getrlimit(resource.RLIMIT_NOFILE)[0], 4096)
        return list(range(3, limit))


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return a == b




if __name__ == "__main__":
    _exec_main(sys.argv[1:])
