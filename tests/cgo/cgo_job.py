"""A small search for the CGO tests: importable by worker processes (the tests put this folder on sys.path).

Every sample a dataset loads is appended to the file named by ``$CGO_LOAD_LOG`` (when set), so a
test can count how many times each batch was loaded.
"""

from __future__ import annotations

import os

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, Dataset

import nascore
from nascore.nn import LayerChoice, ModelSpace, MutableLinear
from nascore.strategy import MultiTrialStrategy


class Broken(nn.Module):
    """A layer that does not fit: its input must have 7 features, the models give it 4 or 8."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(7, 7)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)


class Space(ModelSpace):
    """Two decisions: the hidden width and the activation ("broken" fails with a shape error)."""

    def __init__(self, broken: bool = True) -> None:
        super().__init__()
        width = nascore.choice("width", [4, 8])
        self.fc1 = MutableLinear(6, width)
        acts = {"relu": nn.ReLU(), "tanh": nn.Tanh(), **({"broken": Broken()} if broken else {})}
        self.act = LayerChoice(acts, label="act")
        self.fc2 = MutableLinear(width, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class CountedData(Dataset):
    """A fixed random classification set; each load is logged to ``$CGO_LOAD_LOG``."""

    def __init__(self, name: str, size: int, seed: int) -> None:
        self.name = name
        generator = torch.Generator().manual_seed(seed)
        self.x = torch.randn(size, 6, generator=generator)
        self.y = (self.x[:, 0] > 0).long() + (self.x[:, 1] > 0).long()

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        path = os.environ.get("CGO_LOAD_LOG")
        if path:
            with open(path, "a") as log:
                log.write(f"{self.name} {index}\n")
        return self.x[index], self.y[index]


def loaders(batch_size: int = 16, shuffle_seed: int | None = None) -> tuple[DataLoader, DataLoader]:
    """(train, val) loaders; training data is shuffled (by a generator of its own with ``shuffle_seed``)."""
    generator = None if shuffle_seed is None else torch.Generator().manual_seed(shuffle_seed)
    return (
        DataLoader(CountedData("train", 64, 0), batch_size=batch_size, shuffle=True, generator=generator),
        DataLoader(CountedData("val", 32, 1), batch_size=batch_size),
    )


def evaluator(shuffle_seed: int | None = None, **kwargs):
    """The core's Classification evaluator (which trains merged trials too) on :func:`loaders`, seeded."""
    from nascore.evaluators import Classification

    train, val = loaders(shuffle_seed=shuffle_seed)
    options = {"max_epochs": 2, "num_classes": 3, "seed": 0, "learning_rate": 0.05, **kwargs}
    return Classification(train_dataloaders=train, val_dataloaders=val, **options)


class Every(MultiTrialStrategy):
    """Propose every sample of the space once, in grid order (so the CGO tests need no strategy plugin)."""

    def propose(self):
        if not hasattr(self, "_samples"):
            self._samples = iter(list(self.space.grid_samples()))
        return next(self._samples, None)
