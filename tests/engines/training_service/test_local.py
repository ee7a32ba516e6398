"""The local training service: warm workers, isolation, faults, timeouts, memory limits, logs, GPU placement."""

from __future__ import annotations

import os
import threading

import pytest

import nascore
from nascore.engine import TrialStatus
from nascore.errors import EngineError, ShippingError
from nascore.evaluators import FunctionalEvaluator
from nascore.experiment import ExperimentConfig
from nascore.experiment.config import create_engine_for, trial_resources
from nascore.plugin import get_plugins
from nascore.testing.fakes import RecordingSink
from nascore_engines import TrainingServiceEngine
from nascore_engines.training_service import TrainingServiceOptions

from .harness import run_all, space, start

FAULTS = ["ok", "raise", "exit", "kill", "segfault", "sysexit", "loop", "memory", "bytes", "ok"]


def make(tmp_path, sink, dict_space=None, concurrency=2, gpus=None, settings=None, **config):
    config = ExperimentConfig(
        experiment_dir=tmp_path, engine="training-service", trial_concurrency=concurrency, **config,
        engine_options=settings or TrainingServiceOptions(),
    )
    engine = create_engine_for(config) if gpus is None else TrainingServiceEngine(config.engine_options, trial_resources(config), gpus=gpus)
    return engine, config


def test_registered_as_training_service():
    entry = get_plugins().engines.registration("training-service")
    assert entry.obj is TrainingServiceEngine and entry.distribution == "nascore-engines"


def test_every_fault_ends_its_trial_with_its_cause(tmp_path, tsjob):
    sink = RecordingSink()
    dict_space = space("what", FAULTS[:-1])
    engine, config = make(tmp_path, sink, trial_timeout=2, trial_memory_limit="256MB")
    evaluator = FunctionalEvaluator(tsjob.behave)
    engine.check(evaluator)
    start(engine, config, tmp_path, sink, dict_space)
    try:
        ids = run_all(engine, dict_space, evaluator, [{"what": w} for w in FAULTS], tmp_path)
    finally:
        engine.shutdown()
    assert len(ids) == len(FAULTS)
    ends = {what: sink.end(trial_id) for trial_id, what in zip(ids, FAULTS)}  # exactly one end per trial
    assert sink.end(ids[0]).status is sink.end(ids[-1]).status is TrialStatus.SUCCEEDED
    failed = {what: e.error for what, e in ends.items() if what != "ok"}
    assert all(ends[w].status is TrialStatus.FAILED for w in failed)
    assert "ValueError: the trial broke on purpose" in failed["raise"]
    assert "exited with code 3" in failed["exit"]
    assert "killed by SIGKILL" in failed["kill"]
    assert "killed by SIGSEGV" in failed["segfault"] and "Segmentation fault" in failed["segfault"]
    assert "sys.exit(4)" in failed["sysexit"]
    assert "timed out after 2 s (trial_timeout)" in failed["loop"]
    assert "tsjob.py\", line" in failed["loop"] and "in behave" in failed["loop"]  # where it was stuck, dumped before the kill
    assert failed["memory"].startswith("out of memory") and "256 MiB (trial_memory_limit)" in failed["memory"]
    assert "can't allocate memory" in failed["memory"]
    assert failed["bytes"].startswith("out of memory") and "MemoryError" in failed["bytes"]
    for what in ("exit", "kill", "segfault", "loop"):  # a dead worker's trial quotes its last output
        assert f"trial says hello: {what}" in failed[what], failed[what]
    # Every trial got its own folder with its stdout and stderr.
    for trial_id, what in zip(ids, FAULTS):
        log = (tmp_path / "trials" / str(trial_id) / "trial.log").read_text()
        assert f"trial says hello: {what}" in log and f"trial warns on stderr: {what}" in log
    assert "ValueError: the trial broke on purpose" in (tmp_path / "trials" / str(ids[1]) / "trial.log").read_text()


def test_workers_stay_warm_and_crashed_ones_are_replaced(tmp_path, tsjob):
    sink = RecordingSink()
    dict_space = space("what", ["ok", "exit"])
    engine, config = make(tmp_path, sink, concurrency=1)
    start(engine, config, tmp_path, sink, dict_space)
    evaluator = FunctionalEvaluator(tsjob.behave)
    try:
        ids = run_all(engine, dict_space, evaluator, [{"what": w} for w in ["ok", "ok", "exit", "ok"]], tmp_path)
        pids = [sink.intermediates(i)[0]["pid"] for i in ids]
        assert pids[0] == pids[1] == pids[2] != pids[3]  # trial after trial in one process, then a new one
        assert engine.service.pool.pids == [pids[3]]
    finally:
        engine.shutdown()
    assert engine.service is None
    for pid in pids:  # shutdown leaves no worker behind
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_metrics_stream_while_the_trial_runs(tmp_path, tsjob):
    sink = RecordingSink()
    dict_space = space("what", ["gate"])
    gate = tmp_path / "gate"
    engine, config = make(tmp_path, sink, concurrency=1)
    start(engine, config, tmp_path, sink, dict_space)
    evaluator = FunctionalEvaluator(tsjob.behave, gate=str(gate))
    released = threading.Event()

    def release_when_reported():
        sink.wait_for(lambda events: any(e.kind == "intermediate" for e in events), what="the intermediate result")
        assert not any(e.ends_trial for e in sink.events)  # the trial is still running
        gate.write_text("go")
        released.set()

    helper = threading.Thread(target=release_when_reported)
    helper.start()
    try:
        run_all(engine, dict_space, evaluator, [{"what": "gate"}], tmp_path)
    finally:
        engine.shutdown()
        helper.join()
    assert released.is_set()
    kinds = [e.kind if e.kind != "status" else e.status.value for e in sink.events]
    assert kinds == ["RUNNING", "intermediate", "final", "SUCCEEDED"]
    assert sink.events[1].metric["trial"] == "1" and sink.events[1].metric["machine"] == "local"


