"""The ``training-service`` engine: every trial in an isolated worker process, here or over SSH.

The engine ships each trial as data (:func:`nascore.serialization.ship_model` and
:func:`~nascore.serialization.ship_evaluator`), queues it, and hands it to the configured service
when a seat is free: :class:`~.local.LocalService` (warm workers on this machine) or
:class:`~.remote.RemoteService` (an agent with warm workers on each remote machine). Events come
back on the services' threads and go straight to the experiment's sink, so metrics are recorded
while trials run. A trial whose machine dropped is re-queued (a ``retry`` event) and runs elsewhere.
A trial starts from its submission's ``seed`` in whichever worker runs it, with an evaluator
deserialized afresh for it; a trial whose folder cannot be written ends its attempt with an
``abort`` event (see :mod:`nascore_engines.folders`), which frees its seat.
"""

from __future__ import annotations

import collections
import logging
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import attrs

from nascore.engine import EngineContext, ExecutionEngine, TrialEvent, TrialResources, TrialSubmission
from nascore.errors import EngineError, ShippingError
from nascore.evaluator import Evaluator
from nascore.format import ExecutableSpace
from nascore.serialization import load_shipped_model, ship_evaluator, ship_model
from nascore_engines.training_service.options import TrainingServiceOptions
from nascore_engines.training_service.pool import PoolTrial

__all__ = ["ServiceLink", "TrainingServiceEngine", "TrialService", "check_model_shipping"]

_log = logging.getLogger(__name__)


class TrialService(Protocol):
    """Where the engine runs trials: the local worker pool, the remote machines, or another plugin's service.

    A service calls back into its engine through the engine's :class:`ServiceLink`, from its own threads.
    """

    def start(self) -> None: ...
    def capacity(self) -> int: ...
    def free_seats(self) -> int: ...
    def running(self) -> int: ...
    def run(self, trial: PoolTrial) -> None: ...
    def unavailable(self) -> str | None: ...
    def shutdown(self) -> None: ...


@attrs.frozen
class ServiceLink:
    """What a :class:`TrialService` calls back into its engine with (from the service's own threads).

    :ivar emit: every event of a trial, in order; an event that ends a trial (or an ``abort``) frees its seat.
    :ivar requeue: ``requeue(trials, reason, attempts)``: trials whose machine or worker dropped go back to the
        front of the queue (a ``retry`` event each), or fail once ``attempts[trial_id]`` exceeds the engine's
        ``max_requeues``.
    :ivar kick: seats became free outside a trial's end (a worker became ready, a machine came back):
        queued trials start.
    """

    emit: Callable[[TrialEvent], None]
    requeue: Callable[[list[PoolTrial], str, dict[int, int]], None]
    kick: Callable[[], None]


