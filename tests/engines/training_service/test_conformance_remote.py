"""The remote training service passes nascore's engine conformance suite (nascore.testing.engines), against a
real OpenSSH server on loopback (one "machine", started per check by the sshd_factory fixture of conftest.py).

The machine shares this file system, so the suite's timing and gate files work as they do locally.
"""

from __future__ import annotations

import sys

import pytest

from nascore.testing.engines import EngineConformance
from nascore_engines.training_service import RemoteMachine, TrainingServiceOptions


class TestTrainingServiceRemote(EngineConformance):
    engine_name = "training-service"

    @pytest.fixture
    def engine_options(self, tmp_path, sshd_factory, user_keys):
        machine = sshd_factory("a")
        (tmp_path / "code").mkdir()  # the code copied to the machine: nothing (the suite's evaluators are installed)
        (tmp_path / "known_hosts").write_text(machine.known_hosts_line)
        return TrainingServiceOptions(
            platform="remote", known_hosts=tmp_path / "known_hosts", code_dir=tmp_path / "code",
            retry_delay=0.2, retry_max_delay=1.0,
            machines=[RemoteMachine(host="127.0.0.1", port=machine.port, key_file=user_keys[0], python=sys.executable,
                                    workdir=str(tmp_path / "remote-a"), name="a")],
        )
