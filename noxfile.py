"""Sessions for developing nascore: tests, per-plugin isolation, the demo, lint and benchmarks.

``nox`` runs the default sessions: lint, the core alone, each plugin alone, then the end-to-end
tests with everything installed. Each test runs once: a plugin's tests run in its own session, and
``integration`` runs what no other session does. ``nox -s tests`` runs every test in one
environment. Each session gets its own virtual environment; torch is pinned to the CPU build.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import nox

nox.options.sessions = [
    "lint", "core", "plugin-formats", "plugin-engines", "plugin-strategies", "plugin-cgo", "plugin-hub", "plugin-ray",
    "integration",
]
nox.options.reuse_existing_virtualenvs = True

TORCH = "torch==2.13.0"
PLUGINS = {
    "formats": "plugins/nascore_formats",
    "engines": "plugins/nascore_engines",
    "strategies": "plugins/nascore_strategies",
    "cgo": "plugins/nascore_cgo",
    "hub": "plugins/nascore_hub",
    "ray": "plugins/nascore_ray",
}
# What each plugin is installed with: its extras, so that every feature it has is tested.
EXTRAS = {"formats": "", "engines": "[remote]", "strategies": "[all]", "cgo": "", "hub": "[all]", "ray": ""}
# Plugins a plugin depends on, or its tests need to run experiments: installed from this checkout with it
# (not from PyPI), and listed with it.
REQUIRES = {
    "cgo": ["formats", "engines"],
    "strategies": ["formats", "engines"],
    # The hub's spaces are tested in every format and one-shot strategy, its evaluators in experiments.
    "hub": ["formats", "engines", "strategies"],
    # The Ray engine is the training-service engine on Ray; its tests run experiments.
    "ray": ["formats", "engines", "strategies"],
}
# Tests outside tests/<plugin> that a plugin session also runs.
EXTRA_TESTS = {"cgo": ["tests/integration/test_cgo.py"]}
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


def ensure_sshd(session: nox.Session) -> None:
    """The remote training-service tests start real OpenSSH servers on loopback: install sshd if missing."""
    if shutil.which("sshd") or Path("/usr/sbin/sshd").exists():
        return
    if os.geteuid() != 0:
        session.error("the remote tests need OpenSSH's server: sudo apt-get install openssh-server")
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    session.run("apt-get", "update", "-qq", external=True, env=env)
    session.run("apt-get", "install", "-y", "-qq", "openssh-server", external=True, env=env)


def ensure_chromium(session: nox.Session) -> None:
    """The dashboard's browser tests drive Debian's headless Chromium: install it and its driver if missing."""
    if Path("/usr/bin/chromium").exists() and Path("/usr/bin/chromedriver").exists():
        return
    if os.geteuid() != 0:
        session.error("the dashboard's browser tests need: sudo apt-get install chromium chromium-driver")
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    session.run("apt-get", "update", "-qq", external=True, env=env)
    session.run("apt-get", "install", "-y", "-qq", "chromium", "chromium-driver", external=True, env=env)


def install_core(session: nox.Session) -> None:
    session.install(TORCH)
    session.install("-e", ".", *TEST_DEPS)


def install_all(session: nox.Session, *extra: str) -> None:
    """The core, every plugin with its extras, and what the examples need."""
    install_core(session)
    plugins = [f"-e{path}{EXTRAS[name]}" for name, path in PLUGINS.items()]
    session.install("scikit-learn", *extra, *plugins)


@nox.session
def tests(session: nox.Session) -> None:
    """Everything: the core, every plugin and the end-to-end tests."""
    ensure_sshd(session)
    ensure_chromium(session)
    install_all(session, "-e.[dashboard]", "selenium")
    session.run("pytest", *(session.posargs or ["tests"]))


@nox.session
def integration(session: nox.Session) -> None:
    """The end-to-end tests with everything installed, less those a plugin session runs already."""
    ensure_sshd(session)
    ensure_chromium(session)  # the dashboard's tests run in a real browser
    install_all(session, "-e.[dashboard]", "selenium")
    claimed = [f"--ignore={path}" for paths in EXTRA_TESTS.values() for path in paths]
    session.run("pytest", "tests/integration", *claimed, *session.posargs)


@nox.session
def core(session: nox.Session) -> None:
    """The core alone: its tests pass with no plugin installed."""
    install_core(session)
    session.install("-e", ".[lightning,dashboard]", "scikit-learn")  # the core's Lightning evaluators, the dashboard
    session.run("python", "-c", CHECK_ONLY)
    session.run("pytest", "tests/core", *session.posargs)


def _plugin_session(name: str, path: str) -> None:
    @nox.session(name=f"plugin-{name}")
    def plugin(session: nox.Session) -> None:
        needs = REQUIRES.get(name, [])
        if name == "engines" or "engines" in needs:
            ensure_sshd(session)
        install_core(session)
        session.install(*(f"-e{PLUGINS[n]}{EXTRAS[n]}" for n in needs), "-e", path + EXTRAS[name], "scikit-learn")
        session.run("python", "-c", CHECK_ONLY, f"nascore-{name}", *(f"nascore-{n}" for n in needs))
        session.run("pytest", f"tests/{name}", *EXTRA_TESTS.get(name, []), *session.posargs)

    needs = "".join(f", nascore-{n}" for n in REQUIRES.get(name, []))
    plugin.__doc__ = f"Only the core and nascore-{name}{needs}: its tests pass and nothing else is listed."


for _name, _path in PLUGINS.items():
    _plugin_session(_name, _path)


@nox.session
def demo(session: nox.Session) -> None:
    """The main job: a real search on scikit-learn's digits."""
    install_all(session)
    session.run("python", "examples/digits_search.py", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """Static checks with ruff."""
    session.install("ruff")
    session.run("ruff", "check", "nascore", "plugins", "tests", "benchmarks", "examples", "noxfile.py")


BENCHMARKS = ("overhead", "strategies", "graph_format", "oneshot", "cgo", "dashboard")


@nox.session
@nox.parametrize("benchmark", BENCHMARKS)
def bench(session: nox.Session, benchmark: str) -> None:
    """Benchmarks (figures, not pass/fail), e.g. ``nox -s "bench(benchmark='overhead')" -- --nni PYTHON``."""
    if benchmark == "dashboard":
        ensure_chromium(session)
    install_all(session, "matplotlib", "-e.[dashboard]", "selenium")
    session.run("python", f"benchmarks/{benchmark}.py", *session.posargs)
