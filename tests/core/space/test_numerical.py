"""Numerical decisions at NNI parity: the quantized value set, distributions, shortcuts, grids."""

from __future__ import annotations

import json
import math
import statistics

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nascore
import nascore.space
from nascore.errors import LabelConflictError, SampleValueError, SearchSpaceError
from nascore.space import Categorical, MutableDict, Numerical, dedup_mutables

SHORTCUTS = ["uniform", "quniform", "loguniform", "qloguniform", "normal", "qnormal", "lognormal", "qlognormal", "randint"]


def values_of(n: Numerical) -> list:
    return list(n.grid())


def draws(n: Numerical, count: int = 400) -> set:
    return {n.random(seed=seed) for seed in range(count)}


# --- the quantized value set: size, grid, random and contains agree -------------------------------


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"low": 1, "high": 3, "quantize": 0.75}, [1.0, 1.5, 2.25, 3.0]),  # the example: 4, not 3
        ({"low": 0, "high": 10, "quantize": 2.5}, [0.0, 2.5, 5.0, 7.5, 10.0]),  # NNI's quniform docstring
        ({"low": 2, "high": 10, "quantize": 5.0}, [2.0, 5.0, 10.0]),  # NNI: rounding below 2 is clipped to 2
        ({"low": 0, "high": 1, "quantize": 0.3}, [0.0, 0.3, 0.6, 0.9]),  # 1 is never reached: not a value
        ({"low": 1.3, "high": 3, "quantize": 0.75}, [1.5, 2.25, 3.0]),  # nor is 1.3 (rounds up to 1.5)
        ({"low": 16, "high": 64, "quantize": 16}, [16, 32, 48, 64]),
        ({"low": 1.1, "high": 1.2, "quantize": 1}, [1.1]),  # no multiple inside: everything clips to low
        ({"low": 1e-5, "high": 1e-3, "quantize": 1e-4, "log_distributed": True}, [1e-5] + [k * 1e-4 for k in range(1, 11)]),
        ({"low": -1.2, "high": 1.3, "quantize": 0.5, "mu": 0, "sigma": 1}, [-1.2, -1.0, -0.5, 0.0, 0.5, 1.0, 1.3]),
    ],
)
def test_size_grid_random_and_contains_agree_on_the_quantized_values(kwargs: dict, expected: list) -> None:
    n = Numerical(**kwargs, label="q")
    grid = values_of(n)
    assert grid == pytest.approx(expected, rel=1e-12)
    assert n.size == len(grid) == len(set(grid))
    assert draws(n) <= set(grid)
    assert all(n.contains({"q": v}) for v in grid)
    assert n.default() in grid


def test_random_reaches_every_value_and_nothing_else() -> None:
    n = Numerical(1, 3, quantize=0.75, label="q")
    assert draws(n, 2000) == set(values_of(n)) == {1.0, 1.5, 2.25, 3.0}
    assert not n.contains({"q": 2.0}) and not n.contains({"q": 0.75})


@settings(max_examples=150, deadline=None)
@given(
    low=st.floats(min_value=-50, max_value=50, allow_nan=False),
    width=st.floats(min_value=0.01, max_value=40, allow_nan=False),
    quantize=st.sampled_from([0.1, 0.25, 0.3, 0.75, 1, 2.5, 7]),
    log=st.booleans(),
)
def test_every_quantized_range_agrees(low: float, width: float, quantize: float, log: bool) -> None:
    if log:
        low = abs(low) + 0.01
    n = Numerical(low, low + width, quantize=quantize, log_distributed=log, label="q")
    grid = values_of(n)
    assert n.size == len(grid) == len(set(grid)) and grid == sorted(grid)
    assert draws(n, 150) <= set(grid)
    assert all(n.contains({"q": v}) for v in grid)
    for granularity in (1, 2, 5):  # coarser grids are subsets of the values
        assert set(n.grid(granularity=granularity)) <= set(grid)
    sample = {"q": n.default()}
    assert n.freeze(json.loads(json.dumps(sample))) == sample["q"]


def test_values_are_clean_multiples_and_snap_on_freeze() -> None:
    n = Numerical(0, 1, quantize=0.1, label="q")
    assert values_of(n)[3] == 0.3 and repr(values_of(n)[9]) == "0.9"  # not 0.30000000000000004
    assert n.freeze({"q": 3 * 0.1}) == 0.3  # within tolerance: the canonical value
    assert n.contains({"q": 0.30000000000000004})


