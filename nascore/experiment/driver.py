"""The trial driver: the experiment as the strategy and the engine see it.

It implements :class:`~nascore.strategy.StrategyContext` (submit, wait, budget) for the strategy and
:class:`~nascore.engine.TrialEventSink` for the engine. Every event is written to the store first,
then queued for the strategy; every submitted trial is recorded before the engine sees it.

What stops a run (raised from :meth:`TrialDriver.wait` or :meth:`TrialDriver.submit`, in the
experiment's thread, never into an engine's threads):

- the store cannot be written (disk full, read-only folder, locked database): nothing more is written,
  and the trials that were running rerun on resume;
- an engine reports that a trial cannot run where it runs (an ``abort`` event: its folder cannot be
  written): the trial is marked to rerun on resume;
- the first ``config.fail_fast`` trials all fail with the same error (a setup mistake): they are
  marked to rerun on resume, after the fix.
"""

from __future__ import annotations

import logging
import math
import queue
import re
import time
from typing import TYPE_CHECKING, Any

from nascore.engine import EngineContext, ExecutionEngine, TrialEvent, TrialSubmission
from nascore.errors import ExperimentError, NascoreError, StoreError
from nascore.experiment.config import trial_resources
from nascore.experiment.progress import Progress
from nascore.experiment.space import SearchSpace, freeze_trial
from nascore.record import TrialRecord
from nascore.space import Sample
from nascore.strategy import Strategy, StrategyContext
from nascore.trial import trial_seed

if TYPE_CHECKING:
    from nascore.evaluator import Evaluator
    from nascore.experiment.config import ExperimentConfig
    from nascore.experiment.store import ExperimentStore
    from nascore.format import ExecutableSpace
    from nascore.plugin import PluginHost

__all__ = ["TrialDriver"]

_log = logging.getLogger("nascore.experiment")


