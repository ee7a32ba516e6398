"""Fixtures for the training-service tests: user keys and throwaway sshd "machines" on loopback."""

from __future__ import annotations

import pytest

from .sshd import SSHServer, keygen, sshd_path


@pytest.fixture(scope="session")
def user_keys(tmp_path_factory):
    """(authorized key, unauthorized key) private key paths."""
    root = tmp_path_factory.mktemp("ssh-keys")
    return keygen(root / "id_good"), keygen(root / "id_wrong")


@pytest.fixture
def sshd_factory(tmp_path, user_keys):
    """Start sshd machines on loopback; every one (and all it started) is killed at the end."""
    sshd_path()  # fails with the apt-get line when openssh-server is missing
    servers: list[SSHServer] = []

    def start(name: str, port: int | None = None) -> SSHServer:
        server = SSHServer(tmp_path / f"sshd-{name}", user_keys[0], port=port).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.kill()


JOB = '''
"""Evaluators for the training-service tests: importable by local workers and by remote machines."""
import ctypes
import os
import signal
import sys
import time
from pathlib import Path

import nascore


def behave(model, gate=None):
    """Do what the sample's "what" says: succeed, fail in one of many ways, or wait for a gate file."""
    what = nascore.get_current_sample()["what"]
    print(f"trial says hello: {what}")
    print(f"trial warns on stderr: {what}", file=sys.stderr)
    nascore.report_intermediate_result({
        "default": 0.5, "machine": os.environ.get("NASCORE_MACHINE"), "pid": os.getpid(),
        "cuda": os.environ.get("CUDA_VISIBLE_DEVICES"), "trial": os.environ.get("NASCORE_TRIAL_ID"),
    })
    if what == "raise":
        raise ValueError("the trial broke on purpose")
    if what == "exit":
        os._exit(3)
    if what == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    if what == "segfault":
        ctypes.string_at(0)
    if what == "sysexit":
        sys.exit(4)
    if what == "loop":
        while True:
            time.sleep(0.01)
    if what == "memory":
        import torch
        torch.ones(2**28)  # 1 GiB
    if what == "bytes":
        bytearray(2**30)
    if what.startswith("gate"):
        while not Path(gate).exists():
            time.sleep(0.01)
    return 1.0


def draws(model):
    """What a trial's randomness gives: a new layer's initial weights and the next numbers drawn."""
    import random

    import torch

    layer = torch.nn.Linear(3, 3)
    return {"default": layer.weight.sum().item(), "rand": torch.rand(1).item(), "random": random.random()}


def shuffled_data(shuffle_seed):
    """A DataLoader over 0..15 shuffling with a torch.Generator of its own, seeded once (as users write it)."""
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    data = TensorDataset(torch.arange(16, dtype=torch.float32))
    return DataLoader(data, batch_size=4, shuffle=True, generator=torch.Generator().manual_seed(shuffle_seed))


def data_order(model, loader):
    """Report the order the loader gives (the metric: the first batch, as digits)."""
    order = [int(x) for (batch,) in loader for x in batch]
    return {"default": float(sum(v * 16 ** -i for i, v in enumerate(order[:4]))), "order": order}


def on_machine(model):
    """Remote tests: report the machine; "x=1" never ends on machine "a" (the test kills "a" under it)."""
    x = nascore.get_current_sample()["x"]
    machine = os.environ["NASCORE_MACHINE"]
    print(f"x={x} runs on {machine}")
    nascore.report_intermediate_result({"default": 0.0, "machine": machine})
    if x == 1 and machine == "a":
        while True:
            time.sleep(0.01)
    return float(x)
'''


@pytest.fixture
def tsjob(tmp_path):
    """The module ``tsjob`` (evaluators for these tests), written to ``tmp_path/code`` and importable."""
    import sys

    code = tmp_path / "code"
    code.mkdir()
    (code / "tsjob.py").write_text(JOB)
    sys.path.insert(0, str(code))
    import tsjob

    yield tsjob
    sys.path.remove(str(code))
    sys.modules.pop("tsjob", None)
