"""The trial API: what runs inside one trial, and how an evaluator reports back.

Inside an evaluator, :func:`report_intermediate_result`, :func:`report_final_result` and
:func:`get_current_sample` talk to the trial being run. :func:`run_trial` is the one place that
runs a trial (build the model, call the evaluator, turn the outcome into events); every engine
uses it, in the experiment process or in a worker.
"""

from __future__ import annotations

import contextvars
import logging
import math
import numbers
import time
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs

from nascore.errors import TrialError
from nascore.space import Sample

if TYPE_CHECKING:
    from nascore.engine import TrialEvent
    from nascore.evaluator import Evaluator
    from nascore.format import ExecutableModel

__all__ = [
    "TrialContext",
    "report_intermediate_result",
    "report_final_result",
    "get_current_sample",
    "get_current_trial",
    "normalize_metric",
    "run_trial",
]

_log = logging.getLogger(__name__)

Metric = "float | dict[str, Any]"


def normalize_metric(value: Any) -> tuple[float, dict[str, Any]]:
    """Split a reported metric into its default value and the full record.

    A metric is a number, or a dict with a numeric ``"default"`` key and any other JSON-able values.
    Numpy and torch scalars are accepted.
    """
    if isinstance(value, dict):
        if "default" not in value:
            raise TrialError(
                f"a metric dict must have a 'default' key holding the number to optimize; got keys {sorted(value)}"
            )
        default = _as_float(value["default"], "metric['default']")
        record = {str(k): (_as_float(v, f"metric[{k!r}]") if k == "default" else _plain(v)) for k, v in value.items()}
        return default, record
    default = _as_float(value, "metric")
    return default, {"default": default}


def _as_float(value: Any, what: str) -> float:
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 0) == 0:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TrialError(f"{what} must be a number, got {value!r} ({type(value).__name__})")
    return float(value)


def _plain(value: Any) -> Any:
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 0) == 0:
        return value.item()
    return value


@attrs.define
class TrialContext:
    """The trial being run in this thread: its id, sample and where reports go."""

    trial_id: int
    sample: Sample
    on_intermediate: Callable[[float, dict[str, Any]], None]
    on_final: Callable[[float, dict[str, Any]], None]
    experiment_id: str | None = None
    final: tuple[float, dict[str, Any]] | None = None
    intermediate_count: int = 0


_current: contextvars.ContextVar[TrialContext | None] = contextvars.ContextVar("nascore_trial", default=None)


def get_current_trial() -> TrialContext | None:
    """The trial being run, or ``None`` outside a trial."""
    return _current.get()


def get_current_sample() -> Sample:
    """Inside an evaluator: the ``{label: value}`` sample being evaluated."""
    trial = _current.get()
    if trial is None:
        raise TrialError("get_current_sample() was called outside a trial: call it inside an evaluator")
    return dict(trial.sample)


def report_intermediate_result(metric: Any) -> None:
    """Report a metric during training (e.g. per epoch): a number, or a dict with a ``"default"`` key."""
    default, record = normalize_metric(metric)
    trial = _current.get()
    if trial is None:
        _log.info("Intermediate result outside a trial (not recorded): %s", record)
        return
    trial.intermediate_count += 1
    trial.on_intermediate(default, record)


def report_final_result(metric: Any) -> None:
    """Report the trial's result, once: a number, or a dict with a ``"default"`` key plus other metrics."""
    default, record = normalize_metric(metric)
    trial = _current.get()
    if trial is None:
        _log.info("Final result outside a trial (not recorded): %s", record)
        return
    if trial.final is not None:
        raise TrialError(f"trial {trial.trial_id} already reported a final result ({trial.final[1]})")
    trial.final = (default, record)
    trial.on_final(default, record)


def run_trial(
    trial_id: int,
    model: ExecutableModel,
    evaluator: Evaluator,
    emit: Callable[[TrialEvent], None],
    experiment_id: str | None = None,
    log: Callable[[str], None] | None = None,
) -> bool:
    """Run one trial in this process and report what happens as events. Returns whether it succeeded.

    Never raises for a failing trial: an exception from building the model or from the evaluator
    becomes a FAILED event holding the traceback. ``KeyboardInterrupt`` propagates.
    """
    from nascore.engine import TrialEvent, TrialStatus

    def on_intermediate(value: float, record: dict[str, Any]) -> None:
        emit(TrialEvent.intermediate(trial_id, value, record))

    def on_final(value: float, record: dict[str, Any]) -> None:
        emit(TrialEvent.final(trial_id, value, record))

    context = TrialContext(trial_id, dict(model.sample), on_intermediate, on_final, experiment_id)
    emit(TrialEvent(trial_id, "status", status=TrialStatus.RUNNING, time=time.time()))
    token = _current.set(context)
    try:
        returned = evaluator.evaluate(model)
        if context.final is None and returned is not None:
            report_final_result(returned)
        if context.final is None:
            raise TrialError(
                f"trial {trial_id}: the evaluator finished without a final result; call "
                "nascore.report_final_result(metric) in it, or return the metric"
            )
        if math.isnan(context.final[0]):
            _log.warning("Trial %s reported NaN as its final result", trial_id)
    except Exception as exc:  # a failing trial never fails the experiment
        text = traceback.format_exc()
        if log is not None:
            log(text)
        emit(TrialEvent(trial_id, "status", status=TrialStatus.FAILED, error=_error_text(exc, text), time=time.time()))
        return False
    finally:
        _current.reset(token)
    emit(TrialEvent(trial_id, "status", status=TrialStatus.SUCCEEDED, time=time.time()))
    return True


def _error_text(exc: BaseException, formatted: str) -> str:
    return f"{type(exc).__name__}: {exc}\n\n{formatted}"
