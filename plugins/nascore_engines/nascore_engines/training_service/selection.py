"""Which files of the code directory are copied to remote machines, and why the others are not.

The code directory (``engine_options.code_dir``) is walked once per sync and every path gets a
verdict, in this order:

1. never copied, whatever the settings: version-control folders (``.git``, ``.hg``, ``.svn``),
   virtual environments (folders holding ``pyvenv.cfg``), the experiment directory, the sync's own
   manifest, and anything that is not a regular file or folder;
2. symbolic links: a link whose target lies outside the code directory is skipped with a warning
   (its target is never read); a link to a folder is not followed; a link to a file inside the
   code directory is copied as a plain file with its target's content, provided the target itself
   is copied (a link cannot smuggle out an ignored or secret file);
3. ``engine_options.code_include`` (gitignore syntax, relative to the code directory): a path it
   matches, or that lies in a folder it matches, is copied even when a rule below would skip it;
4. ignore rules (last match wins, in this order): built-in defaults (caches, ``__pycache__``,
   ``node_modules``...), the ``.gitignore`` files of the enclosing git work tree above the code
   directory and ``.git/info/exclude``, then in every folder its ``.gitignore`` and
   ``.nascoreignore`` (a folder's rules apply to its subtree and win over its parents'; a
   ``.nascoreignore`` wins over the ``.gitignore`` beside it, so ``!name`` there copies a file git
   ignores), and last ``engine_options.code_exclude``;
5. files that look like secrets (:data:`SECRET_PATTERNS`: ``.env*``, ``.ssh/``, ``*.pem``, ``*.key``,
   ``id_*``...) are skipped with a warning naming them.

An ignored or secret folder is not entered, unless a ``code_include`` pattern names a path inside it
(``data/small.csv``). :func:`check_limits` then refuses a selection above ``code_max_size`` bytes or
``code_max_files`` files, naming the largest files.
"""

from __future__ import annotations

import collections
import logging
import os
import stat
from collections.abc import Sequence
from pathlib import Path

import attrs

from nascore.errors import EngineError
from nascore.units import format_size
from nascore_engines.training_service.ignore import Rule, RuleList, parse_rules, read_rules

__all__ = [
    "SECRET_PATTERNS",
    "DEFAULT_IGNORE",
    "MANIFEST",
    "LocalFile",
    "Skipped",
    "Selection",
    "FileSelector",
    "check_limits",
    "code_dir_of",
]

_log = logging.getLogger(__name__)

#: The sync's record of what the remote copy holds (see :mod:`.codesync`); never copied from local.
MANIFEST = ".nascore-manifest.json"

#: Folders of version-control systems: never copied.
VCS_FOLDERS = frozenset({".git", ".hg", ".svn", ".bzr"})

#: Paths that are not code (gitignore syntax); a ``!pattern`` in a ``.gitignore``/``.nascoreignore`` re-includes.
DEFAULT_IGNORE = (
    "__pycache__/", "*.pyc", "*.pyo", ".venv/", "venv/", ".nox/", ".tox/", ".mypy_cache/", ".pytest_cache/",
    ".ruff_cache/", ".hypothesis/", ".ipynb_checkpoints/", "node_modules/", ".DS_Store",
)

#: Names that look like credentials (gitignore syntax): never copied unless ``code_include`` names them.
#: ``id_*`` is the naming of SSH keys (``id_ed25519``, ``id_rsa.pub``); Python modules are exempt.
#: Patterns without a trailing ``/`` apply to files only (a package folder ``id_tools/`` is code).
SECRET_PATTERNS = (
    ".env*", ".ssh/", "*.pem", "*.key", "id_*", "!id_*.py",
    ".netrc", ".pgpass", ".pypirc", ".git-credentials", "*.p12", "*.pfx", ".aws/", ".gnupg/",
)

_CODE_INCLUDE = "engine_options.code_include"
_CODE_EXCLUDE = "engine_options.code_exclude"


@attrs.frozen
class LocalFile:
    """A file to copy.

    :param source: the file to read: the path itself, or for a symbolic link its target (inside the code directory).
    :param size: bytes.
    :param mode: permission bits of the local file.
    :param mtime_ns: modification time (to reuse a cached hash).
    """

    source: Path
    size: int
    mode: int
    mtime_ns: int


