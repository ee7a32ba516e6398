"""Conditional decisions (nascore.space.conditions): activity, canonical samples, grid and size."""

from __future__ import annotations

import random

import pytest
import torch.nn as nn

from nascore.errors import SampleMissingError, SearchSpaceError
from nascore.nn import LayerChoice, ModelSpace, MutableLinear, Repeat
from nascore.space import Categorical, MutableDict, MutableExpression, choice
from nascore.space.conditions import Condition, Decisions


def test_switch_case_and_condition_branches_are_conditional_and_lazily_frozen():
    kind = Categorical(["a", "b"], label="kind")
    x, y = Categorical([1, 2], label="x"), Categorical([3, 4, 5], label="y")
    expr = MutableExpression.switch_case(kind, {"a": x, "b": y * 2})
    decisions = expr.decisions()
    assert decisions.why_active("x") == "kind == 'a'" and decisions.why_active("y") == "kind == 'b'"
    assert expr.freeze({"kind": "b", "y": 4}) == 8  # "x" is not needed
    assert expr.space_size() == 5 and len(list(expr.grid_samples())) == 5
    cond = MutableExpression.condition(x > 1, y, 0)
    assert cond.freeze({"x": 1}) == 0 and cond.freeze({"x": 2, "y": 5}) == 5
    assert cond.space_size() == 1 + 3


def test_conditions_on_every_value_are_dropped_and_paths_merge():
    op = Categorical([0, 1, 2], label="op")
    inner = Categorical([True, False], label="inner")
    both = [(op, ()), (inner, (Condition.equals(op, 0),)), (inner, (Condition.equals(op, 1),))]
    decisions = Decisions(both)
    assert decisions.why_active("inner") == "op == 0 or op == 1"
    every = [(op, ())] + [(inner, (Condition.equals(op, v),)) for v in (0, 1, 2)]
    assert not Decisions(every).conditional  # active whatever op is
    assert Decisions(both).size() == 2 + 2 + 1


def test_a_condition_on_itself_is_an_error():
    a = Categorical([0, 1], label="a")
    with pytest.raises(SearchSpaceError, match="depends on itself"):
        Decisions([(a, (Condition.equals(a, 0),))])


def test_canonical_samples_drop_inactive_decisions_and_fill_new_active_ones():
    kind = Categorical(["a", "b"], label="kind")
    x, y = Categorical([1, 2], label="x"), Categorical([3, 4], label="y")
    space = MutableDict(v=MutableExpression.switch_case(kind, {"a": x, "b": y}))
    assert space.canonical_sample({"kind": "a", "x": 1, "y": 3}) == {"kind": "a", "x": 1}
    filled = space.canonical_sample({"kind": "b", "x": 1}, fill=random.Random(0))
    assert set(filled) == {"kind", "y"}
    error = space.check_contains({"kind": "b"})
    assert isinstance(error, SampleMissingError) and "active because kind == 'b'" in str(error)


class Shared(ModelSpace):
    """One label ("bias") reached in several blocks: counted by enumeration, not the tree."""

    def __init__(self) -> None:
        super().__init__()
        self.body = Repeat(
            lambda i: LayerChoice([nn.Identity(), MutableLinear(4, 4, bias=choice("bias", [True, False]))]), (1, 3), label="d"
        )


def test_size_agrees_with_the_grid_for_tree_and_shared_structures():
    for space in (Shared(),):
        samples = list(space.grid_samples())
        assert len(samples) == space.space_size()
        assert len({tuple(sorted(s.items())) for s in samples}) == len(samples)
        assert all(space.contains(s) and space.canonical_sample(s) == s for s in samples)
    # depth 1: 1 + 2 = 3; depth 2: 2 * 2 blocks with bias shared: (1 + 2 + 2 + 2 (bias once)) ...
    # counted by hand: each of the 2^d op tuples has a bias decision iff any block is linear
    assert Shared().space_size() == sum(1 + (2**d - 1) * 2 for d in (1, 2, 3))


def test_random_samples_are_canonical_and_cover_the_space():
    space = Shared()
    rng = random.Random(0)
    drawn = {tuple(sorted(space.random_sample(random_state=rng).items())) for _ in range(2000)}
    assert len(drawn) == space.space_size()
