"""The multi-trial loop every strategy shares, and the behaviours it composes.

Deduplication, model filter, exhaustion, concurrency, repeats with averaging, retries, what is
learned from failures, state and resume (nascore.strategy and nascore.strategy_behaviours).
"""

from __future__ import annotations

import json
import math

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from nascore.engine import TrialStatus
from nascore.errors import StrategyError
from nascore.record import TrialRecord
from nascore.space import Categorical, Sample
from nascore.strategy import MultiTrialStrategy
from nascore.strategy_behaviours import EvaluationTracker, IdSet, objective
from nascore.testing.fakes import DictSpace, ScriptedContext


class Uniform(MultiTrialStrategy):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.told = []
        self.replayed = []
        self.rejections = []

    def propose(self) -> Sample:
        return {label: m.random_value(self.rng) for label, m in self.space.simplify().items()}

    def learn(self, trial):
        self.told.append(trial)

    def replay(self, trial):
        self.replayed.append(trial)

    def rejected(self, sample, reason):
        self.rejections.append(reason)


def space():
    return DictSpace([Categorical([1, 2, 3], label="a"), Categorical(["x", "y"], label="b")])


def run(strategy, metric=lambda sample: sample["a"], **ctx_kwargs):
    s = space()
    strategy.setup(s, seed=ctx_kwargs.pop("seed", 0), optimize_mode=ctx_kwargs.get("optimize_mode", "maximize"))
    ctx = ScriptedContext(s, metric, strategy=strategy, **ctx_kwargs)
    strategy.run(ctx)
    return ctx


def key(sample):
    return tuple(sorted(sample.items()))


# --- dedup, filter, exhaustion, concurrency ----------------------------------------------------------


def test_dedup_stops_when_space_is_exhausted():
    strategy = Uniform()
    ctx = run(strategy, max_trials=100)
    keys = [key(s) for s in ctx.samples]
    assert len(keys) == 6 == len(set(keys))
    assert len(strategy.told) == 6
    assert "duplicate" in strategy.rejections


def test_without_dedup_budget_is_the_limit():
    ctx = run(Uniform(dedup=False), max_trials=20)
    assert len(ctx.samples) == 20


def test_model_filter_is_applied_to_models_and_its_answers_are_remembered():
    seen = []

    def only_a3(model):
        seen.append(model.sample)
        return model.sample["a"] == 3

    strategy = Uniform(model_filter=only_a3)
    ctx = run(strategy, max_trials=10)
    assert ctx.samples and all(s["a"] == 3 for s in ctx.samples)
    assert len(ctx.samples) == 2  # only two samples pass; the rest are rejected, never submitted
    assert len(seen) == len({key(s) for s in seen}) == 6  # each model built and asked once
    assert "filtered" in strategy.rejections


def test_model_filter_must_be_callable():
    with pytest.raises(StrategyError, match="model_filter must be a function"):
        Uniform(model_filter=42)


def test_concurrency_keeps_slots_full_and_tells_every_result():
    strategy = Uniform(dedup=False)
    ctx = run(strategy, max_trials=12, concurrency=4)
    assert ctx.max_running_seen == 4
    assert len(strategy.told) == 12
    assert all(t.status is TrialStatus.SUCCEEDED for t in strategy.told)


def test_accepts_answers_like_next_sample():
    strategy = Uniform(model_filter=lambda model: model.sample["b"] == "x")
    strategy.setup(space(), seed=0)
    assert strategy.accepts({"a": 1, "b": "x"}) and not strategy.accepts({"a": 1, "b": "y"})
    ctx = ScriptedContext(strategy.space, lambda s: 1.0, max_trials=1)
    strategy.run(ctx)
    assert not strategy.accepts(ctx.samples[0]) and strategy.is_known(ctx.samples[0])


# --- failures, retries, repeats ------------------------------------------------------------------


def failing_on_y(sample):
    if sample["b"] == "y":
        raise RuntimeError("bad model")
    return float(sample["a"])


def test_failed_trials_are_told_and_ignored_by_default():
    strategy = Uniform()
    run(strategy, metric=failing_on_y, max_trials=6, seed=1)
    statuses = {t.sample["b"]: t.status for t in strategy.told}
    assert statuses == {"x": TrialStatus.SUCCEEDED, "y": TrialStatus.FAILED}
    assert {strategy.objective(t) for t in strategy.told if t.status is TrialStatus.FAILED} == {None}