def test_int_quantize_and_bounds_give_ints_else_floats() -> None:
    assert all(type(v) is int for v in values_of(Numerical(16, 64, quantize=16, label="w")))
    assert all(type(v) is int for v in draws(Numerical(16, 64, quantize=16, label="w"), 50))
    assert all(type(v) is float for v in values_of(nascore.quniform("w", 16.0, 64.0, 16.0)))
    assert Numerical(16, 64, quantize=16, label="w").freeze({"w": 48.0}) == 48


def test_a_default_off_the_quantization_grid_is_refused_naming_the_label() -> None:
    with pytest.raises(SearchSpaceError, match=r"'lr'.*0\.5.*not on its quantization grid"):
        Numerical(0, 1, quantize=0.3, default=0.5, label="lr")
    with pytest.raises(SearchSpaceError, match=r"'lr'.*outside"):
        Numerical(0, 1, quantize=0.3, default=2, label="lr")
    assert Numerical(0, 1, quantize=0.3, default=0.9, label="lr").default() == 0.9  # NNI's examples
    assert Numerical(0, 1, quantize=0.3, label="lr").default() == 0.6  # median 0.5, quantized


def test_a_value_off_the_grid_is_refused_with_the_values() -> None:
    n = Numerical(16, 64, quantize=16, label="units")
    with pytest.raises(SampleValueError, match=r"'units'.*not on its quantization grid.*\[16, 32, 48, 64\]"):
        n.freeze({"units": 40})


def test_unbounded_quantized_decisions_are_infinite_but_membership_is_exact() -> None:
    n = nascore.qnormal("x", 0.0, 1.0, 0.1)
    assert n.size == math.inf
    assert n.contains({"x": 0.7}) and not n.contains({"x": 0.75})
    assert all(n.contains({"x": v}) for v in draws(n, 100))
    with pytest.raises(SearchSpaceError, match="'x' is unbounded"):
        list(n.grid())
    bounded_above = nascore.qlognormal("y", 0.0, 1.0, 1.0)
    assert bounded_above.size == math.inf and min(draws(bounded_above, 200)) == 0.0  # round(exp(N) / 1) can be 0
    capped = Numerical(high=5, mu=0.0, sigma=1.0, log_distributed=True, quantize=1, label="z")
    assert values_of(capped) == [0, 1, 2, 3, 4, 5] and capped.size == 6


# --- distributions ---------------------------------------------------------------------------------


def test_normal_samples_and_grids_by_quantiles() -> None:
    n = Numerical(mu=2.0, sigma=3.0, label="n")
    xs = [n.random(seed=seed) for seed in range(2000)]
    assert 1.7 < statistics.mean(xs) < 2.3 and 2.7 < statistics.stdev(xs) < 3.3
    assert n.default() == 2.0
    quartiles = list(n.grid(granularity=3))
    assert quartiles == pytest.approx([2 - 3 * 0.6744897501960817, 2.0, 2 + 3 * 0.6744897501960817])
    assert statistics.mean(n.grid(granularity=7)) == pytest.approx(2.0)
    with pytest.raises(SearchSpaceError, match="'n' is unbounded.*granularity"):
        list(n.grid())


def test_normal_with_bounds_clips_and_is_not_uniform() -> None:
    n = Numerical(-1, 1, mu=0.0, sigma=1.0, label="n")
    xs = [n.random(seed=seed) for seed in range(3000)]
    assert all(-1 <= x <= 1 for x in xs)
    clipped = sum(1 for x in xs if x in (-1.0, 1.0)) / len(xs)
    assert 0.25 < clipped < 0.39  # P(|N(0, 1)| > 1) = 0.317: clipped, as NNI (not truncated, not uniform)
    assert n.bounded and len(list(n.grid())) == 5  # a bounded distribution grids without a granularity
    assert min(n.grid(granularity=15)) == -1.0  # NNI: Numerical(mu=0, sigma=1, low=-1, high=1)


