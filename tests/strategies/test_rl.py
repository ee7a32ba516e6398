"""Policy-based RL on tianshou 2.x: episodes, invalid samples, learning, REINFORCE, state, missing extra."""

from __future__ import annotations

import functools
import json
import statistics
import sys

import pytest
import torch

from nascore.errors import MissingDependencyError, StrategyError
from nascore.plugin import get_plugins
from nascore.space import Categorical, CategoricalMultiple, Numerical
from nascore.testing.fakes import DictSpace, ScriptedContext
from nascore_strategies import PolicyBasedRL
from nascore_strategies.rl import reinforce_policy_fn


def onemax_space():
    return DictSpace([Categorical(list(range(4)), label=f"d{i}") for i in range(5)])


def onemax(sample):
    return sum(sample.values()) / 3


def run(strategy, budget, seed=0, metric=onemax, space=None, concurrency=1):
    s = space or onemax_space()
    strategy.setup(s, seed=seed)
    ctx = ScriptedContext(s, metric, max_trials=budget, concurrency=concurrency, strategy=strategy)
    strategy.run(ctx)
    return ctx


def test_registered_as_rl():
    assert get_plugins().strategies.get("rl") is PolicyBasedRL


def test_the_environment_maps_every_kind_of_decision_to_steps_and_back():
    from nascore_strategies._rl_impl import DecisionEnv

    s = DictSpace(
        [
            Categorical(["a", "b", "c"], label="op"),
            CategoricalMultiple([10, 20, 30], label="extras"),
            CategoricalMultiple(["x", "y", "z", "w"], n_chosen=2, label="inputs"),
            Numerical(0.0, 1.0, label="dropout"),
        ]
    )
    env = DecisionEnv(s.simplify(), granularity=3)
    assert env.num_choices == [3, 2, 2, 2, 4, 4, 3] and env.action_space.n == 4
    sample = {"op": "c", "extras": [10, 30], "inputs": ["y", "w"], "dropout": 0.5}
    actions = env.encode(sample)
    assert actions == [2, 1, 0, 1, 1, 3, 1]
    assert env.decode(actions) == sample
    assert env.decode([2, 1, 0, 1, 3, 3, 1]) is None  # the same input picked twice: invalid
    obs, _ = env.reset()
    for action in actions:
        obs, reward, done, truncated, info = env.step(action)
    assert done and info["sample"] == sample and obs.shape == env.observation_space.shape


def test_learns_on_a_structured_problem():
    # Without dedup the policy's own samples show what it learned: they concentrate on good ones.
    strategy = PolicyBasedRL(trial_per_collect=10, dedup=False)
    ctx = run(strategy, 80)
    early = statistics.mean(t.metric for t in ctx.trials[:20])
    late = statistics.mean(t.metric for t in ctx.trials[-20:])
    assert late > early + 1.0 and strategy.updates == 8


def test_with_dedup_a_converged_policy_keeps_exploring_new_samples():
    strategy = PolicyBasedRL(trial_per_collect=10)
    ctx = run(strategy, 120)
    keys = [tuple(sorted(x.items())) for x in ctx.samples]
    assert len(keys) == len(set(keys)) == 120
    assert max(t.metric for t in ctx.trials) == 5.0  # the optimum (all decisions at 3)


def test_reinforce_can_be_plugged_in():
    strategy = PolicyBasedRL(trial_per_collect=10, dedup=False, policy_fn=functools.partial(reinforce_policy_fn, lr=1e-2))
    ctx = run(strategy, 80)
    from tianshou.algorithm import Reinforce

    assert isinstance(strategy.algorithm, Reinforce)
    assert statistics.mean(t.metric for t in ctx.trials[-20:]) > statistics.mean(t.metric for t in ctx.trials[:20])


