"""In-memory stand-ins for testing strategies without a model format or an engine, and engines without an experiment.

:class:`DictSpace` is an executable space over plain decisions; :class:`ScriptedContext` runs a
strategy against a metric function in memory, with simulated concurrency, the way the experiment
would (submit, wait, budget). Third-party strategy authors can use both in their own tests.
:class:`RecordingSink` is the event sink of an :class:`~nascore.engine.EngineContext` that keeps
every event, for engine authors.
"""

from __future__ import annotations

import collections
import json
import math
import threading
from collections.abc import Callable
from typing import Any

import attrs
import torch.nn as nn

from nascore.engine import TrialEvent, TrialStatus
from nascore.format import ExecutableModel, ExecutableSpace
from nascore.record import TrialRecord
from nascore.space import LabelledMutable, Sample
from nascore.space.conditions import Decisions
from nascore.strategy import Strategy, StrategyContext

__all__ = ["DictSpace", "RecordingSink", "SampleModel", "ScriptedContext"]


class SampleModel(ExecutableModel):
    """An executable model that is only its sample; ``build()`` gives an ``nn.Identity``."""

    format_name = "dict"

    def build(self) -> nn.Module:
        return nn.Identity()

    def to_payload(self) -> dict[str, Any]:
        return {"format": "dict", "sample": self.sample}


class DictSpace(ExecutableSpace):
    """An executable space over ``{label: decision}`` (decisions from :mod:`nascore.space`).

    ``decisions`` (a :class:`~nascore.space.conditions.Decisions`) makes it conditional or constrained;
    by default every decision is always active.
    """

    def __init__(
        self, mutables: dict[str, LabelledMutable] | list[LabelledMutable], decisions: Decisions | None = None
    ) -> None:
        if isinstance(mutables, list):
            mutables = {m.label: m for m in mutables}
        super().__init__(nn.Identity(), mutables, decisions)

    def freeze(self, sample: Sample) -> SampleModel:
        self.validate(sample)
        return SampleModel(
            {label: m.canonical_value(sample[label]) for label, m in self._mutables.items() if label in sample}
        )


class ScriptedContext(StrategyContext):
    """Runs trials in memory: ``metric(sample)`` gives the result (raise to fail the trial).

    With ``concurrency > 1``, up to that many trials are "running" at once and finish in
    submission order, one per :meth:`wait` call, like a real engine's event stream.

    Like the experiment, it can record ``strategy.state_dict()`` with every submitted trial (pass
    ``strategy``; the state goes through JSON as in the store, see :attr:`states`) and continue a
    stopped search (pass the trials recorded so far as ``history``: unfinished ones run again under
    their own id, as :meth:`resume_into` does for a strategy).
    """

    def __init__(
        self,
        space: ExecutableSpace,
        metric: Callable[[Sample], float],
        *,
        max_trials: int | None = None,
        concurrency: int = 1,
        optimize_mode: str = "maximize",
        strategy: Strategy | None = None,
        history: list[TrialRecord] | None = None,
    ) -> None:
        self.space = space
        self.metric = metric
        self.max_trials = max_trials
        self.concurrency = concurrency
        self.optimize_mode = optimize_mode
        self.strategy = strategy
        self.trials: list[TrialRecord] = [attrs.evolve(t) for t in history or []]
        self.states: dict[int, dict[str, Any]] = {}
        self._pending: collections.deque[TrialRecord] = collections.deque()
        self._clock = max((t.ended or 0.0 for t in self.trials), default=0.0)
        self.max_running_seen = 0

    @property
    def last_state(self) -> dict[str, Any] | None:
        """The strategy state recorded with the last submitted trial (what the store would hold)."""
        return self.states[max(self.states)] if self.states else None

    def resume_into(self, strategy: Strategy, state: dict[str, Any] | None) -> None:
        """Restore ``strategy`` from ``state`` and this context's history, then requeue unfinished trials.

        The same steps as ``Experiment.resume``: ``strategy.setup`` must have been called.
        """
        strategy.restore(state, [attrs.evolve(t) for t in self.trials])
        for record in self.trials:
            if not record.status.finished:
                record.status, record.attempt = TrialStatus.WAITING, record.attempt + 1
                self._pending.append(record)

    def submit(self, sample: Sample) -> int:
        model = self.space.freeze(sample)
        if self.strategy is not None:
            state = json.loads(json.dumps(self.strategy.state_dict(), allow_nan=True))
        record = TrialRecord(id=len(self.trials) + 1, sample=model.sample, status=TrialStatus.WAITING)
        if self.strategy is not None:
            self.states[record.id] = state
        self.trials.append(record)
        self._pending.append(record)
        self.max_running_seen = max(self.max_running_seen, len(self._pending))
        return record.id

    def idle_slots(self) -> int:
        return max(self.concurrency - len(self._pending), 0)

    def running(self) -> int:
        return len(self._pending)

    def wait(self, timeout: float | None = None) -> list[TrialRecord]:
        if not self._pending:
            return []
        record = self._pending.popleft()
        self._clock += 1.0
        record.started = self._clock
        try:
            value = float(self.metric(record.sample))
        except Exception as exc:  # a failing trial, as an engine would report it
            record.status, record.error = TrialStatus.FAILED, f"{type(exc).__name__}: {exc}"
        else:
            record.status, record.metric = TrialStatus.SUCCEEDED, value
            record.metrics = {"default": value}
            if math.isnan(value):
                record.metric = None
        record.ended = self._clock
        return [attrs.evolve(record)]

    def should_stop(self) -> bool:
        return self.max_trials is not None and len(self.trials) >= self.max_trials

    @property
    def samples(self) -> list[Sample]:
        return [t.sample for t in self.trials]


class RecordingSink:
    """A thread-safe event sink that keeps every event and lets a test wait for one (no sleeping)."""

    def __init__(self) -> None:
        self.events: list[TrialEvent] = []
        self._changed = threading.Condition()

    def emit(self, event: TrialEvent) -> None:
        with self._changed:
            self.events.append(event)
            self._changed.notify_all()

    def wait_for(self, predicate: Callable[[list[TrialEvent]], bool], timeout: float = 120.0, what: str = "an event") -> None:
        """Block until ``predicate(events)`` holds; ``AssertionError`` after ``timeout`` seconds."""
        with self._changed:
            if not self._changed.wait_for(lambda: predicate(self.events), timeout=timeout):
                raise AssertionError(f"timed out waiting for {what}; events so far: {self.events}")

    def of(self, trial_id: int) -> list[TrialEvent]:
        """The events of one trial, in order."""
        with self._changed:
            return [e for e in self.events if e.trial_id == trial_id]

    def end(self, trial_id: int) -> TrialEvent:
        """The one event that ended ``trial_id`` (asserts there is exactly one)."""
        ends = [e for e in self.of(trial_id) if e.ends_trial]
        assert len(ends) == 1, f"trial {trial_id} ended {len(ends)} times: {self.of(trial_id)}"
        return ends[0]

    def intermediates(self, trial_id: int) -> list[Any]:
        """The intermediate metrics of ``trial_id``, in order."""
        return [e.metric for e in self.of(trial_id) if e.kind == "intermediate"]