def test_lognormal_is_exp_of_a_normal() -> None:
    n = nascore.lognormal("x", 4.0, 2.0)
    assert n.log_distributed and n.distribution.name == "lognormal"
    assert 54 < list(n.grid(granularity=1))[0] < 55  # NNI: the median exp(4)
    assert [math.log(v) for v in n.grid(granularity=3)] == pytest.approx([4 - 2 * 0.6744897501960817, 4, 4 + 2 * 0.6744897501960817])
    assert all(v > 0 for v in draws(n, 100))
    assert not n.contains({"x": -1.0}) and n.check_value(-1.0) is not None


def test_scipy_distribution() -> None:
    stats = pytest.importorskip("scipy.stats")
    n = Numerical(distribution=stats.beta(2, 5), label="x")
    assert all(0 < v < 1 for v in draws(n, 100))
    assert 0.1 < n.default() < 0.3 and n.bounded
    assert n.random(seed=3) == n.random(seed=3)
    with pytest.raises(SampleValueError, match="'x'.*not in the distribution"):
        n.freeze({"x": 1.5})
    assert len(list(n.grid())) == 5 and list(n.grid(granularity=1)) == [pytest.approx(n.default())]
    assert json.loads(json.dumps(n.random(seed=1))) == n.random(seed=1)  # plain floats
    assert type(n.random(seed=1)) is float and "beta(2, 5)" in n.describe() and "beta(2, 5)" in repr(n)
    q = Numerical(distribution=stats.beta(2, 5), quantize=0.1, label="x")
    assert q.size == len(values_of(q)) and draws(q) <= set(values_of(q))
    assert n.equals(Numerical(distribution=stats.beta(2, 5), label="x"))
    assert not n.equals(Numerical(distribution=stats.beta(2, 6), label="x"))


def test_scipy_distributions_refused_clearly() -> None:
    stats = pytest.importorskip("scipy.stats")
    with pytest.raises(SearchSpaceError, match="'x'.*discrete"):
        Numerical(distribution=stats.poisson(3), label="x")
    with pytest.raises(SearchSpaceError, match="'x'.*must not be given"):
        Numerical(distribution=stats.norm(0, 1), mu=0, label="x")
    with pytest.raises(SearchSpaceError, match="'x'.*frozen continuous scipy.stats"):
        Numerical(distribution=object(), label="x")


def test_distribution_names() -> None:
    assert Numerical(distribution="normal", mu=0, sigma=1, label="a").equals(Numerical(mu=0, sigma=1, label="a"))
    assert Numerical(1, 10, distribution="loguniform", label="a").equals(Numerical(1, 10, log_distributed=True, label="a"))
    with pytest.raises(SearchSpaceError, match="'a'.*'gamma' is not one of"):
        Numerical(distribution="gamma", label="a")
    with pytest.raises(SearchSpaceError, match="'a'.*contradicts"):
        Numerical(mu=0, sigma=1, log_distributed=True, distribution="normal", label="a")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mu": 0.0}, "needs both mu and sigma"),
        ({"mu": 0.0, "sigma": 0.0}, "sigma > 0"),
        ({"low": 0, "high": 1, "quantize": 0}, "quantize must be a positive"),
        ({"low": 0, "high": 1, "quantize": -1}, "quantize must be a positive"),
        ({"low": "0", "high": 1}, "low must be a number"),
        ({"high": -1, "mu": 0.0, "sigma": 1.0, "log_distributed": True}, "leaves nothing"),
        ({"low": 0, "high": 1, "distribution": "uniform", "mu": 1, "sigma": 1}, "belong to a normal"),
    ],
)
def test_invalid_numericals_name_the_label(kwargs: dict, message: str) -> None:
    with pytest.raises(SearchSpaceError, match=f"'n'.*{message}"):
        Numerical(**kwargs, label="n")


def test_grid_granularity_must_be_a_positive_int() -> None:
    with pytest.raises(SearchSpaceError, match="'p'.*granularity must be an int >= 1"):
        list(Numerical(0, 1, label="p").grid(granularity=0))


def test_equals_compares_the_distribution() -> None:
    assert Numerical(0, 1, log_distributed=False, label="a").equals(Numerical(0.0, 1.0, label="a"))
    assert not Numerical(1, 2, log_distributed=True, label="a").equals(Numerical(1, 2, label="a"))
    assert not Numerical(-1, 1, mu=0, sigma=1, label="a").equals(Numerical(-1, 1, label="a"))
    assert not Numerical(0, 1, label="a", default=0.5).equals(Numerical(0, 1, label="a", default=0.3))
    with pytest.raises(LabelConflictError, match="'a'"):
        dedup_mutables([Numerical(0, 1, label="a"), Numerical(mu=0, sigma=1, label="a")])


