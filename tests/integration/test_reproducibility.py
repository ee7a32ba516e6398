"""Seeded experiments reproduce: the same sample gets the same metric in every run and on every engine.

The metric depends on all the randomness a trial has: the model's initial weights, and a short
training on a DataLoader that shuffles with torch's global generator. Each run is a separate
Python process, as a user's runs are.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

JOB = textwrap.dedent(
    '''
    """A seeded search whose metric depends on every random draw of a trial."""
    import json
    import sys

    import torch
    import torch.nn as nn
    from torch.utils.data import DataLoader, TensorDataset

    import nascore
    from nascore.evaluators import FunctionalEvaluator
    from nascore.experiment import Experiment, ExperimentConfig
    from nascore.nn import LayerChoice, ModelSpace, MutableLinear


    class Space(ModelSpace):
        def __init__(self):
            super().__init__()
            width = nascore.choice("width", [4, 8, 16])
            self.fc1 = MutableLinear(3, width)
            self.act = LayerChoice({"relu": nn.ReLU(), "tanh": nn.Tanh()}, label="act")
            self.fc2 = MutableLinear(width, 1)

        def forward(self, x):
            return self.fc2(self.act(self.fc1(x)))


    def data():
        generator = torch.Generator().manual_seed(123)  # the data is fixed; its order is the trial's to draw
        x = torch.randn(64, 3, generator=generator)
        return DataLoader(TensorDataset(x, x.sum(dim=1, keepdim=True)), batch_size=8, shuffle=True)


    def train(model, loader):
        initial = sum(p.sum().item() for p in model.parameters())
        optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
        for x, y in loader:
            optimizer.zero_grad()
            loss = nn.functional.mse_loss(model(x), y)
            loss.backward()
            optimizer.step()
        return {"default": loss.item(), "initial": initial, "noise": torch.rand(1).item()}


    def main(engine, folder):
        config = ExperimentConfig(engine=engine, seed=7, trial_concurrency=2, experiment_dir=folder, max_trials=6)
        exp = Experiment(Space(), FunctionalEvaluator(train, loader=data()), "grid", config)
        assert exp.run() == "DONE"
        results = {json.dumps(t.sample, sort_keys=True): t.metrics for t in exp.trials()}
        print("RESULTS " + json.dumps(results, sort_keys=True))


    if __name__ == "__main__":
        main(sys.argv[1], sys.argv[2])
    '''
)


@pytest.fixture
def seeded_run(tmp_path):
    """``run(engine)``: the per-sample metrics of one run of the seeded search, in a new process."""
    (tmp_path / "seeded.py").write_text(JOB)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    runs = 0

    def run(engine: str) -> dict[str, dict]:
        nonlocal runs
        runs += 1
        result = subprocess.run(
            [sys.executable, str(tmp_path / "seeded.py"), engine, str(tmp_path / f"run-{runs}")],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
        )
        assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
        [line] = [line for line in result.stdout.splitlines() if line.startswith("RESULTS ")]
        return json.loads(line.removeprefix("RESULTS "))

    return run


def test_a_seeded_search_gives_each_sample_the_same_metrics_in_every_run_on_every_engine(seeded_run):
    sequential = [seeded_run("sequential"), seeded_run("sequential")]
    service = [seeded_run("training-service"), seeded_run("training-service")]
    assert len(sequential[0]) == 6
    assert sequential[0] == sequential[1]
    assert service[0] == service[1]
    assert service[0] == sequential[0]  # whichever engine (and worker, and order) runs a sample
    # The metrics do depend on the seed: different samples start from different random states.
    assert len({metrics["initial"] for metrics in sequential[0].values()}) == 6
    assert len({metrics["noise"] for metrics in sequential[0].values()}) == 6
