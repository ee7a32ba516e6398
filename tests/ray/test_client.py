"""``engine_options.address = "ray://host:port"``: the engine reaches a cluster through Ray Client.

Staged in a child process (a Ray Client driver is a mode of the whole process): a one-node
``ray.cluster_utils.Cluster`` on 127.0.0.1 with its Ray Client server on a free loopback port, and a
search whose engine connects to it by that ``ray://`` address; every trial ends with its metrics.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from .conftest import ray

CHILD = textwrap.dedent('''
    import socket, sys
    from pathlib import Path
    from ray.cluster_utils import Cluster
    from nascore.evaluators import FunctionalEvaluator
    from nascore.experiment import Experiment, ExperimentConfig
    import rayjob

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    made = Cluster(initialize_head=True, head_node_args={"num_cpus": 2, "include_dashboard": False,
                                                         "ray_client_server_port": port})
    try:
        config = ExperimentConfig(engine="ray", format="simplified", max_trials=3, trial_concurrency=2, seed=0,
                                  experiment_dir=Path(sys.argv[1]), progress="off",
                                  engine_options={"address": f"ray://127.0.0.1:{port}"})
        exp = Experiment(rayjob.TinySpace(), FunctionalEvaluator(rayjob.steps, count=2), "random", config)
        exp.run()
        for trial in exp.trials():
            print("TRIAL", trial.id, trial.status.name, trial.metric, trial.intermediates, trial.sample)
        exp.close()
    finally:
        made.shutdown()
    sys.stdout.flush()
''')


#: Ray Client's own server for a new client (a process its proxy starts) now and then exits as it starts
#: ("SpecificServer startup failed" in the proxy's log; nothing of nascore runs yet): a new cluster is tried then.
RAY_CLIENT_STARTUP = "Starting Ray client server failed"


def test_a_search_runs_through_a_ray_client_address(tmp_path, rayjob):
    assert not ray.is_initialized()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.path.dirname(rayjob.__file__), *sys.path])}
    for attempt in range(2):
        folder = tmp_path / f"attempt-{attempt}"
        child = subprocess.run([sys.executable, "-c", CHILD, str(folder)], capture_output=True, text=True, timeout=180,
                               env=env)
        if RAY_CLIENT_STARTUP not in child.stderr:
            break
    trials = [line.split(" ", 3) for line in child.stdout.splitlines() if line.startswith("TRIAL ")]
    assert len(trials) == 3, child.stdout[-2000:] + child.stderr[-3000:]
    assert all(status == "SUCCEEDED" for _, _, status, _ in trials), child.stdout[-2000:] + child.stderr[-3000:]
    assert all(rest.split(" ", 1)[1].startswith("[0.0, 0.1]") for *_, rest in trials)  # intermediates came back
    assert not ray.is_initialized()
