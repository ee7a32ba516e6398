"""Secrets stay home: what a real remote machine (sshd on loopback) receives of the code directory, and who can read it."""

from __future__ import annotations

import json
import logging
import stat

from nascore.engine import TrialStatus
from nascore.evaluators import FunctionalEvaluator
from nascore.experiment.config import create_engine_for
from nascore.testing.fakes import RecordingSink
from nascore_engines.training_service.codesync import MANIFEST, CodeDirectory

from .harness import run_all, space, start
from .test_remote import known_hosts, machine, remote_config


def test_secrets_ignored_files_and_outside_links_never_reach_the_machine_and_its_folders_are_private(
    tmp_path, tsjob, sshd_factory, user_keys, caplog
):
    code = tmp_path / "code"  # tsjob.py, the trials' module, is already there
    (code / ".env").write_text("API_TOKEN=hunter2\n")
    (code / ".ssh").mkdir()
    (code / ".ssh" / "id_ed25519").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    (code / "server.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    (code / ".gitignore").write_text("data/\n*.ckpt\n")
    (code / "data").mkdir()
    (code / "data" / "train.bin").write_bytes(b"\0" * 4096)
    (code / "model.ckpt").write_bytes(b"\0" * 1024)
    (code / "helpers.py").write_text("HELP = 1\n")
    (tmp_path / "elsewhere.txt").write_text("outside the code directory\n")
    (code / "notes.txt").symlink_to(tmp_path / "elsewhere.txt")

    # An older nascore copied .env there, open to everyone: the next sync must take it away.
    workdir = tmp_path / "remote-a"
    copy = workdir / "code" / CodeDirectory(code).remote_name
    copy.mkdir(parents=True)
    (copy / ".env").write_text("API_TOKEN=hunter2\n")
    (copy / MANIFEST).write_text(json.dumps({".env": "0" * 64}))
    (workdir / "experiments").mkdir()
    for folder in (workdir, workdir / "code", copy, workdir / "experiments"):
        folder.chmod(0o755)

    a = sshd_factory("a")
    config = remote_config(tmp_path, [machine(a, user_keys[0], tmp_path, "a", max_trials=1)], known_hosts(tmp_path, a),
                           concurrency=1)
    evaluator = FunctionalEvaluator(tsjob.on_machine)
    dict_space = space("x", [2])
    sink = RecordingSink()
    engine = create_engine_for(config)
    with caplog.at_level(logging.INFO, logger="nascore_engines.training_service"):
        engine.check(evaluator)
        start(engine, config, tmp_path / "exp", sink, dict_space)
        try:
            assert run_all(engine, dict_space, evaluator, [{"x": 2}], tmp_path / "exp") == [1]
        finally:
            engine.shutdown()
    assert sink.end(1).status is TrialStatus.SUCCEEDED  # the trial ran from the copy

    copied = sorted(p.relative_to(copy).as_posix() for p in copy.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    assert copied == [".gitignore", MANIFEST, "helpers.py", "tsjob.py"]
    for absent in [".env", ".ssh", "server.pem", "data", "model.ckpt", "notes.txt"]:
        assert not (copy / absent).exists(), absent
    assert sorted(json.loads((copy / MANIFEST).read_text())) == [".gitignore", "helpers.py", "tsjob.py"]

    # Everything nascore made or uses on the machine is the login's only: folders 0700, files 0600 (or 0700).
    # The workdir itself is the user's (it may be shared with other things): created 0700, else left alone.
    assert stat.S_IMODE(workdir.stat().st_mode) == 0o755
    trial_log = workdir / "experiments" / "test-exp" / "trials" / "1" / "trial.log"
    assert trial_log.read_text() == "x=2 runs on a\n"
    open_to_others = [
        f"{p.relative_to(workdir)} {stat.S_IMODE(p.stat().st_mode):o}"
        for p in workdir.rglob("*") if stat.S_IMODE(p.stat().st_mode) & 0o077
    ]
    assert open_to_others == []
    for folder in (workdir / "code", copy, workdir / "experiments", workdir / "experiments" / "test-exp"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    assert stat.S_IMODE(trial_log.stat().st_mode) == 0o600

    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("look like secrets" in w and ".env" in w and ".ssh/" in w and "server.pem" in w for w in warnings)
    assert any("point outside it" in w and "notes.txt" in w for w in warnings)
    assert sum("look like secrets" in w for w in warnings) == 1  # the check, the start and the sync: one warning
