"""The ``sequential`` engine: trials run one after another in the experiment process.

No isolation and no parallelism, and the least overhead: good for debugging, for fast evaluators
and for strategies that learn after every trial. A failing trial is recorded FAILED with its
traceback (also written to ``trials/<id>/trial.log``, the only thing this engine writes there:
the folder is made for it) and the search goes on. A trial starts from its submission's ``seed``.
A failing trial whose traceback cannot be written (read-only folder, full disk) gets an ``abort``
event instead of its end: the experiment stops with it and runs the trial again on resume.

The evaluator object is shared by all trials (no isolation): state it keeps between calls, such as
a DataLoader's own ``torch.Generator``, carries over from one trial to the next. Engines with
worker processes give every trial a fresh copy.
"""

from __future__ import annotations

import collections
import logging

from nascore.engine import EngineContext, ExecutionEngine, TrialEvent, TrialSubmission
from nascore.errors import EngineError
from nascore.evaluator import Evaluator
from nascore.format import ExecutableSpace
from nascore.trial import run_trial
from nascore_engines.folders import cannot_write

__all__ = ["SequentialEngine"]

_log = logging.getLogger(__name__)


class SequentialEngine(ExecutionEngine):
    """Registered as ``sequential``."""

    name = "sequential"

    def __init__(self) -> None:
        self._queue: collections.deque[TrialSubmission] = collections.deque()
        self._context: EngineContext | None = None

    def check(self, evaluator: Evaluator, space: ExecutableSpace | None = None) -> None:
        if self.resources.trial_concurrency > 1:
            _log.warning("The sequential engine runs one trial at a time; trial_concurrency=%d is ignored",
                         self.resources.trial_concurrency)
        if self.resources.trial_timeout is not None:
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
        trial_id, folder = submission.trial_id, submission.log_dir
        sink = self._context.sink
        log_errors: list[OSError] = []
        ended: list[TrialEvent] = []

        def write_log(text: str) -> None:  # the folder is made only for a log (a trial that writes none needs none)
            try:
                folder.mkdir(parents=True, exist_ok=True)
                (folder / "trial.log").write_text(text)
            except OSError as exc:  # where the trial runs is broken, not the trial: it reruns on resume
                log_errors.append(exc)

        def emit(event: TrialEvent) -> None:
            if event.ends_trial:  # held back: a trial whose log cannot be written is aborted instead
                ended.append(event)
            else:
                sink.emit(event)

        run_trial(
            trial_id,
            submission.model,
            submission.evaluator,
            emit,
            experiment_id=self._context.experiment_id,
            log=write_log,
            seed=submission.seed,
        )
        if log_errors:
            ended = [TrialEvent.abort(trial_id, cannot_write(trial_id, folder, log_errors[0]))]
        for event in ended:
            sink.emit(event)

    def shutdown(self) -> None:
        self._queue.clear()
