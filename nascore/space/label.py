"""Labels: the names of decisions.

A label identifies one decision of a search space; the same label used twice means the same
decision. Labels are explicit (``nascore.choice("width", ...)``) or generated automatically. Automatic
labels are reproducible: they come from counters scoped by :class:`label_scope`, and every
:class:`~nascore.nn.ModelSpace` opens a fresh scope while it is constructed, so building the same
space twice gives the same labels.

Explicit labels are kept as given, except inside a *prefixing* scope (``label_scope(name,
prefix_labels=True)``, which is what a ``ModelSpace`` subclass with ``label_prefix=...`` opens while
it is constructed): there, every label made inside, explicit or automatic, is put under the scope's
path (``"width"`` becomes ``"cell/width"``), as NNI's ``label_scope`` does. A label already under
that path is left alone, so qualifying a label twice changes nothing.
"""

from __future__ import annotations

import contextvars
import re
from typing import Any

from nascore.errors import SearchSpaceError

__all__ = ["label_scope", "auto_label", "check_label", "current_scope_path", "current_label_prefix"]

_LABEL_RE = re.compile(r"^[^\s]+$")


class label_scope:  # noqa: N801 - used like a function: ``with label_scope("cell"):``
    """A context that namespaces and counts the automatic labels created inside it.

    ``label_scope(None)`` opens an anonymous scope: it restarts the counters without adding a
    path component (a model space does this so its labels do not depend on what was built before).
    ``root=True`` makes ``name`` the whole path instead of appending it to the enclosing one.
    ``prefix_labels=True`` also puts the explicit labels given inside under the scope's path
    (``with label_scope("stage1", prefix_labels=True): nascore.choice("width", ...)`` is labelled
    ``"stage1/width"``), up to a nested prefixing scope.
    """

    _current: contextvars.ContextVar[label_scope | None] = contextvars.ContextVar(
        "nascore_label_scope", default=None
    )

    def __init__(self, name: str | None = None, *, root: bool = False, prefix_labels: bool = False) -> None:
        if name is not None:
            check_label(name, what="label scope", scoped=False)
        elif prefix_labels and root:
            raise SearchSpaceError("a root label scope that prefixes labels needs a name")
        self.name = name
        self.root = root
        self.prefix_labels = prefix_labels
        self._counter = 0
        self._token: contextvars.Token[Any] | None = None
        self.parent: label_scope | None = None

    @property
    def path(self) -> str:
        parts: list[str] = []
        scope: label_scope | None = self
        while scope is not None:
            if scope.name is not None:
                parts.append(scope.name)
            scope = None if scope.root else scope.parent
        return "/".join(reversed(parts))

    def next_label(self, kind: str) -> str:
        self._counter += 1
        local = f"{kind}_{self._counter}"
        return f"{self.path}/{local}" if self.path else local

    def __enter__(self) -> label_scope:
        self.parent = label_scope._current.get()
        self._counter = 0
        self._token = label_scope._current.set(self)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._token is not None
        label_scope._current.reset(self._token)
        self._token = None

    @classmethod
    def current(cls) -> label_scope | None:
        return cls._current.get()


_global_scope = label_scope(None)


def auto_label(kind: str = "choice") -> str:
    """Return the next automatic label of the current scope, e.g. ``"layerchoice_3"``."""
    scope = label_scope.current() or _global_scope
    return _qualify(scope.next_label(kind))


def current_scope_path() -> str:
    scope = label_scope.current()
    return scope.path if scope is not None else ""


def current_label_prefix() -> str | None:
    """The path that labels made now are put under (the nearest prefixing scope's), or ``None``."""
    scope = label_scope.current()
    while scope is not None:
        if scope.prefix_labels:
            return scope.path or None
        scope = scope.parent
    return None


def _qualify(label: str) -> str:
    prefix = current_label_prefix()
    if prefix is None or label.startswith(prefix + "/"):
        return label
    return f"{prefix}/{label}"


def check_label(label: Any, what: str = "label", *, scoped: bool = True) -> str:
    """Validate a user-given label and return it, put under the current label prefix if any.

    ``scoped=False`` only validates (for names that are not labels of decisions: scope names, prefixes).
    """
    if not isinstance(label, str) or not label or not _LABEL_RE.match(label):
        raise SearchSpaceError(
            f"invalid {what} {label!r}: a {what} must be a non-empty string without whitespace"
        )
    return _qualify(label) if scoped else label
