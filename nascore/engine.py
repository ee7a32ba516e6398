"""The execution-engine contract: running trials and reporting what happens to them.

The experiment submits :class:`TrialSubmission` objects; the engine runs them (in-process, in
worker processes, on remote machines) and emits :class:`TrialEvent` objects to the experiment's
:class:`TrialEventSink` as they happen: the trial started, reported a metric, succeeded or failed.
The sink records every event in the store before anything else acts on it.

An engine sees what a trial may use (:class:`TrialResources`) and its own options (an attrs class
it declares as :attr:`ExecutionEngine.options_class`, structured from ``engine_options``), never
the experiment's whole configuration: this module imports nothing from :mod:`nascore.experiment`.
Engines are made through :func:`nascore.plugin.create_engine`.
"""

from __future__ import annotations

import enum
import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import attrs

from nascore.space import Sample

if TYPE_CHECKING:
    from nascore.evaluator import Evaluator
    from nascore.format import ExecutableModel, ExecutableSpace

__all__ = [
    "TrialStatus",
    "TrialEvent",
    "TrialEventSink",
    "TrialSubmission",
    "TrialResources",
    "EngineContext",
    "ExecutionEngine",
]


class TrialStatus(str, enum.Enum):
    """The life of a trial: WAITING -> RUNNING -> SUCCEEDED | FAILED (INTERRUPTED if the experiment stopped)."""

    WAITING = "WAITING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    INTERRUPTED = "INTERRUPTED"

    @property
    def finished(self) -> bool:
        return self in (TrialStatus.SUCCEEDED, TrialStatus.FAILED)

    def __str__(self) -> str:
        return self.value


@attrs.frozen
class TrialEvent:
    """Something that happened to a trial.

    ``kind`` is ``"status"`` (with ``status``, and ``error`` for a failure), ``"intermediate"`` or
    ``"final"`` (with ``value``, the default metric, and ``metric``, the full record), ``"retry"``
    (with ``error`` saying why): the trial's attempt was lost through no fault of its own (its machine
    dropped), its metrics so far are discarded and it waits to run again under the same id, or
    ``"abort"`` (with ``error`` saying why): the trial cannot run because of where it runs, not what
    it runs (its folder cannot be written, the disk is full). The experiment stops with that error and
    the trial runs again when the experiment is resumed after the fix.
    """

    trial_id: int
    kind: str
    status: TrialStatus | None = None
    value: float | None = None
    metric: dict[str, Any] | None = None
    error: str | None = None
    time: float = attrs.field(factory=time.time)

    @classmethod
    def intermediate(cls, trial_id: int, value: float, metric: dict[str, Any]) -> TrialEvent:
        return cls(trial_id, "intermediate", value=value, metric=metric)

    @classmethod
    def final(cls, trial_id: int, value: float, metric: dict[str, Any]) -> TrialEvent:
        return cls(trial_id, "final", value=value, metric=metric)

    @classmethod
    def failed(cls, trial_id: int, error: str) -> TrialEvent:
        return cls(trial_id, "status", status=TrialStatus.FAILED, error=error)

    @classmethod
    def retry(cls, trial_id: int, reason: str) -> TrialEvent:
        return cls(trial_id, "retry", status=TrialStatus.WAITING, error=reason)

    @classmethod
    def abort(cls, trial_id: int, reason: str) -> TrialEvent:
        return cls(trial_id, "abort", error=reason)

    @property
    def ends_trial(self) -> bool:
        return self.kind == "status" and self.status is not None and self.status.finished


class TrialEventSink(Protocol):
    """Where an engine sends events. Thread-safe: engines may emit from their own threads."""

    def emit(self, event: TrialEvent) -> None: ...


@attrs.define
class TrialSubmission:
    """One trial to run: its id, the model, the evaluator, the folder for its logs, and its seed.

    ``seed`` (``None`` when the experiment has no seed) is what :func:`nascore.trial.run_trial` seeds
    Python's, NumPy's and torch's random state with before the model is built: engines pass it on
    unchanged to wherever the trial runs.
    """

    trial_id: int
    model: ExecutableModel
    evaluator: Evaluator
    log_dir: Path
    sample: Sample = attrs.field(factory=dict)
    seed: int | None = None


@attrs.frozen(kw_only=True)
class TrialResources:
    """What trials may use, as the experiment configures it: the part of the configuration an engine sees.

    :ivar trial_concurrency: how many trials may run at once.
    :ivar trial_gpu_number: GPUs each trial needs (0: none).
    :ivar trial_timeout: seconds after which a running trial is stopped and FAILED (``None``: no limit).
    :ivar trial_memory_limit: bytes one trial may allocate (``None``: no limit).
    """

    trial_concurrency: int = 1
    trial_gpu_number: int = 0
    trial_timeout: float | None = None
    trial_memory_limit: int | None = None


@attrs.define
class EngineContext:
    """What an engine gets when it starts.

    ``experiment_dir`` is the experiment's own folder (``<config.experiment_dir>/<id>``). ``space`` is
    the executable space trials come from, so that an engine can check before the first trial that
    its models can be shipped (``None`` when the caller has no space).
    """

    experiment_id: str
    experiment_dir: Path
    resources: TrialResources
    sink: TrialEventSink
    space: ExecutableSpace | None = None


class ExecutionEngine(ABC):
    """Base class of execution engines, registered by name through ``nascore_register_engines``.

    The experiment creates the engine with :meth:`create` (through :func:`nascore.plugin.create_engine`),
    calls :meth:`check`, :meth:`start` once, then :meth:`submit` whenever :meth:`idle_slots` is
    positive, and :meth:`wait` to let trials progress; every trial submitted must end with exactly one
    SUCCEEDED or FAILED event (or get an ``abort`` / ``retry`` event). :meth:`shutdown` stops
    everything still running.

    :cvar options_class: the attrs class of this engine's settings (``engine_options``), or ``None``
        when it takes none; the core structures the user's settings into it, naming any wrong field.
    :cvar config_aliases: top-level tables of a config file that are an older spelling of
        ``engine_options`` for this engine (read into them, e.g. ``("training_service",)``).
    """

    name: ClassVar[str] = ""
    options_class: ClassVar[type | None] = None
    config_aliases: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def create(cls, options: Any, resources: TrialResources) -> ExecutionEngine:
        """Make the engine from its options (an ``options_class`` instance, ``None`` without one) and the resources.

        The default calls ``cls()`` and keeps ``resources`` as :attr:`resources`; an engine with
        options overrides this.
        """
        engine = cls()
        engine.resources = resources
        return engine

    resources: TrialResources = TrialResources()

    def check(self, evaluator: Evaluator, space: ExecutableSpace | None = None) -> None:
        """Raise a clear error before the first trial if this engine cannot run ``evaluator`` on ``space``."""

    @abstractmethod
    def start(self, context: EngineContext) -> None:
        """Prepare to run trials (start workers, connect to machines)."""

    @abstractmethod
    def submit(self, submission: TrialSubmission) -> None:
        """Queue a trial. Must not block for the trial's duration."""

    @abstractmethod
    def idle_slots(self) -> int:
        """How many more trials can be submitted now."""

    @abstractmethod
    def running(self) -> int:
        """How many submitted trials have not ended yet."""

    @abstractmethod
    def wait(self, timeout: float | None = None) -> None:
        """Let trials progress until at least one event was emitted, or ``timeout`` seconds passed."""

    @abstractmethod
    def shutdown(self) -> None:
        """Stop all trials and release resources; trials still running end as INTERRUPTED."""
