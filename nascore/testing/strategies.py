"""A conformance suite for strategies, in the style of Optuna's ``SamplerTestCase``.

A strategy author subclasses :class:`StrategyConformance` in a test module and provides one
fixture, ``make_strategy``: a factory that takes keyword arguments (``seed``, and for the tests of
shared behaviours ``model_filter``, ``on_failure``, ``retries``) and returns a new strategy::

    import pytest
    from nascore.testing.strategies import StrategyConformance
    from my_package import MySearch

    class TestMySearch(StrategyConformance):
        @pytest.fixture
        def make_strategy(self):
            return lambda **kwargs: MySearch(population=8, **kwargs)

pytest then checks, against in-memory trials (:class:`~nascore.testing.fakes.ScriptedContext`,
no engine needed), that the strategy:

* proposes only valid samples, for every kind of decision it accepts, and refuses a space it
  cannot search with a :class:`~nascore.errors.StrategyError` at ``setup`` (before any trial);
* stops at the budget and leaves nothing running;
* proposes the same sequence for the same seed (the experiment's, or its own, which wins);
* goes on through failing trials, with ``on_failure="worst"`` and with ``retries`` too;
* never submits a model its ``model_filter`` rejects;
* keeps 4 workers busy, loses no result and, with deduplication, never proposes a sample twice;
* has JSON state, and resumes a search killed during a trial: the resumed run continues with
  exactly the samples the uninterrupted run proposes, without re-running finished trials.

Class attributes tune the suite: :attr:`budget` (trials per search) and :attr:`resume_after`.
"""

from __future__ import annotations

import json
import math
import zlib
from collections.abc import Callable
from typing import Any

import attrs
import pytest

from nascore.engine import TrialStatus
from nascore.errors import StrategyError
from nascore.space import Categorical, CategoricalMultiple, Numerical, Sample, sample_key
from nascore.strategy import MultiTrialStrategy, Strategy
from nascore.testing.fakes import DictSpace, ScriptedContext

__all__ = ["StrategyConformance", "SPACES", "score"]


def _categorical() -> DictSpace:
    return DictSpace(
        [
            Categorical([16, 32, 64, 128], label="width"),
            Categorical(["relu", "tanh", "gelu"], label="act"),
            Categorical([1, 2, 3], label="depth"),
            Categorical([True, False], label="skip"),
        ]
    )


def _multiple() -> DictSpace:
    return DictSpace(
        [
            Categorical(["conv3", "conv5", "pool"], label="op"),
            CategoricalMultiple([0, 1, 2, 3], n_chosen=2, label="inputs"),
            CategoricalMultiple(["a", "b", "c"], label="extras"),
        ]
    )


def _numerical() -> DictSpace:
    return DictSpace(
        [
            Categorical([1, 2, 3], label="depth"),
            Numerical(0.0, 0.5, label="dropout"),
            Numerical(1e-4, 1e-1, log_distributed=True, label="lr"),
            Numerical(8, 64, quantize=8, label="width"),
        ]
    )


def _unbounded() -> DictSpace:
    return DictSpace([Categorical([1, 2], label="depth"), Numerical(mu=0.0, sigma=1.0, label="shift")])


#: The spaces every strategy is checked on; only ``"categorical"`` must be supported.
SPACES: dict[str, Callable[[], DictSpace]] = {
    "categorical": _categorical,
    "multiple": _multiple,
    "numerical": _numerical,
    "unbounded": _unbounded,
}


def score(sample: Sample) -> float:
    """A deterministic metric with structure to learn from: better with some values of each decision."""
    total = 0.0
    for label, value in sorted(sample.items()):
        if isinstance(value, bool):
            total += 0.3 * value
        elif isinstance(value, (int, float)):
            total += math.tanh(float(value) / 50.0)
        else:
            total += (zlib.crc32(json.dumps([label, value], sort_keys=True, default=repr).encode()) % 97) / 97
    return total


def _fails(sample: Sample) -> bool:
    """About one sample in three fails, always the same ones."""
    return zlib.crc32(sample_key(sample).encode()) % 3 == 0