@attrs.frozen
class Skipped:
    """A path not copied.

    :param path: relative posix path; a folder ends with ``/`` (nothing inside it is copied).
    :param kind: ``"secret"``, ``"ignored"``, ``"outside-link"``, ``"link"`` (a link to a folder or to
        a file that is not copied), ``"excluded"`` (version control, virtual environments, the
        experiment directory) or ``"unreadable"`` (not a regular file, broken link, no permission).
    :param reason: why, in words (with the rule and where it comes from).
    """

    path: str
    kind: str
    reason: str


@attrs.define
class Selection:
    """The outcome of one walk: what to copy and what was left out."""

    root: Path
    files: dict[str, LocalFile] = attrs.field(factory=dict)
    skipped: list[Skipped] = attrs.field(factory=list)
    #: The walk stopped early, after finding more files than it was asked to look for.
    truncated: bool = False

    @property
    def total_size(self) -> int:
        return sum(f.size for f in self.files.values())

    def largest(self, count: int = 5) -> list[tuple[str, int]]:
        """The ``count`` biggest files to copy, biggest first."""
        return sorted(((rel, f.size) for rel, f in self.files.items()), key=lambda item: (-item[1], item[0]))[:count]

    def of_kind(self, *kinds: str) -> list[Skipped]:
        return [s for s in self.skipped if s.kind in kinds]

    def log(self) -> None:
        """Log what was skipped and why: secrets and links leaving the folder as warnings, the rest as info."""
        secrets = self.of_kind("secret")
        if secrets:
            _log.warning(
                "Not copying %d path(s) of %s that look like secrets to the remote machines: %s. List the ones the "
                "trials need in %s", len(secrets), self.root, ", ".join(s.path for s in secrets), _CODE_INCLUDE,
            )
        outside = self.of_kind("outside-link")
        if outside:
            _log.warning("Not copying %d symbolic link(s) of %s that point outside it: %s",
                         len(outside), self.root, _listing(outside))
        rest = self.of_kind("ignored", "link", "unreadable")
        _log.info(
            "Code directory %s: copying %d file(s), %s%s", self.root, len(self.files), format_size(self.total_size),
            f"; not copying {len(rest)} more path(s): {_listing(rest)}" if rest else "",
        )
        for skipped in self.of_kind("excluded"):
            _log.debug("Not copying %s: %s", skipped.path, skipped.reason)


def _listing(skipped: list[Skipped], limit: int = 20) -> str:
    shown = ", ".join(f"{s.path} ({s.reason})" for s in skipped[:limit])
    return shown + (f" and {len(skipped) - limit} more" if len(skipped) > limit else "")


