"""Copying the code directory to a machine over SFTP: everything once, then only what changed."""

from __future__ import annotations

from nascore_engines.training_service import RemoteMachine, TrainingServiceOptions
from nascore_engines.training_service.codesync import MANIFEST, CodeDirectory
from nascore_engines.training_service.ssh import HostKeys, connect


def test_sync_copies_only_what_changed(tmp_path, sshd_factory, user_keys):
    server = sshd_factory("a")
    (tmp_path / "known_hosts").write_text(server.known_hosts_line)
    settings = TrainingServiceOptions(known_hosts=tmp_path / "known_hosts")
    spec = RemoteMachine(host="127.0.0.1", port=server.port, key_file=user_keys[0])

    code = tmp_path / "project"
    (code / "pkg").mkdir(parents=True)
    (code / "train.py").write_text("print('train')\n")
    (code / "pkg" / "model.py").write_text("X = 1\n")
    (code / "run.sh").write_text("#!/bin/sh\n")
    (code / "run.sh").chmod(0o755)
    for skipped in [".git/HEAD", "pkg/__pycache__/model.cpython-311.pyc", "runs/exp1/experiment.db", "venv/pyvenv.cfg",
                    "data/big.bin"]:
        (code / skipped).parent.mkdir(parents=True, exist_ok=True)
        (code / skipped).write_text("not copied")
    (code / "odd-env").mkdir()
    (code / "odd-env" / "pyvenv.cfg").write_text("a virtualenv under another name")
    directory = CodeDirectory(code, exclude=["data"], skip=[code / "runs"])
    remote = tmp_path / "remote" / directory.remote_name

    client = connect(spec, settings, HostKeys(settings))
    try:
        sftp = client.open_sftp()
        first = directory.sync(sftp, str(remote))
        assert sorted(first.uploaded) == ["pkg/model.py", "run.sh", "train.py"] and first.unchanged == 0
        copied = sorted(p.relative_to(remote).as_posix() for p in remote.rglob("*") if p.is_file())
        assert copied == [MANIFEST, "pkg/model.py", "run.sh", "train.py"]
        # The owner's bits only: executable stays executable, nothing for the group or others.
        assert (remote / "run.sh").stat().st_mode & 0o777 == 0o700
        assert (remote / "train.py").stat().st_mode & 0o777 == 0o600
        assert remote.stat().st_mode & 0o777 == 0o700 and (remote / "pkg").stat().st_mode & 0o777 == 0o700
        assert remote.parent.stat().st_mode & 0o777 == 0o700  # missing parents are created private too
        assert (remote / MANIFEST).stat().st_mode & 0o777 == 0o600

        again = directory.sync(sftp, str(remote))
        assert again.uploaded == [] and again.deleted == [] and again.unchanged == 3

        (code / "pkg" / "model.py").write_text("X = 2\n")
        (code / "train.py").unlink()
        (code / "pkg" / "new.py").write_text("Y = 1\n")
        changed = directory.sync(sftp, str(remote))
        assert sorted(changed.uploaded) == ["pkg/model.py", "pkg/new.py"] and changed.deleted == ["train.py"]
        assert changed.unchanged == 1 and (remote / "pkg" / "model.py").read_text() == "X = 2\n"
        assert not (remote / "train.py").exists()
        sftp.close()
    finally:
        client.close()


def test_remote_name_is_stable_and_distinct(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    assert CodeDirectory(tmp_path / "a").remote_name == CodeDirectory(tmp_path / "a").remote_name
    assert CodeDirectory(tmp_path / "a").remote_name != CodeDirectory(tmp_path / "b").remote_name
    assert CodeDirectory(tmp_path / "a").remote_name.startswith("a-")
