"""The writer lock: one writer per experiment, released by the OS, seen by readers without writing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from nascore.errors import ExperimentLockedError
from nascore.experiment.lock import WriterLock, describe_holder, lock_holder

HOLD = textwrap.dedent(
    """
    import sys
    from nascore.experiment.lock import WriterLock
    lock = WriterLock(sys.argv[1])
    lock.acquire()
    print("locked", flush=True)
    sys.stdin.read()  # hold it until the test closes our stdin, or kills us
    """
)


@pytest.fixture
def holder(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    yield proc
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def test_second_writer_is_refused_naming_the_holder(tmp_path, holder):
    with pytest.raises(ExperimentLockedError) as info:
        WriterLock(tmp_path).acquire()
    message = str(info.value)
    assert f"pid {holder.pid}" in message and "since" in message and "host" in message
    assert lock_holder(tmp_path)["pid"] == holder.pid


def test_kill_minus_nine_releases_the_lock(tmp_path, holder):
    assert lock_holder(tmp_path) is not None
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    assert lock_holder(tmp_path) is None
    with WriterLock(tmp_path) as lock:
        assert lock.held and lock_holder(tmp_path)["pid"] == os.getpid()
    assert lock_holder(tmp_path) is None


def test_readers_see_the_holder_on_a_read_only_folder(tmp_path, holder, mounts):
    mounts.read_only(tmp_path)
    before = sorted((p.name, p.stat().st_mtime_ns) for p in tmp_path.iterdir())
    assert lock_holder(tmp_path)["pid"] == holder.pid
    assert sorted((p.name, p.stat().st_mtime_ns) for p in tmp_path.iterdir()) == before


def test_no_lock_file_means_nobody_holds_it(tmp_path):
    assert lock_holder(tmp_path) is None
    assert describe_holder(None) == "another process"
