"""Shared by every test: one intra-op torch thread, and folders that are read-only or full.

The models under test are tiny; one thread is faster than several fighting over the machine's cores,
and steady on a busy machine. Worker processes started by the tests set their own threads.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import torch


@pytest.fixture(autouse=True)
def one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# --- folders that fail: read-only and full ---------------------------------------------------------


class _Mounts:
    """Read-only bind mounts and small tmpfs disks made by a test, undone at its end.

    As root (CI), permissions do not stop writes, so a folder is made read-only with a read-only bind
    mount of itself; as another user, ``chmod`` is enough. A full disk is a small tmpfs.
    """

    def __init__(self) -> None:
        self.undo: list[tuple[str, Path, int | None]] = []

    def read_only(self, folder: Path) -> None:
        folder = Path(folder)
        if os.geteuid() != 0:
            self.undo.append(("chmod", folder, folder.stat().st_mode))
            folder.chmod(0o500)
            return
        _mount(["mount", "--bind", str(folder), str(folder)], "a read-only bind mount")
        self.undo.append(("umount", folder, None))
        _mount(["mount", "-o", "remount,bind,ro", str(folder)], "a read-only bind mount")

    def expect(self, folder: Path) -> None:
        """``folder`` will be made read-only by the code under test, as :meth:`read_only` does: undo it at the end."""
        self.undo.append(("umount", Path(folder), None) if os.geteuid() == 0 else ("chmod", Path(folder), 0o700))

    def writable(self, folder: Path) -> None:
        """Undo :meth:`read_only` for ``folder`` now."""
        for entry in [e for e in self.undo if e[1] == Path(folder)]:
            self._undo(entry)
            self.undo.remove(entry)

    def small_disk(self, folder: Path, size: str = "1m") -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        if os.geteuid() != 0:
            pytest.skip("a full disk needs a tmpfs mount (root); CI runs as root")
        _mount(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], "a tmpfs")
        self.undo.append(("umount", folder, None))
        return folder

    def _undo(self, entry: tuple[str, Path, int | None]) -> None:
        kind, folder, mode = entry
        if kind == "chmod":
            folder.chmod(mode or 0o700)
        else:
            subprocess.run(["umount", "-l", str(folder)], check=False, capture_output=True)

    def close(self) -> None:
        for entry in reversed(self.undo):
            self._undo(entry)
        self.undo.clear()


def _mount(command: list[str], what: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        pytest.fail(f"this test needs {what} ({' '.join(command)}): {result.stderr.strip()}")


@pytest.fixture
def mounts():
    """Make folders read-only or small and full for a test (see :class:`_Mounts`)."""
    made = _Mounts()
    yield made
    made.close()
