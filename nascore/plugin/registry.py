"""Name-keyed registries of plugin implementations, one per plugin kind.

A :class:`Registry` maps a name (``"evolution"``) to the object a plugin registered under it,
remembering which distribution and version provided it (a :class:`Registration`). The first
registration of a name wins; a second one is a :class:`~nascore.errors.PluginConflictError` that
names both distributions. Looking up a missing name raises
:class:`~nascore.errors.UnknownPluginError` listing what is available.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator
from typing import Any, Generic, TypeVar, cast

import attrs

from nascore.errors import PluginConflictError, PluginError, UnknownPluginError

T = TypeVar("T")

NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9_.-]*")


@attrs.frozen
class Registration:
    """One implementation registered by a plugin.

    :ivar kind: the plugin kind (``"strategy"``, ``"engine"``, ``"format"``, ``"evaluator"``,
        ``"optimizer"``).
    :ivar name: the name users pass to select it (``"evolution"``).
    :ivar obj: the registered object (usually a class).
    :ivar distribution: the distribution that provides it (``"nascore-strategies"``).
    :ivar version: that distribution's version (``""`` when unknown).
    :ivar plugin: the plugin that registered it (entry-point name, built-in module path, or the
        name given to ``register_plugin``).
    :ivar description: a one-line summary, or ``None``.
    """

    kind: str
    name: str
    obj: Any
    distribution: str
    version: str = ""
    plugin: str = ""
    description: str | None = None

    @property
    def provider(self) -> str:
        """``"<distribution> <version>"``, as shown in messages."""
        return f"{self.distribution} {self.version}".strip()


def check_name(kind: str, name: object, distribution: str) -> str:
    """Return ``name`` if it is a valid registration name, else raise :class:`PluginError`.

    Valid names are non-empty lowercase strings matching ``[a-z0-9][a-z0-9_.-]*``.
    """
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise PluginError(
            f"distribution {distribution} tried to register a {kind} under the invalid name {name!r}. "
            "Names must be non-empty strings of lowercase letters, digits, '_', '.' and '-', "
            "starting with a letter or digit (for example 'gumbel-darts'). "
            f"Fix the register() call in {distribution}, or report it to its authors."
        )
    return name


class Registry(Generic[T]):
    """The implementations of one plugin kind, keyed by name.

    >>> strategies: Registry[type] = Registry("strategy")
    >>> strategies.add(Registration("strategy", "random", object, distribution="demo"))
    >>> strategies.get("random")
    <class 'object'>
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Registration] = {}

    def add(self, registration: Registration) -> None:
        """Add ``registration``.

        :raises PluginError: the name is invalid or the kind does not match this registry.
        :raises PluginConflictError: the name is already registered; the first one stays.
        """
        if registration.kind != self.kind:
            raise PluginError(
                f"a {registration.kind} registration cannot go into the {self.kind} registry "
                f"(name {registration.name!r} from {registration.distribution})"
            )
        check_name(self.kind, registration.name, registration.distribution)
        existing = self._entries.get(registration.name)
        if existing is not None:
            raise PluginConflictError(
                f"{self.kind} {registration.name!r} is registered twice: first by "
                f"{existing.provider} (plugin {existing.plugin!r}), again by "
                f"{registration.provider} (plugin {registration.plugin!r}). The first one is kept. "
                "Uninstall one of the two distributions, or skip one with "
                f"NASCORE_DISABLED_PLUGINS={registration.distribution}."
            )
        self._entries[registration.name] = registration

    def get(self, name: str) -> T:
        """Return the object registered under ``name``.

        :raises UnknownPluginError: nothing is registered under ``name``; the message lists the
            registered names.
        """
        return cast(T, self.registration(name).obj)

    def registration(self, name: str) -> Registration:
        """Return the full :class:`Registration` of ``name`` (who provided it, which version)."""
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise UnknownPluginError(self._unknown_message(name)) from None

    def names(self) -> list[str]:
        """The registered names, sorted."""
        return sorted(self._entries)

    def entries(self) -> list[Registration]:
        """The registrations, sorted by name."""
        return [self._entries[name] for name in self.names()]

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, names={self.names()!r})"

    def _unknown_message(self, name: object) -> str:
        names = self.names()
        if names:
            known = f"Registered {self.kind} names: {', '.join(names)}."
        else:
            known = f"No {self.kind} is registered at all."
        close = difflib.get_close_matches(str(name), names, n=1) if names else []
        hint = f" Did you mean {close[0]!r}?" if close else ""
        return (
            f"unknown {self.kind} {name!r}.{hint} {known} "
            f"Install the plugin that provides the {self.kind} {name!r}, or check "
            "NASCORE_DISABLED_PLUGINS / NASCORE_LOAD_PLUGINS if it is installed but not loaded "
            "(`nascore plugins` lists what is loaded and what failed)."
        )
