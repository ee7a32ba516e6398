"""A seeded one-shot search is deterministic and leaves the caller's global random state alone.

Two searches with the same seed (given to ``setup`` as the experiment does), started from different
global torch / Python / NumPy random states, build the same supernet, train it to identical weights
and export the same architectures; afterwards the global random states are those from before the
search. The space has a dropout layer and the training data a ``DataLoader(shuffle=True)`` without a
generator, both drawing from torch's global random state during the search.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset

import nascore
from nascore.format import ExecutableModel, ExecutableSpace
from nascore.nn import InputChoice, LayerChoice, ModelSpace, MutableLinear
from nascore_strategies.oneshot import DARTS, ENAS, GumbelDARTS, Proxyless, RandomOneShot
from nascore_strategies.oneshot.base import SeededRandomState

SEED = 7

STRATEGIES = {
    "darts": lambda: DARTS(arc_learning_rate=3e-2),
    "gumbel-darts": lambda: GumbelDARTS(arc_learning_rate=3e-2),
    "enas": lambda: ENAS(ctrl_steps_aggregate=1, ctrl_lr=1e-2, export_candidates=4),
    "random-oneshot": lambda: RandomOneShot(export_candidates=4, top_k=2),
    "proxyless": lambda: Proxyless(arc_learning_rate=3e-2),
}


class DropoutSpace(ModelSpace):
    def __init__(self) -> None:
        super().__init__()
        width = nascore.choice("width", [16, 32])
        self.inp = MutableLinear(64, width)
        self.act = LayerChoice({"linear": MutableLinear(width, width), "relu": nn.ReLU(), "tanh": nn.Tanh()}, label="act")
        self.drop = nn.Dropout(0.2)
        self.skip = InputChoice(2, 1, label="skip")
        self.out = MutableLinear(width, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = torch.relu(self.inp(x))
        return self.out(self.skip([hidden, self.drop(self.act(hidden))]))


class Executable(ExecutableSpace):
    def __init__(self, space: ModelSpace) -> None:
        super().__init__(space, space.simplify())

    def freeze(self, sample):
        self.validate(sample)
        return Frozen(sample)


class Frozen(ExecutableModel):
    def build(self):
        raise AssertionError("not built in these tests")


@pytest.fixture
def evaluator(digits):
    """Two epochs on 512 digits, on the CPU; the training data shuffles from torch's global random state."""
    from nascore.evaluators import Classification

    xt, yt, xv, yv = digits
    train = DataLoader(TensorDataset(xt[:512], yt[:512]), batch_size=64, shuffle=True)  # no generator
    val = DataLoader(TensorDataset(xv, yv), batch_size=90)
    return Classification(train_dataloaders=train, val_dataloaders=val, num_classes=10, learning_rate=3e-3,
                          max_epochs=2, accelerator="cpu")


def global_states():
    return torch.get_rng_state(), random.getstate(), np.random.get_state()


def assert_same_states(before, after):
    assert torch.equal(before[0], after[0]), "torch's global random state changed"
    assert before[1] == after[1], "Python's global random state changed"
    assert before[2][0] == after[2][0] and np.array_equal(before[2][1], after[2][1]) and before[2][2:] == after[2][2:], (
        "NumPy's global random state changed"
    )


def seeded_search(make_strategy, evaluator, global_seed, seed=SEED):
    """Build the space (same weights every time), set the global states from ``global_seed``, search with ``seed``."""
    torch.manual_seed(0)
    space = DropoutSpace()
    torch.manual_seed(global_seed)
    random.seed(global_seed)
    np.random.seed(global_seed)
    before = global_states()
    strategy = make_strategy()
    strategy.setup(Executable(space), seed=seed)
    initial = {k: v.clone() for k, v in strategy.supernet.state_dict().items()}
    exported = strategy.search(evaluator)
    assert_same_states(before, global_states())
    trained = {k: v.detach().clone() for k, v in strategy.oneshot_module.state_dict().items()}
    return exported, initial, trained


def assert_same_tensors(first, second, what):
    assert first.keys() == second.keys()
    different = [k for k in first if not torch.equal(first[k], second[k])]
    assert not different, f"{what} differ: {different}"


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_the_same_seed_gives_the_same_search_whatever_the_global_state(name, evaluator):
    make_strategy = STRATEGIES[name]
    first = seeded_search(make_strategy, evaluator, global_seed=1)
    second = seeded_search(make_strategy, evaluator, global_seed=2)
    assert first[0] == second[0]
    assert_same_tensors(first[1], second[1], "the initial supernet weights")
    assert_same_tensors(first[2], second[2], "the trained weights (supernet, architecture parameters, controller)")


def test_another_seed_gives_another_supernet(evaluator):
    torch.manual_seed(0)
    space = DropoutSpace()
    weights = []
    for seed in (1, 2):
        strategy = DARTS()
        strategy.setup(Executable(space), seed=seed)
        weights.append(strategy.supernet.inp.state_dict()["weight"])  # a MutableLinear with a choice: re-initialized
    assert not torch.equal(*weights)


def test_the_strategys_own_seed_wins_over_the_experiments(evaluator):
    torch.manual_seed(0)
    space = DropoutSpace()
    first, second = DARTS(seed=3), DARTS(seed=3)
    first.setup(Executable(space), seed=1)
    second.setup(Executable(space), seed=2)
    assert_same_tensors(first.supernet.state_dict(), second.supernet.state_dict(), "the supernet weights")


def test_building_the_supernet_leaves_the_global_state_alone():
    torch.manual_seed(0)
    space = DropoutSpace()
    for make_strategy in STRATEGIES.values():
        before = global_states()
        make_strategy().setup(Executable(space), seed=SEED)
        assert_same_states(before, global_states())


def test_the_seeded_state_restores_the_global_state_after_an_error():
    before = global_states()
    with pytest.raises(RuntimeError), SeededRandomState(5):
        torch.rand(3)
        random.random()
        np.random.rand()
        raise RuntimeError("in the search")
    assert_same_states(before, global_states())
    with SeededRandomState(5):
        a = torch.rand(3), random.random(), np.random.rand()
    with SeededRandomState(5):
        b = torch.rand(3), random.random(), np.random.rand()
    assert torch.equal(a[0], b[0]) and a[1:] == b[1:]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_a_seeded_search_on_a_gpu_leaves_the_cuda_random_state_alone(digits):
    from nascore.evaluators import Classification

    torch.cuda.init()
    xt, yt, xv, yv = digits
    train = DataLoader(TensorDataset(xt[:256], yt[:256]), batch_size=64, shuffle=True)
    val = DataLoader(TensorDataset(xv, yv), batch_size=180)
    evaluator = Classification(train_dataloaders=train, val_dataloaders=val, num_classes=10, max_epochs=1,
                               accelerator="gpu", devices=1)
    exports = []
    for global_seed in (1, 2):
        torch.manual_seed(0)
        space = DropoutSpace()
        torch.manual_seed(global_seed)  # CPU and CUDA
        cuda_before = torch.cuda.get_rng_state_all()
        strategy = GumbelDARTS()  # Gumbel noise and dropout are drawn on the GPU
        strategy.setup(Executable(space), seed=SEED)
        exports.append(strategy.search(evaluator))
        assert all(torch.equal(b, a) for b, a in zip(cuda_before, torch.cuda.get_rng_state_all()))
    assert exports[0] == exports[1]
