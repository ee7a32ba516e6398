"""Spaces made of several decisions: simplify, grid, random, contains, freeze, label conflicts."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nascore.errors import LabelConflictError, SampleMissingError, SampleValueError, SearchSpaceError
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


# --- editing containers (NNI: nni/mutable/container.py, test_mutable.py::test_mutable_list / _dict) ---


def test_mutable_list_append_nni_port() -> None:
    a = MutableList([1, Categorical([1, 2, 3], label="c"), 3])
    assert a.default() == [1, 1, 3]
    assert a.append(Categorical([4, 5, 6], label="d")) is a
    assert a.default() == [1, 1, 3, 4]
    assert list(a.simplify()) == ["c", "d"]


def test_mutable_list_insert_extend_setitem_delitem() -> None:
    x, y, z = (Categorical([1, 2], label=name) for name in "xyz")
    lst = MutableList()
    assert len(lst) == 0 and lst.freeze({}) == []
    assert lst.extend([x, 10]) is lst
    lst.insert(0, y)
    lst += [z]
    assert [m if isinstance(m, int) else m.label for m in lst] == ["y", "x", 10, "z"]
    assert x in lst and 10 in lst and Categorical([1, 2], label="x") not in lst
    assert lst.freeze({"x": 1, "y": 2, "z": 1}) == [2, 1, 10, 1]

    lst[2] = x * 100
    assert lst.freeze({"x": 2, "y": 2, "z": 1}) == [2, 2, 200, 1]
    del lst[0]
    assert list(lst.simplify()) == ["x", "z"]
    assert lst.freeze({"x": 1, "z": 2}) == [1, 100, 2]

    head = lst[:2]
    assert isinstance(head, MutableList)
    assert list(head.simplify()) == ["x"]
    lst[1:] = [5, 6]
    assert lst.freeze({"x": 1}) == [1, 5, 6]
    assert list(lst.grid()) == [[1, 5, 6], [2, 5, 6]]


def test_mutable_list_refuses_an_item_that_reuses_a_label_for_another_decision() -> None:
    lst = MutableList([Categorical([1, 2], label="k")])
    with pytest.raises(LabelConflictError, match="'k'"):
        lst.append(Categorical([1, 3], label="k"))
    with pytest.raises(LabelConflictError, match="'k'"):
        lst.insert(0, [Categorical([7], label="k")])
    with pytest.raises(LabelConflictError, match="'k'"):
        lst.extend([Categorical([1, 3], label="k")])
    assert len(lst) == 1  # nothing was added
    lst.append(Categorical([1, 2], label="k"))  # the same decision again is fine
    assert lst.freeze({"k": 2}) == [2, 2]
    lst[0] = Categorical([1, 3], label="k2")
    with pytest.raises(LabelConflictError, match="'k'"):
        lst[0] = Categorical([5], label="k")  # conflicts with the other item, not the replaced one


def test_mutable_dict_editing_nni_port() -> None:
    a = MutableDict({"a": 1, "b": Categorical([1, 2, 3], label="b"), "c": 3})
    assert list(a.default().values()) == [1, 1, 3]
    assert list(a.default().keys()) == ["a", "b", "c"]
    assert list(a.grid()) == [{"a": 1, "b": 1, "c": 3}, {"a": 1, "b": 2, "c": 3}, {"a": 1, "b": 3, "c": 3}]
    a.pop("b")
    assert list(a.grid()) == [{"a": 1, "c": 3}]
    assert a.random() == {"a": 1, "c": 3}
    a["b"] = Categorical([0.5, 1.0], label="n")
    assert a.default() == {"a": 1, "b": 0.5, "c": 3}
    assert list(a.default().values()) == [1, 3, 0.5]
    assert list(a.simplify()) == ["n"]


def test_mutable_dict_keywords_update_delete_clear() -> None:
    d = MutableDict(lr=Categorical([0.1, 0.01], label="lr"), epochs=10)
    assert list(d) == ["lr", "epochs"] and "lr" in d and "momentum" not in d
    assert MutableDict([("x", 1)]).freeze({}) == {"x": 1}
    with pytest.raises(SearchSpaceError, match="'lr' is given twice"):
        MutableDict({"lr": 1}, lr=2)

    d.update({"optimizer": Categorical(["sgd", "adam"], label="optimizer")}, epochs=20)
    assert list(d.keys()) == ["lr", "epochs", "optimizer"]
    assert d.freeze({"lr": 0.01, "optimizer": "adam"}) == {"lr": 0.01, "epochs": 20, "optimizer": "adam"}
    assert dict(d.items())["epochs"] == 20 and 20 in d.values() and d.get("missing", 0) == 0
    del d["lr"]
    assert list(d.simplify()) == ["optimizer"]
    assert d.pop("nothing", None) is None
    d.clear()
    assert len(d) == 0 and d.simplify() == {}


def test_mutable_dict_refuses_a_value_that_reuses_a_label_for_another_decision() -> None:
    d = MutableDict({"a": Categorical([1, 2], label="k")})
    with pytest.raises(LabelConflictError, match="'k'"):
        d["b"] = Categorical([1, 3], label="k")
    with pytest.raises(LabelConflictError, match="'k'"):
        d.update(b=[Categorical([9], label="k")])
    assert list(d) == ["a"]
    d["a"] = Categorical([1, 3], label="k")  # replacing the only user of the label is fine
    assert d.freeze({"k": 3}) == {"a": 3}


def test_nested_containers_edited_after_construction() -> None:
    space = MutableDict(
        {
            "trainer": MutableDict({"optimizer": Categorical(["sgd", "adam"], label="opt")}),
            "model": MutableList([Categorical([10, 20], label="h1")]),
        }
    )
    space["trainer"]["lr"] = Numerical(1e-4, 1e-2, log_distributed=True, label="lr")
    space["model"].append(Categorical([10, 20], label="h1") * 2)
    assert list(space.simplify()) == ["opt", "lr", "h1"]
    frozen = space.freeze({"opt": "adam", "lr": 1e-3, "h1": 20})
    assert frozen == {"trainer": {"optimizer": "adam", "lr": 1e-3}, "model": [20, 40]}
