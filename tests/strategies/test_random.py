"""Random search: uniform, seeded, deduplicated, filtered."""

from __future__ import annotations

import collections

from nascore.plugin import get_plugins
from nascore.space import Categorical, CategoricalMultiple, Numerical
from nascore.testing.fakes import DictSpace, ScriptedContext
from nascore_strategies import Random


def space():
    return DictSpace([
        Categorical(list(range(10)), label="a"),
        Categorical(["x", "y", "z"], label="b"),
        CategoricalMultiple([0, 1, 2], n_chosen=2, label="inputs"),
        Numerical(0.0, 1.0, label="lr"),
    ])


def run(strategy, max_trials, seed=0, concurrency=1):
    s = space()
    strategy.setup(s, seed=seed)
    ctx = ScriptedContext(s, lambda sample: sample["a"], max_trials=max_trials, concurrency=concurrency)
    strategy.run(ctx)
    return ctx


def test_samples_are_valid_and_cover_candidates():
    ctx = run(Random(), 200)
    s = space()
    assert all(s.contains(sample) for sample in ctx.samples)
    counts = collections.Counter(sample["a"] for sample in ctx.samples)
    assert set(counts) == set(range(10))
    assert max(counts.values()) < 45  # roughly uniform: 20 expected per value


def test_seeded_sequences_repeat():
    assert run(Random(), 30, seed=4).samples == run(Random(), 30, seed=4).samples
    assert run(Random(), 30, seed=4).samples != run(Random(), 30, seed=5).samples
    assert run(Random(seed=1), 30, seed=4).samples == run(Random(seed=1), 30, seed=9).samples


def test_dedup_under_concurrency():
    small = DictSpace([Categorical([1, 2, 3], label="a"), Categorical([1, 2], label="b")])
    strategy = Random()
    strategy.setup(small, seed=0)
    ctx = ScriptedContext(small, lambda s: 1.0, max_trials=50, concurrency=4)
    strategy.run(ctx)
    keys = [tuple(sorted(s.items())) for s in ctx.samples]
    assert len(keys) == 6 == len(set(keys))


def test_dedup_off_repeats():
    small = DictSpace([Categorical([1, 2], label="a")])
    strategy = Random(dedup=False)
    strategy.setup(small, seed=0)
    ctx = ScriptedContext(small, lambda s: 1.0, max_trials=10)
    strategy.run(ctx)
    assert len(ctx.samples) == 10


def test_model_filter():
    ctx = run(Random(model_filter=lambda model: model.sample["b"] == "z"), 20)
    assert len(ctx.samples) == 20 and {s["b"] for s in ctx.samples} == {"z"}


def test_registered_as_random():
    assert get_plugins().strategies.get("random") is Random


def test_variational_asks_the_space_every_time_and_does_not_dedup():
    small = DictSpace([Categorical([1, 2], label="a")])
    strategy = Random(variational=True)  # dedup=True by default: not supported with variational
    strategy.setup(small, seed=0)
    calls = []
    simplify = small.simplify

    def counting():
        calls.append(1)
        return simplify()

    small.simplify = counting
    ctx = ScriptedContext(small, lambda s: 1.0, max_trials=10)
    strategy.run(ctx)
    assert len(ctx.samples) == 10 and not strategy.dedup
    assert len(calls) >= 10  # no dry run: the decisions are read at every proposal


def test_priors_are_honoured():
    s = DictSpace([
        Categorical(["conv", "pool", "skip"], weights=[0, 1, 4], label="op"),
        CategoricalMultiple([0, 1, 2, 3], n_chosen=2, weights=[0, 1, 1, 8], label="inputs"),
        Numerical(mu=5.0, sigma=0.5, label="shift"),
        Numerical(0, 1, quantize=0.25, label="p"),
    ])
    strategy = Random(dedup=False)
    strategy.setup(s, seed=0)
    ctx = ScriptedContext(s, lambda sample: 1.0, max_trials=400)
    strategy.run(ctx)
    ops = collections.Counter(sample["op"] for sample in ctx.samples)
    assert "conv" not in ops and 0.72 < ops["skip"] / 400 < 0.88
    assert all(0 not in sample["inputs"] and 3 in sample["inputs"] or sample["inputs"] == [1, 2] for sample in ctx.samples)
    assert 4.8 < sum(sample["shift"] for sample in ctx.samples) / 400 < 5.2
    assert {sample["p"] for sample in ctx.samples} == {0.0, 0.25, 0.5, 0.75, 1.0}


def test_dedup_knows_the_exact_size_of_a_quantized_space():
    s = DictSpace([Numerical(1, 3, quantize=0.75, label="q")])  # 4 values: 1, 1.5, 2.25, 3
    strategy = Random()
    strategy.setup(s, seed=0)
    ctx = ScriptedContext(s, lambda sample: 1.0, max_trials=50)
    strategy.run(ctx)
    assert sorted(sample["q"] for sample in ctx.samples) == [1.0, 1.5, 2.25, 3.0]
