"""Priors: weighted Categorical / CategoricalMultiple, honoured by random sampling (NNI's ``weights``)."""

from __future__ import annotations

import collections
import random

import pytest

from nascore.errors import LabelConflictError, SearchSpaceError
from nascore.space import Categorical, CategoricalMultiple, MutableDict, Numerical, dedup_mutables


def counts(mutable, n: int = 4000) -> collections.Counter:
    rng = random.Random(0)
    counter: collections.Counter = collections.Counter()
    for _ in range(n):
        value = mutable.random(random_state=rng)
        for item in value if isinstance(value, list) else [value]:
            counter[item] += 1
    return counter


# --- Categorical -----------------------------------------------------------------------------------


def test_weights_are_normalised_and_drive_random_sampling() -> None:
    c = Categorical([1, 2, 3], weights=[2, 1, 7], label="c")
    assert c.weights == pytest.approx([0.2, 0.1, 0.7])
    freq = counts(c)
    assert 0.17 < freq[1] / 4000 < 0.23 and 0.08 < freq[2] / 4000 < 0.12 and 0.67 < freq[3] / 4000 < 0.73


def test_a_weight_of_zero_is_a_valid_value_never_drawn() -> None:
    c = Categorical(["a", "b", "c"], weights=[0, 1, 3], label="c")
    assert "a" not in counts(c, 2000)
    assert c.contains({"c": "a"}) and c.size == 3 and c.default() == "a"  # the default is still the first


def test_grid_lists_the_likeliest_first_as_nni() -> None:
    assert list(Categorical([1, 2, 3], weights=[0.2, 0.1, 0.7], label="c").grid()) == [3, 1, 2]
    assert list(Categorical([1, 2, 3], weights=[1, 1, 1], label="c").grid()) == [1, 2, 3]


def test_uniform_weights_sample_as_no_weights() -> None:
    plain, uniform = Categorical(list(range(7)), label="c"), Categorical(list(range(7)), weights=[0.1] * 7, label="c")
    assert not uniform.weighted and uniform.equals(plain)
    assert [plain.random(seed=s) for s in range(30)] == [uniform.random(seed=s) for s in range(30)]


def test_seeded_weighted_sampling_repeats() -> None:
    c = Categorical(list("abcdef"), weights=[1, 2, 3, 4, 5, 6], label="c")
    assert [c.random(seed=s) for s in range(20)] == [c.random(seed=s) for s in range(20)]


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ([0.5, 0.5], "2 weights for 3 candidates"),
        ([1, -1, 1], "non-negative"),
        ([0, 0, 0], "all zero"),
        ([1, float("nan"), 1], "non-negative finite"),
        ([1, float("inf"), 1], "non-negative finite"),
        ([1, "2", 1], "non-negative finite"),
        (5, "must be a list"),
    ],
)
def test_invalid_weights_are_refused_naming_the_label(weights, message: str) -> None:
    with pytest.raises(SearchSpaceError, match=f"'op'.*{message}"):
        Categorical(["conv", "pool", "skip"], weights=weights, label="op")


def test_different_priors_are_different_decisions() -> None:
    with pytest.raises(LabelConflictError, match="'c'"):
        dedup_mutables([Categorical([1, 2], weights=[1, 3], label="c"), Categorical([1, 2], label="c")])
    assert len(dedup_mutables([Categorical([1, 2], weights=[1, 3], label="c"), Categorical([1, 2], weights=[2, 6], label="c")])) == 1


def test_describe_and_repr_show_the_prior() -> None:
    c = Categorical([1, 2], weights=[1, 3], label="c")
    assert "0.25" in c.describe() and "0.75" in c.describe()
    assert repr(c) == "Categorical([1, 2], weights=[0.25, 0.75], label='c')"


# --- CategoricalMultiple ---------------------------------------------------------------------------


