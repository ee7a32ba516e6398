"""Behaviours every multi-trial strategy shares, as small pieces that compose.

:class:`~nascore.strategy.MultiTrialStrategy` builds them from its keyword arguments, so a strategy
only writes ``propose`` and ``learn`` and gets all of them:

* :class:`Deduplicator` (``dedup``): a sample is never proposed twice, also while earlier ones are
  still running; the search ends when every sample of a finite space was tried.
* :class:`ModelFilterCheck` (``model_filter``): a hardware or size constraint on the built model; a
  rejected model is never submitted.
* :class:`EvaluationTracker` (``repeats``, ``retries``, ``on_failure``): one proposal is one
  *evaluation*; it runs ``repeats`` trials whose metrics are averaged, a failed trial is run again
  up to ``retries`` times, and :func:`objective` turns what is left of a failure into what the
  strategy learns (nothing, or the worst possible value).

Each piece also knows how to rebuild itself from the trials recorded in the experiment store, so a
resumed search continues where it stopped.
"""

from __future__ import annotations

import bisect
import collections
import math
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

import attrs

from nascore.engine import TrialStatus
from nascore.errors import StrategyError
from nascore.record import TrialRecord
from nascore.space import Sample, sample_key

if TYPE_CHECKING:
    from nascore.format import ExecutableModel, ExecutableSpace

__all__ = [
    "ON_FAILURE",
    "Deduplicator",
    "Evaluation",
    "EvaluationTracker",
    "IdSet",
    "ModelFilterCheck",
    "objective",
]

#: What a strategy learns from an evaluation whose trials all failed.
ON_FAILURE = ("ignore", "worst")


def objective(trial: TrialRecord, optimize_mode: str, on_failure: str) -> float | None:
    """The value a strategy learns from ``trial``, higher is better whatever the ``optimize_mode``.

    A succeeded trial gives its metric (negated when minimizing). A failed one gives ``None`` with
    ``on_failure="ignore"`` (learn nothing) and ``-inf`` with ``on_failure="worst"`` (the worst
    possible value, so that the search learns to avoid such models).
    """
    if trial.succeeded:
        metric = float(trial.metric)  # type: ignore[arg-type]
        return metric if optimize_mode == "maximize" else -metric
    return -math.inf if on_failure == "worst" else None


class IdSet:
    """A set of trial ids stored as sorted ``[first, last]`` ranges (compact JSON for mostly consecutive ids).

    The ranges are kept as ids are added (a strategy's state is saved with every trial, so
    :meth:`to_ranges` must not sort every id learned so far each time).
    """

    def __init__(self, ranges: Iterable[Iterable[int]] = ()) -> None:
        self._ranges: list[list[int]] = []  # sorted, disjoint, not adjacent
        self._firsts: list[int] = []  # the first id of each range, for bisect
        self._count = 0
        for first, last in ranges:
            for trial_id in range(int(first), int(last) + 1):
                self.add(trial_id)

    def add(self, trial_id: int) -> None:
        ranges, firsts = self._ranges, self._firsts
        i = bisect.bisect_right(firsts, trial_id)  # ranges[i - 1] starts at or before it, ranges[i] after it
        if i > 0 and ranges[i - 1][1] >= trial_id:
            return  # already in
        self._count += 1
        joins_left = i > 0 and ranges[i - 1][1] == trial_id - 1
        joins_right = i < len(ranges) and ranges[i][0] == trial_id + 1
        if joins_left and joins_right:
            ranges[i - 1][1] = ranges[i][1]
            del ranges[i], firsts[i]
        elif joins_left:
            ranges[i - 1][1] = trial_id
        elif joins_right:
            ranges[i][0] = firsts[i] = trial_id
        else:
            ranges.insert(i, [trial_id, trial_id])
            firsts.insert(i, trial_id)

    def __contains__(self, trial_id: object) -> bool:
        try:
            i = bisect.bisect_right(self._firsts, trial_id)  # type: ignore[call-overload]
        except TypeError:  # not a number
            return False
        return i > 0 and self._ranges[i - 1][1] >= trial_id  # type: ignore[operator]

    def __len__(self) -> int:
        return self._count

    def to_ranges(self) -> list[list[int]]:
        return [[first, last] for first, last in self._ranges]


