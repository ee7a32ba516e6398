"""TPE on hyperopt: every kind of decision, learning, concurrency, bounded history, missing extra."""

from __future__ import annotations

import collections
import math
import statistics
import sys
import types

import pytest

from nascore.engine import TrialStatus
from nascore.errors import MissingDependencyError, StrategyError
from nascore.plugin import get_plugins
from nascore.record import TrialRecord
from nascore.space import Categorical, CategoricalMultiple, Numerical
from nascore.testing.fakes import DictSpace, ScriptedContext
from nascore_strategies import TPE, Random
from nascore_strategies.tpe import MAX_SUBSETS_AS_CHOICE


def mixed_space():
    return DictSpace(
        [
            Categorical(["conv", "pool", "skip"], label="op"),
            CategoricalMultiple([0, 1, 2, 3], n_chosen=2, label="inputs"),
            CategoricalMultiple(["a", "b", "c"], label="extras"),
            CategoricalMultiple(list(range(20)), n_chosen=10, label="many"),  # C(20, 10) subsets: scores
            Numerical(0.0, 0.5, label="dropout"),
            Numerical(1e-4, 1e-1, log_distributed=True, label="lr"),
            Numerical(8, 64, quantize=8, label="width"),
            Numerical(mu=1.0, sigma=0.5, low=0.0, label="scale"),
        ]
    )


def test_registered_as_tpe():
    assert get_plugins().strategies.get("tpe") is TPE


def test_every_kind_of_decision_round_trips_and_samples_are_valid():
    s = mixed_space()
    strategy = TPE(n_startup_jobs=5)
    strategy.setup(s, seed=0)
    decisions = strategy._decisions
    assert decisions["inputs"].kind == "subset" and decisions["extras"].kind == "bits"
    assert decisions["many"].kind == "scores" and math.comb(20, 10) > MAX_SUBSETS_AS_CHOICE
    ctx = ScriptedContext(s, lambda x: x["dropout"] + len(x["extras"]) + x["width"] / 64, max_trials=20)
    strategy.run(ctx)
    assert strategy.observations() == 20
    for sample in ctx.samples:
        assert s.contains(sample), s.check_contains(sample)
        assert sample["width"] % 8 == 0 and sample["scale"] >= 0.0
        # what TPE learns from a sample decodes back to the same sample
        vals = strategy._vals(sample)
        assert {label: d.decode(vals) for label, d in decisions.items()} == sample


def onemax_space():
    return DictSpace([Categorical(list(range(5)), label=f"d{i}") for i in range(6)])


def onemax(sample):
    return sum(sample.values()) / 4


def best_after(strategy, seed, budget=60):
    s = onemax_space()
    strategy.setup(s, seed=seed)
    ctx = ScriptedContext(s, onemax, max_trials=budget)
    strategy.run(ctx)
    return max(t.metric for t in ctx.trials)


def test_beats_random_search_on_a_structured_problem():
    tpe = [best_after(TPE(n_startup_jobs=10), seed) for seed in range(6)]
    random = [best_after(Random(), seed) for seed in range(6)]
    assert statistics.mean(tpe) > statistics.mean(random)


def test_a_continuous_optimum_is_approached():
    s = DictSpace([Numerical(-5.0, 5.0, label="x")])
    strategy = TPE(n_startup_jobs=10)
    strategy.setup(s, seed=1, optimize_mode="minimize")
    ctx = ScriptedContext(s, lambda x: (x["x"] - 1.7) ** 2, max_trials=60, optimize_mode="minimize")
    strategy.run(ctx)
    assert min(t.metric for t in ctx.trials) < 0.05
    assert statistics.mean(abs(x["x"] - 1.7) for x in ctx.samples[-20:]) < statistics.mean(
        abs(x["x"] - 1.7) for x in ctx.samples[:10]
    )


def test_running_trials_count_as_bad_observations_and_concurrent_proposals_differ():
    s = onemax_space()
    strategy = TPE(n_startup_jobs=4)
    strategy.setup(s, seed=0)
    suggest = strategy._tpe.suggest
    running_seen = []

    def spy(new_ids, domain, trials, seed, **kwargs):
        running_seen.append(sum(1 for doc in trials.trials if doc["result"].get("loss") is None))
        return suggest(new_ids, domain, trials, seed, **kwargs)

    strategy._tpe = types.SimpleNamespace(suggest=spy, DEFAULT_LF=25)
    ctx = ScriptedContext(s, onemax, max_trials=40, concurrency=4)
    strategy.run(ctx)
    keys = [tuple(sorted(x.items())) for x in ctx.samples]
    assert len(keys) == len(set(keys)) == 40 and ctx.max_running_seen == 4
    assert max(running_seen) == 3  # with 4 workers, the 3 trials still running are in hyperopt's history


def test_a_proposal_already_tried_becomes_a_neighbour():
    s = DictSpace([Categorical([1, 2, 3], label="a"), Categorical([1, 2, 3], label="b")])
    strategy = TPE(n_startup_jobs=2)
    strategy.setup(s, seed=0)
    ctx = ScriptedContext(s, lambda x: x["a"] * 10 + x["b"], max_trials=100)
    strategy.run(ctx)
    assert len(ctx.trials) == 9  # the whole space, no trial wasted on a repeat


