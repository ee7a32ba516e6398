"""A lost head node is reported clearly, and the experiment resumes from its store later.

Ray ends a driver whose head (GCS) stays unreachable for ``gcs_rpc_server_reconnect_timeout_s``, so the
loss is staged in a child process: a two-node ``ray.cluster_utils.Cluster`` (127.0.0.1), an experiment on
the ``ray`` engine whose trial waits on a gate, and the head's GCS killed mid-trial. The engine's
heartbeat notices first: ``exp.run()`` raises the engine's error, the store keeps the finished trial.
This process then resumes the experiment on a local cluster the engine starts itself.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from nascore.engine import TrialStatus
from nascore.evaluators import FunctionalEvaluator
from nascore.experiment import Experiment

from .conftest import ray

CHILD = textwrap.dedent('''
    import os, sys, threading, time
    from pathlib import Path
    import ray
    from ray.cluster_utils import Cluster
    from nascore.evaluators import FunctionalEvaluator
    from nascore.experiment import Experiment, ExperimentConfig
    import rayjob

    folder, started = Path(sys.argv[1]), Path(sys.argv[2])
    made = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False, "_system_config": {
        "gcs_rpc_server_reconnect_timeout_s": 30, "health_check_period_ms": 200, "health_check_failure_threshold": 3}})
    made.add_node(num_cpus=1)
    ray.init(address=made.address, log_to_driver=False)
    made.wait_for_nodes()
    config = ExperimentConfig(engine="ray", format="simplified", max_trials=3, trial_concurrency=1, seed=0,
                              experiment_dir=folder, engine_options={"heartbeat": 0.5})
    evaluator = FunctionalEvaluator(rayjob.hold, gate=str(folder / "gate"), started=str(started))
    exp = Experiment(rayjob.TinySpace(), evaluator, "random", config)

    def descendants():
        """This process's descendants (Ray's processes: GCS, raylets, agents, workers), from /proc."""
        parents = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/stat") as stat:
                        parents[int(entry)] = int(stat.read().rsplit(")", 1)[1].split()[1])
                except (OSError, ValueError, IndexError):
                    pass
        found, frontier = set(), {os.getpid()}
        while frontier:
            frontier = {pid for pid, parent in parents.items() if parent in frontier} - found
            found |= frontier
        return found

    ours = set()

    def kill_head():
        while not any(started.iterdir()):  # the first trial runs (held at the gate)
            time.sleep(0.05)
        ours.update(descendants())  # before the tree breaks up: raylets' agents outlive them
        made.head_node.kill_gcs_server()

    threading.Thread(target=kill_head, daemon=True).start()
    try:
        exp.run()
        print("NO ERROR")
    except Exception as exc:
        print("ERROR", type(exc).__name__, str(exc).replace(chr(10), " "))
    print("ID", exp.id)
    sys.stdout.flush()

    def stop_nodes():  # what is left of the cluster (raylets, agents, workers) goes with this process
        for node in made.list_all_nodes():
            node.kill_all_processes(check_alive=False, allow_graceful=False)

    stopper = threading.Thread(target=stop_nodes, daemon=True)
    stopper.start()
    stopper.join(20)
    for pid in ours | descendants():
        try:
            os.kill(pid, 9)
        except OSError:
            pass
    os._exit(0)
''')


def test_a_lost_head_is_reported_and_the_experiment_resumes_from_its_store(tmp_path, rayjob):
    assert not ray.is_initialized()
    started = tmp_path / "started"
    started.mkdir()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.path.dirname(rayjob.__file__), *sys.path])}
    child = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path), str(started)], capture_output=True, text=True,
                           timeout=120, env=env)
    lines = {line.split(" ", 1)[0]: line for line in child.stdout.splitlines() if line.startswith(("ERROR", "ID", "NO"))}
    assert "ERROR" in lines, child.stdout[-2000:] + child.stderr[-3000:]
    assert "lost" in lines["ERROR"] and "resume the experiment" in lines["ERROR"], lines["ERROR"]
    experiment_id = lines["ID"].split()[1]
    (tmp_path / "gate").write_text("open")
    evaluator = FunctionalEvaluator(rayjob.hold, gate=str(tmp_path / "gate"), started=str(started))
    exp = Experiment.resume(experiment_id, rayjob.TinySpace(), evaluator, experiment_dir=tmp_path)
    before = {t.id: t.status for t in exp.trials()}
    exp.run()  # a local cluster, started and stopped by the engine
    after = exp.trials()
    exp.close()
    assert before and all(status is not TrialStatus.SUCCEEDED for status in before.values())  # it reruns
    assert len(after) == 3 and all(t.status is TrialStatus.SUCCEEDED for t in after), [(t.id, t.status) for t in after]
    assert not ray.is_initialized()
