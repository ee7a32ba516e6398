"""Copying the user's code directory to a remote machine over SFTP, only what changed.

The remote copy keeps a manifest (``.nascore-manifest.json``: relative path -> SHA-256). A sync
scans the local folder (hashes are cached by size and modification time), uploads the files whose
hash differs from the manifest's, deletes the files that disappeared, and writes the manifest last,
so an interrupted sync is simply redone. Version-control folders, caches, virtual environments and
the experiment directory are never copied; ``training_service.code_exclude`` adds glob patterns.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import logging
import os
import posixpath
import socket
import stat
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs

__all__ = ["CodeDirectory", "SyncReport", "DEFAULT_EXCLUDE", "MANIFEST"]

_log = logging.getLogger(__name__)

MANIFEST = ".nascore-manifest.json"
DEFAULT_EXCLUDE = (
    ".git", ".hg", ".svn", "__pycache__", "*.pyc", "*.pyo", ".venv", "venv", ".nox", ".tox", ".mypy_cache",
    ".pytest_cache", ".ruff_cache", ".hypothesis", ".ipynb_checkpoints", "node_modules", ".DS_Store", MANIFEST,
)
#: A code directory larger than this is logged as a warning (it is still copied).
LARGE_CODE_DIR = 256 * 2**20


@attrs.define
class SyncReport:
    """What one sync did."""

    uploaded: list[str] = attrs.field(factory=list)
    deleted: list[str] = attrs.field(factory=list)
    unchanged: int = 0
    bytes_sent: int = 0


class CodeDirectory:
    """A local folder to mirror on remote machines.

    :param root: the folder.
    :param exclude: glob patterns matched against each file or folder name and relative path.
    :param skip: folders never copied (e.g. the experiment directory when it lies inside ``root``).
    """

    def __init__(self, root: Path, exclude: Sequence[str] = (), skip: Sequence[Path] = ()) -> None:
        self.root = Path(root).resolve()
        self.exclude = tuple(DEFAULT_EXCLUDE) + tuple(exclude)
        self.skip = {Path(p).resolve() for p in skip}
        self._hashes: dict[str, tuple[int, int, str]] = {}
        self._lock = threading.Lock()

    @property
    def remote_name(self) -> str:
        """The folder name of the copy: the local name plus a hash of where it comes from."""
        origin = f"{socket.gethostname()}:{self.root}".encode()
        return f"{self.root.name or 'code'}-{hashlib.sha1(origin).hexdigest()[:10]}"

    def _excluded(self, name: str, rel: str) -> bool:
        return any(fnmatch.fnmatch(name, p) or fnmatch.fnmatch(rel, p) for p in self.exclude)

    def scan(self) -> dict[str, tuple[str, int, int]]:
        """``{relative posix path: (sha256, size, mode)}`` of every file to copy."""
        if not self.root.is_dir():
            from nascore.errors import EngineError

            raise EngineError(
                f"training_service.code_dir {str(self.root)!r} is not a folder; set it to the folder holding your code"
            )
        files: dict[str, tuple[str, int, int]] = {}
        total = 0
        for folder, dirs, names in os.walk(self.root, followlinks=False):
            here = Path(folder)
            rel_dir = here.relative_to(self.root).as_posix()
            kept = []
            for d in sorted(dirs):
                rel = d if rel_dir == "." else f"{rel_dir}/{d}"
                path = here / d
                if self._excluded(d, rel) or path.resolve() in self.skip or (path / "pyvenv.cfg").exists():
                    continue
                kept.append(d)
            dirs[:] = kept
            for name in sorted(names):
                rel = name if rel_dir == "." else f"{rel_dir}/{name}"
                if self._excluded(name, rel):
                    continue
                path = here / name
                try:
                    info = path.stat()
                except OSError:  # a dangling link
                    continue
                if not stat.S_ISREG(info.st_mode):
                    continue
                files[rel] = (self._hash(rel, path, info), info.st_size, stat.S_IMODE(info.st_mode))
                total += info.st_size
        if total > LARGE_CODE_DIR:
            _log.warning(
                "The code directory %s holds %.0f MB that are copied to every remote machine; exclude data and "
                "outputs with training_service.code_exclude", self.root, total / 2**20,
            )
        return files

    def _hash(self, rel: str, path: Path, info: os.stat_result) -> str:
        with self._lock:
            cached = self._hashes.get(rel)
        if cached is not None and cached[:2] == (info.st_size, info.st_mtime_ns):
            return cached[2]
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        value = digest.hexdigest()
        with self._lock:
            self._hashes[rel] = (info.st_size, info.st_mtime_ns, value)
        return value

    def sync(self, sftp: Any, remote_root: str) -> SyncReport:
        """Make ``remote_root`` (an absolute path on the machine) a copy of this folder."""
        local = self.scan()
        try:
            with sftp.open(posixpath.join(remote_root, MANIFEST), "r") as f:
                remote = json.loads(f.read().decode("utf-8"))
            if not isinstance(remote, dict):
                remote = {}
        except (OSError, ValueError):
            remote = {}
        report = SyncReport()
        made: set[str] = set()
        _makedirs(sftp, remote_root, made)
        for rel, (digest, size, mode) in local.items():
            if remote.get(rel) == digest:
                report.unchanged += 1
                continue
            target = posixpath.join(remote_root, rel)
            _makedirs(sftp, posixpath.dirname(target), made)
            sftp.put(str(self.root / rel), target)
            sftp.chmod(target, mode)
            report.uploaded.append(rel)
            report.bytes_sent += size
        for rel in remote:
            if rel not in local:
                try:
                    sftp.remove(posixpath.join(remote_root, rel))
                except OSError:
                    pass
                report.deleted.append(rel)
        manifest = posixpath.join(remote_root, MANIFEST)
        with sftp.open(manifest + ".tmp", "w") as f:
            f.write(json.dumps({rel: v[0] for rel, v in local.items()}).encode("utf-8"))
        sftp.posix_rename(manifest + ".tmp", manifest)
        return report


def _makedirs(sftp: Any, path: str, made: set[str]) -> None:
    if not path or path in made or path == "/":
        return
    try:
        sftp.stat(path)
    except OSError:
        _makedirs(sftp, posixpath.dirname(path), made)
        try:
            sftp.mkdir(path)
        except OSError:
            sftp.stat(path)  # created meanwhile by another sync: fine; otherwise this raises
    made.add(path)
