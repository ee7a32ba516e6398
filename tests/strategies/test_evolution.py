"""Regularized evolution: random start, tournaments, mutation, aging, asynchrony, failures."""

from __future__ import annotations

import math
import statistics

import pytest

from nascore.errors import StrategyError
from nascore.plugin import get_plugins
from nascore.space import Categorical
from nascore.testing.fakes import DictSpace, ScriptedContext
from nascore_strategies import Random, RegularizedEvolution

LABELS = [f"d{i}" for i in range(6)]


def space():
    return DictSpace([Categorical(list(range(5)), label=label) for label in LABELS])


def onemax(sample):
    """Maximal (6) at all-4s; every decision counts independently."""
    return sum(sample[label] for label in LABELS) / 4


def run(strategy, budget, seed=0, metric=onemax, concurrency=1, optimize_mode="maximize"):
    s = space()
    strategy.setup(s, seed=seed, optimize_mode=optimize_mode)
    ctx = ScriptedContext(s, metric, max_trials=budget, concurrency=concurrency, optimize_mode=optimize_mode)
    strategy.run(ctx)
    return ctx


def hamming(a, b):
    return sum(a[label] != b[label] for label in LABELS)


def test_registered_as_evolution():
    assert get_plugins().strategies.get("evolution") is RegularizedEvolution


def test_starts_random_then_mutates_a_tournament_winner():
    strategy = RegularizedEvolution(population_size=10, sample_size=3, mutation_prob=0.0)
    ctx = run(strategy, 30)
    children = ctx.samples[10:]
    # With mutation_prob=0 exactly one decision changes: every child is one step from a parent.
    for index, child in enumerate(children, start=10):
        assert min(hamming(child, earlier) for earlier in ctx.samples[:index]) == 1
    assert len(strategy.population) == 10  # aging: only the 10 most recent evaluations are kept
    assert [i.sample for i in strategy.population] == ctx.samples[-10:]


def test_beats_random_search_on_a_structured_problem():
    def best_after(make, seed):
        return max(t.metric for t in run(make(), 60, seed=seed).trials)

    evolution = [best_after(lambda: RegularizedEvolution(population_size=10, sample_size=4), seed) for seed in range(8)]
    random = [best_after(Random, seed) for seed in range(8)]
    assert statistics.mean(evolution) > statistics.mean(random)


def test_minimize_prefers_low_metrics():
    strategy = RegularizedEvolution(population_size=10, sample_size=5)
    ctx = run(strategy, 60, optimize_mode="minimize")
    late = statistics.mean(t.metric for t in ctx.trials[-20:])
    early = statistics.mean(t.metric for t in ctx.trials[:10])
    assert late < early


def test_crossover_takes_every_decision_from_one_of_two_parents():
    strategy = RegularizedEvolution(population_size=8, sample_size=2, crossover=True, mutation_prob=0.0)
    ctx = run(strategy, 30)
    assert len(ctx.samples) == 30
    assert len({tuple(sorted(s.items())) for s in ctx.samples}) == 30


def test_asynchronous_proposals_keep_every_worker_busy():
    strategy = RegularizedEvolution(population_size=6, sample_size=2)
    ctx = run(strategy, 40, concurrency=4)
    assert ctx.max_running_seen == 4 and len(ctx.trials) == 40
    keys = [tuple(sorted(s.items())) for s in ctx.samples]
    assert len(keys) == len(set(keys))
    assert len(strategy.population) == 6


def test_cycles_end_the_search():
    ctx = run(RegularizedEvolution(population_size=4, sample_size=2, cycles=7), 100)
    assert len(ctx.trials) == 7


def test_on_failure_worst_keeps_failed_models_in_the_population():
    def failing(sample):
        if sample["d0"] == 0:
            raise RuntimeError("diverged")
        return onemax(sample)

    worst = RegularizedEvolution(population_size=50, sample_size=5, on_failure="worst")
    ctx = run(worst, 30, metric=failing)
    failed = sum(1 for t in ctx.trials if t.metric is None)
    assert failed > 0
    assert sum(1 for i in worst.population if i.fitness == -math.inf) == failed

    ignore = RegularizedEvolution(population_size=50, sample_size=5)
    ctx = run(ignore, 30, metric=failing)
    assert all(math.isfinite(i.fitness) for i in ignore.population)
    assert len(ignore.population) == sum(1 for t in ctx.trials if t.metric is not None)


def test_parameters_are_validated():
    with pytest.raises(StrategyError, match="sample_size must be an int between 1 and population_size"):
        RegularizedEvolution(population_size=5, sample_size=6)
    with pytest.raises(StrategyError, match="mutation_prob"):
        RegularizedEvolution(mutation_prob=1.5)
    with pytest.raises(StrategyError, match="disagrees with the experiment"):
        RegularizedEvolution(optimize_mode="minimize").setup(space(), optimize_mode="maximize")
    strategy = RegularizedEvolution(optimize_mode="minimize")
    strategy.setup(space(), optimize_mode="minimize")
    assert strategy.optimize_mode == "minimize"


@pytest.mark.parametrize("seed", [0, 69, 76, 94, 98, 101])  # before the fallback, the last five stopped at 5
def test_a_small_space_is_searched_to_the_end(seed):
    """Six architectures, population 3, concurrency 2: the fittest parents' neighbours run out before
    the space does; proposals then go random instead of the search stopping short."""
    s = DictSpace([Categorical([2, 4, 8], label="width"), Categorical([0, 1], label="act")])
    strategy = RegularizedEvolution(population_size=3, sample_size=2)
    strategy.setup(s, seed=seed, optimize_mode="maximize")
    ctx = ScriptedContext(s, lambda sample: sample["width"] / 8, max_trials=6, concurrency=2)
    strategy.run(ctx)
    assert sorted((t.sample["width"], t.sample["act"]) for t in ctx.trials) == sorted(
        (w, a) for w in (2, 4, 8) for a in (0, 1)
    )
