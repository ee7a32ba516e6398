"""The strategy contract: how a search chooses which architectures to try.

Every strategy implements :meth:`Strategy.run` against a :class:`StrategyContext` (the experiment,
seen from the strategy: the space, submit, wait, stop). Most strategies are *multi-trial*: derive
from :class:`MultiTrialStrategy`, implement :meth:`~MultiTrialStrategy.propose` and, to learn from
results, :meth:`~MultiTrialStrategy.learn`. The base class runs the ask/tell loop (asynchronously:
it proposes whenever a worker is free) and composes the behaviours every strategy shares
(:mod:`nascore.strategy_behaviours`): deduplication, model filtering, repeated evaluation with
averaging, retries and what to learn from failures, seeding, and state for resume.

A minimal strategy::

    class CoordinateSearch(MultiTrialStrategy):
        name = "coordinate"

        def propose(self):
            return {label: m.random_value(self.rng) for label, m in self.space.simplify().items()}

        def learn(self, trial):
            value = self.objective(trial)      # higher is better; None: nothing to learn
            ...
"""

from __future__ import annotations

import logging
import operator
import random
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from nascore.errors import StrategyError
from nascore.space import Sample, sample_key
from nascore.strategy_behaviours import (
    ON_FAILURE,
    Deduplicator,
    Evaluation,
    EvaluationTracker,
    IdSet,
    ModelFilterCheck,
    check_choice,
    objective,
)

if TYPE_CHECKING:
    from pathlib import Path

    import torch.nn as nn

    from nascore.evaluator import Evaluator
    from nascore.format import ExecutableModel, ExecutableSpace
    from nascore.record import TrialRecord

__all__ = ["Strategy", "StrategyContext", "MultiTrialStrategy", "ModelFilter", "OPTIMIZE_MODES"]

_log = logging.getLogger(__name__)

ModelFilter = Callable[["ExecutableModel"], bool]
OPTIMIZE_MODES = ("maximize", "minimize")


class StrategyContext(ABC):
    """The experiment as a strategy sees it.

    :ivar space: the executable space being searched.
    :ivar optimize_mode: ``"maximize"`` or ``"minimize"``.
    :ivar evaluator: the experiment's evaluator (one-shot strategies train their supernet with it).
    :ivar artifact_dir: a folder of the experiment where the strategy may keep files (trained weights),
        read back by :meth:`Strategy.trained_model`; ``None`` where there is none (in-memory searches).
    """

    space: ExecutableSpace
    optimize_mode: str
    evaluator: Evaluator
    artifact_dir: Path | None = None

    @abstractmethod
    def submit(self, sample: Sample) -> int:
        """Validate ``sample``, record it as a new trial and hand it to the engine; returns the trial id."""

    @abstractmethod
    def idle_slots(self) -> int:
        """How many trials can be submitted now."""

    @abstractmethod
    def running(self) -> int:
        """How many submitted trials have not finished."""

    @abstractmethod
    def wait(self, timeout: float | None = None) -> list[TrialRecord]:
        """Block until at least one running trial finished (or ``timeout``); return the finished ones."""

    @abstractmethod
    def should_stop(self) -> bool:
        """Whether the budget (max trials, max duration) is spent or a stop was requested."""


