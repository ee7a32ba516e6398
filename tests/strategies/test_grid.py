"""Grid search: every combination exactly once, shuffled per decision when asked, resumable."""

from __future__ import annotations

import itertools

from nascore.plugin import get_plugins
from nascore.space import Categorical, Numerical
from nascore.testing.fakes import DictSpace, ScriptedContext
from nascore_strategies import GridSearch


def space():
    return DictSpace([Categorical([1, 2, 3], label="a"), Categorical(["x", "y"], label="b"), Categorical([0.1, 0.2], label="c")])


def run(strategy, max_trials=None, seed=0):
    s = space()
    strategy.setup(s, seed=seed)
    ctx = ScriptedContext(s, lambda sample: 1.0, max_trials=max_trials)
    strategy.run(ctx)
    return ctx.samples


def test_every_combination_once_in_order_without_shuffle():
    samples = run(GridSearch(shuffle=False))
    expected = [dict(zip("abc", combo)) for combo in itertools.product([1, 2, 3], ["x", "y"], [0.1, 0.2])]
    assert samples == expected


def test_shuffle_is_seeded_and_complete():
    a, b, c = run(GridSearch(), seed=1), run(GridSearch(), seed=1), run(GridSearch(), seed=2)
    assert a == b
    as_set = lambda samples: {tuple(sorted(s.items())) for s in samples}  # noqa: E731
    assert len(a) == 12 and as_set(a) == as_set(c)


def test_budget_and_resume_from_state():
    s = space()
    first = GridSearch()
    first.setup(s, seed=3)
    ctx = ScriptedContext(s, lambda sample: 1.0, max_trials=5)
    first.run(ctx)
    resumed = GridSearch()
    resumed.setup(s, seed=999)
    resumed.restore(first.state_dict(), ctx.trials)
    rest = []
    while (sample := resumed.next_sample()) is not None:
        rest.append(sample)
    assert len(ctx.samples) + len(rest) == 12
    assert ctx.samples + rest == run(GridSearch(), seed=3)


def test_numerical_decisions_use_granularity():
    s = DictSpace([Numerical(0.0, 1.0, label="lr")])
    strategy = GridSearch(shuffle=False, granularity=3)
    strategy.setup(s)
    ctx = ScriptedContext(s, lambda sample: 1.0)
    strategy.run(ctx)
    assert [x["lr"] for x in ctx.samples] == [0.0, 0.5, 1.0]


def test_registered_as_grid():
    assert get_plugins().strategies.get("grid") is GridSearch


def test_an_unbounded_numerical_decision_is_refused_before_any_trial():
    import pytest

    from nascore.errors import StrategyError

    s = DictSpace([Categorical([1, 2], label="a"), Numerical(mu=0.0, sigma=1.0, label="shift")])
    with pytest.raises(StrategyError, match="unbounded numerical decision 'shift'"):
        GridSearch().setup(s)
