"""Decisions: Categorical, CategoricalMultiple and Numerical — values, samples, errors users see."""

from __future__ import annotations

import json
import math

import pytest

from nascore.errors import SampleMissingError, SampleValueError, SearchSpaceError
from nascore.space import Categorical, CategoricalMultiple, Numerical, choice

# --- Categorical --------------------------------------------------------------------------------


def test_choice_helper_builds_a_labelled_categorical() -> None:
    width = choice("width", [16, 32, 64])
    assert isinstance(width, Categorical)
    assert width.label == "width"
    assert width.values == [16, 32, 64]
    assert width.size == 3


def test_categorical_freeze_returns_the_sampled_value() -> None:
    width = Categorical([16, 32, 64], label="width")
    assert width.freeze({"width": 32}) == 32
    assert width.simplify() == {"width": width}


def test_categorical_default_is_first_value_unless_given() -> None:
    assert Categorical([3, 1, 2], label="a").default() == 3
    assert Categorical([3, 1, 2], default=2, label="b").default() == 2


def test_categorical_default_must_be_a_candidate() -> None:
    with pytest.raises(SearchSpaceError, match="default 5 of choice 'k'"):
        Categorical([1, 2], default=5, label="k")


def test_empty_categorical_names_its_label() -> None:
    with pytest.raises(SearchSpaceError, match="choice 'empty' has no candidates"):
        Categorical([], label="empty")


def test_duplicate_candidates_are_rejected() -> None:
    with pytest.raises(SearchSpaceError, match="'dup' lists the candidate 2 twice"):
        Categorical([1, 2, 2], label="dup")


def test_sample_missing_a_label_raises_sample_missing_error() -> None:
    width = Categorical([16, 32], label="width")
    with pytest.raises(SampleMissingError, match="'width'") as info:
        width.freeze({"depth": 2})
    assert info.value.label == "width"
    assert not width.contains({})


def test_value_not_a_candidate_raises_sample_value_error() -> None:
    width = Categorical([16, 32], label="width")
    with pytest.raises(
        SampleValueError, match=r"value 48 for label 'width' is not a candidate.*\[16, 32\]"
    ) as info:
        width.freeze({"width": 48})
    assert info.value.label == "width"
    assert not width.contains({"width": 48})
    assert isinstance(width.check_contains({"width": 48}), SampleValueError)


def test_values_survive_a_json_round_trip() -> None:
    kernel = Categorical([(3, 3), (5, 5)], label="kernel")
    sample = json.loads(json.dumps({"kernel": (5, 5)}))
    assert sample == {"kernel": [5, 5]}
    assert kernel.contains(sample)
    assert kernel.freeze(sample) == (5, 5)
    assert isinstance(kernel.freeze(sample), tuple)


def test_categorical_random_is_reproducible_with_a_seed() -> None:
    c = Categorical(list(range(100)), label="c")
    assert [c.random(seed=s) for s in range(10)] == [c.random(seed=s) for s in range(10)]
    assert len({c.random(seed=s) for s in range(30)}) > 1


def test_categorical_grid_lists_every_value_in_order() -> None:
    c = Categorical(["a", "b", "c"], label="c")
    assert list(c.grid()) == ["a", "b", "c"]
    assert list(c.grid_samples()) == [{"c": "a"}, {"c": "b"}, {"c": "c"}]


def test_using_a_choice_as_a_bool_is_a_clear_error() -> None:
    flag = Categorical([True, False], label="use_bn")
    with pytest.raises(SearchSpaceError, match="cannot be used as a bool"):
        if flag:
            pass


def test_using_a_choice_as_an_int_or_iterable_is_a_clear_error() -> None:
    depth = Categorical([1, 2], label="depth")
    with pytest.raises(SearchSpaceError, match="not an int"):
        range(depth)  # type: ignore[call-overload]
    with pytest.raises(SearchSpaceError, match="cannot be iterated"):
        list(depth)


def test_choices_stay_usable_as_dict_keys() -> None:
    a = Categorical([1, 2], label="a")
    b = Categorical([1, 2], label="a")
    table = {a: "first", b: "second"}
    assert table[a] == "first"
    assert len(table) == 2


