"""The local cluster the engine starts for itself: lean by default, as ``ray.init`` starts it on request.

No ``ray.init`` in this module: each test has :func:`nascore_ray.cluster.connect` start a cluster of its
own (on 127.0.0.1) and :func:`~nascore_ray.cluster.disconnect` stop it, and checks which Ray processes ran.
"""

from __future__ import annotations

import os
import time

import pytest

from nascore.errors import ConfigError
from nascore.options import structure_options
from nascore_ray import cluster
from nascore_ray.options import RayOptions

from .conftest import ray

#: The command-line marks of the Python services a lean head node leaves out.
LEFT_OUT = {"dashboard API server": b"dashboard/dashboard.py", "autoscaler monitor": b"autoscaler/_private/monitor.py",
            "log monitor": b"_private/log_monitor.py"}


def ray_commands(session_dir: str) -> list[bytes]:
    """The command lines of this machine's processes that belong to the Ray session ``session_dir``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                command = f.read()
        except OSError:
            continue
        if session_dir.encode() in command:
            found.append(command)
    return found


def session_dir() -> str:
    """This process's Ray session folder (in the command line of each process of its cluster)."""
    return ray._private.worker.global_worker.node.get_session_dir_path()


def alive(session: str) -> list[bytes]:
    return [c for c in ray_commands(session) if b"gcs_server" in c or b"raylet" in c]


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads the process table from /proc (Linux)")
@pytest.mark.parametrize("lean", [True, False], ids=["lean", "as-ray-init-starts-it"])
def test_the_local_cluster_runs_trials_work_and_is_stopped_at_the_end(lean):
    assert not ray.is_initialized()
    connection = cluster.connect(RayOptions(local_num_cpus=2, lean_local_cluster=lean))
    try:
        assert connection.owned and connection.where == "a local Ray cluster (127.0.0.1)"
        assert (connection.head is not None) is lean
        assert ray.util.get_node_ip_address() == "127.0.0.1"
        assert ray.cluster_resources()["CPU"] == 2

        @ray.remote
        def square(x: int) -> int:
            return x * x

        assert ray.get([square.remote(i) for i in range(4)]) == [0, 1, 4, 9]
        session = session_dir()
        commands = ray_commands(session)
        for what, mark in LEFT_OUT.items():
            running = any(mark in command for command in commands)
            assert running is not lean, f"{what}: running={running} with lean_local_cluster={lean}"
    finally:
        cluster.disconnect(connection)
    assert not ray.is_initialized()
    deadline = time.monotonic() + 30
    while alive(session):  # the GCS and the raylet of that cluster exit
        assert time.monotonic() < deadline, f"left running: {alive(session)}"
        time.sleep(0.1)


def test_lean_local_cluster_is_an_option_checked_by_name():
    assert structure_options(RayOptions, {"lean_local_cluster": False}, "engine_options").lean_local_cluster is False
    with pytest.raises(ConfigError, match=r"engine_options.lean_local_cluster: expected true or false"):
        structure_options(RayOptions, {"lean_local_cluster": "yes"}, "engine_options")
