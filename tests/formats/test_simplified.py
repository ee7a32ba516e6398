"""The simplified format: class + init arguments + sample; payloads; validation."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

import nascore
from nascore.errors import SampleMissingError, SampleValueError, SearchSpaceError
from nascore.nn import LayerChoice, ModelSpace, MutableLinear, Repeat
from nascore_formats import SimplifiedFormat


class TinySpace(ModelSpace):
    def __init__(self, in_features: int = 4, classes: int = 3):
        super().__init__()
        width = nascore.choice("width", [8, 16])
        self.inp = MutableLinear(in_features, width)
        self.act = LayerChoice({"relu": nn.ReLU(), "tanh": nn.Tanh()}, label="act")
        self.body = Repeat(lambda i: MutableLinear(width, width), (1, 2), label="depth")
        self.out = MutableLinear(width, classes)

    def forward(self, x):
        return self.out(self.body(self.act(self.inp(x))))


def test_build_and_freeze():
    space = SimplifiedFormat().build(TinySpace(in_features=5))
    assert set(space.simplify()) == {"width", "act", "depth"}
    model = space.freeze({"width": 16, "act": "tanh", "depth": 2})
    module = model.build()
    assert isinstance(module, TinySpace)
    assert module.inp.in_features == 5 and module.inp.out_features == 16
    assert isinstance(module.act, nn.Tanh) and len(module.body) == 2
    assert module(torch.randn(2, 5)).shape == (2, 3)
    assert model.build() is not module  # a new module every time


def test_sample_is_normalized_to_the_space():
    space = SimplifiedFormat().build(TinySpace())
    model = space.freeze({"width": 8, "act": "relu", "depth": 1, "unrelated": 3})
    assert model.sample == {"width": 8, "act": "relu", "depth": 1}


def test_invalid_samples_name_the_label():
    space = SimplifiedFormat().build(TinySpace())
    with pytest.raises(SampleMissingError, match="'depth'"):
        space.freeze({"width": 8, "act": "relu"})
    with pytest.raises(SampleValueError, match=r"value 12 for label 'width' is not a candidate.*\[8, 16\]"):
        space.freeze({"width": 12, "act": "relu", "depth": 1})


def test_payload_round_trip():
    fmt = SimplifiedFormat()
    model = fmt.build(TinySpace(in_features=6, classes=2)).freeze({"width": 8, "act": "relu", "depth": 2})
    payload = model.to_payload()
    import json

    loaded = fmt.load_model(json.loads(json.dumps(payload)))
    assert loaded.sample == model.sample
    module = loaded.build()
    assert module.inp.in_features == 6 and module.out.out_features == 2


def test_not_a_model_space():
    with pytest.raises(SearchSpaceError, match="ModelSpace"):
        SimplifiedFormat().build(nn.Linear(2, 2))


def test_random_and_grid_on_the_executable_space():
    space = SimplifiedFormat().build(TinySpace())
    samples = list(space.grid_samples())
    assert len(samples) == 2 * 2 * 2
    assert all(space.contains(s) for s in samples)
    model = space.random(seed=1)
    assert model.sample == space.random(seed=1).sample