class FileSelector:
    """Chooses the files of ``root`` to copy (see the module docstring for the rules).

    :param root: the code directory.
    :param exclude: ``engine_options.code_exclude`` (gitignore syntax, relative to ``root``).
    :param include: ``engine_options.code_include`` (gitignore syntax, relative to ``root``).
    :param skip: folders never copied (the experiment directory when it lies inside ``root``).
    """

    def __init__(self, root: Path, exclude: Sequence[str] = (), include: Sequence[str] = (),
                 skip: Sequence[Path] = ()) -> None:
        self.root = Path(root).resolve()
        self.skip = {Path(p).resolve() for p in skip}
        self.top, self.prefix = _work_tree(self.root)
        self.exclude = RuleList()
        self.exclude.add(self.prefix, parse_rules(exclude, _CODE_EXCLUDE))
        self.include = RuleList()
        self.include.add(self.prefix, parse_rules(include, _CODE_INCLUDE))
        self.secrets = RuleList()
        self.secrets.add(self.prefix, parse_rules(SECRET_PATTERNS, "secret-looking names"))

    def _top(self, rel: str) -> str:
        """``rel`` (relative to the code directory) relative to the git work tree's top."""
        return f"{self.prefix}/{rel}" if self.prefix else rel

    def _base_rules(self) -> RuleList:
        rules = RuleList()
        rules.add(self.prefix, parse_rules(DEFAULT_IGNORE, "built-in defaults"))
        rules.add("", read_rules(self.top / ".git" / "info" / "exclude", str(self.top / ".git/info/exclude")))
        if self.top != self.root:  # the code directory lies inside a git work tree: the ignore files above apply
            folder, base = self.top, ""
            for name in self.prefix.split("/")[:-1]:
                rules.add(base, read_rules(folder / ".gitignore", str(folder / ".gitignore")))
                folder, base = folder / name, f"{base}/{name}" if base else name
            rules.add(base, read_rules(folder / ".gitignore", str(folder / ".gitignore")))
        return rules

    def select(self, stop_after: int | None = None) -> Selection:
        """Walk the code directory; never follows links to folders nor reads outside ``root``.

        :param stop_after: stop walking once more than this many files were found (``truncated``
            is then set): a code directory that is far too big is refused without walking all of it.
        """
        if not self.root.is_dir():
            raise EngineError(
                f"engine_options.code_dir {str(self.root)!r} is not a folder; set it to the folder holding your code"
            )
        selection = Selection(self.root)
        links: dict[str, Path] = {}
        try:
            self._walk(self.root, "", self._base_rules(), None, selection, links, stop_after)
        except _Enough:
            selection.truncated = True
        for rel, target in links.items():  # a link is copied only when the file it stands for is
            target_rel = target.relative_to(self.root).as_posix()
            if target_rel not in selection.files:
                del selection.files[rel]
                selection.skipped.append(Skipped(rel, "link", f"symbolic link to {target_rel}, which is not copied"))
        return selection

    def _walk(self, folder: Path, rel_dir: str, ignore: RuleList, inherited: Skipped | None,
              selection: Selection, links: dict[str, Path], stop_after: int | None) -> None:
        here = self._top(rel_dir) if rel_dir else self.prefix
        where = f"{rel_dir}/" if rel_dir else ""
        ignore = ignore.extended(here, read_rules(folder / ".gitignore", f"{where}.gitignore"))
        ignore = ignore.extended(here, read_rules(folder / ".nascoreignore", f"{where}.nascoreignore"))
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            selection.skipped.append(Skipped(where, "unreadable", f"cannot be listed: {exc.strerror or exc}"))
            return
        for entry in entries:
            if stop_after is not None and len(selection.files) > stop_after:
                raise _Enough
            rel = f"{where}{entry.name}"
            path = Path(entry.path)
            if entry.name in VCS_FOLDERS:
                selection.skipped.append(Skipped(rel + "/", "excluded", "version control"))
                continue
            if not rel_dir and entry.name == MANIFEST:
                continue
            try:
                is_link = entry.is_symlink()
            except OSError:
                is_link = False
            try:
                info = path.stat()  # follows a link: what a copy would read
            except OSError as exc:
                kind = "outside-link" if is_link and not _inside(path, self.root) else "unreadable"
                what = f"broken symbolic link to {os.readlink(path)}" if is_link else f"cannot be read: {exc.strerror or exc}"
                selection.skipped.append(Skipped(rel, kind, what))
                continue
            is_dir = stat.S_ISDIR(info.st_mode)
            target: Path | None = None
            if is_link:
                target = _resolve(path)
                if target is None or not target.is_relative_to(self.root):
                    shown = target if target is not None else os.readlink(path)
                    selection.skipped.append(
                        Skipped(rel, "outside-link", f"symbolic link to {shown}, outside the code directory"))
                    continue
                if is_dir:
                    selection.skipped.append(Skipped(rel + "/", "link", "symbolic link to a folder, not followed"))
                    continue
            elif is_dir and (path in self.skip or (path / "pyvenv.cfg").exists()):
                reason = "the experiment directory" if path in self.skip else "a virtual environment"
                selection.skipped.append(Skipped(rel + "/", "excluded", reason))
                continue
            shown = rel + "/" if is_dir else rel
            verdict = None if self._included(rel, is_dir) else (inherited or self._verdict(rel, shown, is_dir, ignore))
            if verdict is not None:
                if is_dir and self.include.may_match_below(self._top(rel)):  # code_include names a path inside
                    self._walk(path, rel, ignore, verdict, selection, links, stop_after)
                elif verdict is inherited:
                    selection.skipped.append(attrs.evolve(verdict, path=shown))
                else:
                    selection.skipped.append(verdict)
                continue
            if is_dir:
                self._walk(path, rel, ignore, None, selection, links, stop_after)
            elif not stat.S_ISREG(info.st_mode):
                selection.skipped.append(Skipped(rel, "unreadable", "not a regular file"))
            else:
                source = path
                if is_link and target is not None:  # a link inside the code directory: its target's content
                    source = links[rel] = target
                selection.files[rel] = LocalFile(source, info.st_size, stat.S_IMODE(info.st_mode), info.st_mtime_ns)

    def _verdict(self, rel: str, shown: str, is_dir: bool, ignore: RuleList) -> Skipped | None:
        top = self._top(rel)
        rule = self.exclude.match(top, is_dir) or ignore.match(top, is_dir)
        if rule is not None and not rule.negate:
            return Skipped(shown, "ignored", _because(rule))
        rule = self.secrets.matched(top, is_dir)
        if rule is not None and (rule.dir_only or not is_dir):
            return Skipped(shown, "secret", f"looks like a secret (matches {rule.pattern})")
        return None

    def _included(self, rel: str, is_dir: bool) -> bool:
        """Whether ``code_include`` matches ``rel`` or, failing that, the nearest folder above it it matches."""
        if not self.include.groups:
            return False
        rule = self.include.match(self._top(rel), is_dir)
        parts = rel.split("/")
        while rule is None and len(parts) > 1:
            parts.pop()
            rule = self.include.match(self._top("/".join(parts)), True)
        return rule is not None and not rule.negate


