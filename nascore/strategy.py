"""The strategy contract: how a search chooses which architectures to try.

Every strategy implements :meth:`Strategy.run` against a :class:`StrategyContext` (the experiment,
seen from the strategy: the space, submit, wait, stop). Most strategies are *multi-trial*: derive
from :class:`MultiTrialStrategy` and implement :meth:`~MultiTrialStrategy.propose` (and
:meth:`~MultiTrialStrategy.tell` to learn from results); the base class runs the ask/tell loop and
adds the behaviours every strategy shares: deduplication, model filtering, seeding, state for resume.
"""

from __future__ import annotations

import logging
import random
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from nascore.errors import StrategyError
from nascore.space import Sample, sample_key

if TYPE_CHECKING:
    from nascore.format import ExecutableModel, ExecutableSpace
    from nascore.record import TrialRecord

__all__ = ["Strategy", "StrategyContext", "MultiTrialStrategy", "ModelFilter"]

_log = logging.getLogger(__name__)

ModelFilter = Callable[["ExecutableModel"], bool]


class StrategyContext(ABC):
    """The experiment as a strategy sees it."""

    space: ExecutableSpace
    optimize_mode: str

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
    """Base class of all strategies, registered by name through ``nascore_register_strategies``."""

    name: ClassVar[str] = ""

    def __init__(self, *, seed: int | None = None) -> None:
        self.seed = seed
        self.space: ExecutableSpace | None = None
        self.optimize_mode = "maximize"
        self.rng = random.Random(seed)

    def setup(self, space: ExecutableSpace, *, optimize_mode: str = "maximize", seed: int | None = None) -> None:
        """Attach to a space before the search (or a resume) starts. Raises if the space is unsupported."""
        self.space = space
        self.optimize_mode = optimize_mode
        effective_seed = self.seed if self.seed is not None else seed
        self.rng = random.Random(effective_seed)
        self.check_space(space)

    def check_space(self, space: ExecutableSpace) -> None:
        """Raise :class:`~nascore.errors.StrategyError` if this strategy cannot search ``space``."""

    @abstractmethod
    def run(self, context: StrategyContext) -> None:
        """Drive the search until the budget is spent or the space is exhausted."""

    def state_dict(self) -> dict[str, Any]:
        """JSON-able state that cannot be rebuilt from the trial history (e.g. random generator state)."""
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

    def best(self, trials: list[TrialRecord]) -> TrialRecord | None:
        done = [t for t in trials if t.succeeded]
        if not done:
            return None
        key = (lambda t: t.metric) if self.optimize_mode == "maximize" else (lambda t: -t.metric)  # type: ignore[operator]
        return max(done, key=key)


class MultiTrialStrategy(Strategy):
    """A strategy that proposes samples one at a time and learns from finished trials.

    :param seed: seed of the strategy's random generator (defaults to the experiment's seed).
    :param dedup: never propose a sample twice (checked at proposal time, so also under concurrency).
    :param model_filter: ``f(model) -> bool``; a model for which it returns False is never submitted.
        ``model.sample`` is the sample and ``model.build()`` builds the ``nn.Module``.
    """

    #: After this many proposals in a row that are duplicates or filtered out, the space counts as exhausted.
    max_rejections: ClassVar[int] = 1000

    def __init__(self, *, seed: int | None = None, dedup: bool = True, model_filter: ModelFilter | None = None) -> None:
        super().__init__(seed=seed)
        self.dedup = dedup
        self.model_filter = model_filter
        self._seen: set[str] = set()
        self._space_size = float("inf")

    def setup(self, space: ExecutableSpace, *, optimize_mode: str = "maximize", seed: int | None = None) -> None:
        super().setup(space, optimize_mode=optimize_mode, seed=seed)
        self._seen = set()
        size = 1.0
        for mutable in space.simplify().values():
            size *= mutable.size
        self._space_size = size

    @abstractmethod
    def propose(self) -> Sample | None:
        """The next sample to try, or ``None`` when there is nothing left to propose."""

    def tell(self, trial: TrialRecord) -> None:
        """Learn from a finished trial (SUCCEEDED or FAILED). The default ignores it."""

    def restore(self, state: dict[str, Any] | None, submitted: list[TrialRecord]) -> None:
        super().restore(state, submitted)
        for trial in submitted:
            self._seen.add(sample_key(trial.sample))
            if trial.status.finished:
                self.tell(trial)

    def next_sample(self) -> Sample | None:
        """:meth:`propose` with deduplication and filtering applied; ``None`` when exhausted."""
        if self.space is None:
            raise StrategyError(f"{type(self).__name__}.setup(space) must be called before proposing samples")
        for _ in range(self.max_rejections):
            if self.dedup and len(self._seen) >= self._space_size:
                return None
            sample = self.propose()
            if sample is None:
                return None
            key = sample_key(sample)
            if self.dedup and key in self._seen:
                continue
            self._seen.add(key)
            if self.model_filter is not None and not self.model_filter(self.space.freeze(sample)):
                continue
            return sample
        _log.warning(
            "%s: %d proposals in a row were duplicates or rejected by model_filter; stopping the search",
            type(self).__name__,
            self.max_rejections,
        )
        return None

    def run(self, context: StrategyContext) -> None:
        exhausted = False
        while True:
            while not exhausted and context.idle_slots() > 0 and not context.should_stop():
                sample = self.next_sample()
                if sample is None:
                    exhausted = True
                    _log.info("%s: the search space is exhausted", type(self).__name__)
                    break
                context.submit(sample)
            if context.running() == 0 and (exhausted or context.should_stop()):
                return
            for trial in context.wait():
                self.tell(trial)