class Deduplicator:
    """Remembers every sample submitted so far; :meth:`exhausted` when a finite space is used up."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.space_size = math.inf
        self._seen: set[str] = set()

    def reset(self, space_size: float) -> None:
        self.space_size = space_size
        self._seen = set()

    def is_duplicate(self, key: str) -> bool:
        return self.enabled and key in self._seen

    def add(self, key: str) -> None:
        self._seen.add(key)

    def exhausted(self) -> bool:
        return self.enabled and len(self._seen) >= self.space_size

    def __len__(self) -> int:
        return len(self._seen)


class ModelFilterCheck:
    """Applies ``model_filter(model) -> bool`` to the model a sample builds; answers are memoized.

    The memo is an optimisation only: a resumed search asks the filter again and gets the same answers.
    """

    def __init__(self, model_filter: Callable[[ExecutableModel], bool] | None) -> None:
        if model_filter is not None and not callable(model_filter):
            raise StrategyError(
                f"model_filter must be a function taking a model and returning a bool, got {model_filter!r}"
            )
        self.model_filter = model_filter
        self._answers: dict[str, bool] = {}

    def accepts(self, space: ExecutableSpace, sample: Sample, key: str) -> bool:
        if self.model_filter is None:
            return True
        answer = self._answers.get(key)
        if answer is None:
            answer = bool(self.model_filter(space.freeze(sample)))
            self._answers[key] = answer
        return answer


@attrs.define(eq=False)
class Evaluation:
    """One proposed sample and the trials that evaluate it (``repeats`` runs, plus retries)."""

    sample: Sample
    key: str
    to_start: int
    id: int | None = None
    trial_ids: list[int] = attrs.field(factory=list)
    running: int = 0
    retries_used: int = 0
    successes: list[TrialRecord] = attrs.field(factory=list)
    failures: list[TrialRecord] = attrs.field(factory=list)

    @property
    def done(self) -> bool:
        return self.running == 0 and self.to_start == 0 and self.id is not None

    def result(self) -> TrialRecord:
        """The evaluation as one trial record: the mean metric over succeeded runs, else the last failure.

        With one run (``repeats=1``, no retry) it is that trial's own record, unchanged.
        """
        if not self.successes:
            return self.failures[-1]
        if len(self.successes) == 1 and not self.failures:
            return self.successes[0]
        metrics = [float(t.metric) for t in self.successes]  # type: ignore[arg-type]
        mean = sum(metrics) / len(metrics)
        first = self.successes[0]
        return attrs.evolve(
            first,
            id=self.id,
            metric=mean,
            metrics={"default": mean, "runs": metrics, "trials": [t.id for t in self.successes]},
            status=TrialStatus.SUCCEEDED,
            ended=max((t.ended for t in self.successes if t.ended is not None), default=first.ended),
        )


class EvaluationTracker:
    """Groups trials into evaluations: repeated runs are averaged, failed runs retried.

    :param repeats: trials run per proposed sample; the strategy learns the mean of their metrics.
    :param retries: how many times, in all, the failed trials of one evaluation are run again.
    """

    def __init__(self, repeats: int = 1, retries: int = 0) -> None:
        if not isinstance(repeats, int) or repeats < 1:
            raise StrategyError(f"repeats must be an int >= 1 (trials per sample, averaged), got {repeats!r}")
        if not isinstance(retries, int) or retries < 0:
            raise StrategyError(f"retries must be an int >= 0 (reruns of a failed trial), got {retries!r}")
        self.repeats = repeats
        self.retries = retries
        self.reset()

    def reset(self) -> None:
        self.opened = 0
        self._queue: collections.deque[Evaluation] = collections.deque()
        self._by_trial: dict[int, Evaluation] = {}
        self._open: dict[int, Evaluation] = {}

    # --- live search ----------------------------------------------------------------------------

    def open(self, sample: Sample, key: str | None = None) -> Evaluation:
        """A new evaluation of ``sample``; its runs are handed out by :meth:`next_run`."""
        evaluation = Evaluation(sample=sample, key=key if key is not None else sample_key(sample), to_start=self.repeats)
        self.opened += 1
        self._queue.append(evaluation)
        return evaluation

    def next_run(self) -> Evaluation | None:
        """The oldest evaluation that still has a run to start (a repeat or a retry), if any."""
        while self._queue and self._queue[0].to_start <= 0:
            self._queue.popleft()
        return self._queue[0] if self._queue else None

    def started(self, evaluation: Evaluation, trial_id: int) -> None:
        evaluation.to_start -= 1
        evaluation.running += 1
        evaluation.trial_ids.append(trial_id)
        if evaluation.id is None:
            evaluation.id = trial_id
            self._open[trial_id] = evaluation
        self._by_trial[trial_id] = evaluation

    def finished(self, trial: TrialRecord) -> TrialRecord | None:
        """Record a finished trial; returns the evaluation's result once all its runs are done."""
        evaluation = self._by_trial.pop(trial.id, None)
        if evaluation is None:  # not started through this tracker (e.g. by a caller driving tell() directly)
            return trial
        evaluation.running -= 1
        if trial.succeeded:
            evaluation.successes.append(trial)
        else:
            evaluation.failures.append(trial)
            if evaluation.retries_used < self.retries:
                evaluation.retries_used += 1
                evaluation.to_start += 1
                if evaluation not in self._queue:
                    self._queue.append(evaluation)
        if not evaluation.done:
            return None
        self._open.pop(evaluation.id, None)  # type: ignore[arg-type]
        return evaluation.result()

    def pending(self) -> list[Evaluation]:
        """Evaluations proposed but not finished (running, or with runs still to start)."""
        return list(self._open.values()) + [e for e in self._queue if e.id is None]

    def has_runs_to_start(self) -> bool:
        return self.next_run() is not None

    # --- resume ---------------------------------------------------------------------------------

    def rebuild(self, submitted: list[TrialRecord]) -> Iterator[TrialRecord]:
        """Replay the trials of a stopped search (in submission order) to rebuild the evaluations.

        Yields the results of the evaluations that finished, in the order they finished. Trials that
        did not finish stay running (the experiment runs them again under the same id).
        """
        self.reset()
        done: list[tuple[float, int, TrialRecord]] = []
        waiting: dict[str, list[Evaluation]] = collections.defaultdict(list)
        for trial in submitted:
            key = sample_key(trial.sample)
            candidates = [e for e in waiting[key] if e.to_start > 0]
            evaluation = candidates[0] if candidates else self.open(trial.sample, key)
            if not candidates:
                waiting[key].append(evaluation)
            self.started(evaluation, trial.id)
            if trial.status.finished:
                result = self.finished(trial)
                if result is not None:
                    waiting[key].remove(evaluation)
                    ended = trial.ended if trial.ended is not None else math.inf
                    done.append((ended, trial.id, result))
        done.sort(key=lambda item: (item[0], item[1]))
        for _, _, result in done:
            yield result


def check_choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    """``value`` if it is one of ``choices``, else a :class:`StrategyError` naming the valid ones."""
    if value not in choices:
        raise StrategyError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return value