def test_invalid_samples_get_the_reward_for_invalid_and_are_never_submitted():
    s = DictSpace([CategoricalMultiple(list(range(6)), n_chosen=3, label="inputs"), Categorical([1, 2], label="b")])
    strategy = PolicyBasedRL(trial_per_collect=4, reward_for_invalid=-1.0)
    episodes = []
    add = strategy._add_episode
    strategy._add_episode = lambda actions, reward: (episodes.append(reward), add(actions, reward))
    ctx = run(strategy, 12, space=s, metric=lambda x: sum(x["inputs"]))
    assert all(s.contains(x) for x in ctx.samples)
    assert -1.0 in episodes  # picking an input twice happens with a random policy, and is learned as invalid


def test_max_collect_ends_the_search():
    ctx = run(PolicyBasedRL(trial_per_collect=3, max_collect=2), 50)
    assert len(ctx.trials) == 6


def test_a_custom_policy_fn_must_return_an_algorithm():
    with pytest.raises(StrategyError, match="not a tianshou algorithm"):
        PolicyBasedRL(policy_fn=lambda env: torch.nn.Linear(2, 2)).setup(onemax_space())


def test_an_unbounded_numerical_decision_is_refused_before_any_trial():
    s = DictSpace([Categorical([1, 2], label="a"), Numerical(mu=0.0, sigma=1.0, label="shift")])
    with pytest.raises(StrategyError, match="unbounded numerical decision 'shift'"):
        PolicyBasedRL().setup(s)


def test_the_policy_is_saved_as_json_and_restored_exactly():
    strategy = PolicyBasedRL(trial_per_collect=4)
    ctx = run(strategy, 13)
    state = json.loads(json.dumps(strategy.state_dict()))
    assert state["updates"] == 3 and len(state["episodes"]) == 1
    restored = PolicyBasedRL(trial_per_collect=4)
    restored.setup(onemax_space(), seed=1)  # another seed: other initial weights
    restored.restore(state, ctx.trials)
    for (name, mine), (_, theirs) in zip(strategy.algorithm.state_dict().items(), restored.algorithm.state_dict().items()):
        if isinstance(mine, torch.Tensor):
            assert torch.equal(mine, theirs), name
    assert restored.updates == 3 and restored._episodes == strategy._episodes
    assert [restored.next_sample() for _ in range(3)] == [strategy.next_sample() for _ in range(3)]


def test_without_tianshou_the_error_names_the_pip_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "tianshou", None)
    strategy = PolicyBasedRL()  # constructing it never needs tianshou
    with pytest.raises(MissingDependencyError, match=r'pip install "nascore-strategies\[rl\]"'):
        strategy.setup(onemax_space())


def test_a_diverging_update_is_undone_and_the_search_goes_on(caplog):
    unbounded = functools.partial(reinforce_policy_fn, lr=10.0, tanh_constant=None)
    strategy = PolicyBasedRL(trial_per_collect=2, dedup=False, policy_fn=unbounded)
    ctx = run(strategy, 30, metric=lambda sample: sample["d0"] * 1e300)  # overflows float32 rewards
    assert len(ctx.trials) == 30
    assert all(torch.isfinite(p).all() for p in strategy.algorithm.parameters())
    assert "diverged" in caplog.text


def test_an_untrained_policy_follows_the_priors_of_the_space():
    weighted = Categorical(["a", "b"], weights=[0.9, 0.1], label="w")
    narrow = Numerical(0, 10, mu=2.0, sigma=0.5, label="n")
    space = DictSpace([weighted, narrow, Categorical([1, 2, 3, 4], label="free")])
    # no update within the search: every sample comes from the untrained, prior-tilted policy
    strategy = PolicyBasedRL(trial_per_collect=1000, dedup=False)
    strategy.setup(space, seed=0)
    context = ScriptedContext(space, lambda sample: 0.0, max_trials=200)
    strategy.run(context)
    samples = [t.sample for t in context.trials]
    assert sum(s["w"] == "a" for s in samples) / len(samples) > 0.8
    assert statistics.mean(s["n"] for s in samples) < 4.0  # the grid is 0, 2.5, 5, 7.5, 10: the prior sits at 2
    assert {s["free"] for s in samples} == {1, 2, 3, 4}
