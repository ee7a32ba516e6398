"""Fixtures for plugin tests: hermetic sets of installed distributions, built for real or in memory.

``importlib.metadata.distributions`` is monkeypatched (as pluggy's own tests do) so that a test
sees exactly the distributions it created and nothing installed in the environment.
"""

from __future__ import annotations

import importlib.metadata
import sys
import types
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from nascore.plugin import PluginHost, reset_plugins
from nascore.testing.distributions import make_distribution


class MemoryDistribution(importlib.metadata.Distribution):
    """A distribution that exists only in memory: metadata and entry points, no files."""

    def __init__(self, name: str, version: str, entry_points: Mapping[str, str], group: str = "nascore"):
        lines = [f"[{group}]", *(f"{key} = {value}" for key, value in entry_points.items())]
        self._files = {
            "METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
            "entry_points.txt": "\n".join(lines) + "\n",
        }

    def read_text(self, filename: str) -> str | None:
        return self._files.get(filename)

    def locate_file(self, path: Any) -> Path:
        raise FileNotFoundError(path)


class PluginEnvironment:
    """The only distributions ``importlib.metadata`` reports during one test."""

    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.root = root
        self._monkeypatch = monkeypatch
        self.distributions: list[importlib.metadata.Distribution] = []
        monkeypatch.syspath_prepend(str(root))
        monkeypatch.setattr(importlib.metadata, "distributions", lambda **_: iter(list(self.distributions)))

    def add(
        self,
        name: str,
        version: str = "1.0",
        *,
        modules: Mapping[str, str],
        entry_points: Mapping[str, str],
    ) -> Path:
        """Write a real distribution (dist-info and modules) under the root and make it visible."""
        dist_info = make_distribution(self.root, name, version, modules, entry_points)
        self.distributions.append(importlib.metadata.PathDistribution(dist_info))
        return dist_info

    def add_in_memory(
        self,
        name: str,
        version: str = "1.0",
        *,
        modules: Mapping[str, Mapping[str, object]],
        entry_points: Mapping[str, str],
    ) -> None:
        """Make a distribution visible whose modules (name -> attributes) live in ``sys.modules``."""
        for module_name, attributes in modules.items():
            module = types.ModuleType(module_name)
            module.__dict__.update(attributes)
            self._monkeypatch.setitem(sys.modules, module_name, module)
        self.distributions.append(MemoryDistribution(name, version, entry_points))

    def load(self, *, builtins: tuple[str, ...] = (), environ: Mapping[str, str] | None = None) -> PluginHost:
        """A new host loaded from these distributions (no built-ins unless given)."""
        host = PluginHost()
        host.load(builtins=builtins, environ={} if environ is None else environ)
        return host


@pytest.fixture
def plugin_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[PluginEnvironment]:
    """A hermetic set of installed distributions; modules it imported are forgotten afterwards."""
    before = set(sys.modules)
    yield PluginEnvironment(tmp_path, monkeypatch)
    for name in set(sys.modules) - before:
        file = getattr(sys.modules[name], "__file__", None) or ""
        if file.startswith(str(tmp_path)):
            del sys.modules[name]


@pytest.fixture
def fresh_plugins() -> Iterator[None]:
    """Drop the process-wide plugin host before and after the test."""
    reset_plugins()
    yield
    reset_plugins()


STRATEGY_PLUGIN = '''
from nascore.plugin import hookimpl
from nascore.strategy import Strategy


class {cls}(Strategy):
    """{doc}"""

    def run(self, context):
        pass


@hookimpl
def nascore_register_strategies(register):
    register({name!r}, {cls})
'''


@pytest.fixture
def strategy_source() -> Callable[..., str]:
    """Source of a plugin module registering one strategy class: ``strategy_source("toy", "Toy")``."""

    def source(name: str, cls: str, doc: str = "A strategy for tests.") -> str:
        return STRATEGY_PLUGIN.format(name=name, cls=cls, doc=doc)

    return source
