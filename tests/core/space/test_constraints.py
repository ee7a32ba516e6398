"""Constraints as part of the space (NNI's ExpressionConstraint): sampling, grid, size and validation respect them."""

from __future__ import annotations

import random

import pytest
import torch.nn as nn

import nascore
from nascore.errors import ConstraintViolationError, SearchSpaceError
from nascore.nn import LayerChoice, ModelSpace, MutableLinear
from nascore.space import Categorical, ExpressionConstraint, MutableDict


def small_sum_space(bound: int = 4) -> MutableDict:
    a, b = Categorical([1, 2, 3], label="a"), Categorical([1, 2, 3], label="b")
    return MutableDict(a=a, b=b, limit=ExpressionConstraint(a + b <= bound, label="small"))


def test_grid_size_and_random_samples_satisfy_the_constraint():
    space = small_sum_space()
    grid = list(space.grid_samples())
    assert grid == [{"a": 1, "b": 1}, {"a": 1, "b": 2}, {"a": 1, "b": 3}, {"a": 2, "b": 1}, {"a": 2, "b": 2}, {"a": 3, "b": 1}]
    assert space.space_size() == 6
    rng = random.Random(0)
    drawn = [space.random_sample(random_state=rng) for _ in range(200)]
    assert all(s["a"] + s["b"] <= 4 for s in drawn)
    assert len({(s["a"], s["b"]) for s in drawn}) == 6


def test_a_violating_sample_is_refused_naming_the_constraint():
    space = small_sum_space()
    assert space.contains({"a": 1, "b": 3}) and not space.contains({"a": 3, "b": 3})
    error = space.check_contains({"a": 3, "b": 3})
    assert isinstance(error, ConstraintViolationError) and error.label == "small"
    assert "violates the constraint 'small': ((a + b) <= 4)" in str(error)


def test_nothing_satisfies_gives_a_clear_error():
    space = small_sum_space(bound=1)
    assert list(space.grid_samples()) == [] and space.space_size() == 0
    with pytest.raises(ConstraintViolationError, match=r"no sample of the space satisfies its constraints \('small': \(\(a \+ b\) <= 1\); tried 1000"):
        space.random_sample(seed=0)


def test_a_constraint_needs_an_expression():
    with pytest.raises(SearchSpaceError, match="needs an expression of decisions"):
        ExpressionConstraint(True)


class Constrained(ModelSpace):
    def __init__(self) -> None:
        super().__init__()
        width = nascore.choice("width", [8, 16, 32])
        self.fc = MutableLinear(4, width)
        self.op = LayerChoice({"deep": MutableLinear(width, width, bias=nascore.choice("bias", [True, False])),
                               "skip": nn.Identity()}, label="op")
        # a big width only without the deep op: the constraint reads "op", always active
        self.add_mutable(ExpressionConstraint(nascore.MutableExpression.condition(width > 16, 1, 0)
                                              + nascore.MutableExpression.eq(self.op.choice, "deep") <= 1, label="budget"))

    def forward(self, x):
        return self.op(self.fc(x))


def test_a_constraint_in_a_model_space_is_respected_by_grid_random_and_freeze():
    space = Constrained()
    samples = list(space.grid_samples())
    # width 8/16: deep (2 biases) + skip = 3 each; width 32: skip only
    assert len(samples) == space.space_size() == 7
    assert all(not (s["width"] == 32 and s["op"] == "deep") for s in samples)
    with pytest.raises(ConstraintViolationError, match="'budget'"):
        space.freeze({"width": 32, "op": "deep", "bias": True})
    assert space.freeze({"width": 32, "op": "skip"}).fc.out_features == 32