def test_same_label_same_candidates_is_one_decision() -> None:
    a = Categorical([1, 2], label="x")
    b = Categorical([1, 2], label="x")
    assert a.equals(b)
    assert not a.equals(Categorical([1, 3], label="x"))
    assert not a.equals(CategoricalMultiple([1, 2], label="x"))


# --- CategoricalMultiple ---------------------------------------------------------------------------


def test_multiple_with_fixed_count() -> None:
    m = CategoricalMultiple(["a", "b", "c", "d"], n_chosen=2, label="m")
    assert m.size == 6
    assert m.default() == ["a", "b"]
    grid = list(m.grid())
    assert len(grid) == 6
    assert all(len(v) == 2 for v in grid)
    assert m.freeze({"m": ["c", "a"]}) == ["a", "c"]  # candidate order


def test_multiple_with_any_count() -> None:
    m = CategoricalMultiple([0, 1, 2], label="m")
    assert m.size == 8
    assert len(list(m.grid())) == 8
    assert [] in list(m.grid())
    assert m.default() == [0, 1, 2]
    for seed in range(20):
        assert m.contains({"m": m.random_sample(seed=seed)["m"]})


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("a", "must be a list"),
        (["a", "z"], "not candidates"),
        (["a", "a"], "repeats a candidate"),
        (["a"], "exactly 2"),
    ],
)
def test_multiple_rejects_bad_values_with_the_reason(value: object, message: str) -> None:
    m = CategoricalMultiple(["a", "b", "c"], n_chosen=2, label="pick")
    with pytest.raises(SampleValueError, match=message) as info:
        m.freeze({"pick": value})
    assert info.value.label == "pick"


def test_multiple_rejects_impossible_counts() -> None:
    with pytest.raises(SearchSpaceError, match="'pick'.*n_chosen=4"):
        CategoricalMultiple([1, 2, 3], n_chosen=4, label="pick")
    with pytest.raises(SearchSpaceError, match="'pick' has no candidates"):
        CategoricalMultiple([], label="pick")


def test_multiple_random_is_reproducible() -> None:
    m = CategoricalMultiple(list(range(10)), n_chosen=3, label="m")
    assert [m.random(seed=s) for s in range(5)] == [m.random(seed=s) for s in range(5)]


# --- Numerical -------------------------------------------------------------------------------------


def test_numerical_bounded_defaults_and_grid() -> None:
    lr = Numerical(0.0, 1.0, label="p")
    assert lr.default() == 0.5
    assert list(lr.grid()) == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert list(lr.grid(granularity=3)) == [0.0, 0.5, 1.0]
    assert lr.size == math.inf
    for seed in range(20):
        assert 0.0 <= lr.random(seed=seed) <= 1.0


def test_numerical_log_distributed() -> None:
    lr = Numerical(1e-4, 1e-1, log_distributed=True, label="lr")
    assert lr.default() == pytest.approx(math.sqrt(1e-5))
    grid = list(lr.grid(granularity=4))
    assert grid[0] == pytest.approx(1e-4) and grid[-1] == pytest.approx(1e-1)
    assert grid[1] == pytest.approx(1e-3)


def test_numerical_quantized() -> None:
    units = Numerical(16, 64, quantize=16, label="units")
    assert units.size == 4
    assert set(units.grid(granularity=7)) <= {16, 32, 48, 64}
    for seed in range(20):
        assert units.random(seed=seed) % 16 == 0


def test_numerical_unbounded_needs_mu_sigma_and_has_no_grid() -> None:
    with pytest.raises(SearchSpaceError, match="'x'.*needs mu and sigma"):
        Numerical(label="x")
    x = Numerical(mu=0.0, sigma=1.0, label="x")
    assert x.default() == 0.0
    with pytest.raises(SearchSpaceError, match="'x' is unbounded"):
        list(x.grid())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"low": 1, "high": 1}, "must be smaller"), ({"low": 0, "high": 1, "log_distributed": True}, "low > 0")],
)
def test_numerical_invalid_ranges(kwargs: dict, message: str) -> None:
    with pytest.raises(SearchSpaceError, match=message):
        Numerical(**kwargs, label="n")


@pytest.mark.parametrize("value", [True, "0.5", float("nan"), 2.0])
def test_numerical_rejects_non_numbers_and_out_of_range(value: object) -> None:
    n = Numerical(0, 1, label="n")
    with pytest.raises(SampleValueError, match="'n'"):
        n.freeze({"n": value})
