"""The remote training service against real OpenSSH servers on loopback (two "machines")."""

from __future__ import annotations

import sys
import threading

import pytest

from nascore.engine import TrialStatus
from nascore.errors import EngineError, MissingDependencyError
from nascore.evaluators import FunctionalEvaluator
from nascore.experiment import ExperimentConfig
from nascore.experiment.config import create_engine_for
from nascore.testing.fakes import RecordingSink
from nascore_engines.training_service import RemoteMachine, TrainingServiceOptions
from nascore_engines.training_service.ssh import AuthenticationError, HostKeyError

from .harness import run_all, space, start


def machine(server, key, tmp_path, name, **options):
    return RemoteMachine(
        host="127.0.0.1", port=server.port, key_file=key, python=sys.executable, workdir=str(tmp_path / f"remote-{name}"),
        name=name, **options,
    )


def remote_config(tmp_path, machines, known_hosts, concurrency=2, **settings):
    settings = TrainingServiceOptions(
        platform="remote", machines=machines, known_hosts=known_hosts, code_dir=tmp_path / "code",
        retry_delay=0.2, retry_max_delay=1.0, **settings,
    )
    return ExperimentConfig(
        experiment_dir=tmp_path / "exp", engine="training-service", trial_concurrency=concurrency, engine_options=settings
    )


def known_hosts(tmp_path, *servers):
    path = tmp_path / "known_hosts"
    path.write_text("".join(s.known_hosts_line for s in servers))
    return path


def test_a_machine_killed_mid_trial_its_trial_finishes_elsewhere_and_it_comes_back(tmp_path, tsjob, sshd_factory, user_keys):
    key = user_keys[0]
    a, b = sshd_factory("a"), sshd_factory("b")
    config = remote_config(
        tmp_path, [machine(a, key, tmp_path, "a", max_trials=1), machine(b, key, tmp_path, "b", max_trials=1)],
        known_hosts(tmp_path, a, b),
    )
    evaluator = FunctionalEvaluator(tsjob.on_machine)
    dict_space = space("x", [1, 2, 3])
    sink = RecordingSink()
    engine = create_engine_for(config)
    engine.check(evaluator)
    start(engine, config, tmp_path / "exp", sink, dict_space)

    def kill_a_under_trial_1_then_restart_it():
        sink.wait_for(lambda events: any(e.trial_id == 1 and e.kind == "intermediate" for e in events), what="trial 1 on a")
        a.kill()  # the machine dies: sshd, the session, the agent and its workers
        sink.wait_for(lambda events: any(e.trial_id == 1 and e.kind == "retry" for e in events), what="trial 1 re-queued")
        a.start()  # same address and host key: the machine is back, and the service reconnects with back-off

    chaos = threading.Thread(target=kill_a_under_trial_1_then_restart_it)
    chaos.start()
    try:
        # Trial 1 goes to a (both free, a first) and hangs there; trial 2 goes to b.
        assert run_all(engine, dict_space, evaluator, [{"x": 1}, {"x": 2}], tmp_path / "exp") == [1, 2]
        chaos.join()
        b.kill()  # now only a can run trial 3: it must have been reconnected
        assert run_all(engine, dict_space, evaluator, [{"x": 3}], tmp_path / "exp", first_id=3) == [3]
    finally:
        engine.shutdown()
        chaos.join()
    assert all(sink.end(i).status is TrialStatus.SUCCEEDED for i in (1, 2, 3))
    machines = {i: [m["machine"] for m in sink.intermediates(i)] for i in (1, 2, 3)}
    assert machines == {1: ["a", "b"], 2: ["b"], 3: ["a"]}  # 1 started on a and finished on b; a came back for 3
    retry = next(e for e in sink.of(1) if e.kind == "retry")
    assert "machine a dropped" in retry.error
    assert [e.kind for e in sink.of(1)][:3] == ["status", "intermediate", "retry"]
    # The trials' output came back over SSH into their folders (a's first attempt at trial 1 died with a).
    logs = {i: (tmp_path / "exp" / "trials" / str(i) / "trial.log").read_text() for i in (1, 2, 3)}
    assert logs == {1: "x=1 runs on b\n", 2: "x=2 runs on b\n", 3: "x=3 runs on a\n"}