class Strategy(ABC):
    """Base class of all strategies, registered by name through ``nascore_register_strategies``.

    :cvar options_class: an attrs class of the constructor's keyword arguments, to check
        ``strategy_options`` against; ``None`` (the default): derived from the constructor's signature.
    """

    name: ClassVar[str] = ""
    options_class: ClassVar[type | None] = None

    def __init__(self, *, seed: int | None = None) -> None:
        if seed is not None:
            try:
                if isinstance(seed, bool):
                    raise TypeError
                seed = operator.index(seed)
            except TypeError:
                raise StrategyError(f"seed must be an int or None, got {seed!r}") from None
        self.seed = seed
        self.space: ExecutableSpace | None = None
        self.optimize_mode = "maximize"
        self.rng = random.Random(seed)

    def setup(self, space: ExecutableSpace, *, optimize_mode: str = "maximize", seed: int | None = None) -> None:
        """Attach to a space before the search (or a resume) starts. Raises if the space is unsupported.

        ``seed`` is the experiment's seed; the strategy's own ``seed`` wins when both are given.
        """
        self.space = space
        self.optimize_mode = check_choice("optimize_mode", optimize_mode, OPTIMIZE_MODES)
        self.effective_seed = self.seed if self.seed is not None else seed
        self.rng = random.Random(self.effective_seed)
        self.check_space(space)

    def check_space(self, space: ExecutableSpace) -> None:
        """Raise :class:`~nascore.errors.StrategyError` if this strategy cannot search ``space``."""

    @abstractmethod
    def run(self, context: StrategyContext) -> None:
        """Drive the search until the budget is spent or the space is exhausted."""

    def trained_model(self, sample: Sample, artifact_dir: Path) -> nn.Module | None:
        """The model of ``sample`` with weights this strategy trained, or ``None`` (the default).

        Weight-sharing strategies save what they trained in the experiment's ``artifact_dir`` (see
        :class:`StrategyContext`) and return sub-nets that inherit it; ``export_top_models(formatter=
        "instance")`` then gives trained models, also from :meth:`Experiment.view` in a later session
        (the strategy is set up on the space first). ``None`` means: build the model untrained.
        """
        return None

    def state_dict(self) -> dict[str, Any]:
        """JSON-able state that cannot be rebuilt from the trial history (e.g. random generator state).

        The experiment stores it with every submitted trial (in the same transaction), so it always
        describes the strategy right after proposing the last recorded trial.
        """
        version, internal, gauss = self.rng.getstate()
        return {"rng": [version, list(internal), gauss]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "rng" in state:
            version, internal, gauss = state["rng"]
            self.rng.setstate((version, tuple(internal), gauss))

    def restore(self, state: dict[str, Any] | None, submitted: list[TrialRecord]) -> None:
        """Continue a search: load ``state`` and replay the trials submitted so far (in order)."""
        if state:
            self.load_state_dict(state)

    def tell(self, trial: TrialRecord) -> None:
        """A trial it submitted finished (SUCCEEDED or FAILED). The default learns nothing.

        Called by the strategy's own loop, and by the experiment for trials that finish outside it
        (interrupted trials rerun when a search is resumed).
        """

    def best(self, trials: list[TrialRecord]) -> TrialRecord | None:
        done = [t for t in trials if t.succeeded]
        if not done:
            return None
        key = (lambda t: t.metric) if self.optimize_mode == "maximize" else (lambda t: -t.metric)  # type: ignore[operator]
        return max(done, key=key)


class MultiTrialStrategy(Strategy):
    """A strategy that proposes samples one at a time and learns from finished evaluations.

    Subclasses implement :meth:`propose` and, to learn, :meth:`learn`; optionally :meth:`rejected`
    (a proposal that was not submitted), :meth:`replay` (resume) and ``state_dict``/``load_state_dict``.

    :param seed: seed of the strategy's random generator (defaults to the experiment's seed).
    :param dedup: never propose a sample twice (checked at proposal time, so also under concurrency);
        the search ends when every sample of a finite space was tried.
    :param model_filter: ``f(model) -> bool``; a model for which it returns False is never submitted
        (e.g. a size or latency constraint). ``model.sample`` is the sample and ``model.build()``
        builds the ``nn.Module``.
    :param on_failure: what the strategy learns from a model whose trials failed: ``"ignore"`` (give
        it up and find a new one) or ``"worst"`` (score it -inf when maximizing, +inf when
        minimizing, so that the search learns to avoid such models).
    :param retries: run a failed trial again, up to this many times per sample, before ``on_failure``
        applies.
    :param repeats: evaluate every sample this many times (trials) and learn the mean metric (for
        noisy evaluations); failed runs are left out of the mean.
    """

    #: After this many proposals in a row that are duplicates or filtered out, the space counts as exhausted.
    max_rejections: ClassVar[int] = 1000

    def __init__(
        self,
        *,
        seed: int | None = None,
        dedup: bool = True,
        model_filter: ModelFilter | None = None,
        on_failure: str = "ignore",
        retries: int = 0,
        repeats: int = 1,
    ) -> None:
        super().__init__(seed=seed)
        self.dedup = bool(dedup)
        self.model_filter = model_filter
        self.on_failure = check_choice("on_failure", on_failure, ON_FAILURE)
        self.retries = retries
        self.repeats = repeats
        self._dedup = Deduplicator(self.dedup)
        self._filter = ModelFilterCheck(model_filter)
        self._evaluations = EvaluationTracker(repeats=repeats, retries=retries)
        self._learned = IdSet()

    # --- what a strategy implements -------------------------------------------------------------

    @abstractmethod
    def propose(self) -> Sample | None:
        """The next sample to try, or ``None`` when there is nothing left to propose."""

    def learn(self, trial: TrialRecord) -> None:
        """Learn from a finished evaluation. The default ignores it.

        ``trial`` is the evaluation as one record: with ``repeats > 1`` its metric is the mean of the
        succeeded runs and its id the first run's id. Use :meth:`objective` for the value to learn.
        """

    def replay(self, trial: TrialRecord) -> None:
        """On resume, an evaluation this strategy had already learned before its state was saved.

        The default learns it again, which is right for strategies whose state is rebuilt from the
        history (populations, observation lists). Strategies whose saved state already holds what
        they learned (e.g. trained weights) override it to skip the learning step.
        """
        self.learn(trial)

    def rejected(self, sample: Sample, reason: str) -> None:
        """A proposal that will not be submitted: ``reason`` is ``"duplicate"`` (an architecture already
        proposed), ``"constraint"`` (it violates a constraint of the space) or ``"filtered"`` (``model_filter``)."""

    # --- helpers for strategies -----------------------------------------------------------------

    def objective(self, trial: TrialRecord) -> float | None:
        """The value to learn from ``trial``: higher is better; ``None`` means nothing to learn.

        The metric (negated when minimizing) for a success; for a failure ``-inf`` with
        ``on_failure="worst"`` and ``None`` with ``"ignore"``.
        """
        return objective(trial, self.optimize_mode, self.on_failure)

    @property
    def proposals(self) -> int:
        """Samples accepted so far (submitted, or about to be), including before a resume."""
        return self._evaluations.opened

    def pending(self) -> list[Evaluation]:
        """Evaluations proposed but not finished yet (running, or with runs still to start)."""
        return self._evaluations.pending()

    def is_known(self, sample: Sample) -> bool:
        """Whether ``sample``'s architecture was already submitted (only tracked with ``dedup``)."""
        assert self.space is not None
        return self._dedup.is_duplicate(sample_key(self.space.canonical_sample(sample)))

    def accepts(self, sample: Sample) -> bool:
        """Whether :meth:`next_sample` would submit ``sample``: not a duplicate, within the constraints, and
        ``model_filter`` accepts it."""
        assert self.space is not None
        sample = self.space.canonical_sample(sample)
        key = sample_key(sample)
        return (
            not self._dedup.is_duplicate(key)
            and self.space.decisions().violated(sample) is None
            and self._filter.accepts(self.space, sample, key)
        )

    # --- the loop -------------------------------------------------------------------------------

    def setup(self, space: ExecutableSpace, *, optimize_mode: str = "maximize", seed: int | None = None) -> None:
        super().setup(space, optimize_mode=optimize_mode, seed=seed)
        self._dedup.reset(space.space_size())
        self._evaluations.reset()
        self._learned = IdSet()

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "learned": self._learned.to_ranges()}

    def tell(self, trial: TrialRecord) -> None:
        """A trial finished (SUCCEEDED or FAILED): retry or repeat it, or learn its evaluation's result."""
        result = self._evaluations.finished(trial)
        if result is None:
            return
        if result.id is not None:
            self._learned.add(result.id)
        self.learn(result)

    def restore(self, state: dict[str, Any] | None, submitted: list[TrialRecord]) -> None:
        """Load ``state``, then rebuild dedup, evaluations and learning from the submitted trials.

        Finished evaluations are replayed in the order they finished: those learned before the
        state was saved through :meth:`replay`, the others through :meth:`learn`.
        """
        super().restore(state, submitted)
        learned_before = IdSet((state or {}).get("learned", ()))
        self._learned = IdSet()
        for trial in submitted:
            self._dedup.add(sample_key(self.space.canonical_sample(trial.sample)))
        for result in self._evaluations.rebuild(submitted):
            assert result.id is not None
            self._learned.add(result.id)
            if result.id in learned_before:
                self.replay(result)
            else:
                self.learn(result)

    def next_sample(self) -> Sample | None:
        """:meth:`propose` with deduplication and filtering applied; ``None`` when exhausted."""
        if self.space is None:
            raise StrategyError(f"{type(self).__name__}.setup(space) must be called before proposing samples")
        for _ in range(self.max_rejections):
            if self._dedup.exhausted():
                return None
            sample = self.propose()
            if sample is None:
                return None
            # One spelling per architecture: decisions of branches it does not take are left out.
            sample = self.space.canonical_sample(sample)
            key = sample_key(sample)
            if self._dedup.is_duplicate(key):
                self.rejected(sample, "duplicate")
                continue
            if self.space.decisions().violated(sample) is not None:
                self.rejected(sample, "constraint")
                continue
            if not self._filter.accepts(self.space, sample, key):
                self.rejected(sample, "filtered")
                continue
            self._dedup.add(key)
            return sample
        _log.warning(
            "%s: %d proposals in a row were duplicates or rejected by model_filter; stopping the search",
            type(self).__name__,
            self.max_rejections,
        )
        return None

    def run(self, context: StrategyContext) -> None:
        """Keep every free worker busy: repeats and retries first, then new proposals; learn as trials finish."""
        exhausted = False
        while True:
            while context.idle_slots() > 0 and not context.should_stop():
                evaluation = self._evaluations.next_run()
                if evaluation is None:
                    if exhausted:
                        break
                    sample = self.next_sample()
                    if sample is None:
                        exhausted = True
                        _log.info("%s: the search space is exhausted", type(self).__name__)
                        break
                    evaluation = self._evaluations.open(sample)
                trial_id = context.submit(evaluation.sample)
                self._evaluations.started(evaluation, trial_id)
            if context.running() == 0 and (
                context.should_stop() or (exhausted and not self._evaluations.has_runs_to_start())
            ):
                return
            for trial in context.wait():
                self.tell(trial)