class StrategyConformance:
    """Subclass with a ``make_strategy`` fixture; see the module documentation."""

    #: Trials per search in these tests.
    budget: int = 24
    #: The resume test stops the search during this trial (1-based); the default is two thirds of the budget.
    resume_after: int | None = None

    @pytest.fixture
    def make_strategy(self) -> Callable[..., Strategy]:
        raise NotImplementedError(
            "a StrategyConformance subclass must define a make_strategy fixture: "
            "a factory make_strategy(**kwargs) -> Strategy that passes the keyword arguments on"
        )

    # --- helpers --------------------------------------------------------------------------------

    def search(
        self,
        strategy: Strategy,
        space: DictSpace,
        *,
        seed: int | None = 0,
        budget: int | None = None,
        concurrency: int = 1,
        metric: Callable[[Sample], float] = score,
        optimize_mode: str = "maximize",
    ) -> ScriptedContext:
        """Set ``strategy`` up on ``space`` and run it to the budget against ``metric``."""
        strategy.setup(space, optimize_mode=optimize_mode, seed=seed)
        context = ScriptedContext(
            space, metric, max_trials=budget or self.budget, concurrency=concurrency,
            optimize_mode=optimize_mode, strategy=strategy,
        )
        strategy.run(context)
        return context

    # --- the checks -----------------------------------------------------------------------------

    @pytest.mark.parametrize("space_name", list(SPACES))
    def test_samples_are_valid_or_the_space_is_refused_before_any_trial(
        self, make_strategy: Callable[..., Strategy], space_name: str
    ) -> None:
        space = SPACES[space_name]()
        strategy = make_strategy(seed=0)
        try:
            strategy.setup(space, seed=0)
        except StrategyError as exc:
            assert space_name != "categorical", f"every strategy must search a categorical space: {exc}"
            assert any(repr(label) in str(exc) for label in space.simplify()), (
                f"the error should name the decision it cannot search: {exc}"
            )
            return
        context = self.search(strategy, space)
        assert context.trials, "the strategy proposed nothing"
        for sample in context.samples:
            assert space.contains(sample), f"invalid sample {sample}: {space.check_contains(sample)}"

    def test_stops_at_the_budget_with_nothing_running(self, make_strategy: Callable[..., Strategy]) -> None:
        context = self.search(make_strategy(seed=0), _categorical())
        assert len(context.trials) == self.budget
        assert context.running() == 0
        assert all(t.status.finished for t in context.trials)

    def test_the_same_seed_gives_the_same_sequence(self, make_strategy: Callable[..., Strategy]) -> None:
        first = self.search(make_strategy(), _categorical(), seed=3).samples
        again = self.search(make_strategy(), _categorical(), seed=3).samples
        assert first == again
        own = self.search(make_strategy(seed=11), _categorical(), seed=3).samples
        own_again = self.search(make_strategy(seed=11), _categorical(), seed=99).samples
        assert own == own_again, "the strategy's own seed must win over the experiment's"

    def test_failing_trials_do_not_stop_the_search(self, make_strategy: Callable[..., Strategy]) -> None:
        def flaky(sample: Sample) -> float:
            if _fails(sample):
                raise RuntimeError("this model does not train")
            return score(sample)

        for kwargs in ({}, {"on_failure": "worst"}, {"retries": 1}):
            strategy = make_strategy(seed=0, **kwargs)
            context = self.search(strategy, _categorical(), metric=flaky)
            assert len(context.trials) == self.budget, f"with {kwargs}: the search stopped early"
            failed = [t for t in context.trials if t.status is TrialStatus.FAILED]
            assert failed, "the metric fails one sample in three; some trials should have failed"
            if kwargs.get("retries"):
                keys = [sample_key(t.sample) for t in context.trials]
                retried = [t for t in failed if keys.count(sample_key(t.sample)) > 1]
                assert retried, "with retries=1 a failed sample must run again"

    def test_a_rejected_model_is_never_submitted(self, make_strategy: Callable[..., Strategy]) -> None:
        seen: list[Sample] = []

        def small(model: Any) -> bool:
            seen.append(model.sample)
            return model.sample["width"] <= 32

        context = self.search(make_strategy(seed=0, model_filter=small), _categorical())
        assert seen, "model_filter was never called"
        assert context.trials and all(s["width"] <= 32 for s in context.samples)

    def test_four_workers_stay_busy_and_no_result_is_lost(self, make_strategy: Callable[..., Strategy]) -> None:
        strategy = make_strategy(seed=0)
        learned: list[int] = []
        if isinstance(strategy, MultiTrialStrategy):
            learn = strategy.learn

            def counting(trial: Any) -> None:
                learned.append(trial.id)
                learn(trial)

            strategy.learn = counting  # type: ignore[method-assign]
        context = self.search(strategy, _categorical(), concurrency=4)
        assert context.max_running_seen == 4, "the strategy should propose while trials are running"
        assert len(context.trials) == self.budget and context.running() == 0
        if isinstance(strategy, MultiTrialStrategy):
            assert sorted(learned) == [t.id for t in context.trials], "every finished trial must be learned once"
        if getattr(strategy, "dedup", False):
            keys = [sample_key(s) for s in context.samples]
            assert len(keys) == len(set(keys)), "a sample was proposed twice under concurrency"

    def test_deduplication_exhausts_a_small_space_under_concurrency(
        self, make_strategy: Callable[..., Strategy]
    ) -> None:
        space = DictSpace([Categorical([1, 2, 3], label="a"), Categorical(["x", "y"], label="b")])
        strategy = make_strategy(seed=0)
        context = self.search(strategy, space, concurrency=4, budget=50)
        keys = [sample_key(s) for s in context.samples]
        assert context.running() == 0
        if getattr(strategy, "dedup", False):
            assert len(keys) == len(set(keys)), "a sample was proposed twice"
            assert len(keys) <= 6

    def test_state_is_json_and_loads_into_a_new_strategy(self, make_strategy: Callable[..., Strategy]) -> None:
        strategy = make_strategy(seed=0)
        self.search(strategy, _categorical())
        text = json.dumps(strategy.state_dict())  # the experiment store keeps it as JSON, never a pickle
        fresh = make_strategy(seed=0)
        fresh.setup(_categorical(), seed=0)
        fresh.load_state_dict(json.loads(text))
        # What load_state_dict took in comes back out (the history itself is rebuilt by restore()).
        saved, loaded = json.loads(text), json.loads(json.dumps(fresh.state_dict()))
        assert {k: v for k, v in loaded.items() if k != "learned"} == {k: v for k, v in saved.items() if k != "learned"}

    def test_a_killed_search_resumes_the_same_search(self, make_strategy: Callable[..., Strategy]) -> None:
        space = _categorical()
        reference = self.search(make_strategy(), space, seed=5)
        kill_at = self.resume_after or max(2, (2 * self.budget) // 3)

        # The same search, killed while trial `kill_at` was running: the store then holds the
        # finished trials, that trial unfinished, and the state saved when it was submitted.
        first = make_strategy()
        first.setup(space, seed=5)
        stopped = ScriptedContext(space, score, max_trials=kill_at, strategy=first)
        first.run(stopped)
        history = [attrs.evolve(t) for t in stopped.trials]
        history[-1] = attrs.evolve(history[-1], status=TrialStatus.RUNNING, metric=None, metrics=None, ended=None)
        state = stopped.states[kill_at]

        evaluated: list[Sample] = []

        def counted(sample: Sample) -> float:
            evaluated.append(sample)
            return score(sample)

        resumed = make_strategy()
        resumed.setup(space, seed=5)
        context = ScriptedContext(space, counted, max_trials=self.budget, strategy=resumed, history=history)
        context.resume_into(resumed, state)
        resumed.run(context)
        assert context.samples == reference.samples, "the resumed search must continue the same search"
        assert evaluated == reference.samples[kill_at - 1 :], "finished trials must not run again"
