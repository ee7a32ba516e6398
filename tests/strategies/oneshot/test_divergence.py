"""A loss that is not finite never poisons the supernet silently: the step is skipped and reported,
and architecture weights that are not finite are never read as an architecture."""

from __future__ import annotations

import logging

import pytest
import torch
import torch.nn as nn

from nascore.errors import StrategyError
from nascore.evaluators import Classification
from nascore.nn import LayerChoice, ModelSpace
from nascore_strategies.oneshot import DARTS, RandomOneShot


class Overflow(nn.Module):
    """A candidate whose output is infinite: what exp(exp(x)) does to a real activation search."""

    def forward(self, x):
        return x * float("inf")


class Space(ModelSpace):
    def __init__(self, candidates):
        super().__init__()
        self.fc = nn.Linear(64, 16)
        self.op = LayerChoice(candidates, label="op")
        self.out = nn.Linear(16, 10)

    def forward(self, x):
        return self.out(self.op(self.fc(x)))


def evaluator(loaders):
    train, val = loaders
    return Classification(train_dataloaders=train, val_dataloaders=val, num_classes=10, max_epochs=1,
                          limit_train_batches=6, limit_val_batches=1)


def test_a_sampled_path_that_overflows_is_skipped_and_the_shared_weights_stay_finite(loaders, caplog):
    strategy = RandomOneShot(seed=0)
    supernet = strategy.create_supernet(Space({"relu": nn.ReLU(), "tanh": nn.Tanh(), "overflow": Overflow()}))
    with caplog.at_level(logging.WARNING, logger="nascore_strategies"):
        exported = strategy.search(evaluator(loaders))
    assert all(torch.isfinite(p).all() for p in supernet.parameters())
    assert "the step is skipped" in caplog.text and "the loss of a weight step is" in caplog.text
    assert exported


def test_a_supernet_whose_every_step_overflows_is_an_error_not_an_architecture(loaders):
    strategy = DARTS(seed=0)
    strategy.create_supernet(Space({"relu": nn.ReLU(), "overflow": Overflow()}))  # mixed: every output is inf
    with pytest.raises(StrategyError, match="every training step's loss was not finite"):
        strategy.search(evaluator(loaders))


def test_architecture_weights_that_are_not_finite_are_never_exported():
    strategy = DARTS(seed=0)
    strategy.create_supernet(Space({"relu": nn.ReLU(), "tanh": nn.Tanh()}))
    with torch.no_grad():
        for alpha in strategy.arch.alphas:
            alpha.fill_(float("nan"))
    with pytest.raises(StrategyError, match=r"architecture weights of 'op' are not finite.*training diverged"):
        strategy.arch.export("op")
