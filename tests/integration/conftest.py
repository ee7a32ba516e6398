"""Shared pieces for end-to-end tests: a small importable job module written into a temp folder."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

JOB = textwrap.dedent(
    '''
    """A tiny search job used by the end-to-end tests (importable, so experiments can be resumed from the store)."""
    import json
    import os
    import signal
    from pathlib import Path

    import torch.nn as nn

    import nascore
    from nascore.evaluators import FunctionalEvaluator
    from nascore.nn import LayerChoice, ModelSpace, MutableLinear, Repeat


    class Space(ModelSpace):
        def __init__(self, features=4):
            super().__init__()
            width = nascore.choice("width", [4, 8, 16, 32])
            self.inp = MutableLinear(features, width)
            self.act = LayerChoice({"relu": nn.ReLU(), "tanh": nn.Tanh(), "id": nn.Identity()}, label="act")
            self.body = Repeat(lambda i: nn.Sequential(MutableLinear(width, width), nn.ReLU()), (1, 4), label="depth")
            self.out = MutableLinear(width, 2)

        def forward(self, x):
            return self.out(self.body(self.act(self.inp(x))))


    def score(model, log, die_at=0, how="kill"):
        """Score = a made-up function of the sample; logs every call; may kill the process once."""
        sample = nascore.get_current_sample()
        with open(log, "a") as f:
            f.write(json.dumps(sample) + "\\n")
        calls = sum(1 for _ in open(log))
        marker = Path(log + ".died")
        if die_at and calls == die_at and not marker.exists():
            marker.write_text("x")
            os.kill(os.getpid(), signal.SIGKILL if how == "kill" else signal.SIGINT)
        nascore.report_intermediate_result(0.0)
        return sample["width"] / 32 + sample["depth"] / 10 + (sample["act"] == "relu") * 0.05


    def evaluator(log, die_at=0, how="kill"):
        return FunctionalEvaluator(score, log=str(log), die_at=die_at, how=how)
    '''
)


@pytest.fixture
def job(tmp_path):
    """Write the job module; returns a function running Python code with it importable."""
    (tmp_path / "job.py").write_text(JOB)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}

    def run(code: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(code)], cwd=tmp_path, env=env, capture_output=True, text=True,
            timeout=120,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}")
        return result

    run.path = tmp_path  # type: ignore[attr-defined]
    sys.path.insert(0, str(tmp_path))
    yield run
    sys.path.remove(str(tmp_path))
    sys.modules.pop("job", None)


def read_log(path: Path) -> list[dict]:
    import json

    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def digits_classification(n_train: int = 1400, max_epochs: int = 2):
    """A Lightning ``Classification`` evaluator on scikit-learn's digits (flattened 8x8 images, 10 classes).

    The first ``n_train`` images train (seeded shuffling), images 1400 onwards validate.
    """
    import torch
    from sklearn.datasets import load_digits
    from torch.utils.data import DataLoader, TensorDataset

    from nascore.evaluators import Classification

    x, y = load_digits(return_X_y=True)
    x, y = torch.tensor(x / 16.0, dtype=torch.float32), torch.tensor(y)
    train = DataLoader(
        TensorDataset(x[:n_train], y[:n_train]), batch_size=64, shuffle=True, generator=torch.Generator().manual_seed(0)
    )
    val = DataLoader(TensorDataset(x[1400:], y[1400:]), batch_size=200)
    return Classification(train_dataloaders=train, val_dataloaders=val, num_classes=10, learning_rate=3e-3, max_epochs=max_epochs)
