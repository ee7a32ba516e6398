"""The ``ray`` engine on a real local Ray cluster (2 CPUs, 127.0.0.1): searches, logs, shipping, errors, options."""

from __future__ import annotations

import pytest

from nascore.engine import EngineContext, TrialResources, TrialStatus, TrialSubmission
from nascore.errors import ConfigError, EngineError
from nascore.evaluators import FunctionalEvaluator
from nascore.experiment import Experiment, ExperimentConfig
from nascore.plugin import create_engine
from nascore.space import Categorical
from nascore.testing.fakes import DictSpace, RecordingSink
from nascore_ray import RayEngine, RayOptions

from .conftest import ray


@pytest.fixture(scope="module", autouse=True)
def _cluster(ray_local):
    """Every test of this module runs on the module's local cluster."""


def space() -> DictSpace:
    return DictSpace([Categorical([1, 2, 3, 4], label="x"), Categorical([10, 20], label="y")])


def run(engine: RayEngine, evaluator, samples: list[dict], folder, concurrency: int = 2, timeout: float = 90.0):
    """Start ``engine``, run ``samples`` to their end, shut it down; returns (sink, ids, service)."""
    import time

    sink = RecordingSink()
    dict_space = space()
    engine.check(evaluator, dict_space)
    engine.start(EngineContext("ray-test", folder, TrialResources(trial_concurrency=concurrency), sink, dict_space))
    service = engine.service
    ids: list[int] = []
    try:
        pending = list(samples)
        limit = time.monotonic() + timeout
        while pending or engine.running():
            assert time.monotonic() < limit, f"trials did not end in time: {sink.events}"
            while pending and engine.idle_slots() > 0:
                model = dict_space.freeze(pending.pop(0))
                trial_id = len(ids) + 1
                engine.submit(TrialSubmission(trial_id, model, evaluator, folder / "trials" / str(trial_id), model.sample))
                ids.append(trial_id)
            engine.wait(0.5)
    finally:
        engine.shutdown()
    return sink, ids, service


def test_a_search_completes_with_every_trial_accounted_for(tmp_path, rayjob):
    config = ExperimentConfig(engine="ray", format="simplified", max_trials=6, trial_concurrency=2, seed=1,
                              experiment_dir=tmp_path, engine_options={"num_cpus": 1})
    exp = Experiment(rayjob.TinySpace(), FunctionalEvaluator(rayjob.steps, count=2), "random", config)
    exp.run()
    trials = exp.trials()
    exp.close()
    assert len(trials) == 6
    assert all(t.status is TrialStatus.SUCCEEDED for t in trials), [(t.id, t.status, t.error) for t in trials]
    for t in trials:
        assert t.metric == 1.0 + sum(t.sample.values())
        assert t.intermediates == [0.0, 0.1]


@pytest.mark.parametrize("shares_files", [True, False], ids=["written-by-the-actor", "sent-back-to-the-driver"])
def test_metrics_stream_back_while_the_trial_runs_and_its_output_lands_in_its_folder(tmp_path, rayjob, monkeypatch,
                                                                                     shares_files):
    """An actor that shares this machine's files writes a trial's output into its log; one that does not (another
    machine: here the probe file's text differs) sends it back and the driver writes it. Either way it lands there."""
    if not shares_files:
        from nascore_ray import service as service_module

        real = service_module._write_probe
        monkeypatch.setattr(service_module, "_write_probe", lambda folder: (real(folder)[0], "another machine's text"))
    gate, started = tmp_path / "gate", tmp_path / "started"
    started.mkdir()
    engine = RayEngine(RayOptions())
    dict_space = space()
    sink = RecordingSink()
    holding = FunctionalEvaluator(rayjob.hold, gate=str(gate), started=str(started))
    chatty = FunctionalEvaluator(rayjob.chatty)
    engine.check(holding, dict_space)
    engine.start(EngineContext("ray-test", tmp_path, TrialResources(trial_concurrency=1), sink, dict_space))
    try:
        model = dict_space.freeze({"x": 1, "y": 10})
        engine.submit(TrialSubmission(1, model, holding, tmp_path / "trials" / "1", model.sample))
        # RUNNING arrives while the trial is still held: events are not batched until its end.
        sink.wait_for(lambda events: any(e.status is TrialStatus.RUNNING for e in events), timeout=60, what="RUNNING")
        assert not any(e.ends_trial for e in sink.events)
        gate.write_text("open")
        sink.wait_for(lambda events: any(e.ends_trial for e in events), timeout=60, what="the end of trial 1")
        engine.submit(TrialSubmission(2, model, chatty, tmp_path / "trials" / "2", model.sample))
        sink.wait_for(lambda events: any(e.ends_trial and e.trial_id == 2 for e in events), timeout=60, what="trial 2")
        assert [seat["shares_files"] for seat in engine.service.seats()] == [shares_files]
    finally:
        engine.shutdown()
    assert sink.end(2).status is TrialStatus.SUCCEEDED, sink.end(2).error
    log = (tmp_path / "trials" / "2" / "trial.log").read_text()
    assert "hello from trial 2" in log and "native stderr line" in log
    # The same warm actor ran both trials (trial 1 returned its pid).
    first_pid = next(e.value for e in sink.of(1) if e.kind == "final")
    assert f"pid {first_pid:.0f}" in log