def test_an_unknown_host_is_refused(tmp_path, tsjob, sshd_factory, user_keys):
    a = sshd_factory("a")
    config = remote_config(tmp_path, [machine(a, user_keys[0], tmp_path, "a")], tmp_path / "empty_known_hosts")
    engine = create_engine_for(config)
    with pytest.raises(HostKeyError) as info:
        start(engine, config, tmp_path / "exp", RecordingSink(), space("x", [1]))
    message = str(info.value)
    assert f"host [127.0.0.1]:{a.port} is not in" in message and "refusing to connect" in message
    assert "SHA256:" in message and "trust_unknown_hosts" in message and "ssh-keyscan" in message


def test_a_changed_host_key_is_refused_even_when_unknown_hosts_are_trusted(tmp_path, sshd_factory, user_keys):
    from .sshd import keygen

    a = sshd_factory("a")
    (tmp_path / "code").mkdir()  # the code directory is checked before connecting
    other = keygen(tmp_path / "other_host_key")
    kind, key = (tmp_path / "other_host_key.pub").read_text().split()[:2]
    (tmp_path / "known_hosts").write_text(f"[127.0.0.1]:{a.port} {kind} {key}\n")
    assert other.exists()
    config = remote_config(tmp_path, [machine(a, user_keys[0], tmp_path, "a")], tmp_path / "known_hosts",
                           trust_unknown_hosts=True)
    with pytest.raises(HostKeyError, match="differs from the one in"):
        start(create_engine_for(config), config, tmp_path / "exp", RecordingSink(), space("x", [1]))


def test_trusting_unknown_hosts_connects(tmp_path, sshd_factory, user_keys):
    from nascore_engines.training_service.ssh import HostKeys, connect, run_command

    a = sshd_factory("a")
    config = remote_config(tmp_path, [machine(a, user_keys[0], tmp_path, "a")], tmp_path / "none", trust_unknown_hosts=True)
    settings = config.engine_options
    client = connect(settings.machines[0], settings, HostKeys(settings))
    try:
        assert run_command(client, "echo hello", 30, "a") == (0, "hello\n", "")
    finally:
        client.close()


def test_a_wrong_key_is_an_authentication_failure_naming_the_host(tmp_path, tsjob, sshd_factory, user_keys):
    a = sshd_factory("a")
    config = remote_config(tmp_path, [machine(a, user_keys[1], tmp_path, "a", use_agent=False)], known_hosts(tmp_path, a))
    with pytest.raises(AuthenticationError) as info:
        start(create_engine_for(config), config, tmp_path / "exp", RecordingSink(), space("x", [1]))
    message = str(info.value)
    assert f"authentication failed on machine a: 127.0.0.1:{a.port} refused user" in message
    assert "engine_options.machines[0].key_file" in message and "authorized_keys" in message


def test_a_different_nascore_on_the_machine_is_refused_with_the_fix(tmp_path, tsjob, sshd_factory, user_keys):
    # A virtualenv whose python reports nascore 0.0.1: a fake distribution ahead of the real one on its path.
    fake = tmp_path / "old-site"
    (fake / "nascore-0.0.1.dist-info").mkdir(parents=True)
    (fake / "nascore-0.0.1.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: nascore\nVersion: 0.0.1\n")
    venv = tmp_path / "old-venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").write_text(f'#!/bin/sh\nPYTHONPATH={fake} exec {sys.executable} "$@"\n')
    (venv / "bin" / "python").chmod(0o755)
    a = sshd_factory("a")
    config = remote_config(tmp_path, [machine(a, user_keys[0], tmp_path, "a", virtualenv=str(venv))], known_hosts(tmp_path, a))
    with pytest.raises(EngineError) as info:
        start(create_engine_for(config), config, tmp_path / "exp", RecordingSink(), space("x", [1]))
    message = str(info.value)
    assert "machine a has nascore 0.0.1" in message and "this experiment runs nascore 0.1.0" in message
    assert f"{venv}/bin/python -m pip install nascore==0.1.0" in message and "machines[0].virtualenv" in message


def test_a_missing_python_on_the_machine_is_reported(tmp_path, tsjob, sshd_factory, user_keys):
    a = sshd_factory("a")
    spec = machine(a, user_keys[0], tmp_path, "a")
    spec.python = "/no/such/python3"
    config = remote_config(tmp_path, [spec], known_hosts(tmp_path, a))
    with pytest.raises(EngineError, match=r"machine a: cannot run '/no/such/python3' there .*machines\[0\]\.python"):
        start(create_engine_for(config), config, tmp_path / "exp", RecordingSink(), space("x", [1]))


