"""``@basic_unit``: a user module made one opaque unit whose init arguments may be choices."""

from __future__ import annotations

import copy
import inspect
import pickle

import pytest
import torch
import torch.nn as nn

import nascore
from nascore.errors import SearchSpaceError
from nascore.nn import LayerChoice, ModelSpace, ParametrizedModule, basic_unit, is_basic_unit

from .corpus import BasicBlock


class Plain(nn.Module):
    def __init__(self, c_in: int, c_out: int, scale: float = 1.0) -> None:
        super().__init__()
        self.fc = nn.Linear(c_in, c_out)
        self.scale = scale

    def forward(self, x):
        return self.fc(x) * self.scale


Unit = basic_unit(Plain)


def test_the_decorated_class_keeps_its_identity():
    assert BasicBlock.__name__ == "BasicBlock" and BasicBlock.__qualname__ == "BasicBlock"
    assert BasicBlock.__module__ == "tests.formats.graph.corpus"
    assert BasicBlock.__doc__.startswith("A ResNet basic block")
    assert issubclass(Unit, Plain) and issubclass(Unit, ParametrizedModule)
    assert is_basic_unit(Unit) and is_basic_unit(Unit(2, 3)) and not is_basic_unit(Plain(2, 3))
    assert list(inspect.signature(Unit).parameters) == ["c_in", "c_out", "scale"]
    assert basic_unit(Unit) is Unit


def test_choices_in_init_arguments():
    width = nascore.choice("width", [3, 5])
    unit = Unit(2, width, scale=nascore.choice("scale", [1.0, 2.0]))
    assert set(unit.simplify()) == {"width", "scale"}
    assert unit.fc.out_features == 3 and unit.scale == 1.0, "a space is built with the defaults"
    assert unit.trace_args == (2, width)
    with nascore.fixed_arch({"width": 5, "scale": 2.0}):
        frozen = Unit(2, nascore.choice("width", [3, 5]), scale=nascore.choice("scale", [1.0, 2.0]))
    assert isinstance(frozen, Unit) and frozen.fc.out_features == 5 and frozen.scale == 2.0
    assert frozen.simplify() == {}
    chosen = unit.freeze({"width": 5, "scale": 2.0})
    assert chosen.fc.out_features == 5 and chosen(torch.randn(4, 2)).shape == (4, 5)


def test_instances_copy_and_pickle():
    block = BasicBlock(4, 8, stride=2)
    clone = copy.deepcopy(block)
    assert type(clone) is BasicBlock and torch.equal(clone.conv1.weight, block.conv1.weight)
    restored = pickle.loads(pickle.dumps(block))
    x = torch.randn(1, 4, 6, 6)
    assert torch.allclose(restored.eval()(x), block.eval()(x))


def test_what_cannot_be_a_basic_unit():
    with pytest.raises(SearchSpaceError, match="decorates nn.Module subclasses"):
        basic_unit(int)
    with pytest.raises(SearchSpaceError, match="cannot be a basic unit"):
        basic_unit(ModelSpace)
    with pytest.raises(SearchSpaceError, match="cannot be a basic unit"):
        basic_unit(LayerChoice)
