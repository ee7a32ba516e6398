"""Gitignore-style patterns: which paths a ``.gitignore``, ``.nascoreignore`` or pattern list matches.

The code sync (:mod:`.selection`) decides file by file what to copy to remote machines; this module
only answers "does this list of patterns match this path, and with which line". It implements the
rules of ``git help gitignore`` that matter there:

- blank lines and lines starting with ``#`` are ignored; ``\\#`` and ``\\!`` start a literal ``#``
  or ``!``; trailing spaces are dropped unless escaped with ``\\``;
- ``!pattern`` re-includes what an earlier pattern matched; the last matching pattern wins;
- ``pattern/`` matches folders only;
- a pattern with a ``/`` at its start or in its middle is relative to the folder of the file it comes
  from (a leading ``/`` is dropped); otherwise it matches a name at any depth below that folder;
- ``*`` and ``?`` never match ``/``; ``[a-z]``, ``[!a-z]`` are character classes; ``**/`` at the start
  matches in every folder, ``/**`` at the end matches everything inside, ``/**/`` matches zero or
  more folders.

Folders are matched like files; that everything inside a matched folder is matched too is left to
the caller, which stops walking there (as git does: a file in an ignored folder cannot be re-included).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import attrs

__all__ = ["Rule", "RuleList", "parse_rules", "read_rules"]


@attrs.frozen
class Rule:
    """One pattern line.

    :param pattern: the line as written (for messages).
    :param source: where it comes from, e.g. ``"pkg/.gitignore:3"`` or ``"engine_options.code_exclude"``.
    :param negate: a ``!`` line: it re-includes what it matches.
    :param dir_only: a line ending in ``/``: it matches folders only.
    :param anchored: relative to its file's folder (else it matches a name at any depth).
    :param parts: the pattern's ``/``-separated components (without leading and trailing ``/``).
    """

    pattern: str
    source: str
    negate: bool
    dir_only: bool
    anchored: bool
    parts: tuple[str, ...]
    regex: re.Pattern[str] = attrs.field(eq=False, repr=False)

    def matches(self, rel: str, is_dir: bool) -> bool:
        """Whether the pattern matches ``rel`` (a posix path relative to the rule's folder)."""
        if self.dir_only and not is_dir:
            return False
        return self.regex.fullmatch(rel) is not None

    def may_match_below(self, rel_dir: str) -> bool:
        """Whether this pattern can match something strictly inside the folder ``rel_dir``.

        Used to decide whether a folder must be entered although it is ignored: only anchored
        patterns name paths into a folder (``data/small.csv``); a plain name (``.env``) does not.
        """
        if not self.anchored:
            return False
        folders = rel_dir.split("/")
        for index, name in enumerate(folders):
            if index >= len(self.parts) - 1:  # the pattern ends at or above this folder
                return False
            part = self.parts[index]
            if part == "**":
                return True
            if re.fullmatch(_translate_part(part), name) is None:
                return False
        return True


def parse_rules(lines: Iterable[str], source: str) -> list[Rule]:
    """The rules of ``lines`` (gitignore syntax); ``source`` names them in messages (``:line`` is added)."""
    rules = []
    for number, raw in enumerate(lines, start=1):
        rule = _parse_line(raw.rstrip("\r\n"), f"{source}:{number}")
        if rule is not None:
            rules.append(rule)
    return rules


def read_rules(path: Path, source: str) -> list[Rule]:
    """The rules of the file ``path``; an unreadable or missing file has none."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    return parse_rules(text.splitlines(), source)


def _parse_line(line: str, source: str) -> Rule | None:
    written = line
    if not line or line.startswith("#"):
        return None
    while line.endswith(" ") and not line.endswith("\\ "):
        line = line[:-1]
    negate = line.startswith("!")
    if negate:
        line = line[1:]
    dir_only = line.endswith("/") and not line.endswith("\\/")
    line = line.rstrip("/") if dir_only else line
    anchored = "/" in line
    line = line.lstrip("/")
    if not line:
        return None
    parts = tuple(line.split("/"))
    regex = _compile(parts, anchored)
    return Rule(written.strip(), source, negate, dir_only, anchored, parts, regex)


def _compile(parts: Sequence[str], anchored: bool) -> re.Pattern[str]:
    out = "" if anchored else "(?:.*/)?"
    last = len(parts) - 1
    for index, part in enumerate(parts):
        if part == "**":
            # "**/" at the start or "/**/" in the middle: zero or more folders; "/**" at the end: all inside.
            out += ".+" if index == last else "(?:.*/)?"
            continue
        out += _translate_part(part)
        if index != last:
            out += "/"
    return re.compile(out, re.DOTALL)


def _translate_part(part: str) -> str:
    """One path component of a pattern as a regular expression (``*`` and ``?`` stay within it)."""
    out, i, n = [], 0, len(part)
    while i < n:
        c = part[i]
        i += 1
        if c == "\\" and i < n:
            out.append(re.escape(part[i]))
            i += 1
        elif c == "*":
            while i < n and part[i] == "*":  # "**" inside a component is a plain "*"
                i += 1
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            j = i
            if j < n and part[j] in "!^":
                j += 1
            if j < n and part[j] == "]":
                j += 1
            while j < n and part[j] != "]":
                j += 1
            if j >= n:  # no closing bracket: a literal "["
                out.append("\\[")
                continue
            body = part[i:j]
            i = j + 1
            negated = body[:1] in ("!", "^")
            if negated:
                body = body[1:]
            body = body.replace("\\", "\\\\").replace("[", "\\[")
            out.append(f"[^/{body}]" if negated else f"[{body}]")
        else:
            out.append(re.escape(c))
    return "".join(out)


@attrs.define
class RuleList:
    """Rules read from files in several folders, applied in order: the last matching rule wins.

    Paths are posix paths relative to one top folder; each group of rules has the folder (relative
    to the same top, ``""`` for the top itself) its patterns are relative to.
    """

    groups: list[tuple[str, list[Rule]]] = attrs.field(factory=list)

    def add(self, base: str, rules: list[Rule]) -> None:
        """Append rules relative to the folder ``base`` (they win over the ones added before)."""
        if rules:
            self.groups.append((base, rules))

    def extended(self, base: str, rules: list[Rule]) -> RuleList:
        """A copy with ``rules`` added (the original is left alone: a sibling folder does not see them)."""
        copy = RuleList(list(self.groups))
        copy.add(base, rules)
        return copy

    def match(self, rel: str, is_dir: bool) -> Rule | None:
        """The last rule matching ``rel``, or ``None``; a ``negate`` rule means "not matched"."""
        found = None
        for base, rules in self.groups:
            if base:
                if not rel.startswith(base + "/"):
                    continue
                local = rel[len(base) + 1 :]
            else:
                local = rel
            for rule in rules:
                if rule.matches(local, is_dir):
                    found = rule
        return found

    def matched(self, rel: str, is_dir: bool) -> Rule | None:
        """The rule that makes ``rel`` matched (not re-included by a later ``!`` rule), or ``None``."""
        rule = self.match(rel, is_dir)
        return None if rule is None or rule.negate else rule

    def may_match_below(self, rel_dir: str) -> bool:
        """Whether some non-negated rule can match a path strictly inside the folder ``rel_dir``."""
        for base, rules in self.groups:
            if base:
                if not rel_dir.startswith(base + "/"):
                    continue
                local = rel_dir[len(base) + 1 :]
            else:
                local = rel_dir
            if any(not rule.negate and rule.may_match_below(local) for rule in rules):
                return True
        return False
