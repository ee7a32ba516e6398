"""Workers forked from a template process: they run and report trials, a killed one fails its trial and
is replaced, shutdown leaves no process behind, and where no template can run workers start as before."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading

import pytest

from nascore.engine import TrialResources, TrialStatus
from nascore.evaluators import FunctionalEvaluator
from nascore.testing.fakes import RecordingSink
from nascore_engines.training_service import TrainingServiceOptions
from nascore_engines.training_service.gpu import Seat
from nascore_engines.training_service.local import LocalService
from nascore_engines.training_service.pool import PoolTrial, WorkerPool
from nascore_engines.training_service.template import ForkedProcess, Template, fork_unfit_reason

from .harness import run_all, space, start

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="templates fork")


def children_of(pid: int) -> list[tuple[int, str]]:
    """The children of ``pid``, zombies included: (pid, state) from /proc."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append((int(name), fields[0]))
    return found


def alive(pid: int) -> bool:
    """Running (a zombie whose parent is gone counts as ended: a container's init may never reap it)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def make_engine(tmp_path, sink, dict_space, worker_start, concurrency=1, monkeypatch=None):
    from nascore.experiment import ExperimentConfig
    from nascore.experiment.config import create_engine_for

    monkeypatch.setenv("NASCORE_WORKER_START", worker_start)
    config = ExperimentConfig(experiment_dir=tmp_path, engine="training-service", trial_concurrency=concurrency,
                              engine_options=TrainingServiceOptions())
    engine = create_engine_for(config)
    start(engine, config, tmp_path, sink, dict_space)
    return engine


@pytest.mark.parametrize("kind", ["fork", "exec"])
def test_trials_run_and_report_in_workers_forked_from_a_template(tmp_path, tsjob, monkeypatch, kind):
    sink = RecordingSink()
    dict_space = space("what", ["ok"])
    engine = make_engine(tmp_path, sink, dict_space, kind, concurrency=2, monkeypatch=monkeypatch)
    try:
        pool = engine.service.pool
        assert pool.template is not None and pool.template.kind == kind
        template = pool.template.pid
        workers = set(pool.pids)
        assert {pid for pid, _ in children_of(template)} == workers  # the template is the workers' parent
        ids = run_all(engine, dict_space, FunctionalEvaluator(tsjob.behave), [{"what": "ok"}] * 4, tmp_path)
        assert len(pool.startup_seconds) == 2
    finally:
        engine.shutdown()
    assert [sink.end(i).status for i in ids] == [TrialStatus.SUCCEEDED] * 4
    pids = {sink.intermediates(i)[0]["pid"] for i in ids}
    assert pids <= workers
    for trial_id in ids:  # the trial's output went to its own folder
        assert "trial says hello: ok" in (tmp_path / "trials" / str(trial_id) / "trial.log").read_text()
    # Shutdown: the workers and the template are gone, reaped, and nothing else is left.
    for pid in [*workers, template]:
        assert not alive(pid)
    assert children_of(os.getpid()) == []


def test_a_killed_forked_worker_fails_its_trial_with_the_cause_and_is_replaced(tmp_path, tsjob, monkeypatch):
    sink = RecordingSink()
    dict_space = space("what", ["gate", "ok"])
    gate = tmp_path / "gate"
    engine = make_engine(tmp_path, sink, dict_space, "fork", monkeypatch=monkeypatch)
    evaluator = FunctionalEvaluator(tsjob.behave, gate=str(gate))

    def kill_when_running():
        sink.wait_for(lambda events: any(e.kind == "intermediate" for e in events), what="the running trial")
        os.kill(sink.intermediates(1)[0]["pid"], signal.SIGKILL)  # from outside, as the OOM killer would

    killer = threading.Thread(target=kill_when_running)
    killer.start()
    try:
        [first, second] = run_all(engine, dict_space, evaluator, [{"what": "gate"}, {"what": "ok"}], tmp_path)
        template = engine.service.pool.template
        assert template is not None and template.kind == "fork"  # the replacement came from the template too
        assert {pid for pid, _ in children_of(template.pid)} == set(engine.service.pool.pids)
    finally:
        killer.join()
        engine.shutdown()
    failed = sink.end(first)
    assert failed.status is TrialStatus.FAILED and "was killed by SIGKILL" in failed.error
    assert "trial says hello: gate" in failed.error  # its last output is quoted
    assert sink.end(second).status is TrialStatus.SUCCEEDED
    assert sink.intermediates(second)[0]["pid"] != sink.intermediates(first)[0]["pid"]
    assert children_of(os.getpid()) == []


def test_workers_of_a_template_that_dies_are_stopped_and_new_ones_start_as_processes(tmp_path, tsjob, caplog):
    events = []
    pool = WorkerPool([Seat(0)], on_event=events.append, log_dir=tmp_path / "workers", worker_start="fork")
    pool.start(wait_ready=60)
    try:
        template = pool.template
        [old] = pool.pids
        with caplog.at_level(logging.WARNING):
            os.kill(template.pid, signal.SIGKILL)
            deadline = threading.Event()
            for _ in range(500):  # the worker is stopped, and its seat refilled by a new process
                pids = pool.pids
                if pids and pids != [old] and not isinstance(pool._workers[0].proc, ForkedProcess):
                    break
                deadline.wait(0.02)
            assert not alive(old)
        assert "The worker template process" in caplog.text and "exited" in caplog.text
        assert pool.template is None or not pool.template.alive
        assert isinstance(pool._workers[0].proc, subprocess.Popen)
    finally:
        pool.shutdown()
    assert children_of(os.getpid()) == []


def test_the_fallback_spawns_workers_as_new_processes_and_says_why(tmp_path, tsjob, monkeypatch, caplog):
    sink = RecordingSink()
    dict_space = space("what", ["ok"])
    monkeypatch.delattr(os, "fork")  # a platform without fork
    with caplog.at_level(logging.INFO, logger="nascore_engines"):
        engine = make_engine(tmp_path, sink, dict_space, "auto", monkeypatch=monkeypatch)
    try:
        assert engine.service.pool.template is None
        [worker] = engine.service.pool.pids
        [trial] = run_all(engine, dict_space, FunctionalEvaluator(tsjob.behave), [{"what": "ok"}], tmp_path)
    finally:
        engine.shutdown()
    assert "cannot fork them from a template" in caplog.text
    assert "(new processes)" in caplog.text
    assert sink.end(trial).status is TrialStatus.SUCCEEDED
    assert sink.intermediates(trial)[0]["pid"] == worker
    assert children_of(os.getpid()) == []


def test_a_process_that_touched_cuda_is_not_forked(monkeypatch):
    torch = pytest.importorskip("torch")
    assert fork_unfit_reason() is None
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    assert "CUDA is initialized" in fork_unfit_reason()


def test_started_openmp_threads_send_the_template_to_a_fresh_interpreter(tmp_path, caplog):
    """Forking after torch's OpenMP threads ran hangs the child's first parallel op: the probe sees it."""
    script = f"""