#: The folder of an experiment where its strategy keeps files (``StrategyContext.artifact_dir``).
STRATEGY_FOLDER = "strategy"


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
        self.artifact_dir = config.experiment_dir / experiment_id / STRATEGY_FOLDER
        self.optimize_mode = config.optimize_mode
        self._evaluator = evaluator
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
        self._fatal: BaseException | None = None
        self._early_failures: list[TrialRecord] = []
        self._judged_setup = config.fail_fast == 0
        self.progress = Progress(
            config.progress, max_trials=config.max_trials, max_duration=config.max_duration,
            optimize_mode=config.optimize_mode, elapsed_before=elapsed_before,
        )
        if self._trial_count and self.progress.enabled:  # a resumed experiment: count what it ran before
            for record in store.trials():
                if record.status.finished:
                    self.progress.count_earlier(record)

    @property
    def evaluator(self) -> Evaluator:
        """The experiment's evaluator, for strategies that train with it themselves (one-shot strategies).

        :raises ExperimentError: its arguments hold decisions: a strategy that trains with the
            evaluator itself cannot search them (trials get the evaluator frozen with their sample).
        """
        if isinstance(self.space, SearchSpace):
            labels = ", ".join(map(repr, self.space.evaluator_mutables))
            raise ExperimentError(
                f"{type(self.strategy).__name__} trains with the experiment's evaluator itself, but the evaluator's "
                f"arguments hold decisions ({labels}) that only multi-trial strategies search (each trial gets the "
                "evaluator with the values of its sample). Give the evaluator plain values for a one-shot search, "
                "e.g. evaluator.freeze({label: value, ...}), or use a multi-trial strategy"
            )
        return self._evaluator

    # --- engine side --------------------------------------------------------------------------

    def start_engine(self) -> None:
        space = self.space.model_space if isinstance(self.space, SearchSpace) else self.space  # engines run models
        self.engine.start(EngineContext(self.experiment_id, self.store.root, trial_resources(self.config), self, space=space))

    def emit(self, event: TrialEvent) -> None:
        """Record ``event`` in the store, then queue it for the strategy (called from any thread).

        Never raises: a store that cannot be written stops the run from the experiment's thread, and
        from then on nothing more is written, so no trial is recorded finished on half its events.
        """
        if self._fatal is not None:
            return
        try:
            if event.kind == "status" and event.status is not None:
                self.store.set_status(event.trial_id, event.status, error=event.error, at=event.time)
            elif event.kind in ("intermediate", "final") and event.value is not None:
                self.store.add_metric(event.trial_id, event.kind, event.value, event.metric or {}, at=event.time)
            elif event.kind == "retry":
                self.store.restart_trial(event.trial_id)
                _log.warning("Trial %d will run again: %s", event.trial_id, event.error or "its attempt was lost")
        except StoreError as exc:
            self._fatal = exc
            return
        self._events.put(event)

    # --- strategy side ------------------------------------------------------------------------

    def submit(self, sample: Sample) -> int:
        self._raise_if_stopped()
        # validates: a bad sample is an error of the strategy; the evaluator is frozen with the sample's values
        model, evaluator, recorded = freeze_trial(self.space, self._evaluator, sample)
        trial_id = self.store.add_trial(recorded, strategy_state=self.strategy.state_dict())
        self._trial_count += 1
        self._dispatch(trial_id, model, evaluator, recorded)
        return trial_id

    def resubmit(self, trial: TrialRecord) -> None:
        """Run an interrupted trial again under its own id (on resume)."""
        model, evaluator, recorded = freeze_trial(self.space, self._evaluator, trial.sample)
        self.store.restart_trial(trial.id)
        self._dispatch(trial.id, model, evaluator, recorded)

    def _dispatch(self, trial_id: int, model: Any, evaluator: Evaluator, sample: Sample) -> None:
        log_dir = self.store.trial_dir(trial_id)  # the engine makes it (a folder it cannot make aborts the trial)
        self._running.add(trial_id)
        self.progress.trial_started()
        self.plugins.notify_trial_started(self.experiment_id, trial_id, dict(sample))
        seed = trial_seed(self.config.seed, sample)
        self.engine.submit(TrialSubmission(trial_id, model, evaluator, log_dir, dict(sample), seed))

    def idle_slots(self) -> int:
        return self.engine.idle_slots()

    def running(self) -> int:
        return len(self._running)

    def wait(self, timeout: float | None = None) -> list[TrialRecord]:
        if not self._running:
            return []
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            self._raise_if_stopped()
            finished = self._drain()
            self._raise_if_stopped()
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
            if event.kind == "abort" and event.trial_id in self._running:
                self._running.discard(event.trial_id)
                self._stop(ExperimentError(event.error or f"trial {event.trial_id} cannot run"), [event.trial_id])
            elif event.ends_trial and event.trial_id in self._running:
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
        self.progress.trial_finished(record)
        self.plugins.notify_trial_finished(
            self.experiment_id, record.id, record.status.value, None if metric is None or math.isnan(metric) else metric
        )
        self._judge_setup(record)

    def _judge_setup(self, record: TrialRecord) -> None:
        """Stop when the first ``fail_fast`` trials to end all failed with the same error (a setup mistake)."""
        if self._judged_setup:
            return
        if record.succeeded:
            self._judged_setup = True
            return
        self._early_failures.append(record)
        if len(self._early_failures) < self.config.fail_fast:
            return
        self._judged_setup = True
        if len({_error_key(t.error) for t in self._early_failures}) != 1:
            return
        ids = [t.id for t in self._early_failures]
        error = (record.error or "no result").strip()
        self._stop(
            ExperimentError(
                f"the first {len(ids)} trials ({', '.join(map(str, ids))}) all failed with the same error, which "
                f"looks like a mistake in the setup, not in the architectures; the experiment stopped. Fix it and "
                f"resume (Experiment.resume({self.experiment_id!r}, ...)): these trials run again. To search on "
                f"regardless, set fail_fast=0. The error of trial {record.id}:\n{error}"
            ),
            ids,
        )

    def _stop(self, error: BaseException, rerun: list[int]) -> None:
        """Stop the run with ``error``; ``rerun``: trials to mark so that resume runs them again."""
        if self._fatal is None:
            self._fatal = error
        try:
            self.store.interrupt(rerun, f"to rerun on resume: {str(error).splitlines()[0]}")
        except StoreError as exc:  # they stay RUNNING or FAILED; the store error is the one to report
            _log.warning("Could not mark trials %s to rerun: %s", rerun, exc)

    def _raise_if_stopped(self) -> None:
        if self._fatal is not None:
            raise self._fatal

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
        """Mark unfinished trials INTERRUPTED (the experiment is stopping); best effort if the store fails."""
        self._running.clear()
        try:
            return self.store.interrupt_unfinished()
        except NascoreError as exc:
            _log.warning("Could not mark the unfinished trials INTERRUPTED (%s); they rerun on resume anyway", exc)
            return []


def _error_key(error: str | None) -> str:
    """A failure's first line with numbers blanked: the same mistake in trials 3 and 4 gives the same key."""
    first = (error or "").strip().splitlines()[0] if (error or "").strip() else ""
    return re.sub(r"\d+", "#", first)
