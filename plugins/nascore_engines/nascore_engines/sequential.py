"""The ``sequential`` engine: trials run one after another in the experiment process.

No isolation and no parallelism, and the least overhead: good for debugging, for fast evaluators
and for strategies that learn after every trial. A failing trial is recorded FAILED with its
traceback (also written to ``trials/<id>/trial.log``) and the search goes on.
"""

from __future__ import annotations

import collections
import logging

from nascore.engine import EngineContext, ExecutionEngine, TrialSubmission
from nascore.errors import EngineError
from nascore.evaluator import Evaluator
from nascore.experiment.config import ExperimentConfig
from nascore.trial import run_trial

__all__ = ["SequentialEngine"]

_log = logging.getLogger(__name__)


class SequentialEngine(ExecutionEngine):
    """Registered as ``sequential``."""

    name = "sequential"

    def __init__(self) -> None:
        self._queue: collections.deque[TrialSubmission] = collections.deque()
        self._context: EngineContext | None = None

    def check(self, evaluator: Evaluator, config: ExperimentConfig) -> None:
        if config.trial_concurrency > 1:
            _log.warning("The sequential engine runs one trial at a time; trial_concurrency=%d is ignored", config.trial_concurrency)
        if config.trial_timeout is not None:
            _log.warning("The sequential engine cannot stop a running trial; trial_timeout is ignored (use training-service)")

    def start(self, context: EngineContext) -> None:
        self._context = context

    def submit(self, submission: TrialSubmission) -> None:
        if self._context is None:
            raise EngineError("SequentialEngine.submit() was called before start()")
        self._queue.append(submission)

    def idle_slots(self) -> int:
        return 0 if self._queue else 1

    def running(self) -> int:
        return len(self._queue)

    def wait(self, timeout: float | None = None) -> None:
        if not self._queue or self._context is None:
            return
        submission = self._queue.popleft()

        def write_log(text: str) -> None:
            submission.log_dir.mkdir(parents=True, exist_ok=True)
            (submission.log_dir / "trial.log").write_text(text)

        run_trial(
            submission.trial_id,
            submission.model,
            submission.evaluator,
            self._context.sink.emit,
            experiment_id=self._context.experiment_id,
            log=write_log,
        )

    def shutdown(self) -> None:
        self._queue.clear()