import logging, os, sys, torch
sys.path[:0] = {sys.path!r}
logging.basicConfig(level=logging.INFO, stream=sys.stdout)
torch.set_num_threads(2)
torch.ones(1 << 20).exp_()  # starts OpenMP's threads in this process
from nascore_engines.training_service.template import Template
from pathlib import Path
template = Template.start(Path({str(tmp_path / "t.log")!r}), kind="auto")
print("KIND", template.kind)
template.close()
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "OMP_NUM_THREADS": "2"})
    assert "KIND exec" in out.stdout, out.stdout + out.stderr
    assert "torch's OpenMP threads were started in the experiment process" in out.stdout


def test_forked_workers_start_fresh(tmp_path, tsjob, monkeypatch):
    """Each forked worker has its own random state, the seat's environment, and none of the parent's handlers."""
    import random

    sink = RecordingSink()
    dict_space = space("x", [0, 1])
    handler = logging.FileHandler(tmp_path / "experiment.log")
    logging.getLogger().addHandler(handler)
    monkeypatch.setenv("NASCORE_SOMETHING", "seen")
    random.seed(0)
    try:
        engine = make_engine(tmp_path, sink, dict_space, "fork", concurrency=2, monkeypatch=monkeypatch)
        try:
            ids = run_all(engine, dict_space, FunctionalEvaluator(tsjob.draws), [{"x": 0}, {"x": 1}], tmp_path)
        finally:
            engine.shutdown()
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()
    draws = [next(e.metric for e in sink.of(i) if e.kind == "final") for i in ids]
    assert draws[0]["rand"] != draws[1]["rand"] and draws[0]["random"] != draws[1]["random"]
    assert (tmp_path / "experiment.log").read_text() == ""


def test_a_pool_trial_runs_on_a_template_worker_directly(tmp_path, tsjob):
    """The pool alone (as the local service uses it): a forked worker takes a shipped trial and reports it."""
    from nascore.serialization import ship_evaluator, ship_model

    events = []
    done = threading.Event()

    def on_event(event):
        events.append(event)
        if event.ends_trial:
            done.set()

    pool = WorkerPool([Seat(0)], on_event=on_event, log_dir=tmp_path / "workers", worker_start="fork")
    pool.start(wait_ready=60)
    try:
        model = space("what", ["ok"]).freeze({"what": "ok"})
        pool.run(PoolTrial(1, ship_model(model), "e", ship_evaluator(FunctionalEvaluator(tsjob.behave)),
                           tmp_path / "trials" / "1" / "trial.log"))
        assert done.wait(60)
    finally:
        pool.shutdown()
    assert events[-1].status is TrialStatus.SUCCEEDED
    assert (tmp_path / "workers" / "template.log").exists()


def test_local_service_picks_the_worker_start_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("NASCORE_WORKER_START", "spawn")
    service = LocalService(TrialResources(), TrainingServiceOptions(), tmp_path, lambda e: None)
    assert service.pool.worker_start == "spawn"
    assert LocalService(TrialResources(), TrainingServiceOptions(), tmp_path, lambda e: None,
                        worker_start="exec").pool.worker_start == "exec"
    monkeypatch.delenv("NASCORE_WORKER_START")
    assert LocalService(TrialResources(), TrainingServiceOptions(), tmp_path, lambda e: None).pool.worker_start == "auto"
    options = TrainingServiceOptions(worker_start="spawn")  # engine_options.worker_start
    assert LocalService(TrialResources(), options, tmp_path, lambda e: None).pool.worker_start == "spawn"
    with pytest.raises(Exception, match="worker_start"):
        TrainingServiceOptions(worker_start="thread")


def test_template_close_is_idempotent_and_reaps(tmp_path):
    template = Template.start(tmp_path / "t.log", kind="fork")
    assert template is not None
    template.close()
    template.close()
    assert not alive(template.pid)
    assert children_of(os.getpid()) == []
