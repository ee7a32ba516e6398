"""Expressions: arithmetic and comparisons on decisions freeze to plain values."""

from __future__ import annotations

import math

import pytest

from nascore.errors import SampleMissingError, SampleValueError, SearchSpaceError
from nascore.space import Categorical, CategoricalMultiple, MutableExpression, Numerical


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


# --- NNI parity (nni/mutable/symbol.py, test/ut/sdk/mutable/test_mutable.py and test_symbol.py) ------


def test_max_min_of_plain_values_are_plain_values() -> None:
    assert MutableExpression.max(1, 2, 3) == 3
    assert MutableExpression.max([1, 3, 2]) == 3
    assert MutableExpression.min(4, 2, 8) == 2
    assert MutableExpression.min((5, 7)) == 5
    assert MutableExpression.max(x for x in [1, 9, 4]) == 9


def test_max_min_take_one_iterable_of_decisions(a: Categorical, b: Categorical) -> None:
    biggest = MutableExpression.max([a, b])
    smallest = MutableExpression.min((a, b, 5))
    assert isinstance(biggest, MutableExpression)
    assert biggest.freeze({"a": 3, "b": 10}) == 10
    assert smallest.freeze({"a": 3, "b": 10}) == 3
    assert smallest.freeze({"a": 3, "b": 20}) == 3
    assert MutableExpression.min([a, 2]).freeze({"a": 3}) == 2
    # NNI's evaluation order: the values of leaf_symbols(), in order.
    assert MutableExpression.min(a, b).evaluate([3, 10]) == 3
    assert MutableExpression.max(a, b).evaluate([3, 10]) == 10


def test_max_of_a_single_item_is_the_item(a: Categorical) -> None:
    assert MutableExpression.max([a]) is a
    assert MutableExpression.min([7]) == 7


def test_max_of_one_decision_is_the_max_over_its_value() -> None:
    picked = CategoricalMultiple([1, 5, 3], label="picked")
    assert MutableExpression.max(picked).freeze({"picked": [1, 3]}) == 3
    assert MutableExpression.min(picked).freeze({"picked": [5, 3]}) == 3


def test_max_of_one_plain_value_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="one iterable or at least two"):
        MutableExpression.max(3)


def test_builtin_max_on_decisions_is_a_clear_error(a: Categorical, b: Categorical) -> None:
    with pytest.raises(SearchSpaceError, match="cannot be used as a bool"):
        max(a, b)


def test_nni_symbolic_execution_port() -> None:
    a, b, c = Categorical([1, 2], label="a"), Categorical([3, 4], label="b"), Categorical([5, 6], label="c")
    d = a + b + 3 * c
    assert d.freeze({"a": 2, "b": 3, "c": 5}) == 20
    assert list(d.grid()) == [x + y + 3 * z for x in [1, 2] for y in [3, 4] for z in [5, 6]]

    animal, drink = Categorical(["cat", "dog"], label="animal"), Categorical(["milk", "coffee"], label="drink")
    assert (animal + drink).evaluate(["dog", "coffee"]) == "dogcoffee"
    assert (animal + 2 * drink).evaluate(["cat", "milk"]) == "catmilkmilk"
    assert (3 - Categorical([1, 2], label="s")).evaluate([1]) == 2
    with pytest.raises(TypeError, match="can only concatenate str"):
        (animal + Categorical([1, 3], label="n")).default()

    aa = Categorical([1, 17], label="aa")
    expr = (abs(-aa * 3) % 11) ** 5
    assert "abs" in repr(expr)
    with pytest.raises(SampleValueError, match="42"):
        expr.freeze({"aa": 42})
    assert expr.evaluate([17]) == 7**5
    assert expr.freeze({"aa": 17}) == 7**5

    assert round(7 / Categorical([2, 5], label="r")).evaluate([2]) == 4
    inverted = ~(77 ^ (Categorical([1, 4], label="i") & 5))
    assert inverted.evaluate([4]) == ~(77 ^ (4 & 5))
    product = Categorical([5, 3], label="p") * Categorical([6.5, 7.5], label="q")
    assert math.floor(product).evaluate([5, 7.5]) == int(5 * 7.5)

    assert MutableExpression.condition(Categorical([2, 3], label="c2") <= 2, "a", "b").evaluate([3]) == "b"
    assert MutableExpression.condition(Categorical([2, 3], label="c2") <= 2, "a", "b").evaluate([2]) == "a"
    with pytest.raises(SearchSpaceError, match="not an int"):
        int(Categorical([2.5, 3.5], label="f"))
    assert MutableExpression.to_int(Categorical([2.5, 3.5], label="f")).evaluate([2.5]) == 2
    assert MutableExpression.to_float(Categorical(["2.5", "3.5"], label="g")).evaluate(["3.5"]) == 3.5
    assert Categorical([2.5, 3.5], label="f").int().evaluate([3.5]) == 3
    assert Categorical(["1.5"], label="h").float().freeze({"h": "1.5"}) == 1.5


