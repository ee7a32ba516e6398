"""The experiment follows the Lightning evaluator's metric direction (needs the built-in plugins: grid, simplified, sequential)."""

from __future__ import annotations

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset


def _regression_data():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(64, 4, generator=generator)
    y = x.sum(dim=1, keepdim=True)
    return DataLoader(TensorDataset(x, y), batch_size=16)


def test_a_regression_experiment_minimizes_without_being_told(tmp_path):
    """Before, the experiment maximized val_mse: the worst model was reported as the best."""
    from nascore.evaluators import Regression
    from nascore.experiment import Experiment, ExperimentConfig
    from nascore.nn import LayerChoice, ModelSpace

    class Zero(nn.Module):
        def forward(self, x):
            return x[:, :1] * 0

    class Space(ModelSpace):
        def __init__(self):
            super().__init__()
            self.head = LayerChoice({"linear": nn.Linear(4, 1), "zero": Zero()}, label="head")

        def forward(self, x):
            return self.head(x)

    data = _regression_data()
    evaluator = Regression(train_dataloaders=data, val_dataloaders=data, learning_rate=0.1, max_epochs=3)
    exp = Experiment(Space(), evaluator, "grid", ExperimentConfig(experiment_dir=tmp_path, seed=0))
    assert exp.run() == "DONE"
    assert exp.config.optimize_mode == "minimize"
    assert exp.export_top_models() == [{"head": "linear"}]
