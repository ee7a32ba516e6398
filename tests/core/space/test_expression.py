"""Expressions: arithmetic and comparisons on decisions freeze to plain values."""

from __future__ import annotations

import pytest

from nascore.errors import SampleMissingError, SearchSpaceError
from nascore.space import Categorical, MutableExpression, Numerical


@pytest.fixture
def a() -> Categorical:
    return Categorical([1, 2, 3], label="a")


@pytest.fixture
def b() -> Categorical:
    return Categorical([10, 20], label="b")


def test_arithmetic_freezes_to_the_computed_value(a: Categorical, b: Categorical) -> None:
    expr = a * 2 + b
    assert isinstance(expr, MutableExpression)
    assert expr.freeze({"a": 3, "b": 20}) == 26
    assert (b - a).freeze({"a": 1, "b": 10}) == 9
    assert (b // a).freeze({"a": 3, "b": 10}) == 3
    assert (b % a).freeze({"a": 3, "b": 10}) == 1
    assert (b / a).freeze({"a": 2, "b": 10}) == 5.0
    assert (a**2).freeze({"a": 3}) == 9


def test_reflected_operators(a: Categorical) -> None:
    sample = {"a": 2}
    assert (1 + a).freeze(sample) == 3
    assert (10 - a).freeze(sample) == 8
    assert (3 * a).freeze(sample) == 6
    assert (8 / a).freeze(sample) == 4.0
    assert (9 // a).freeze(sample) == 4
    assert (9 % a).freeze(sample) == 1
    assert (2**a).freeze(sample) == 4


def test_unary_operators(a: Categorical) -> None:
    assert (-a).freeze({"a": 2}) == -2
    assert abs(-a).freeze({"a": 3}) == 3
    x = Numerical(0, 1, label="x")
    assert round(x, 1).freeze({"x": 0.26}) == 0.3
    assert round(x).freeze({"x": 0.7}) == 1


def test_comparisons_and_condition(a: Categorical) -> None:
    big = a > 1
    assert big.freeze({"a": 2}) is True
    assert (a <= 1).freeze({"a": 2}) is False
    assert (a >= 3).freeze({"a": 3}) is True
    assert (a < 3).freeze({"a": 3}) is False
    pick = MutableExpression.condition(a > 1, "wide", "narrow")
    assert pick.freeze({"a": 1}) == "narrow"
    assert pick.freeze({"a": 3}) == "wide"
    assert MutableExpression.condition(True, "x", "y") == "x"


def test_equality_helpers_keep_python_equality_for_mutables(a: Categorical) -> None:
    assert MutableExpression.eq(a, 2).freeze({"a": 2}) is True
    assert MutableExpression.ne(a, 2).freeze({"a": 2}) is False
    assert (a == a) is True
    assert (a == Categorical([1, 2, 3], label="a")) is False


def test_min_max_and_conversions(a: Categorical, b: Categorical) -> None:
    sample = {"a": 3, "b": 10}
    assert MutableExpression.max(a, b, 15).freeze(sample) == 15
    assert MutableExpression.min(a, b).freeze(sample) == 3
    assert MutableExpression.to_int(a / 2).freeze(sample) == 1
    assert MutableExpression.to_float(a).freeze(sample) == 3.0
    assert MutableExpression.to_int(2.7) == 2


def test_boolean_operators(a: Categorical) -> None:
    both = (a > 1) & (a < 3)
    either = (a < 2) | (a > 2)
    assert [both.freeze({"a": v}) for v in (1, 2, 3)] == [False, True, False]
    assert [either.freeze({"a": v}) for v in (1, 2, 3)] == [True, False, True]


def test_expression_space_is_the_decisions_it_reads(a: Categorical, b: Categorical) -> None:
    expr = a * b + a
    assert expr.simplify() == {"a": a, "b": b}
    assert list(expr.grid()) == [11, 21, 22, 42, 33, 63]  # "a" varies slowest
    assert expr.contains({"a": 1, "b": 10})
    assert expr.default() == 11


def test_expression_missing_label_raises(a: Categorical, b: Categorical) -> None:
    with pytest.raises(SampleMissingError, match="'b'"):
        (a + b).freeze({"a": 1})


def test_expression_used_as_bool_is_a_clear_error(a: Categorical) -> None:
    with pytest.raises(SearchSpaceError, match="cannot be used as a bool"):
        bool(a > 1)
    with pytest.raises(SearchSpaceError, match="cannot be used as a bool"):
        _ = 1 if a > 1 else 0


def test_repr_reads_like_the_expression(a: Categorical) -> None:
    assert repr(a * 2) == f"({a!r} * 2)"
    assert repr(-a) == f"-{a!r}"
    assert "condition(" in repr(MutableExpression.condition(a > 1, 1, 2))
    assert repr(MutableExpression.max(a, 1)).startswith("max(")
