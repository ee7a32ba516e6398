"""One writer per experiment: an exclusive lock held by the process that runs it.

The lock is ``flock(2)`` on ``<experiment>/writer.lock``. The operating system releases it when the
process ends, however it ends (``kill -9`` included), so a dead experiment never stays locked. The
file names the holder (host, pid, since) so that a second writer is refused with a message saying
who holds it, and readers (``nascore list`` / ``show``) tell a running experiment from a dead one
by trying a shared lock, which needs no write access (read-only media work).
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import time
from pathlib import Path
from typing import Any

from nascore.errors import ExperimentLockedError, StoreError

__all__ = ["LOCK_NAME", "WriterLock", "lock_holder", "describe_holder"]

LOCK_NAME = "writer.lock"


class WriterLock:
    """The exclusive lock of the one process that writes an experiment.

    :param root: the experiment's folder.
    """

    def __init__(self, root: Path) -> None:
        self.path = Path(root) / LOCK_NAME
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock, or raise :class:`~nascore.errors.ExperimentLockedError` naming its holder."""
        if self._fd is not None:
            return
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise StoreError(
                f"cannot create the experiment lock {str(self.path)!r}: {exc.strerror}; "
                "the experiment folder must be writable to run the experiment"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = _read_holder(fd)
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise ExperimentLockedError(
                    f"experiment {self.path.parent.name} is already being run by {describe_holder(holder)}; "
                    "one experiment has one writer: wait for that run to end (or stop it), then resume. "
                    "Looking at it is fine meanwhile: `nascore show` / Experiment.view() only read."
                ) from None
            raise StoreError(f"cannot lock {str(self.path)!r}: {exc.strerror}") from None
        info = {"host": socket.gethostname(), "pid": os.getpid(), "since": time.time()}
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(info).encode(), 0)
        except OSError as exc:
            os.close(fd)
            raise StoreError(f"cannot write the experiment lock {str(self.path)!r}: {exc.strerror}") from None
        self._fd = fd

    def release(self) -> None:
        """Let another process run the experiment (also done by the OS when this process ends)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def __enter__(self) -> WriterLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def lock_holder(root: Path) -> dict[str, Any] | None:
    """Who runs the experiment in ``root`` now (``{"host", "pid", "since"}``), or ``None`` if nobody does.

    Never writes: it opens the lock file read-only and tries a shared lock, released at once.
    """
    path = Path(root) / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None  # never run by a version that locks, or not readable: nobody we can see
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            return _read_holder(fd) or {"host": "?", "pid": None, "since": None}
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def describe_holder(holder: dict[str, Any] | None) -> str:
    """``"pid 123 on host h (since 2026-12-04 21:00:00)"``, in words."""
    if not holder:
        return "another process"
    since = holder.get("since")
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(since)) if since else "an unknown time"
    return f"pid {holder.get('pid', '?')} on host {holder.get('host', '?')} (since {when})"


def _read_holder(fd: int) -> dict[str, Any] | None:
    try:
        data = os.pread(fd, 4096, 0)
        holder = json.loads(data.decode() or "null")
    except (OSError, ValueError):
        return None
    return holder if isinstance(holder, dict) else None