def test_no_reachable_machine_is_an_error_at_start(tmp_path, tsjob, user_keys):
    from .sshd import free_port

    spec = RemoteMachine(host="127.0.0.1", port=free_port(), key_file=user_keys[0], name="gone")
    config = remote_config(tmp_path, [spec], tmp_path / "known_hosts", connect_timeout=5)
    with pytest.raises(EngineError, match=r"cannot connect to machine gone \(127\.0\.0\.1:\d+\)"):
        start(create_engine_for(config), config, tmp_path / "exp", RecordingSink(), space("x", [1]))


def test_missing_paramiko_names_the_pip_line(tmp_path, monkeypatch, user_keys):
    monkeypatch.setitem(sys.modules, "paramiko", None)
    config = remote_config(tmp_path, [RemoteMachine(host="h", key_file=user_keys[0])], tmp_path / "kh")
    (tmp_path / "code").mkdir()
    with pytest.raises(MissingDependencyError, match=r"pip install 'nascore-engines\[remote\]'"):
        create_engine_for(config).check(FunctionalEvaluator(lambda m: 1.0))


def test_settings_are_checked_before_connecting(tmp_path, user_keys):
    (tmp_path / "code").mkdir()
    config = remote_config(tmp_path, [RemoteMachine(host="h", key_file=tmp_path / "nope")], tmp_path / "kh")
    with pytest.raises(EngineError, match=r"engine_options.machines\[0\].key_file: .*nope.* does not exist"):
        create_engine_for(config).check(FunctionalEvaluator(lambda m: 1.0))
    config = remote_config(tmp_path, [RemoteMachine(host="h", use_agent=False)], tmp_path / "kh")
    with pytest.raises(EngineError, match="set key_file, or use_agent = true"):
        create_engine_for(config).check(FunctionalEvaluator(lambda m: 1.0))


def test_a_trial_dropped_too_often_fails_and_no_machine_left_is_an_error(tmp_path, tsjob, sshd_factory, user_keys):
    from nascore.engine import TrialSubmission

    a = sshd_factory("a")
    config = remote_config(tmp_path, [machine(a, user_keys[0], tmp_path, "a", max_trials=1)], known_hosts(tmp_path, a),
                           concurrency=1, max_requeues=0, all_down_timeout=1)
    evaluator = FunctionalEvaluator(tsjob.on_machine)
    dict_space = space("x", [1, 2])
    sink = RecordingSink()
    engine = create_engine_for(config)
    start(engine, config, tmp_path / "exp", sink, dict_space)
    killer = threading.Thread(target=lambda: (sink.wait_for(lambda ev: any(e.kind == "intermediate" for e in ev)), a.kill()))
    killer.start()
    try:
        run_all(engine, dict_space, evaluator, [{"x": 1}], tmp_path / "exp")
        killer.join()
        failed = sink.end(1)
        assert failed.status is TrialStatus.FAILED
        assert "machines dropped under it 1 times (engine_options.max_requeues = 0)" in failed.error
        model = dict_space.freeze({"x": 2})
        engine.submit(TrialSubmission(2, model, evaluator, tmp_path / "exp" / "trials" / "2", model.sample))
        with pytest.raises(EngineError, match=r"no remote machine has been reachable for 1 s \(engine_options.all_down_timeout\)"):
            while True:
                engine.wait()
    finally:
        engine.shutdown()
        killer.join()


def test_gpus_a_machine_lacks_are_an_error_at_start(tmp_path, tsjob, sshd_factory, user_keys):
    a = sshd_factory("a")
    config = remote_config(tmp_path, [machine(a, user_keys[0], tmp_path, "a", gpu_indices=[99])], known_hosts(tmp_path, a))
    config.trial_gpu_number = 1
    with pytest.raises(EngineError, match=r"machine a: engine_options.machines\[0\].gpu_indices lists GPU 99, which machine a does not have"):
        start(create_engine_for(config), config, tmp_path / "exp", RecordingSink(), space("x", [1]))


def test_remote_paths_keep_the_home_shortcut_and_are_quoted():
    from nascore_engines.training_service.remote import shell_path

    assert shell_path("~/venv/bin/python") == '"$HOME"/venv/bin/python'
    assert shell_path("/opt/my env/python") == "'/opt/my env/python'"
