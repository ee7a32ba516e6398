"""Spaces made of several decisions: simplify, grid, random, contains, freeze, label conflicts."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nascore.errors import LabelConflictError, SampleMissingError, SampleValueError
from nascore.space import (
    Categorical,
    CategoricalMultiple,
    MutableDict,
    MutableList,
    Numerical,
    collect_mutables,
    dedup_mutables,
    sample_key,
)


def make_space() -> MutableDict:
    width = Categorical([16, 32, 64], label="width")
    return MutableDict(
        {
            "width": width,
            "hidden": width * 2,  # the same decision again, through an expression
            "depth": Categorical([1, 2], label="depth"),
            "skips": CategoricalMultiple(["a", "b", "c"], n_chosen=2, label="skips"),
            "act": "relu",  # plain values pass through
            "layers": [Categorical(["conv", "pool"], label="op"), 3],
        }
    )


def test_simplify_lists_each_decision_once() -> None:
    space = make_space()
    simple = space.simplify()
    assert list(simple) == ["width", "depth", "skips", "op"]
    assert {label: m.size for label, m in simple.items()} == {"width": 3, "depth": 2, "skips": 3, "op": 2}


def test_grid_count_is_the_product_of_sizes() -> None:
    space = make_space()
    expected = math.prod(m.size for m in space.simplify().values())
    samples = list(space.grid_samples())
    assert len(samples) == expected == 36
    assert len({sample_key(s) for s in samples}) == expected
    assert len(list(space.grid())) == expected


def test_grid_varies_the_first_decision_slowest() -> None:
    space = MutableList([Categorical([1, 2], label="x"), Categorical(["a", "b"], label="y")])
    assert list(space.grid()) == [[1, "a"], [1, "b"], [2, "a"], [2, "b"]]


def test_grid_with_memo_fixes_labels() -> None:
    space = make_space()
    samples = list(space.grid_samples(memo={"width": 32}))
    assert len(samples) == 12
    assert all(s["width"] == 32 for s in samples)


def test_grid_granularity_applies_to_numerical() -> None:
    space = MutableDict({"p": Numerical(0, 1, label="p"), "k": Categorical([1, 2], label="k")})
    assert len(list(space.grid_samples(granularity=3))) == 6


def test_freeze_resolves_every_decision() -> None:
    space = make_space()
    sample = {"width": 32, "depth": 2, "skips": ["a", "c"], "op": "pool"}
    assert space.freeze(sample) == {
        "width": 32,
        "hidden": 64,
        "depth": 2,
        "skips": ["a", "c"],
        "act": "relu",
        "layers": ["pool", 3],
    }


def test_default_uses_every_default_value() -> None:
    space = make_space()
    assert space.default_sample() == {"width": 16, "depth": 1, "skips": ["a", "b"], "op": "conv"}
    assert space.default()["hidden"] == 32


def test_random_is_reproducible_with_a_seed() -> None:
    space = make_space()
    first = [space.random_sample(seed=s) for s in range(10)]
    assert first == [space.random_sample(seed=s) for s in range(10)]
    assert len({sample_key(s) for s in first}) > 1
    assert space.random(seed=3) == space.freeze(space.random_sample(seed=3))


def test_random_keeps_memo_values_and_fills_the_memo() -> None:
    space = make_space()
    memo = {"depth": 2}
    value = space.random(memo, seed=0)
    assert value["depth"] == 2
    assert set(memo) == {"width", "depth", "skips", "op"}
    assert value == space.freeze(memo)


def test_contains_and_validate_explain_what_is_wrong() -> None:
    space = make_space()
    good = {"width": 32, "depth": 2, "skips": ["a", "c"], "op": "pool"}
    assert space.contains(good)
    assert space.check_contains(good) is None
    space.validate(good)

    missing = dict(good)
    del missing["op"]
    assert not space.contains(missing)
    with pytest.raises(SampleMissingError, match="no value for label 'op'") as info:
        space.validate(missing)
    assert info.value.label == "op"

    with pytest.raises(SampleValueError, match="label 'width'"):
        space.validate({**good, "width": 17})
    with pytest.raises(SampleValueError, match="label 'width'"):
        space.freeze({**good, "width": 17})


def test_a_label_means_one_decision() -> None:
    same = MutableList([Categorical([1, 2], label="k"), Categorical([1, 2], label="k")])
    assert list(same.simplify()) == ["k"]
    assert same.freeze({"k": 2}) == [2, 2]

    conflict = MutableList([Categorical([1, 2], label="k"), Categorical([1, 3], label="k")])
    with pytest.raises(LabelConflictError, match="label 'k' is used for two different decisions"):
        conflict.simplify()


def test_a_label_cannot_be_a_categorical_and_a_multiple_choice() -> None:
    mixed = [Categorical([1, 2], label="k"), CategoricalMultiple([1, 2], label="k")]
    with pytest.raises(LabelConflictError, match="'k'"):
        dedup_mutables(collect_mutables(mixed))


def test_collect_walks_nested_containers() -> None:
    a, b = Categorical([1], label="a"), Categorical([2], label="b")
    assert [m.label for m in collect_mutables({"x": [a, (b + 1, "plain")]})] == ["a", "b"]


def test_sample_key_is_canonical_and_json_like() -> None:
    assert sample_key({"b": 1, "a": [1, 2]}) == sample_key({"a": [1, 2], "b": 1})
    assert json.loads(sample_key({"a": 1})) == {"a": 1}


def test_mutable_containers_index_and_len() -> None:
    d = MutableDict({"x": Categorical([1], label="x")})
    lst = MutableList([1, Categorical([1], label="y")])
    assert len(d) == 1 and d["x"].label == "x"
    assert len(lst) == 2 and lst[0] == 1
    assert "MutableDict" in repr(d) and "MutableList" in repr(lst)


_GRID = list(make_space().grid_samples())


@settings(max_examples=40, deadline=None)
@given(index=st.integers(min_value=0, max_value=len(_GRID) - 1))
def test_every_grid_sample_is_contained_and_freezes(index: int) -> None:
    space = make_space()
    sample = _GRID[index]
    assert space.contains(sample)
    frozen = space.freeze(json.loads(json.dumps(sample)))  # also after a trip through JSON
    assert frozen["hidden"] == 2 * frozen["width"]


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(min_value=0, max_value=2**32 - 1))
def test_every_random_sample_is_contained(seed: int) -> None:
    space = MutableDict(
        {
            "c": Categorical(list(range(5)), label="c"),
            "m": CategoricalMultiple(list(range(4)), label="m"),
            "n": Numerical(1e-3, 1.0, log_distributed=True, label="n"),
            "q": Numerical(0, 100, quantize=10, label="q"),
        }
    )
    sample = space.random_sample(seed=seed)
    assert space.contains(sample), space.check_contains(sample)
