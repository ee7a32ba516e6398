"""The trial API: what runs inside one trial, and how an evaluator reports back.

Inside an evaluator, :func:`report_intermediate_result`, :func:`report_final_result` and
:func:`get_current_sample` talk to the trial being run. :func:`run_trial` is the one place that
runs a trial (build the model, call the evaluator, turn the outcome into events); every engine
uses it, in the experiment process or in a worker.
"""

from __future__ import annotations

import contextvars
import hashlib
import json
import logging
import math
import numbers
import random
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
    "trial_seed",
    "seed_everything",
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
    """The trial being run in this thread: its id, sample and where reports go.

    A trial of a :class:`~nascore.group.ModelGroup` lists its members' trial ids in ``members``;
    reports then name the member (``report_final_result(metric, member=i)``) and become events of
    the member's own trial.
    """

    trial_id: int
    sample: Sample
    on_intermediate: Callable[[int, float, dict[str, Any]], None]
    experiment_id: str | None = None
    final: tuple[float, dict[str, Any]] | None = None
    intermediate_count: int = 0
    members: list[int] = attrs.field(factory=list)
    member_finals: dict[int, tuple[float, dict[str, Any]]] = attrs.field(factory=dict)

    def reported_trial(self, member: int | None) -> int | None:
        """The trial a report with ``member`` belongs to; ``None``: this trial itself (one model)."""
        if not self.members:
            if member in (None, 0):
                return None
            raise TrialError(f"trial {self.trial_id} trains one model, so there is no member {member!r} to report for")
        if member is None:
            raise TrialError(
                f"trial {self.trial_id} trains {len(self.members)} models (trials {self.members}): report each "
                "model's result with report_*_result(metric, member=i)"
            )
        if isinstance(member, bool) or not isinstance(member, int) or not 0 <= member < len(self.members):
            raise TrialError(
                f"trial {self.trial_id} trains models 0..{len(self.members) - 1} (trials {self.members}), "
                f"got member={member!r}"
            )
        return self.members[member]


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


def report_intermediate_result(metric: Any, *, member: int | None = None) -> None:
    """Report a metric during training (e.g. per epoch): a number, or a dict with a ``"default"`` key.

    In a trial that trains several models (a :class:`~nascore.group.ModelGroup`), ``member`` says
    which one: the report is recorded for that model's own trial.
    """
    default, record = normalize_metric(metric)
    trial = _current.get()
    if trial is None:
        _log.info("Intermediate result outside a trial (not recorded): %s", record)
        return
    target = trial.reported_trial(member)
    trial.intermediate_count += 1
    trial.on_intermediate(trial.trial_id if target is None else target, default, record)


def report_final_result(metric: Any, *, member: int | None = None) -> None:
    """Report the trial's result, once: a number, or a dict with a ``"default"`` key plus other metrics.

    The result is recorded when the evaluator returns. A second call is an error of the evaluator (the
    trial fails), and so is a final result that is NaN or infinite. In a trial that trains several
    models, ``member`` says which one (each reports once).
    """
    default, record = normalize_metric(metric)
    trial = _current.get()
    if trial is None:
        _log.info("Final result outside a trial (not recorded): %s", record)
        return
    target = trial.reported_trial(member)
    if target is not None:
        if target in trial.member_finals:
            raise TrialError(
                f"trial {target} (model {member} of trial {trial.trial_id}) reported a final result twice "
                f"({trial.member_finals[target][1]}, then {record}); report each model's final result once"
            )
        trial.member_finals[target] = (default, record)
        return
    if trial.final is not None:
        raise TrialError(
            f"trial {trial.trial_id} reported a final result twice ({trial.final[1]}, then {record}); "
            "call nascore.report_final_result once, at the end of the evaluator"
        )
    trial.final = (default, record)