def test_the_history_is_bounded_but_keeps_the_best():
    s = onemax_space()
    strategy = TPE(max_history=100)
    strategy.setup(s, seed=0)
    for trial_id in range(1, 1001):
        sample = {f"d{i}": (trial_id * (i + 3)) % 5 for i in range(6)}
        strategy.learn(TrialRecord(id=trial_id, sample=sample, status=TrialStatus.SUCCEEDED, metric=float(trial_id % 97)))
    docs, gamma = strategy._history()
    assert len(docs) <= 100
    best = sorted(strategy._by_loss)[: min(math.ceil(0.25 * math.sqrt(1000)), 25)]
    tids = {doc["tid"] for doc in docs}
    assert {tid for _, tid in best} <= tids and 1000 in tids  # the best ones and the most recent
    assert math.ceil(gamma * math.sqrt(len(docs))) == len(best)  # hyperopt's good group is the same size
    assert s.contains(strategy.propose())


def test_failures_scored_worst_are_learned_but_ignored_ones_are_not():
    def failing(sample):
        if sample["d0"] == 0:
            raise RuntimeError("diverged")
        return onemax(sample)

    for on_failure, learned_failures in (("ignore", 0), ("worst", None)):
        s = onemax_space()
        strategy = TPE(n_startup_jobs=5, on_failure=on_failure)
        strategy.setup(s, seed=3)
        ctx = ScriptedContext(s, failing, max_trials=30)
        strategy.run(ctx)
        failed = sum(1 for t in ctx.trials if t.status is TrialStatus.FAILED)
        assert failed > 0
        expected = failed if learned_failures is None else learned_failures
        assert strategy.observations() == 30 - failed + expected


def test_parameters_are_validated():
    with pytest.raises(StrategyError, match="gamma must be in"):
        TPE(gamma=1.5)
    with pytest.raises(StrategyError, match="max_history"):
        TPE(max_history=10)


def test_without_hyperopt_the_error_names_the_pip_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "hyperopt", None)  # what an uninstalled package looks like to import
    monkeypatch.setitem(sys.modules, "hyperopt.tpe", None)
    strategy = TPE()  # constructing it never needs hyperopt
    with pytest.raises(MissingDependencyError, match=r'pip install "nascore-strategies\[tpe\]"'):
        strategy.setup(onemax_space())


def prior_space():
    return DictSpace(
        [
            Categorical(["conv", "pool", "skip", "zero"], weights=[0, 1, 1, 8], label="op"),
            CategoricalMultiple([0, 1, 2, 3], weights=[0, 0.2, 1, 0.5], label="bits"),
            CategoricalMultiple([0, 1, 2, 3], n_chosen=2, weights=[0, 1, 2, 3], label="inputs"),
            CategoricalMultiple(list(range(20)), n_chosen=10, weights=[0] * 5 + [1] * 15, label="many"),
            Numerical(mu=0.0, sigma=1.0, label="normal"),
            Numerical(mu=0.0, sigma=1.0, log_distributed=True, quantize=0.5, label="lognormal"),
            Numerical(1, 3, quantize=0.75, label="q"),
        ]
    )


def test_priors_become_the_hyperopt_prior():
    s = prior_space()
    strategy = TPE(n_startup_jobs=10)
    strategy.setup(s, seed=0)
    decisions = strategy._decisions
    assert decisions["op"].options == [1, 2, 3]  # weight 0: not in hyperopt's pchoice
    assert decisions["bits"].fixed_bits == {0: 0, 2: 1}  # weights 0 and 1: nothing to search
    assert decisions["inputs"].kind == "subset" and (0, 1) not in decisions["inputs"].subset_index
    assert decisions["many"].kind == "scores"
    names = {label: str(d.params[d.prefix]) for label, d in decisions.items() if d.prefix in d.params}
    assert "categorical" in names["op"] and "normal" in names["normal"] and "qlognormal" in names["lognormal"]
    ctx = ScriptedContext(s, lambda x: -abs(x["normal"] - 1.0) - len(x["bits"]), max_trials=40)
    strategy.run(ctx)
    for sample in ctx.samples:
        assert s.contains(sample), s.check_contains(sample)
        assert sample["op"] != "conv" and 0 not in sample["bits"] and 2 in sample["bits"]
        assert 0 not in sample["inputs"] and not set(sample["many"]) & set(range(5))
        vals = strategy._vals(sample)
        assert {label: d.decode(vals) for label, d in decisions.items()} == sample
    startup = collections.Counter(x["op"] for x in ctx.samples[:10])
    assert startup["zero"] >= 5  # the random start-up draws follow the prior (0.8)


def test_a_sample_against_a_zero_weight_is_not_learned():
    s = prior_space()
    strategy = TPE()
    strategy.setup(s, seed=0)
    sample = {label: m.default_value() for label, m in s.simplify().items()}
    assert sample["op"] == "conv"  # valid in the space, but outside the prior's support
    assert s.contains(sample) and strategy._vals(sample) is None


def test_a_scipy_distribution_is_searched_through_its_cdf():
    stats = pytest.importorskip("scipy.stats")
    s = DictSpace([Numerical(distribution=stats.beta(2, 5), label="b"), Numerical(distribution=stats.beta(2, 5), quantize=0.1, label="bq")])
    strategy = TPE(n_startup_jobs=5)
    strategy.setup(s, seed=0)
    assert strategy._decisions["b"].kind == "quantile"
    ctx = ScriptedContext(s, lambda x: -abs(x["b"] - 0.3) - abs(x["bq"] - 0.2), max_trials=25)
    strategy.run(ctx)
    for sample in ctx.samples:
        assert s.contains(sample)
        decoded = {label: d.decode(strategy._vals(sample)) for label, d in strategy._decisions.items()}
        assert decoded["bq"] == sample["bq"] and decoded["b"] == pytest.approx(sample["b"], rel=1e-9)
