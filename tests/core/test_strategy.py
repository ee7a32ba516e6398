"""The multi-trial loop every strategy shares: dedup, model filter, exhaustion, concurrency, state."""

from __future__ import annotations

import random

from nascore.engine import TrialStatus
from nascore.space import Categorical, Sample
from nascore.strategy import MultiTrialStrategy
from nascore.testing.fakes import DictSpace, ScriptedContext


class Uniform(MultiTrialStrategy):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.told = []

    def propose(self) -> Sample:
        return {label: m.random_value(self.rng) for label, m in self.space.simplify().items()}

    def tell(self, trial):
        self.told.append(trial)


def space():
    return DictSpace([Categorical([1, 2, 3], label="a"), Categorical(["x", "y"], label="b")])


def run(strategy, **ctx_kwargs):
    s = space()
    strategy.setup(s, seed=ctx_kwargs.pop("seed", 0))
    ctx = ScriptedContext(s, lambda sample: sample["a"], **ctx_kwargs)
    strategy.run(ctx)
    return ctx


def test_dedup_stops_when_space_is_exhausted():
    strategy = Uniform()
    ctx = run(strategy, max_trials=100)
    keys = [tuple(sorted(s.items())) for s in ctx.samples]
    assert len(keys) == 6 == len(set(keys))
    assert len(strategy.told) == 6


def test_without_dedup_budget_is_the_limit():
    ctx = run(Uniform(dedup=False), max_trials=20)
    assert len(ctx.samples) == 20


def test_model_filter_is_applied_to_models():
    seen = []

    def only_a3(model):
        seen.append(model.sample)
        return model.sample["a"] == 3

    ctx = run(Uniform(model_filter=only_a3), max_trials=10)
    assert ctx.samples and all(s["a"] == 3 for s in ctx.samples)
    assert len(ctx.samples) == 2  # only two samples pass; the rest are rejected, never submitted


def test_concurrency_keeps_slots_full_and_tells_every_result():
    strategy = Uniform(dedup=False)
    ctx = run(strategy, max_trials=12, concurrency=4)
    assert ctx.max_running_seen == 4
    assert len(strategy.told) == 12
    assert all(t.status is TrialStatus.SUCCEEDED for t in strategy.told)


def test_failed_trials_are_told_too():
    s = space()
    strategy = Uniform()
    strategy.setup(s, seed=1)

    def metric(sample):
        if sample["b"] == "y":
            raise RuntimeError("bad model")
        return 1.0

    strategy.run(ScriptedContext(s, metric, max_trials=6))
    statuses = {t.sample["b"]: t.status for t in strategy.told}
    assert statuses == {"x": TrialStatus.SUCCEEDED, "y": TrialStatus.FAILED}


def test_seed_gives_the_same_sequence_and_strategy_seed_wins():
    a = run(Uniform(dedup=False), max_trials=10, seed=5).samples
    b = run(Uniform(dedup=False), max_trials=10, seed=5).samples
    c = run(Uniform(dedup=False, seed=99), max_trials=10, seed=5).samples
    d = run(Uniform(dedup=False, seed=99), max_trials=10, seed=6).samples
    assert a == b and c == d and a != c


def test_state_dict_round_trip_continues_the_sequence():
    s = space()
    first = Uniform(dedup=False)
    first.setup(s, seed=3)
    [first.next_sample() for _ in range(4)]
    state = first.state_dict()
    expected = [first.next_sample() for _ in range(5)]

    second = Uniform(dedup=False)
    second.setup(s, seed=12345)
    second.load_state_dict(state)
    assert [second.next_sample() for _ in range(5)] == expected
    assert isinstance(state["rng"][1], list)  # JSON-able


def test_restore_rebuilds_dedup_and_history():
    s = space()
    strategy = Uniform()
    strategy.setup(s, seed=0)
    ctx = ScriptedContext(s, lambda sample: 1.0, max_trials=3)
    strategy.run(ctx)

    resumed = Uniform()
    resumed.setup(s, seed=0)
    resumed.restore(strategy.state_dict(), ctx.trials)
    assert len(resumed.told) == 3
    rest = []
    while (sample := resumed.next_sample()) is not None:
        rest.append(sample)
    all_samples = ctx.samples + rest
    assert len(all_samples) == 6 == len({tuple(sorted(x.items())) for x in all_samples})
    random.Random(0)  # no global state used