def test_describe_and_repr() -> None:
    assert repr(Numerical(0, 1, label="a")) == "Numerical(0, 1, label='a')"
    assert repr(nascore.normal("x", 0, 1)) == "Numerical(-inf, inf, mu=0, sigma=1, label='x')"
    assert repr(nascore.quniform("x", 2.5, 5.5, 2.0)) == "Numerical(2.5, 5.5, q=2.0, label='x')"
    assert repr(nascore.loguniform("x", 1e-5, 1e-3)) == "Numerical(1e-05, 0.001, log_distributed=True, label='x')"
    assert Numerical(1, 3, quantize=0.75, label="a").describe().startswith("one of [1.0, 1.5, 2.25, 3.0]")
    assert "normal(mu=0, sigma=1) clipped to [-1, 1]" in Numerical(-1, 1, mu=0, sigma=1, label="a").describe()


def test_space_level_random_and_grid_with_distributions() -> None:
    space = MutableDict(
        {"lr": nascore.loguniform("lr", 1e-4, 1e-1), "wd": nascore.qloguniform("wd", 1e-5, 1e-3, 1e-4), "k": nascore.randint("k", 1, 4)}
    )
    for seed in range(30):
        sample = space.random_sample(seed=seed)
        assert space.contains(json.loads(json.dumps(sample)))
    assert len(list(space.grid_samples())) == 5 * 11 * 3


# --- NNI's shortcuts -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SHORTCUTS)
def test_shortcuts_are_exported(name: str) -> None:
    assert getattr(nascore, name) is getattr(nascore.space, name)
    assert name in nascore.__all__ and name in nascore.space.__all__


def test_shortcuts_mean_what_nni_means() -> None:
    assert nascore.uniform("x", 0, 1).equals(Numerical(0, 1, label="x"))
    assert nascore.quniform("x", 0, 10, 2.5).equals(Numerical(0, 10, quantize=2.5, label="x"))
    assert nascore.loguniform("x", 1e-5, 1e-3).equals(Numerical(1e-5, 1e-3, log_distributed=True, label="x"))
    assert nascore.qloguniform("x", 1e-5, 1e-3, 1e-4).equals(Numerical(1e-5, 1e-3, log_distributed=True, quantize=1e-4, label="x"))
    assert nascore.normal("x", 0, 1).equals(Numerical(mu=0, sigma=1, label="x"))
    assert nascore.qnormal("x", 0, 1, 0.1).equals(Numerical(mu=0, sigma=1, quantize=0.1, label="x"))
    assert nascore.lognormal("x", 4, 2).equals(Numerical(mu=4, sigma=2, log_distributed=True, label="x"))
    assert nascore.qlognormal("x", 4, 2, 1).equals(Numerical(mu=4, sigma=2, log_distributed=True, quantize=1, label="x"))
    k = nascore.randint("k", 1, 5)
    assert isinstance(k, Categorical) and k.values == [1, 2, 3, 4] and k.label == "k"  # upper exclusive
    assert all(1 <= k.random(seed=seed) < 5 for seed in range(50))
    ints = nascore.quniform("x", 0.5, 3.5, 1)  # NNI's recipe for a uniform int in [1, 3]
    assert values_of(ints) == [1.0, 2.0, 3.0] == sorted(draws(ints, 300)) and ints.size == 3
    assert not ints.contains({"x": 0.5})  # drawn only if the draw is exactly 0.5: not a value


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: nascore.uniform("x", 1, 1), "'x'.*smaller than high"),
        (lambda: nascore.quniform("x", 2, 1, 0.5), "'x'.*smaller than high"),
        (lambda: nascore.loguniform("x", 0, 1), "'x'.*low > 0"),
        (lambda: nascore.qloguniform("x", -1, 1, 0.1), "'x'.*low > 0"),
        (lambda: nascore.normal("x", 0, -1), "'x'.*sigma > 0"),
        (lambda: nascore.randint("x", 3, 3), "'x'.*upper is exclusive"),
        (lambda: nascore.randint("x", 0.5, 3), "'x'.*must be ints"),
    ],
)
def test_shortcuts_refuse_bad_arguments(make, message: str) -> None:
    with pytest.raises(SearchSpaceError, match=message):
        make()
