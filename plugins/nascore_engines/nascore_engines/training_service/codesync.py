"""Copying the user's code directory to a remote machine over SFTP, only what changed.

What is copied is decided by :mod:`.selection` (``.gitignore`` and ``.nascoreignore`` files,
``engine_options.code_exclude``/``code_include``, secret-looking names, symbolic links, size
limits). The remote copy keeps a manifest (``.nascore-manifest.json``: relative path -> SHA-256). A
sync hashes the selected files (hashes are cached by size and modification time), uploads the files
whose hash differs from the manifest's, deletes the files that disappeared, and writes the manifest
last, so an interrupted sync is simply redone.

The copy is private to the login: folders the sync creates are ``0700``, the copy's own folder is
set to ``0700`` even when it existed, files get their owner's permission bits only (``0600``, or
``0700`` for executables), and local files are opened without following a link that replaced them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import posixpath
import socket
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import attrs

from nascore.errors import EngineError
from nascore_engines.training_service.selection import (
    MANIFEST,
    FileSelector,
    LocalFile,
    Selection,
    check_limits,
    code_dir_of,
)

__all__ = ["CodeDirectory", "SyncReport", "MANIFEST", "make_private_dir"]

_log = logging.getLogger(__name__)

#: Permission bits of the folders of the remote copy (the login only).
PRIVATE_DIR = 0o700

#: ``engine_options.code_max_size`` and ``code_max_files`` when they are not set: code, not data.
DEFAULT_MAX_SIZE = 100 * 2**20
DEFAULT_MAX_FILES = 10_000

# What was last logged per code directory: the engine's check, its start and every machine's sync
# select the same files, and the user should read the summary once (again only when it changes).
_logged: dict[Path, tuple[Any, ...]] = {}
_logged_lock = threading.Lock()


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
    :param exclude: ``engine_options.code_exclude``: gitignore-style patterns of paths not to copy.
    :param skip: folders never copied (e.g. the experiment directory when it lies inside ``root``).
    :param include: ``engine_options.code_include``: gitignore-style patterns of paths copied even
        though they look like secrets or are ignored.
    :param max_size: refuse to copy more bytes than this (``None``: no limit).
    :param max_files: refuse to copy more files than this (``None``: no limit).
    """

    def __init__(
        self,
        root: Path,
        exclude: Sequence[str] = (),
        skip: Sequence[Path] = (),
        include: Sequence[str] = (),
        max_size: int | None = None,
        max_files: int | None = None,
    ) -> None:
        self.selector = FileSelector(root, exclude=exclude, include=include, skip=skip)
        self.root = self.selector.root
        self.max_size = max_size
        self.max_files = max_files
        self._hashes: dict[str, tuple[int, int, str]] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Any, experiment_dir: Path | None = None) -> CodeDirectory:
        """The code directory of a :class:`~nascore_engines.training_service.options.TrainingServiceOptions`.

        :raises EngineError: ``code_dir`` is not a folder, or is unset while the current folder is the
            home folder or ``/``.
        """
        return cls(
            code_dir_of(settings.code_dir),
            exclude=settings.code_exclude,
            skip=[experiment_dir] if experiment_dir is not None else [],
            include=settings.code_include,
            max_size=DEFAULT_MAX_SIZE if settings.code_max_size is None else settings.code_max_size,
            max_files=DEFAULT_MAX_FILES if settings.code_max_files is None else settings.code_max_files,
        )

    @property
    def remote_name(self) -> str:
        """The folder name of the copy: the local name plus a hash of where it comes from."""
        origin = f"{socket.gethostname()}:{self.root}".encode()
        return f"{self.root.name or 'code'}-{hashlib.sha1(origin).hexdigest()[:10]}"

    def select(self) -> Selection:
        """What would be copied now, and what not and why; logs that (once while it stays the same).

        :raises EngineError: the selection exceeds ``max_size`` or ``max_files`` (the message names
            the largest files).
        """
        selection = self.selector.select(stop_after=self.max_files)
        check_limits(selection, self.max_size, self.max_files)
        signature = (tuple(selection.files), tuple(selection.skipped))
        with _logged_lock:
            changed = _logged.get(self.root) != signature
            _logged[self.root] = signature
        if changed:
            selection.log()
        return selection

    def scan(self) -> dict[str, tuple[LocalFile, str]]:
        """``{relative posix path: (file, sha256)}`` of every file to copy."""
        files: dict[str, tuple[LocalFile, str]] = {}
        for rel, local in self.select().files.items():
            try:
                files[rel] = (local, self._hash(rel, local))
            except FileNotFoundError:  # removed since the walk: nothing to copy
                continue
        return files

    def _hash(self, rel: str, local: LocalFile) -> str:
        with self._lock:
            cached = self._hashes.get(rel)
        if cached is not None and cached[:2] == (local.size, local.mtime_ns):
            return cached[2]
        digest = hashlib.sha256()
        with _open_local(local.source, rel) as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        value = digest.hexdigest()
        with self._lock:
            self._hashes[rel] = (local.size, local.mtime_ns, value)
        return value

    def sync(self, sftp: Any, remote_root: str) -> SyncReport:
        """Make ``remote_root`` (an absolute path on the machine) a private copy of this folder."""
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
        gone: list[str] = []
        make_private_dir(sftp, remote_root, made)
        for rel, (file, digest) in local.items():
            if remote.get(rel) == digest:
                report.unchanged += 1
                continue
            target = posixpath.join(remote_root, rel)
            _makedirs(sftp, posixpath.dirname(target), made)
            try:
                f = _open_local(file.source, rel)
            except FileNotFoundError:  # removed since the scan: not copied, and not in the manifest
                gone.append(rel)
                continue
            with f:
                sftp.putfo(f, target)
            # The owner's bits only, and always writable by the owner so that the next sync can replace it.
            sftp.chmod(target, (file.mode & 0o700) | 0o600)
            report.uploaded.append(rel)
            report.bytes_sent += file.size
        for rel in gone:
            del local[rel]
        for rel in remote:
            if rel not in local:
                try:
                    sftp.remove(posixpath.join(remote_root, rel))
                except OSError:
                    pass
                report.deleted.append(rel)
        manifest = posixpath.join(remote_root, MANIFEST)
        with sftp.open(manifest + ".tmp", "w") as f:
            f.write(json.dumps({rel: v[1] for rel, v in local.items()}).encode("utf-8"))
        sftp.chmod(manifest + ".tmp", 0o600)
        sftp.posix_rename(manifest + ".tmp", manifest)
        return report


def _open_local(path: Path, rel: str) -> IO[bytes]:
    """``path`` opened for reading, refusing a symbolic link put in its place since the walk."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise EngineError(
            f"cannot read {rel} in the code directory ({path}): {exc.strerror or exc}; it changed during the copy "
            "to the remote machines, or is not readable: fix it or exclude it in a .nascoreignore file"
        ) from None
    return os.fdopen(fd, "rb")


def make_private_dir(sftp: Any, path: str, made: set[str] | None = None) -> None:
    """Create ``path`` on the machine (missing parents too) readable by the login only, and make it so if it existed."""
    made = set() if made is None else made
    _makedirs(sftp, path, made)
    sftp.chmod(path, PRIVATE_DIR)


def _makedirs(sftp: Any, path: str, made: set[str]) -> None:
    if not path or path in made or path == "/":
        return
    try:
        sftp.stat(path)
    except OSError:
        _makedirs(sftp, posixpath.dirname(path), made)
        try:
            sftp.mkdir(path, mode=PRIVATE_DIR)
        except OSError:
            sftp.stat(path)  # created meanwhile by another sync: fine; otherwise this raises
    made.add(path)