def trial_seed(experiment_seed: int | None, sample: Sample) -> int | None:
    """The seed a trial of ``sample`` starts from: derived from the experiment seed and the sample only.

    The same sample gets the same seed whichever trial, worker, machine or engine runs it; ``None``
    when the experiment has no seed.
    """
    if experiment_seed is None:
        return None
    text = json.dumps(sample, sort_keys=True, default=repr)
    digest = hashlib.sha256(f"{experiment_seed}:{text}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global generator (when installed) and torch (CPU, and CUDA when present).

    Cheaper per trial than ``torch.manual_seed``, which also queues seeds for every accelerator
    backend torch knows (capturing a stack trace for each) even where none exists.
    """
    import torch

    random.seed(seed)
    torch.default_generator.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    if torch.backends.mps.is_available():  # pragma: no cover - Apple silicon only
        torch.mps.manual_seed(seed)
    try:
        import numpy
    except ImportError:  # pragma: no cover - numpy comes with torch in practice
        return
    numpy.random.seed(seed)


def run_trial(
    trial_id: int,
    model: ExecutableModel,
    evaluator: Evaluator,
    emit: Callable[[TrialEvent], None],
    experiment_id: str | None = None,
    log: Callable[[str], None] | None = None,
    seed: int | None = None,
) -> bool:
    """Run one trial in this process and report what happens as events. Returns whether it succeeded.

    With ``seed``, the random state is seeded (:func:`seed_everything`) before the model is built.
    Never raises for a failing trial: an exception from building the model or from the evaluator,
    ``sys.exit()`` in it, a missing, repeated or non-finite final result become a FAILED event holding
    the cause. The final result is emitted once the evaluator has returned, right before SUCCEEDED.
    ``KeyboardInterrupt`` propagates.
    """
    from nascore.engine import TrialEvent, TrialStatus
    from nascore.group import ModelGroup

    def on_intermediate(target: int, value: float, record: dict[str, Any]) -> None:
        emit(TrialEvent.intermediate(target, value, record))

    context = TrialContext(trial_id, dict(model.sample), on_intermediate, experiment_id)
    if isinstance(model, ModelGroup):
        context.members = list(model.trial_ids)
    emit(TrialEvent(trial_id, "status", status=TrialStatus.RUNNING, time=time.time()))
    token = _current.set(context)
    try:
        if seed is not None:
            seed_everything(seed)
        returned = evaluator.evaluate(model)
        finals = _member_finals(context) if context.members else [(trial_id, _own_final(context, returned))]
    except (Exception, SystemExit) as exc:  # a failing trial never fails the experiment
        text = traceback.format_exc()
        if log is not None:
            log(text)
        if isinstance(exc, SystemExit):
            error = f"the evaluator called sys.exit({exc.code!r}); a trial ends by returning its result\n\n{text}"
        else:
            error = _error_text(exc, text)
        emit(TrialEvent(trial_id, "status", status=TrialStatus.FAILED, error=error, time=time.time()))
        return False
    finally:
        _current.reset(token)
    for target, final in finals:
        emit(TrialEvent.final(target, *final))
    emit(TrialEvent(trial_id, "status", status=TrialStatus.SUCCEEDED, time=time.time()))
    return True


def _own_final(context: TrialContext, returned: Any) -> tuple[float, dict[str, Any]]:
    if context.final is None and returned is not None:
        report_final_result(returned)
    if context.final is None:
        raise TrialError(
            f"trial {context.trial_id}: the evaluator finished without a final result; call "
            "nascore.report_final_result(metric) in it, or return the metric"
        )
    _check_finite(context.trial_id, context.final[0])
    return context.final


def _member_finals(context: TrialContext) -> list[tuple[int, tuple[float, dict[str, Any]]]]:
    missing = [t for t in context.members if t not in context.member_finals]
    if missing:
        raise TrialError(
            f"trial {context.trial_id} trained trials {context.members} together, but the evaluator reported no "
            f"final result for trial(s) {missing}; report each with report_final_result(metric, member=i)"
        )
    for target in context.members:
        _check_finite(target, context.member_finals[target][0])
    return [(target, context.member_finals[target]) for target in context.members]


def _check_finite(trial_id: int, value: float) -> None:
    if not math.isfinite(value):
        raise TrialError(
            f"trial {trial_id} reported a non-finite final result ({value}): the model diverged "
            "or the metric divided by zero; the trial counts as failed"
        )


def _error_text(exc: BaseException, formatted: str) -> str:
    return f"{type(exc).__name__}: {exc}\n\n{formatted}"