def test_nni_make_divisible_port() -> None:
    def make_divisible(value, divisor, min_value=None, min_ratio=0.9):  # type: ignore[no-untyped-def]
        if min_value is None:
            min_value = divisor
        new_value = MutableExpression.max(min_value, MutableExpression.to_int(value + divisor / 2) // divisor * divisor)
        return MutableExpression.condition(new_value < min_ratio * value, new_value + divisor, new_value)

    def original(value: int, divisor: int) -> int:
        new_value = max(divisor, int(value + divisor / 2) // divisor * divisor)
        return new_value + divisor if new_value < 0.9 * value else new_value

    values, divisors = [4, 8, 16, 32, 64, 128], [2, 3, 5, 7, 15]
    result = make_divisible(Categorical(values, label="value"), Categorical(divisors, label="divisor"))
    for value in values:
        for divisor in divisors:
            ordered = [value if m.label == "value" else divisor for m in result.leaf_symbols()]
            assert result.evaluate(ordered) == original(value, divisor)
            assert result.evaluate({"value": value, "divisor": divisor}) == original(value, divisor)
            assert result.freeze({"value": value, "divisor": divisor}) == original(value, divisor)
    assert len(list(result.grid())) == 30
    assert max(result.grid()) == 135
    # plain values go through the same helpers
    assert make_divisible(100, 8) == original(100, 8)


def test_switch_case() -> None:
    x, y = Categorical([0, 1, 2], label="x"), Categorical([3, 4], label="y")
    expr = MutableExpression.switch_case(x, {0: y, 1: x * 2})
    assert str(expr) == "switch_case(x, {0: y, 1: (x * 2)})"
    assert expr.evaluate({"x": 0, "y": 3}) == 3
    assert expr.freeze({"x": 1, "y": 3}) == 2
    with pytest.raises(SearchSpaceError, match="no matching case for 2"):
        expr.freeze({"x": 2, "y": 3})
    assert expr.simplify() == {"x": x, "y": y}
    assert MutableExpression.switch_case("b", {"a": 1, "b": 2}) == 2  # plain branch: a plain value


def test_case() -> None:
    x, y, z = (Categorical([0, 1, 2, 3], label=name) for name in "xyz")
    expr = MutableExpression.case([(x < y, 17), (x > z, 23), (y > z, 31)])
    assert str(expr) == "case([((x < y), 17), ((x > z), 23), ((y > z), 31)])"
    assert expr.evaluate({"x": 1, "y": 2, "z": 3}) == 17
    assert expr.evaluate({"x": 2, "y": 1, "z": 0}) == 23
    assert expr.freeze({"x": 1, "y": 2, "z": 0}) == 17
    with pytest.raises(SearchSpaceError, match="no matching case"):
        expr.freeze({"x": 2, "y": 1, "z": 3})
    assert MutableExpression.case([(False, 1), (True, 2)]) == 2
    with pytest.raises(SearchSpaceError, match="pairs"):
        MutableExpression.case([])


def test_symbolic_str_and_leaf_symbols() -> None:
    x, y = Categorical([1, 2], label="x"), Categorical([3, 4], label="y")
    expr = x * x + y * 2
    assert str(expr) == "((x * x) + (y * 2))"
    assert repr(x * x) == f"({x!r} * {x!r})"
    assert list(expr.leaf_symbols()) == [x, x, y]
    assert expr.evaluate({"x": 2, "y": 3}) == 10
    assert expr.evaluate([2, 2, 3]) == 10  # one value per occurrence, as in NNI
    with pytest.raises(SearchSpaceError, match="ran out of values"):
        expr.evaluate([2])
    with pytest.raises(SampleMissingError, match="'y'"):
        expr.evaluate({"x": 2})


# --- indexing a choice ---------------------------------------------------------------------------------


def test_indexing_a_choice_of_tuples() -> None:
    spec = Categorical([(16, 3), (32, 5)], label="spec")
    channels, kernel = spec[0], spec[1]
    assert isinstance(channels, MutableExpression)
    assert channels.freeze({"spec": (32, 5)}) == 32
    assert kernel.freeze({"spec": (32, 5)}) == 5
    assert kernel.freeze({"spec": [32, 5]}) == 5  # a sample read back from JSON
    assert channels.evaluate([(16, 3)]) == 16
    assert spec[-1].freeze({"spec": (16, 3)}) == 3
    assert spec[:1].freeze({"spec": (16, 3)}) == (16,)
    assert channels.simplify() == {"spec": spec}
    assert channels.contains({"spec": (16, 3)})
    assert not channels.contains({"spec": (16, 5)})
    with pytest.raises(SampleValueError, match="'spec'"):
        channels.freeze({"spec": (16, 5)})
    assert list(channels.grid()) == [16, 32]
    assert channels.default() == 16
    assert (kernel // 2).freeze({"spec": (32, 5)}) == 2
    assert str(channels) == "spec[0]"
    assert repr(channels) == f"{spec!r}[0]"
    assert channels.describe() == "spec[0] (spec: [(16, 3), (32, 5)])"


def test_indexing_a_choice_of_dicts() -> None:
    config = Categorical([{"width": 8, "act": "relu"}, {"width": 16, "act": "gelu"}], label="config")
    width = config["width"]
    assert width.freeze({"config": {"width": 16, "act": "gelu"}}) == 16
    assert config["act"].freeze({"config": {"width": 8, "act": "relu"}}) == "relu"
    assert list((width * 2).grid()) == [16, 32]
    assert str(config["act"]) == "config['act']"


def test_indexing_with_a_decision_and_indexing_an_expression() -> None:
    table = Categorical([(1, 2, 3), (4, 5, 6)], label="table")
    position = Categorical([0, 2], label="position")
    item = table[position]
    assert item.freeze({"table": (4, 5, 6), "position": 2}) == 6
    assert list(item.simplify()) == ["table", "position"]
    pairs = MutableExpression.condition(position > 0, table, (7, 8, 9))
    assert pairs[1].freeze({"table": (1, 2, 3), "position": 0}) == 8
    assert pairs[1].freeze({"table": (1, 2, 3), "position": 2}) == 2


# --- the other operators of NNI's expressions ------------------------------------------------------------


def test_bitwise_and_shift_operators(a: Categorical) -> None:
    sample = {"a": 3}
    assert (a ^ 1).freeze(sample) == 2
    assert (6 ^ a).freeze(sample) == 5
    assert (~a).freeze(sample) == -4
    assert (a << 2).freeze(sample) == 12
    assert (1 << a).freeze(sample) == 8
    assert (a >> 1).freeze(sample) == 1
    assert (16 >> a).freeze(sample) == 2
    assert (a & 2).freeze(sample) == 2
    assert (2 | a).freeze(sample) == 3
    flag = Categorical([True, False], label="flag")
    assert (flag ^ True).freeze({"flag": True}) is False
    assert str(~a) == "~a" and str(a ^ 1) == "(a ^ 1)" and str(a << 2) == "(a << 2)"


def test_unary_plus_divmod_pow_modulo_floor_ceil(a: Categorical) -> None:
    x = Numerical(0, 10, label="x")
    assert (+a).freeze({"a": 2}) == 2
    assert divmod(a, 2).freeze({"a": 3}) == (1, 1)
    assert divmod(7, a).freeze({"a": 3}) == (2, 1)
    assert pow(a, 2, 5).freeze({"a": 3}) == 4
    assert math.floor(x).freeze({"x": 2.5}) == 2
    assert math.ceil(x).freeze({"x": 2.5}) == 3
    assert str(math.floor(x)) == "math.floor(x)"
    assert str(+a) == "+a"
    with pytest.raises(SearchSpaceError, match="to_int"):
        math.trunc(x)


def test_matmul_operator() -> None:
    class Matrix:
        def __init__(self, value: int) -> None:
            self.value = value

        def __matmul__(self, other: object) -> int:
            return self.value * (other.value if isinstance(other, Matrix) else int(other))  # type: ignore[call-overload]

        def __rmatmul__(self, other: object) -> int:
            return int(other) * self.value  # type: ignore[call-overload]

    two, three = Matrix(2), Matrix(3)
    m = Categorical([two, three], label="m")
    assert (m @ two).freeze({"m": three}) == 6
    assert (5 @ m).freeze({"m": two}) == 10


def test_equality_helpers_on_plain_values() -> None:
    assert MutableExpression.eq(2, 2) is True
    assert MutableExpression.ne(2, 2) is False


def test_condition_and_helpers_are_picklable(a: Categorical) -> None:
    import pickle

    for expr in (
        MutableExpression.condition(a > 1, "x", "y"),
        MutableExpression.case([(a > 2, 1), (a > 0, 0)]),
        MutableExpression.switch_case(a, {1: "one", 2: "two", 3: "three"}),
        MutableExpression.max([a, 2]),
        Categorical([(1, 2), (3, 4)], label="t")[0],
    ):
        copy = pickle.loads(pickle.dumps(expr))
        assert copy.freeze({"a": 3, "t": (3, 4)}) == expr.freeze({"a": 3, "t": (3, 4)})