class _Enough(Exception):
    """Stops a walk that found more files than asked for."""


def _because(rule: Rule) -> str:
    return f"{rule.source}: {rule.pattern}"


def _inside(path: Path, root: Path) -> bool:
    target = _resolve(path)
    return target is not None and target.is_relative_to(root)


def _resolve(path: Path) -> Path | None:
    try:
        return path.resolve(strict=False)
    except (OSError, RuntimeError):  # a loop of links
        return None


def _work_tree(root: Path) -> tuple[Path, str]:
    """The top of the git work tree holding ``root`` (else ``root``) and ``root`` relative to it."""
    for folder in (root, *root.parents):
        if (folder / ".git").exists():
            rel = root.relative_to(folder).as_posix()
            return folder, "" if rel == "." else rel
    return root, ""


def check_limits(selection: Selection, max_size: int | None, max_files: int | None) -> None:
    """Refuse a selection above ``engine_options.code_max_size`` or ``code_max_files``.

    :raises EngineError: naming the largest files (and for too many files, the fullest folders).
    """
    count, total = len(selection.files), selection.total_size
    counted = f"more than {count - 1}" if selection.truncated else str(count)
    fix = (
        "Keep data, checkpoints and outputs out of the copy with a .nascoreignore file in the code directory "
        "(gitignore syntax, e.g. a line `data/`) or engine_options.code_exclude, set engine_options.code_dir "
        "to the folder holding only your code, or raise the limit"
    )
    largest = ", ".join(f"{rel} ({format_size(size)})" for rel, size in selection.largest())
    found = " found before it stopped counting" if selection.truncated else ""
    if max_files is not None and (count > max_files or selection.truncated):
        folders = collections.Counter(rel.rpartition("/")[0] + "/" for rel in selection.files)
        fullest = ", ".join(f"{name if name != '/' else './'} ({n} files)" for name, n in folders.most_common(5))
        raise EngineError(
            f"the code directory {selection.root} has {counted} files ({format_size(total)}) to copy to every remote "
            f"machine, more than engine_options.code_max_files ({max_files}); the folders with the most files{found}: "
            f"{fullest}; the largest files{found}: {largest}. {fix} (engine_options.code_max_files)"
        )
    if max_size is not None and total > max_size:
        raise EngineError(
            f"the code directory {selection.root} has {format_size(total)} in {count} files to copy to every remote "
            f"machine, more than engine_options.code_max_size ({format_size(max_size)}); the largest files: "
            f"{largest}. {fix} (engine_options.code_max_size)"
        )


def code_dir_of(code_dir: Path | None) -> Path:
    """The folder to copy: ``engine_options.code_dir``, else the current folder.

    :raises EngineError: the folder does not exist, or ``code_dir`` is not set and the current folder
        is the home folder or ``/`` (copying it would send ``~/.ssh`` and everything else everywhere).
    """
    if code_dir is None:
        path = Path.cwd()
        resolved = path.resolve()
        try:
            home = Path.home().resolve()
        except (KeyError, RuntimeError):  # no home folder known
            home = None
        if resolved == home or resolved == Path(resolved.anchor):
            which = "your home folder" if resolved == home else "the root folder"
            raise EngineError(
                f"engine_options.code_dir is not set, so the current folder {resolved} ({which}) would be copied to "
                "every remote machine; set engine_options.code_dir to the folder holding your code (or start the "
                "experiment from that folder)"
            )
    else:
        path = Path(code_dir).expanduser()
    if not path.is_dir():
        raise EngineError(f"engine_options.code_dir: {str(path)!r} is not a folder; set it to the folder holding your code")
    return path
