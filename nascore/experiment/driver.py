"""The trial driver: the experiment as the strategy and the engine see it.

It implements :class:`~nascore.strategy.StrategyContext` (submit, wait, budget) for the strategy and
:class:`~nascore.engine.TrialEventSink` for the engine. Every event is written to the store first,
then queued for the strategy; every submitted trial is recorded before the engine sees it.
"""

from __future__ import annotations

import logging
import math
import queue
import time
from typing import TYPE_CHECKING, Any

from nascore.engine import EngineContext, ExecutionEngine, TrialEvent, TrialSubmission
from nascore.record import TrialRecord
from nascore.space import Sample
from nascore.strategy import Strategy, StrategyContext

if TYPE_CHECKING:
    from nascore.evaluator import Evaluator
    from nascore.experiment.config import ExperimentConfig
    from nascore.experiment.store import ExperimentStore
    from nascore.format import ExecutableSpace
    from nascore.plugin import PluginHost

__all__ = ["TrialDriver"]

_log = logging.getLogger("nascore.experiment")


class TrialDriver(StrategyContext):
    """Connects strategy, engine and store for one run of an experiment."""

    def __init__(
        self,
        *,
        experiment_id: str,
        space: ExecutableSpace,
        evaluator: Evaluator,
        strategy: Strategy,
        engine: ExecutionEngine,
        store: ExperimentStore,
        config: ExperimentConfig,
        plugins: PluginHost,
        elapsed_before: float = 0.0,
    ) -> None:
        self.experiment_id = experiment_id
        self.space = space
        self.optimize_mode = config.optimize_mode
        self.evaluator = evaluator
        self.strategy = strategy
        self.engine = engine
        self.store = store
        self.config = config
        self.plugins = plugins
        self._events: queue.SimpleQueue[TrialEvent] = queue.SimpleQueue()
        self._running: set[int] = set()
        self._started_at = time.monotonic()
        self._elapsed_before = elapsed_before
        self._trial_count = store.count_trials()
        self._best: float | None = None
        self._stop_requested = False
        self._elapsed_saved_at = float("-inf")

    # --- engine side --------------------------------------------------------------------------

    def start_engine(self) -> None:
        self.engine.start(EngineContext(self.experiment_id, self.store.root, self.config, self, space=self.space))

    def emit(self, event: TrialEvent) -> None:
        """Record ``event`` in the store, then queue it for the strategy (called from any thread)."""
        if event.kind == "status" and event.status is not None:
            self.store.set_status(event.trial_id, event.status, error=event.error, at=event.time)
        elif event.kind in ("intermediate", "final") and event.value is not None:
            self.store.add_metric(event.trial_id, event.kind, event.value, event.metric or {}, at=event.time)
        elif event.kind == "retry":
            self.store.restart_trial(event.trial_id)
            _log.warning("Trial %d will run again: %s", event.trial_id, event.error or "its attempt was lost")
        self._events.put(event)

    # --- strategy side ------------------------------------------------------------------------

    def submit(self, sample: Sample) -> int:
        model = self.space.freeze(sample)  # validates: a bad sample is an error of the strategy
        trial_id = self.store.add_trial(model.sample, strategy_state=self.strategy.state_dict())
        self._trial_count += 1
        self._dispatch(trial_id, model)
        return trial_id

    def resubmit(self, trial: TrialRecord) -> None:
        """Run an interrupted trial again under its own id (on resume)."""
        model = self.space.freeze(trial.sample)
        self.store.restart_trial(trial.id)
        self._dispatch(trial.id, model)

    def _dispatch(self, trial_id: int, model: Any) -> None:
        log_dir = self.store.trial_dir(trial_id)
        self._running.add(trial_id)
        self.plugins.notify_trial_started(self.experiment_id, trial_id, dict(model.sample))
        self.engine.submit(TrialSubmission(trial_id, model, self.evaluator, log_dir, dict(model.sample)))

    def idle_slots(self) -> int:
        return self.engine.idle_slots()

    def running(self) -> int:
        return len(self._running)

    def wait(self, timeout: float | None = None) -> list[TrialRecord]:
        if not self._running:
            return []
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            finished = self._drain()
            if finished or not self._running:
                return finished
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return finished
            self.engine.wait(remaining if remaining is None else max(remaining, 0.0))

    def _drain(self) -> list[TrialRecord]:
        finished: list[TrialRecord] = []
        while True:
            try:
                event = self._events.get_nowait()
            except queue.Empty:
                return finished
            if event.ends_trial and event.trial_id in self._running:
                self._running.discard(event.trial_id)
                record = self.store.trial(event.trial_id)
                finished.append(record)
                self._on_finished(record)

    def _on_finished(self, record: TrialRecord) -> None:
        now = time.monotonic()
        if now - self._elapsed_saved_at >= 1.0:  # enough for max_duration on resume; not a write per trial
            self._elapsed_saved_at = now
            self.store.set_meta("elapsed", self.elapsed())
        metric = record.metric
        if record.succeeded:
            assert metric is not None
            better = self._best is None or (metric > self._best if self.optimize_mode == "maximize" else metric < self._best)
            if better:
                self._best = metric
            _log.info(
                "Trial %d SUCCEEDED: %s=%.6g (best %.6g) in %.2fs  %s",
                record.id, "metric", metric, self._best, record.duration or 0.0, record.sample,
            )
        else:
            reason = (record.error or "").strip().splitlines()[0] if record.error else "no result"
            _log.warning("Trial %d FAILED: %s", record.id, reason)
        self.plugins.notify_trial_finished(
            self.experiment_id, record.id, record.status.value, None if metric is None or math.isnan(metric) else metric
        )

    def elapsed(self) -> float:
        return self._elapsed_before + (time.monotonic() - self._started_at)

    def should_stop(self) -> bool:
        if self._stop_requested:
            return True
        if self.config.max_trials is not None and self._trial_count >= self.config.max_trials:
            return True
        return self.config.max_duration is not None and self.elapsed() >= self.config.max_duration

    def request_stop(self) -> None:
        self._stop_requested = True

    def wait_all(self) -> list[TrialRecord]:
        """Wait for every running trial; returns them as they finished."""
        done: list[TrialRecord] = []
        while self._running:
            done.extend(self.wait())
        return done

    def interrupt(self) -> list[int]:
        """Mark unfinished trials INTERRUPTED (the experiment is stopping)."""
        self._running.clear()
        return self.store.interrupt_unfinished()