def test_a_raising_trial_is_failed_with_the_remote_traceback(tmp_path, rayjob):
    sink, ids, service = run(RayEngine(RayOptions()), FunctionalEvaluator(rayjob.raising), [{"x": 1, "y": 10}], tmp_path, 1)
    end = sink.end(ids[0])
    assert end.status is TrialStatus.FAILED
    assert "ValueError: the evaluator broke on purpose" in end.error
    assert "Traceback" in end.error and "deep_inside" in end.error and "rayjob.py" in end.error
    assert "deep_inside" in (tmp_path / "trials" / "1" / "trial.log").read_text()


def test_a_gpu_request_on_a_cluster_without_gpus_is_an_error_before_the_first_trial(tmp_path, rayjob):
    assert ray.cluster_resources().get("GPU", 0) == 0
    config = ExperimentConfig(engine="ray", format="simplified", max_trials=2, experiment_dir=tmp_path,
                              engine_options={"num_gpus": 0.5})
    exp = Experiment(rayjob.TinySpace(), FunctionalEvaluator(rayjob.steps), "random", config)
    with pytest.raises(EngineError, match=r"0\.5 GPU .*has no GPU.*num_gpus = 0"):
        exp.run()
    assert exp.trials() == []
    exp.close()
    # trial_gpu_number asks the same when num_gpus is left out.
    engine = create_engine("ray", {}, TrialResources(trial_gpu_number=1))
    with pytest.raises(EngineError, match="1 GPU"):
        engine.start(EngineContext("ray-test", tmp_path, TrialResources(trial_gpu_number=1), RecordingSink(), space()))


def test_an_evaluators_data_goes_into_the_object_store_once_per_experiment(tmp_path, rayjob):
    data = list(range(200_000))  # not JSON arguments of an importable function: shipped by cloudpickle, by value
    evaluator = FunctionalEvaluator(lambda model: rayjob.dataset_size(model, data))
    engine = RayEngine(RayOptions())
    samples = [{"x": x, "y": 10} for x in (1, 2, 3, 4)] + [{"x": 1, "y": 20}]
    sink, ids, service = run(engine, evaluator, samples, tmp_path, 2)
    for trial_id in ids:
        assert sink.end(trial_id).status is TrialStatus.SUCCEEDED, sink.end(trial_id).error
        assert next(e.value for e in sink.of(trial_id) if e.kind == "final") == 200_000
    assert service.object_store_puts == 1  # 5 trials on 2 actors: one put, each actor fetched it once


def test_runtime_env_reaches_the_trials(tmp_path, rayjob):
    options = RayOptions(runtime_env={"env_vars": {"NASCORE_RAY_TEST_VALUE": "7"}})
    sink, ids, service = run(RayEngine(options), FunctionalEvaluator(rayjob.env_var, name="NASCORE_RAY_TEST_VALUE"),
                    [{"x": 1, "y": 10}], tmp_path, 1)
    assert next(e.value for e in sink.of(ids[0]) if e.kind == "final") == 7.0


def test_a_local_working_dir_on_a_connection_made_before_is_a_clear_error(tmp_path):
    # This module's cluster was started by ray.init in this process: Ray cannot upload a directory per actor.
    options = RayOptions(runtime_env={"working_dir": str(tmp_path)})
    with pytest.raises(EngineError, match=r"runtime_env has local working_dir = .*already connected.*ray\.init"):
        run(RayEngine(options), FunctionalEvaluator(lambda model: 1.0), [{"x": 1, "y": 10}], tmp_path, 1)


def test_options_are_checked_and_named():
    engine = create_engine("ray", {"address": "auto", "num_cpus": 2, "num_gpus": 0.25, "max_concurrency": 3},
                           TrialResources(trial_concurrency=8))
    assert isinstance(engine, RayEngine) and engine.settings.num_gpus == 0.25 and engine.settings.max_concurrency == 3
    with pytest.raises(ConfigError, match=r"engine_options\.num_gpus"):
        create_engine("ray", {"num_gpus": 1.5})
    with pytest.raises(ConfigError, match=r"engine_options\.num_cpus"):
        create_engine("ray", {"num_cpus": -1})
    with pytest.raises(ConfigError, match="did you mean 'max_concurrency'"):
        create_engine("ray", {"max_concurency": 2})
    assert RayOptions(num_gpus=None).gpus_per_trial(2) == 2.0 and RayOptions(num_gpus=0.5).gpus_per_trial(2) == 0.5
