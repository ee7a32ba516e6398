"""What a running search shows its user without any set-up: trials done against the budget, running,
failed, the best metric so far and its architecture, elapsed and estimated time left.

On a terminal it is one live line, redrawn in place at most ten times a second; when the output is not
a terminal (a log file, CI, a notebook) it is one line per finished trial. ``ExperimentConfig(progress=...)``
picks: ``"auto"`` (the default, or ``$NASCORE_PROGRESS``), ``"bar"``, ``"lines"`` or ``"off"``. This is
a display, written to standard error; the library's own messages stay :mod:`logging` records.
"""

from __future__ import annotations

import math
import os
import sys
import time
from typing import IO, Any

from nascore.record import TrialRecord

__all__ = ["Progress", "PROGRESS_MODES", "default_progress", "format_duration"]

#: The values of ``ExperimentConfig.progress``.
PROGRESS_MODES = ("auto", "bar", "lines", "off")
_REDRAW_EVERY = 0.1  # seconds between two redraws of the live line
_SAMPLE_WIDTH = 60


def default_progress() -> str:
    """``$NASCORE_PROGRESS`` when it names a mode (``off``, ``0`` and ``false`` turn progress off), else ``"auto"``."""
    value = os.environ.get("NASCORE_PROGRESS", "").strip().lower()
    if value in ("0", "false", "no"):
        return "off"
    return value if value in PROGRESS_MODES else "auto"


def format_duration(seconds: float) -> str:
    """``"42s"``, ``"3m05s"``, ``"2h07m"``."""
    if not math.isfinite(seconds) or seconds < 0:
        return "?"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def _in_notebook() -> bool:
    shell = sys.modules.get("IPython")
    if shell is None:
        return False
    get = getattr(shell, "get_ipython", None)
    instance = get() if callable(get) else None
    return type(instance).__name__ == "ZMQInteractiveShell"


def _short(sample: Any) -> str:
    text = ", ".join(f"{k}={v}" for k, v in sample.items()) if isinstance(sample, dict) else str(sample)
    return text if len(text) <= _SAMPLE_WIDTH else text[: _SAMPLE_WIDTH - 3] + "..."


class Progress:
    """The progress display of one run of an experiment (the driver calls it; nothing else does).

    :param mode: one of :data:`PROGRESS_MODES`.
    :param max_trials: the trial budget (``None``: none).
    :param max_duration: the time budget in seconds (``None``: none).
    :param optimize_mode: ``"maximize"`` or ``"minimize"``: which metric is the best.
    :param stream: where to write (default: standard error).
    :param elapsed_before: seconds the experiment ran before this run.
    """

    def __init__(
        self,
        mode: str = "auto",
        *,
        max_trials: int | None = None,
        max_duration: float | None = None,
        optimize_mode: str | None = "maximize",
        stream: IO[str] | None = None,
        elapsed_before: float = 0.0,
        clock: Any = time.monotonic,
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        if mode == "auto":
            tty = getattr(self.stream, "isatty", lambda: False)()
            mode = "bar" if tty and not _in_notebook() else "lines"
        self.mode = mode
        self.max_trials = max_trials
        self.max_duration = max_duration
        self.maximize = optimize_mode != "minimize"
        self.done = 0
        self.failed = 0
        self.running = 0
        self.best: TrialRecord | None = None
        self._clock = clock
        self._started = clock()
        self._elapsed_before = elapsed_before
        self._done_at_start = 0
        self._drawn_at = -math.inf
        self._width = 0

    @property
    def enabled(self) -> bool:
        return self.mode != "off"

    # --- events ------------------------------------------------------------------------------------

    def trial_started(self) -> None:
        self.running += 1
        self._redraw()

    def count_earlier(self, record: TrialRecord) -> None:
        """A trial that finished in an earlier run of a resumed experiment (counted, not shown)."""
        self._count(record)
        self._done_at_start = self.done

    def trial_finished(self, record: TrialRecord) -> None:
        self.running = max(0, self.running - 1)
        self._count(record)
        if self.mode == "lines":
            self._write_line(self._trial_line(record))
        else:
            self._redraw(force=True)

    def _count(self, record: TrialRecord) -> None:
        self.done += 1
        if record.succeeded and record.metric is not None and not math.isnan(record.metric):
            if self.best is None or (
                record.metric > self.best.metric if self.maximize else record.metric < self.best.metric  # type: ignore[operator]
            ):
                self.best = record
        elif not record.succeeded:
            self.failed += 1

    def close(self, status: str) -> None:
        """The run ended with ``status``: finish the live line and print the summary."""
        if not self.enabled:
            return
        if self.mode == "bar":
            self._redraw(force=True)
            self.stream.write("\n")
        self._write_line(f"{status}: {self.status_text(final=True)}")

    # --- text ----------------------------------------------------------------------------------------

    def elapsed(self) -> float:
        return self._elapsed_before + (self._clock() - self._started)

    def eta(self) -> float | None:
        """Seconds left by the budget: the trial budget at this run's pace, the time budget, the sooner."""
        left: list[float] = []
        run_done = self.done - self._done_at_start
        if self.max_trials is not None and run_done > 0:
            per_trial = (self._clock() - self._started) / run_done
            left.append(max(0, self.max_trials - self.done) * per_trial)
        if self.max_duration is not None:
            left.append(max(0.0, self.max_duration - self.elapsed()))
        return min(left) if left else None

    def status_text(self, *, final: bool = False) -> str:
        budget = f"/{self.max_trials}" if self.max_trials is not None else ""
        parts = [f"{self.done}{budget} trials", f"{self.failed} failed"]
        if not final:
            parts.insert(1, f"{self.running} running")
        if self.best is not None:
            parts.append(f"best {self.best.metric:.6g} (trial {self.best.id}: {_short(self.best.sample)})")
        timing = f"{format_duration(self.elapsed())} elapsed"
        eta = None if final else self.eta()
        if eta is not None:
            timing += f", ~{format_duration(eta)} left"
        parts.append(timing)
        return " | ".join(parts)

    def _trial_line(self, record: TrialRecord) -> str:
        budget = f"/{self.max_trials}" if self.max_trials is not None else ""
        if record.succeeded:
            outcome = f"{record.metric:.6g}" if record.metric is not None else "no metric"
        else:
            reason = (record.error or "").strip().splitlines()[0] if record.error else "no result"
            outcome = f"{record.status.value} ({reason[:80]})"
        best = f"best {self.best.metric:.6g} (trial {self.best.id})" if self.best is not None else "no best yet"
        eta = self.eta()
        left = f", ~{format_duration(eta)} left" if eta is not None else ""
        return (
            f"[{self.done}{budget}] trial {record.id}: {outcome} | {best} | {self.running} running, "
            f"{self.failed} failed | {format_duration(self.elapsed())}{left}"
        )

    # --- output --------------------------------------------------------------------------------------

    def _redraw(self, force: bool = False) -> None:
        if self.mode != "bar":
            return
        now = self._clock()
        if not force and now - self._drawn_at < _REDRAW_EVERY:
            return
        self._drawn_at = now
        text = self.status_text()
        padding = " " * max(0, self._width - len(text))
        self._width = len(text)
        self._safe_write(f"\r{text}{padding}")

    def _write_line(self, text: str) -> None:
        self._safe_write(text + "\n")

    def _safe_write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):  # a closed or broken stream never fails the search
            self.mode = "off"
