"""Sessions for developing nascore: tests, per-plugin isolation, the demo, lint and benchmarks.

``nox`` runs the default sessions (lint, core, one per plugin, then the full test suite).
Each session gets its own virtual environment; torch is pinned to the CPU build.
"""

from __future__ import annotations

import nox

nox.options.sessions = ["lint", "core", "plugin-formats", "plugin-engines", "plugin-strategies", "tests"]
nox.options.reuse_existing_virtualenvs = True

TORCH = "torch==2.13.0"
PLUGINS = {
    "formats": "plugins/nascore_formats",
    "engines": "plugins/nascore_engines",
    "strategies": "plugins/nascore_strategies",
}
TEST_DEPS = ["pytest>=7.4", "hypothesis>=6", "numpy"]

# After installing only the core and one plugin, `nascore plugins` must list nothing else.
CHECK_ONLY = """
import json, subprocess, sys
rows = json.loads(subprocess.check_output([sys.executable, "-m", "nascore", "plugins", "--json"]))
dists = {row["distribution"] for row in rows}
allowed = set(sys.argv[1:]) | {"nascore"}
assert dists <= allowed, f"unexpected plugins installed: {sorted(dists - allowed)}"
assert dists == allowed, f"missing plugins: {sorted(allowed - dists)}"
print("nascore plugins lists only:", ", ".join(sorted(dists)))
"""


def install_core(session: nox.Session) -> None:
    session.install(TORCH)
    session.install("-e", ".", *TEST_DEPS)


@nox.session
def tests(session: nox.Session) -> None:
    """Everything: the core, every plugin and the end-to-end tests."""
    install_core(session)
    session.install("scikit-learn", *[f"-e{path}" for path in PLUGINS.values()])
    session.run("pytest", *(session.posargs or ["tests"]))


@nox.session
def core(session: nox.Session) -> None:
    """The core alone: its tests pass with no plugin installed."""
    install_core(session)
    session.run("python", "-c", CHECK_ONLY)
    session.run("pytest", "tests/core", *session.posargs)


def _plugin_session(name: str, path: str) -> None:
    @nox.session(name=f"plugin-{name}")
    def plugin(session: nox.Session) -> None:
        install_core(session)
        session.install("-e", path)
        session.run("python", "-c", CHECK_ONLY, f"nascore-{name}")
        session.run("pytest", f"tests/{name}", *session.posargs)

    plugin.__doc__ = f"Only the core and nascore-{name}: its tests pass and nothing else is listed."


for _name, _path in PLUGINS.items():
    _plugin_session(_name, _path)


@nox.session
def demo(session: nox.Session) -> None:
    """The main job: a real search on scikit-learn's digits."""
    install_core(session)
    session.install("scikit-learn", *[f"-e{path}" for path in PLUGINS.values()])
    session.run("python", "examples/digits_search.py", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """Static checks with ruff."""
    session.install("ruff")
    session.run("ruff", "check", "nascore", "plugins", "tests", "benchmarks", "examples", "noxfile.py")


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks (figures, not pass/fail): ``nox -s bench -- --nni /path/to/nni/python``."""
    install_core(session)
    session.install("scikit-learn", *[f"-e{path}" for path in PLUGINS.values()])
    session.run("python", "benchmarks/overhead.py", *session.posargs)