@pytest.mark.parametrize(("mode", "expected"), [("maximize", -math.inf), ("minimize", -math.inf)])
def test_on_failure_worst_scores_failures_as_the_worst_value(mode, expected):
    strategy = Uniform(on_failure="worst")
    run(strategy, metric=failing_on_y, max_trials=6, optimize_mode=mode)
    failed = [strategy.objective(t) for t in strategy.told if t.status is TrialStatus.FAILED]
    succeeded = [strategy.objective(t) for t in strategy.told if t.succeeded]
    assert failed and set(failed) == {expected}
    # objective() is "higher is better": the metric, negated when minimizing.
    sign = 1 if mode == "maximize" else -1
    assert sorted(succeeded) == sorted(sign * t.metric for t in strategy.told if t.succeeded)


def test_on_failure_must_be_known():
    with pytest.raises(StrategyError, match="on_failure must be one of 'ignore', 'worst'"):
        Uniform(on_failure="retry-forever")


def test_retries_run_a_failed_sample_again_then_give_up():
    calls = []

    def flaky(sample):
        calls.append(sample)
        if sample["b"] == "y" or len([c for c in calls if c == sample]) == 1:
            raise RuntimeError("first run of every sample fails; b=y always fails")
        return float(sample["a"])

    strategy = Uniform(retries=2)
    ctx = run(strategy, metric=flaky, max_trials=100)
    assert len(strategy.told) == 6  # one learned result per sample
    by_b = {}
    for result in strategy.told:
        by_b.setdefault(result.sample["b"], []).append(result)
    assert all(r.succeeded for r in by_b["x"])  # failed once, succeeded on the retry
    assert all(r.status is TrialStatus.FAILED for r in by_b["y"])  # failed three times
    runs = [key(s) for s in ctx.samples]
    assert {runs.count(key(r.sample)) for r in by_b["x"]} == {2}
    assert {runs.count(key(r.sample)) for r in by_b["y"]} == {3}


def test_repeats_average_the_metric_of_each_sample():
    noise = {}

    def noisy(sample):
        noise[key(sample)] = noise.get(key(sample), 0) + 1
        return sample["a"] + (0.5 if noise[key(sample)] % 2 else -0.5)

    strategy = Uniform(repeats=3)
    ctx = run(strategy, metric=noisy, max_trials=9, concurrency=2)
    assert len(ctx.trials) == 9 and len(strategy.told) == 3
    for result in strategy.told:
        assert result.metric == pytest.approx(result.sample["a"] + 0.5 / 3)
        assert result.metrics["runs"] == [result.sample["a"] + 0.5, result.sample["a"] - 0.5, result.sample["a"] + 0.5]
        assert [key(ctx.trials[i - 1].sample) for i in result.metrics["trials"]] == [key(result.sample)] * 3


def test_repeats_and_retries_are_validated():
    with pytest.raises(StrategyError, match="repeats must be an int >= 1"):
        Uniform(repeats=0)
    with pytest.raises(StrategyError, match="retries must be an int >= 0"):
        Uniform(retries=-1)


def test_objective_and_the_evaluation_result_of_a_single_run_is_the_trial_itself():
    trial = TrialRecord(id=3, sample={"a": 1}, status=TrialStatus.SUCCEEDED, metric=0.5)
    assert objective(trial, "maximize", "ignore") == 0.5
    assert objective(trial, "minimize", "ignore") == -0.5
    failed = TrialRecord(id=4, sample={"a": 1}, status=TrialStatus.FAILED)
    assert objective(failed, "maximize", "worst") == -math.inf and objective(failed, "maximize", "ignore") is None
    tracker = EvaluationTracker()
    evaluation = tracker.open({"a": 1})
    tracker.started(evaluation, 3)
    assert tracker.finished(trial) is trial


def test_id_sets_are_compact_ranges():
    ids = IdSet()
    for trial_id in [1, 2, 3, 5, 7, 8]:
        ids.add(trial_id)
    assert ids.to_ranges() == [[1, 3], [5, 5], [7, 8]]
    assert 6 not in IdSet(ids.to_ranges()) and 8 in IdSet(ids.to_ranges())


@given(st.lists(st.integers(0, 60), max_size=80))
def test_id_sets_keep_their_ranges_whatever_the_order_ids_come_in(ids):
    learned = IdSet()
    for trial_id in ids:  # trials end out of order under concurrency, and a repeated id changes nothing
        learned.add(trial_id)
    expected: list[list[int]] = []
    for trial_id in sorted(set(ids)):
        if expected and expected[-1][1] == trial_id - 1:
            expected[-1][1] = trial_id
        else:
            expected.append([trial_id, trial_id])
    assert learned.to_ranges() == expected
    assert len(learned) == len(set(ids)) and all(i in learned for i in ids)
    assert IdSet(expected).to_ranges() == expected


