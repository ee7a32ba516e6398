"""Faults on a real two-node Ray cluster (``ray.cluster_utils.Cluster``, 127.0.0.1): dead actors, lost nodes.

The head node has no CPU, so trial actors (1 CPU each) sit on the two worker nodes. A trial's actor that
dies (its process killed) or whose node is removed mid-trial is replaced, on the nodes that remain, and the
trial is re-queued there and finishes; after ``max_requeues`` lost attempts it is FAILED.
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from nascore.engine import EngineContext, TrialResources, TrialStatus, TrialSubmission
from nascore.evaluators import FunctionalEvaluator
from nascore.space import Categorical
from nascore.testing.fakes import DictSpace, RecordingSink
from nascore_ray import RayEngine, RayOptions

from .conftest import ray, wait_until

#: Ray notices a node that stopped answering within about a second (its default is 15 s).
FAST_HEALTH_CHECKS = {"health_check_period_ms": 200, "health_check_failure_threshold": 3,
                      "health_check_initial_delay_ms": 0}


@pytest.fixture(scope="module")
def cluster():
    from ray.cluster_utils import Cluster

    made = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False,
                                                         "_system_config": FAST_HEALTH_CHECKS})
    nodes = [made.add_node(num_cpus=1), made.add_node(num_cpus=1)]
    ray.init(address=made.address, log_to_driver=False)
    made.wait_for_nodes()
    assert all(n["NodeManagerAddress"] == "127.0.0.1" for n in ray.nodes())
    yield made, nodes
    ray.shutdown()
    made.shutdown()


class Held:
    """One engine running trials that wait for a gate file, started on the module's cluster."""

    def __init__(self, tmp_path, rayjob, options: RayOptions) -> None:
        self.gate, self.started = tmp_path / "gate", tmp_path / "started"
        self.started.mkdir()
        self.folder = tmp_path
        self.space = DictSpace([Categorical([1, 2, 3], label="x")])
        self.evaluator = FunctionalEvaluator(rayjob.hold, gate=str(self.gate), started=str(self.started))
        self.sink = RecordingSink()
        self.engine = RayEngine(options)
        self.engine.check(self.evaluator, self.space)
        self.engine.start(EngineContext("ray-faults", tmp_path, TrialResources(trial_concurrency=1), self.sink, self.space))

    def submit(self, trial_id: int) -> None:
        model = self.space.freeze({"x": trial_id})
        self.engine.submit(TrialSubmission(trial_id, model, self.evaluator, self.folder / "trials" / str(trial_id),
                                           model.sample))

    def wait_running(self, count: int) -> int:
        """Wait until the trial ran ``count`` times (a file per attempt); returns the pid of the last attempt."""
        wait_until(lambda: len(list(self.started.iterdir())) >= count, 60, f"attempt {count} to start")
        newest = max(self.started.iterdir(), key=lambda p: p.stat().st_mtime)
        return int(newest.read_text())

    def finish(self, trial_id: int) -> None:
        self.gate.write_text("open")
        limit = time.monotonic() + 60
        while not any(e.ends_trial for e in self.sink.of(trial_id)):
            assert time.monotonic() < limit, f"trial {trial_id} did not end: {self.sink.of(trial_id)}"
            self.engine.wait(0.5)

    def seat(self) -> dict:
        [seat] = self.engine.service.seats()
        return seat


def test_an_actor_killed_mid_trial_is_replaced_and_its_trial_requeued(cluster, tmp_path, rayjob):
    held = Held(tmp_path, rayjob, RayOptions())
    try:
        held.submit(1)
        first_pid = held.wait_running(1)
        first = held.seat()
        assert first["pid"] == first_pid and first["trial_id"] == 1
        os.kill(first_pid, signal.SIGKILL)  # as the kernel's OOM killer would
        second_pid = held.wait_running(2)
        held.finish(1)
        second = held.seat()
    finally:
        held.engine.shutdown()
    events = held.sink.of(1)
    [retry] = [e for e in events if e.kind == "retry"]
    assert "died" in retry.error and f"pid {first_pid}" in retry.error
    end = held.sink.end(1)
    assert end.status is TrialStatus.SUCCEEDED, end.error
    assert next(e.value for e in events if e.kind == "final") == second_pid != first_pid
    assert second["generation"] == first["generation"] + 1 and second["pid"] == second_pid
    assert "this attempt was lost" in (tmp_path / "trials" / "1" / "trial.log").read_text()


def test_a_trial_whose_actor_keeps_dying_fails_after_max_requeues(cluster, tmp_path, rayjob):
    held = Held(tmp_path, rayjob, RayOptions(max_requeues=0))
    try:
        held.submit(1)
        os.kill(held.wait_running(1), signal.SIGKILL)
        limit = time.monotonic() + 60
        while not any(e.ends_trial for e in held.sink.of(1)):
            assert time.monotonic() < limit
            held.engine.wait(0.5)
        # The seat got a new actor: the next trial runs.
        held.submit(2)
        held.wait_running(2)
        held.finish(2)
    finally:
        held.engine.shutdown()
    end = held.sink.end(1)
    assert end.status is TrialStatus.FAILED and "max_requeues = 0" in end.error and "died" in end.error
    assert held.sink.end(2).status is TrialStatus.SUCCEEDED


def test_a_node_removed_mid_trial_has_its_trial_finish_on_the_other_node(cluster, tmp_path, rayjob):
    made, nodes = cluster
    held = Held(tmp_path, rayjob, RayOptions())
    try:
        held.submit(1)
        held.wait_running(1)
        first = held.seat()
        [victim] = [n for n in nodes if n.node_id == first["node_id"]]
        [survivor] = [n for n in nodes if n is not victim]
        made.remove_node(victim, allow_graceful=False)  # the node's processes die at once
        held.wait_running(2)
        second = held.seat()
        held.finish(1)
    finally:
        held.engine.shutdown()
    assert second["node_id"] == survivor.node_id != first["node_id"]
    [retry] = [e for e in held.sink.of(1) if e.kind == "retry"]
    assert "died" in retry.error
    assert held.sink.end(1).status is TrialStatus.SUCCEEDED
