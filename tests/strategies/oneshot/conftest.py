"""Shared pieces of the one-shot tests: scikit-learn's digits as DataLoaders, and small search spaces on them."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset

import nascore
from nascore.nn import (
    Cell,
    InputChoice,
    LayerChoice,
    ModelSpace,
    MutableBatchNorm2d,
    MutableConv2d,
    MutableLinear,
    Repeat,
)


@pytest.fixture(autouse=True)
def seeded():
    """The weights of the spaces built in a test (one torch thread: the root conftest)."""
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def digits() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(train x, train y, validation x, validation y): 1,437 and 360 8x8 images, pixels scaled to [0, 1]."""
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x = torch.tensor(x / 16.0, dtype=torch.float32)
    y = torch.tensor(y, dtype=torch.long)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    x, y = x[order], y[order]
    return x[:1437], y[:1437], x[1437:], y[1437:]


@pytest.fixture
def loaders(digits):
    """Train and validation DataLoaders of flat digits (64 features)."""
    xt, yt, xv, yv = digits
    train = DataLoader(TensorDataset(xt, yt), batch_size=64, shuffle=True, generator=torch.Generator().manual_seed(0))
    val = DataLoader(TensorDataset(xv, yv), batch_size=180)
    return train, val


@pytest.fixture
def image_loaders(digits):
    """The same digits as 1x8x8 images."""
    xt, yt, xv, yv = digits
    train = DataLoader(TensorDataset(xt.view(-1, 1, 8, 8), yt), batch_size=64, shuffle=True,
                       generator=torch.Generator().manual_seed(0))
    val = DataLoader(TensorDataset(xv.view(-1, 1, 8, 8), yv), batch_size=180)
    return train, val


@pytest.fixture
def evaluator(loaders):
    """A Classification evaluator on flat digits; keyword arguments override its settings."""
    from nascore.evaluators import Classification

    def make(**kwargs):
        settings = {"learning_rate": 3e-3, "max_epochs": 3, "num_classes": 10, **kwargs}
        return Classification(train_dataloaders=loaders[0], val_dataloaders=loaders[1], **settings)

    return make


class MlpSpace(ModelSpace):
    """Width (a choice in layer arguments), activation (LayerChoice), depth (Repeat), skip (InputChoice)."""

    def __init__(self) -> None:
        super().__init__()
        width = nascore.choice("width", [16, 32, 64])
        self.inp = MutableLinear(64, width)
        self.act = LayerChoice({"relu": nn.ReLU(), "tanh": nn.Tanh(), "sigmoid": nn.Sigmoid()}, label="act")
        self.body = Repeat(lambda i: nn.Sequential(MutableLinear(width, width), nn.ReLU()), (1, 3), label="depth")
        self.skip = InputChoice(2, 1, label="skip")
        self.out = MutableLinear(width, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = self.act(self.inp(x))
        return self.out(self.skip([hidden, self.body(hidden)]))


class ConvCellSpace(ModelSpace):
    """A conv stem with a channel choice, then a two-node cell over conv / pooling operators."""

    def __init__(self) -> None:
        super().__init__()
        channels = nascore.choice("channels", [8, 16])
        self.stem = nn.Sequential(
            MutableConv2d(1, channels, nascore.choice("stem_kernel", [3, 5]), padding=nascore.choice("stem_kernel", [3, 5]) // 2),
            MutableBatchNorm2d(channels),
            nn.ReLU(),
        )
        self.cell = Cell(
            {
                "conv3": lambda: nn.Sequential(MutableConv2d(channels, channels, 3, padding=1), nn.ReLU()),
                "pool": lambda: nn.MaxPool2d(3, 1, 1),
                "identity": lambda: nn.Identity(),
            },
            num_nodes=2,
            num_predecessors=1,
            label="cell",
        )
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), MutableLinear(channels * 2, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.cell(self.stem(x)))


@pytest.fixture
def mlp_space():
    return MlpSpace


@pytest.fixture
def conv_cell_space():
    return ConvCellSpace


@pytest.fixture
def train_alone(digits):
    """Train a model on its own with a plain torch loop; returns its validation accuracy."""

    def train(model: nn.Module, epochs: int = 8, images: bool = False) -> float:
        xt, yt, xv, yv = digits
        if images:
            xt, xv = xt.view(-1, 1, 8, 8), xv.view(-1, 1, 8, 8)
        torch.manual_seed(0)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-2 if images else 3e-3)
        for _ in range(epochs):
            model.train()
            for index in torch.randperm(len(xt)).split(64):
                optimizer.zero_grad()
                nn.functional.cross_entropy(model(xt[index]), yt[index]).backward()
                optimizer.step()
        model.eval()
        with torch.no_grad():
            return float((model(xv).argmax(-1) == yv).float().mean())

    return train
