"""Trials on a remote machine (a real OpenSSH server on loopback): seeds travel with them, and a local
trial folder that cannot be written aborts the trial without dropping the machine."""

from __future__ import annotations

import sys

from nascore.engine import TrialStatus
from nascore.evaluators import FunctionalEvaluator
from nascore.experiment import ExperimentConfig
from nascore.experiment.config import create_engine_for
from nascore.testing.fakes import RecordingSink
from nascore.trial import seed_everything
from nascore_engines.training_service import RemoteMachine, TrainingServiceOptions

from .harness import run_all, space, start


def one_machine_engine(tmp_path, server, key, evaluator, sink, dict_space):
    (tmp_path / "known_hosts").write_text(server.known_hosts_line)
    settings = TrainingServiceOptions(
        platform="remote", known_hosts=tmp_path / "known_hosts", code_dir=tmp_path / "code",
        machines=[RemoteMachine(host="127.0.0.1", port=server.port, key_file=key, python=sys.executable,
                                workdir=str(tmp_path / "remote-a"), name="a", max_trials=1)],
    )
    config = ExperimentConfig(experiment_dir=tmp_path / "exp", engine="training-service", trial_concurrency=1,
                              engine_options=settings)
    engine = create_engine_for(config)
    engine.check(evaluator)
    start(engine, config, tmp_path / "exp", sink, dict_space)
    return engine


def test_a_remote_trial_starts_from_its_seed(tmp_path, tsjob, sshd_factory, user_keys):
    sink = RecordingSink()
    dict_space = space("x", [0, 1, 2])
    evaluator = FunctionalEvaluator(tsjob.draws)
    engine = one_machine_engine(tmp_path, sshd_factory("a"), user_keys[0], evaluator, sink, dict_space)
    seeds = {0: 11, 1: 22, 2: 11}
    try:
        ids = run_all(engine, dict_space, evaluator, [{"x": x} for x in seeds], tmp_path / "exp",
                      seed=lambda s: seeds[s["x"]])
    finally:
        engine.shutdown()
    metrics = [next(e.metric for e in sink.of(trial_id) if e.kind == "final") for trial_id in ids]
    seed_everything(11)
    expected = tsjob.draws(None)
    assert metrics[0] == metrics[2] == expected and metrics[1] != expected


def test_a_local_trial_folder_that_cannot_be_written_aborts_the_trial_and_keeps_the_machine(
    tmp_path, tsjob, sshd_factory, user_keys, mounts
):
    sink = RecordingSink()
    dict_space = space("what", ["ok"])
    evaluator = FunctionalEvaluator(tsjob.behave)
    engine = one_machine_engine(tmp_path, sshd_factory("a"), user_keys[0], evaluator, sink, dict_space)
    trials = tmp_path / "exp" / "trials"
    trials.mkdir(parents=True)
    try:
        mounts.read_only(trials)
        [first] = run_all(engine, dict_space, evaluator, [{"what": "ok"}], tmp_path / "exp")
        mounts.writable(trials)
        [second] = run_all(engine, dict_space, evaluator, [{"what": "ok"}], tmp_path / "exp", first_id=2)
    finally:
        engine.shutdown()
    kinds = [e.kind for e in sink.of(first)]
    assert kinds[-1] == "abort" and "retry" not in kinds and not any(e.ends_trial for e in sink.of(first))
    abort = sink.of(first)[-1]
    assert abort.error.startswith(f"cannot write trial {first}'s folder {trials / str(first)}: ")
    assert sink.end(second).status is TrialStatus.SUCCEEDED
