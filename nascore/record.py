"""What nascore remembers about a trial: :class:`TrialRecord`, as read from the experiment store."""

from __future__ import annotations

import math
from typing import Any

import attrs

from nascore.engine import TrialStatus
from nascore.space import Sample

__all__ = ["TrialRecord"]


@attrs.define
class TrialRecord:
    """One trial: sample, status, metrics, timings and error."""

    id: int
    sample: Sample
    status: TrialStatus
    metric: float | None = None
    metrics: dict[str, Any] | None = None
    intermediates: list[float] = attrs.field(factory=list)
    error: str | None = None
    submitted: float | None = None
    started: float | None = None
    ended: float | None = None
    attempt: int = 1

    @property
    def succeeded(self) -> bool:
        return self.status is TrialStatus.SUCCEEDED and self.metric is not None and not math.isnan(self.metric)

    @property
    def duration(self) -> float | None:
        if self.started is None or self.ended is None:
            return None
        return self.ended - self.started