class TrainingServiceEngine(ExecutionEngine):
    """Registered as ``training-service``; its settings are :class:`TrainingServiceOptions` (``engine_options``).

    :param settings: the training-service settings (default: local workers).
    :param resources: what each trial may use (concurrency, GPUs, timeout, memory).
    :param gpus: the local GPU indices to place trials on, instead of detecting them (tests use a
        fake device list; trials then see those indices in ``CUDA_VISIBLE_DEVICES``).
    """

    name = "training-service"
    options_class = TrainingServiceOptions
    config_aliases = ("training_service",)

    def __init__(
        self,
        settings: TrainingServiceOptions | None = None,
        resources: TrialResources | None = None,
        *,
        gpus: Sequence[int] | None = None,
    ) -> None:
        self.settings = settings if settings is not None else TrainingServiceOptions()
        self.resources = resources if resources is not None else TrialResources()
        self.gpus = None if gpus is None else list(gpus)
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._queue: collections.deque[PoolTrial] = collections.deque()
        self._events = 0
        self._seen = 0
        self._capacity = 0
        self._context: EngineContext | None = None
        self._service: TrialService | None = None
        self._evaluators: list[tuple[Evaluator, str, dict[str, Any]]] = []
        self._closed = False
        self._template: Any = None  # a worker template forked in check(), before the experiment opens its store

    @classmethod
    def create(cls, options: TrainingServiceOptions | None, resources: TrialResources) -> TrainingServiceEngine:
        return cls(options, resources)

    @property
    def service(self) -> TrialService | None:
        """The running service (after :meth:`start`)."""
        return self._service

    @property
    def link(self) -> ServiceLink:
        """How this engine's service reports events, re-queues trials and frees seats."""
        return ServiceLink(self._emit, self._requeue, self._kick)

    # --- what a subclass with a service of its own overrides --------------------------------------

    def check_service(self, evaluator: Evaluator, space: ExecutableSpace | None = None) -> None:
        """Check the service's settings before the experiment starts (the evaluator already travels)."""
        if self.settings.platform == "local":
            from nascore_engines.training_service.local import early_template, local_seats

            local_seats(self.resources, self.settings, self.gpus)
            if self._template is None:
                self._template = early_template(self.settings, self)
        else:
            from nascore_engines.training_service.remote import check_settings

            check_settings(self.settings)

    def make_service(self, context: EngineContext) -> TrialService:
        """The service that runs this experiment's trials (not started yet); it calls back through :attr:`link`."""
        if self.settings.platform == "local":
            from nascore_engines.training_service.local import LocalService

            service = LocalService(context.resources, self.settings, context.experiment_dir, self._emit, self.gpus,
                                   template=self._template)
            self._template = None  # the pool owns it now
            return service
        from nascore_engines.training_service.remote import RemoteService, check_settings

        check_settings(self.settings, context.experiment_dir.parent)  # the code to copy, less the experiments
        return RemoteService(context.resources, self.settings, context.experiment_id, self.link,
                             experiments_root=context.experiment_dir.parent)

    # --- before the first trial ---------------------------------------------------------------

    def check(self, evaluator: Evaluator, space: ExecutableSpace | None = None) -> None:
        self.evaluator_shipment(evaluator)  # an evaluator that cannot travel fails here, before any service starts
        if self.resources.trial_memory_limit is not None and not sys.platform.startswith("linux"):
            _log.warning("trial_memory_limit is enforced on Linux only; on %s it is ignored", sys.platform)
        self.check_service(evaluator, space)

    def start(self, context: EngineContext) -> None:
        if context.space is not None:
            check_model_shipping(context)
        self._context = context
        resources = self.resources = context.resources
        service = self.make_service(context)
        service.start()
        self._service = service
        self._capacity = min(resources.trial_concurrency, service.capacity())

    # --- trials -------------------------------------------------------------------------------

    def submit(self, submission: TrialSubmission) -> None:
        if self._context is None or self._service is None:
            raise EngineError("TrainingServiceEngine.submit() was called before start()")
        try:
            model = ship_model(submission.model)
            key, evaluator = self.evaluator_shipment(submission.evaluator)
        except ShippingError as exc:  # this one trial cannot be shipped: it fails, the search goes on
            self._emit(TrialEvent.failed(submission.trial_id, f"trial {submission.trial_id} cannot be shipped: {exc}"))
            return
        trial = PoolTrial(
            submission.trial_id, model, key, evaluator, submission.log_dir / "trial.log", self._context.experiment_id,
            seed=submission.seed,
        )
        with self._changed:
            self._queue.append(trial)
            self._dispatch()

    def idle_slots(self) -> int:
        with self._lock:
            if self._service is None:
                return 0
            return max(0, self._capacity - len(self._queue) - self._service.running())

    def running(self) -> int:
        with self._lock:
            return len(self._queue) + (self._service.running() if self._service is not None else 0)

    def wait(self, timeout: float | None = None) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._changed:
            while True:
                self._dispatch()
                if self._events != self._seen:
                    self._seen = self._events
                    return
                reason = self._service.unavailable() if self._service is not None else None
                if reason is not None and (self._queue or not self._service.running()):  # type: ignore[union-attr]
                    raise EngineError(f"the training service cannot run trials any more: {reason}")
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return
                # Wake now and then to notice an unavailable service (remote machines all down).
                self._changed.wait(timeout=1.0 if remaining is None else min(remaining, 1.0))

    def shutdown(self) -> None:
        with self._lock:
            self._closed = True
            self._queue.clear()
            service, self._service = self._service, None
            template, self._template = self._template, None
        if service is not None:
            service.shutdown()
        if template is not None:  # checked, never started
            template.close()

    # --- called by the services, from their threads ---------------------------------------------

    def _emit(self, event: TrialEvent) -> None:
        if self._context is None or self._closed:
            return
        try:
            self._context.sink.emit(event)
        except Exception:  # noqa: BLE001 - this runs on a service's reader thread, which must live on
            _log.exception("The experiment could not take event %r of trial %d; carrying on", event.kind, event.trial_id)
        with self._changed:
            self._events += 1
            if event.ends_trial or event.kind == "abort":  # the trial's seat is free
                self._dispatch()
            self._changed.notify_all()

    def _requeue(self, trials: list[PoolTrial], reason: str, attempts: dict[int, int]) -> None:
        """Put trials whose machine dropped back at the front of the queue (or fail them after too many tries)."""
        again = []
        for trial in trials:
            if attempts.get(trial.trial_id, 0) > self.settings.max_requeues:
                self._emit(TrialEvent.failed(
                    trial.trial_id,
                    f"trial {trial.trial_id} failed: machines dropped under it {attempts[trial.trial_id]} times "
                    f"(engine_options.max_requeues = {self.settings.max_requeues}); last: {reason}",
                ))
            else:
                self._emit(TrialEvent.retry(trial.trial_id, reason))
                again.append(trial)
        with self._changed:
            if self._closed:
                return
            self._queue.extendleft(reversed(again))
            self._dispatch()
            self._changed.notify_all()

    def _kick(self) -> None:
        """Seats became free outside a trial's end (a machine came back): start queued trials."""
        with self._changed:
            self._dispatch()
            self._changed.notify_all()

    def _dispatch(self) -> None:
        """Start queued trials on free seats (called with the lock held)."""
        service = self._service
        if service is None:
            return
        while self._queue and service.free_seats() > 0:
            trial = self._queue.popleft()
            try:
                service.run(trial)
            except EngineError as exc:
                _log.debug("Could not start trial %d now (%s); it stays queued", trial.trial_id, exc)
                self._queue.appendleft(trial)
                return

    def evaluator_shipment(self, evaluator: Evaluator) -> tuple[str, dict[str, Any]]:
        """``evaluator`` shipped as data, once per evaluator object: its key and its shipment."""
        for known, key, shipment in self._evaluators:
            if known is evaluator:
                return key, shipment
        shipment = ship_evaluator(evaluator)
        key = f"evaluator-{len(self._evaluators) + 1}-{id(evaluator):x}"
        self._evaluators.append((evaluator, key, shipment))
        return key, shipment


def check_model_shipping(context: EngineContext) -> None:
    """Ship (and load back) the space's default model, so a space that cannot travel fails before the first trial."""
    space = context.space
    assert space is not None
    model = space.freeze(space.default_sample())
    shipment = ship_model(model)
    try:
        load_shipped_model(shipment)
    except Exception as exc:
        raise ShippingError(
            f"models of this space are shipped to workers, but loading one back failed: {type(exc).__name__}: {exc}"
        ) from exc