def test_fake_gpus_are_placed_one_set_per_worker(tmp_path, tsjob):
    sink = RecordingSink()
    dict_space = space("what", ["gate"])
    gate = tmp_path / "gate"
    settings = TrainingServiceOptions(max_trials_per_gpu=2, gpu_indices=[1, 3])
    engine, config = make(tmp_path, sink, concurrency=2, gpus=[0, 1, 2, 3], settings=settings, trial_gpu_number=1)
    start(engine, config, tmp_path, sink, dict_space)

    def open_gate_when_both_run():  # both trials run at once, so they sit on different seats
        sink.wait_for(lambda events: sum(e.kind == "intermediate" for e in events) == 2, what="two running trials")
        gate.write_text("go")

    helper = threading.Thread(target=open_gate_when_both_run)
    helper.start()
    try:
        ids = run_all(engine, dict_space, FunctionalEvaluator(tsjob.behave, gate=str(gate)), [{"what": "gate"}] * 2, tmp_path)
    finally:
        engine.shutdown()
        helper.join()
    assert sorted(sink.intermediates(i)[0]["cuda"] for i in ids) == ["1", "3"]


def test_cpu_trials_see_no_gpu(tmp_path, tsjob):
    sink = RecordingSink()
    dict_space = space("what", ["ok"])
    engine, config = make(tmp_path, sink, concurrency=1, gpus=[0, 1])
    start(engine, config, tmp_path, sink, dict_space)
    try:
        ids = run_all(engine, dict_space, FunctionalEvaluator(tsjob.behave), [{"what": "ok"}], tmp_path)
    finally:
        engine.shutdown()
    assert sink.intermediates(ids[0])[0]["cuda"] == ""


@pytest.mark.parametrize(
    ("gpus", "settings", "message"),
    [
        ([], TrainingServiceOptions(), "trial_gpu_number = 1, but this machine has no GPU"),
        ([0, 1], TrainingServiceOptions(gpu_indices=[2]), "gpu_indices lists GPU 2, which this machine does not have"),
    ],
)
def test_gpus_that_do_not_exist_are_an_error_before_the_first_trial(tmp_path, gpus, settings, message):
    engine, config = make(tmp_path, RecordingSink(), gpus=gpus, settings=settings, trial_gpu_number=1)
    with pytest.raises(EngineError, match=message):
        engine.check(FunctionalEvaluator(lambda m: 1.0))


def test_an_evaluator_that_cannot_be_shipped_is_an_error_before_the_first_trial(tmp_path):
    lock = threading.Lock()
    engine, config = make(tmp_path, RecordingSink())
    with pytest.raises(ShippingError, match=r"cannot ship the evaluator .*cloudpickle failed too .*lock"):
        engine.check(FunctionalEvaluator(lambda m: 1.0, lock=lock))


def test_a_space_whose_models_cannot_be_shipped_fails_at_start(tmp_path):
    from nascore.testing.fakes import SampleModel

    class Unshippable(SampleModel):
        def __init__(self, sample):
            super().__init__(sample)
            self.lock = threading.Lock()

    dict_space = space("what", ["ok"])
    dict_space.freeze = lambda sample: Unshippable(sample)
    engine, config = make(tmp_path, RecordingSink())
    with pytest.raises(ShippingError, match="cannot ship the model"):
        start(engine, config, tmp_path, RecordingSink(), dict_space)
    assert engine.service is None


def test_lambdas_and_main_style_objects_ship_by_cloudpickle(tmp_path):
    sink = RecordingSink()
    dict_space = space("x", [1, 2])
    engine, config = make(tmp_path, sink, concurrency=1)
    start(engine, config, tmp_path, sink, dict_space)
    offset = 10
    try:
        ids = run_all(engine, dict_space, FunctionalEvaluator(lambda m: nascore.get_current_sample()["x"] + offset),
                      [{"x": 1}, {"x": 2}], tmp_path)
    finally:
        engine.shutdown()
    assert [sink.end(i).status for i in ids] == [TrialStatus.SUCCEEDED] * 2
    assert [e.value for e in sink.events if e.kind == "final"] == [11.0, 12.0]


def test_submit_before_start_is_an_error(tmp_path):
    from nascore.engine import TrialSubmission

    model = space("x", [1]).freeze({"x": 1})
    with pytest.raises(EngineError, match="before start"):
        TrainingServiceEngine().submit(TrialSubmission(1, model, FunctionalEvaluator(lambda m: 1.0), tmp_path, {}))


def test_a_python_that_cannot_run_workers_is_an_error_at_start(tmp_path):
    engine, config = make(tmp_path, RecordingSink(), settings=TrainingServiceOptions(python=str(tmp_path / "no-such-python")))
    with pytest.raises(EngineError, match="cannot start a worker process with .*no-such-python.*engine_options.python"):
        start(engine, config, tmp_path, RecordingSink())


def test_workers_that_die_at_start_are_an_error_at_start_not_an_endless_respawn(tmp_path):
    python = tmp_path / "python-without-nascore"
    python.write_text("#!/bin/sh\necho \"No module named nascore_engines\" >&2\nexit 1\n")
    python.chmod(0o755)
    engine, config = make(tmp_path, RecordingSink(), settings=TrainingServiceOptions(python=str(python)))
    with pytest.raises(EngineError, match=r"(?s)exit before they are ready.*No module named nascore_engines"):
        start(engine, config, tmp_path, RecordingSink())
