"""Shared by the Ray tests: a real local Ray cluster per test module, on 127.0.0.1 only, no usage statistics.

Ray reads its loopback switch when it is imported, so it is set here, before any test imports Ray.
A module asks for ``ray_local`` (``ray.init(num_cpus=2)``, shared by the module's tests, shut down after)
or makes its own multi-node ``ray.cluster_utils.Cluster``. Evaluators the actors import live in the
module ``rayjob`` (:data:`JOB`), written to a folder on ``sys.path``, which the engine gives its actors.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # node address 127.0.0.1: nothing leaves loopback
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_DISABLE_USAGE_STATS", "1")

ray = pytest.importorskip("ray")

JOB = '''
import os
import time
from pathlib import Path

import nascore
from nascore.nn import ModelSpace, MutableLinear


class TinySpace(ModelSpace):
    """Two decisions, 8 architectures: x (a width) and y (an output width)."""

    def __init__(self):
        super().__init__()
        x = nascore.choice("x", [1, 2, 3, 4])
        self.a = MutableLinear(4, x)
        self.b = MutableLinear(x, nascore.choice("y", [10, 20]))

    def forward(self, t):
        return self.b(self.a(t))


def steps(model, count=3):
    for step in range(count):
        nascore.report_intermediate_result(step / 10)
    return 1.0 + sum(v if isinstance(v, (int, float)) else len(str(v)) for v in nascore.get_current_sample().values())


def chatty(model):
    print("hello from trial", os.environ["NASCORE_TRIAL_ID"], "pid", os.getpid(), flush=True)
    os.write(2, b"native stderr line\\n")
    return 2.0


def raising(model):
    def deep_inside():
        raise ValueError("the evaluator broke on purpose")
    deep_inside()


def hold(model, gate, started):
    Path(started, f"{os.environ['NASCORE_TRIAL_ID']}-{os.getpid()}").write_text(str(os.getpid()))
    deadline = time.monotonic() + 60
    while not Path(gate).exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    return float(os.getpid())


def env_var(model, name):
    return float(os.environ.get(name, "-1"))


def dataset_size(model, data):
    return float(len(data))
'''


@pytest.fixture(scope="session")
def rayjob(tmp_path_factory):
    """The module ``rayjob``, importable here and, through the engine's ``ship_sys_path``, in the actors."""
    code = tmp_path_factory.mktemp("rayjob")
    (code / "rayjob.py").write_text(JOB)
    sys.path.insert(0, str(code))
    import rayjob

    yield rayjob
    sys.path.remove(str(code))
    sys.modules.pop("rayjob", None)


@pytest.fixture(scope="module")
def ray_local():
    """A local Ray cluster with 2 CPUs, shared by the tests of one module."""
    started = time.monotonic()
    # address="local": a new cluster, never one another test (or `ray start`) left on this machine.
    ray.init(address="local", num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False)
    assert ray.util.get_node_ip_address() == "127.0.0.1"
    yield time.monotonic() - started
    ray.shutdown()


def wait_until(predicate, timeout: float = 60.0, what: str = "a condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def folder_files(folder: Path) -> list[Path]:
    return sorted(folder.iterdir()) if folder.exists() else []