def test_multiple_without_n_chosen_weights_are_inclusion_probabilities() -> None:
    m = CategoricalMultiple([1, 2, 3], weights=[0.2, 0.1, 0.7], label="m")
    assert m.weights == [0.2, 0.1, 0.7]  # not normalised: one probability per candidate
    freq = counts(m)
    assert 0.17 < freq[1] / 4000 < 0.23 and 0.08 < freq[2] / 4000 < 0.12 and 0.67 < freq[3] / 4000 < 0.73
    assert list(m.grid()) == [[], [1], [2], [3], [1, 2], [1, 3], [2, 3], [1, 2, 3]]  # NNI: grid unchanged
    with pytest.raises(SearchSpaceError, match="'m'.*must be in \\[0, 1\\]"):
        CategoricalMultiple([1, 2], weights=[0.5, 2], label="m")


def test_multiple_with_n_chosen_draws_one_at_a_time_by_weight() -> None:
    m = CategoricalMultiple([1, 2, 3], n_chosen=2, weights=[3, 1, 6], label="m")
    assert m.weights == pytest.approx([0.3, 0.1, 0.6])
    rng = random.Random(0)
    pairs = collections.Counter(tuple(m.random(random_state=rng)) for _ in range(6000))
    # exact probabilities of numpy's choice(3, 2, replace=False, p=[.3, .1, .6]), which NNI uses
    expected = {(1, 2): 0.3 * 0.1 / 0.7 + 0.1 * 0.3 / 0.9, (1, 3): 0.3 * 0.6 / 0.7 + 0.6 * 0.3 / 0.4, (2, 3): 0.1 * 0.6 / 0.9 + 0.6 * 0.1 / 0.4}
    for pair, p in expected.items():
        assert abs(pairs[pair] / 6000 - p) < 0.02, (pair, pairs[pair] / 6000, p)


def test_multiple_zero_weights_and_too_few_positive() -> None:
    m = CategoricalMultiple(list(range(5)), n_chosen=2, weights=[0, 1, 1, 0, 1], label="m")
    assert not set(counts(m, 500)) & {0, 3}
    assert m.contains({"m": [0, 3]})  # a valid value, never drawn
    with pytest.raises(SearchSpaceError, match="'m'.*only 1 candidates have a positive weight.*n_chosen=2"):
        CategoricalMultiple([1, 2, 3], n_chosen=2, weights=[0, 0, 1], label="m")
    with pytest.raises(SearchSpaceError, match="'m'.*all zero"):
        CategoricalMultiple([1, 2, 3], weights=[0, 0, 0], label="m")


def test_multiple_default_prior_samples_as_before() -> None:
    a = CategoricalMultiple(list(range(6)), n_chosen=3, label="m")
    b = CategoricalMultiple(list(range(6)), n_chosen=3, weights=[1] * 6, label="m")
    assert [a.random(seed=s) for s in range(20)] == [b.random(seed=s) for s in range(20)]
    c = CategoricalMultiple(list(range(6)), weights=[0.5] * 6, label="m")
    d = CategoricalMultiple(list(range(6)), label="m")
    assert [c.random(seed=s) for s in range(20)] == [d.random(seed=s) for s in range(20)] and c.equals(d)


# --- spaces: every way of sampling honours the priors ----------------------------------------------


def test_space_random_sample_and_random_value_honour_priors() -> None:
    space = MutableDict(
        {
            "op": Categorical(["conv", "pool", "skip"], weights=[0, 1, 9], label="op"),
            "inputs": CategoricalMultiple([0, 1, 2, 3], n_chosen=2, weights=[0, 0, 1, 1], label="inputs"),
            "shift": Numerical(mu=10.0, sigma=0.1, label="shift"),
        }
    )
    samples = [space.random_sample(seed=seed) for seed in range(300)]
    assert all(s["op"] != "conv" and s["inputs"] == [2, 3] and 9 < s["shift"] < 11 for s in samples)
    assert sum(s["op"] == "skip" for s in samples) > 240
    # what strategies call: random_value(rng) on each decision of space.simplify()
    rng = random.Random(1)
    drawn = [{label: m.random_value(rng) for label, m in space.simplify().items()} for _ in range(100)]
    assert all(space.contains(s) and s["op"] != "conv" for s in drawn)
    frozen = {}
    space.random(frozen, seed=3)
    assert frozen["op"] in ("pool", "skip")
