"""The raw format: frozen models are copies of the space that keep its weights."""

from __future__ import annotations

import torch
import torch.nn as nn

import nascore
from nascore.nn import LayerChoice, ModelSpace, MutableLinear
from nascore_formats import RawFormat


class Space(ModelSpace):
    def __init__(self):
        super().__init__()
        self.first = nn.Linear(4, 8)
        self.choice = LayerChoice([nn.Linear(8, 8), nn.Sequential(nn.Linear(8, 8), nn.ReLU())], label="block")
        self.head = MutableLinear(8, nascore.choice("out", [2, 3]))

    def forward(self, x):
        return self.head(self.choice(self.first(x)))


def test_frozen_model_keeps_weights_of_the_space():
    space_module = Space()
    with torch.no_grad():
        space_module.first.weight.fill_(0.5)
        space_module.choice[1][0].bias.fill_(2.0)
    space = RawFormat().build(space_module)
    model = space.freeze({"block": 1, "out": 3}).build()
    assert torch.equal(model.first.weight, space_module.first.weight)
    assert torch.equal(model.choice[0].bias, torch.full((8,), 2.0))
    assert model.head.out_features == 3
    assert model(torch.randn(2, 4)).shape == (2, 3)
    # The space itself is untouched.
    assert isinstance(space_module.choice, LayerChoice)
    model.first.weight.data.zero_()
    assert space_module.first.weight[0, 0] == 0.5


def test_raw_models_validate_samples():
    import pytest

    from nascore.errors import SampleValueError

    space = RawFormat().build(Space())
    with pytest.raises(SampleValueError, match="'block'"):
        space.freeze({"block": 5, "out": 2})