# --- seeds, state, resume ------------------------------------------------------------------------


def test_seed_gives_the_same_sequence_and_strategy_seed_wins():
    a = run(Uniform(dedup=False), max_trials=10, seed=5).samples
    b = run(Uniform(dedup=False), max_trials=10, seed=5).samples
    c = run(Uniform(dedup=False, seed=99), max_trials=10, seed=5).samples
    d = run(Uniform(dedup=False, seed=99), max_trials=10, seed=6).samples
    assert a == b and c == d and a != c


def test_bad_seed_and_optimize_mode_are_refused():
    with pytest.raises(StrategyError, match="seed must be an int"):
        Uniform(seed="seven")
    with pytest.raises(StrategyError, match="optimize_mode must be one of"):
        Uniform().setup(space(), optimize_mode="maximise")


def test_state_dict_round_trip_continues_the_sequence():
    s = space()
    first = Uniform(dedup=False)
    first.setup(s, seed=3)
    [first.next_sample() for _ in range(4)]
    state = json.loads(json.dumps(first.state_dict()))
    expected = [first.next_sample() for _ in range(5)]

    second = Uniform(dedup=False)
    second.setup(s, seed=12345)
    second.load_state_dict(state)
    assert [second.next_sample() for _ in range(5)] == expected
    assert isinstance(state["rng"][1], list)


def test_restore_rebuilds_dedup_and_history_and_replays_what_was_learned():
    s = space()
    strategy = Uniform()
    strategy.setup(s, seed=0)
    ctx = ScriptedContext(s, lambda sample: 1.0, max_trials=3, strategy=strategy)
    strategy.run(ctx)
    # Killed while trial 3 ran: the state saved with trial 3 knows trials 1 and 2 were learned.
    history = [*ctx.trials[:2], attrs.evolve(ctx.trials[2], status=TrialStatus.RUNNING, metric=None, ended=None)]

    resumed = Uniform()
    resumed.setup(s, seed=0)
    again = ScriptedContext(s, lambda sample: 1.0, max_trials=100, strategy=resumed, history=history)
    again.resume_into(resumed, ctx.states[3])
    assert [t.id for t in resumed.replayed] == [1, 2] and resumed.told == []
    resumed.run(again)
    assert [t.id for t in resumed.told][0] == 3  # the interrupted trial ran again and was learned
    keys = [key(s) for s in again.samples]
    assert len(keys) == 6 == len(set(keys))


def test_restore_rebuilds_repeats_and_retries_from_the_trials():
    runs = {}

    def flaky(sample):
        runs[key(sample)] = runs.get(key(sample), 0) + 1
        if runs[key(sample)] == 2:
            raise RuntimeError("the second run of every sample fails")
        return float(sample["a"])

    reference = Uniform(repeats=2, retries=1)
    ref_ctx = run(reference, metric=flaky, max_trials=9, seed=2)
    runs.clear()
    stopped = Uniform(repeats=2, retries=1)
    stopped_ctx = run(stopped, metric=flaky, max_trials=5, seed=2)
    assert stopped_ctx.samples == ref_ctx.samples[:5]

    resumed = Uniform(repeats=2, retries=1)
    resumed.setup(space(), seed=2)
    ctx = ScriptedContext(space(), flaky, max_trials=9, strategy=resumed, history=stopped_ctx.trials)
    ctx.resume_into(resumed, stopped_ctx.states[5])
    resumed.run(ctx)
    assert ctx.samples == ref_ctx.samples
    assert [(t.sample, t.metric) for t in resumed.replayed + resumed.told] == [(t.sample, t.metric) for t in reference.told]
    assert all(len(t.metrics["runs"]) == 2 for t in reference.told)  # the failed run was retried


def test_replay_follows_the_order_trials_finished_in():
    tracker = EvaluationTracker()
    trials = [
        TrialRecord(id=1, sample={"a": 1}, status=TrialStatus.SUCCEEDED, metric=1.0, ended=30.0),
        TrialRecord(id=2, sample={"a": 2}, status=TrialStatus.SUCCEEDED, metric=2.0, ended=10.0),
        TrialRecord(id=3, sample={"a": 3}, status=TrialStatus.RUNNING),
        TrialRecord(id=4, sample={"a": 4}, status=TrialStatus.FAILED, ended=20.0),
    ]
    assert [t.id for t in tracker.rebuild(trials)] == [2, 4, 1]
    assert tracker.opened == 4 and [e.id for e in tracker.pending()] == [3]
