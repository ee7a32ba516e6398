"""The ``cgo`` engine: a middleware that merges graph-format models into shared trials.

It collects the trials a strategy submits, waits up to ``batch_waiting_time`` seconds for up to
``max_concurrency_cgo`` of them (less when the strategy waits for results while a trial could
start: it has nothing more to add then), runs the configured optimizers (``dedup-input`` by default) on
them as one :class:`~nascore_cgo.plan.LogicalPlan`, and submits each group of the plan to the
wrapped ``training-service`` engine: a group of one as an ordinary trial, a larger group as one
merged trial whose model is a :class:`nascore.group.ModelGroup`. The evaluator trains the group in
one pass (``Evaluator.evaluate_group``) and reports each model's results for its own trial
(``report_*_result(metric, member=i)``): they arrive as that trial's own events, so strategies and
the store see ordinary trials; the merged trial's end becomes each member's. When a merged trial fails,
every model in it gets a ``retry`` event and is run again alone, without merging. When it cannot
run where it was sent (its folder cannot be written), every model in it gets the ``abort`` event.

Seeds: a model alone runs from its own trial's seed. In a merged trial every model is built from
its own trial's seed too (so a sample's model starts identical, merged or alone, on any engine),
and the training then runs from the random state the first model's own trial would train from
(:class:`nascore.group.MemberModels`). Every trial, merged or not, gets the evaluator as
submitted, deserialized afresh in its worker: nothing carries over from the trial before.

``trial_concurrency`` counts trials of the wrapped engine, so up to ``trial_concurrency *
max_concurrency_cgo`` models train at once. A merged trial gets the resources of one trial
(``trial_gpu_number`` GPUs, on the local machine or a remote one). ``placement`` says where its
models train: ``"pack"`` (the default) puts them all on the trial's device; ``"spread"`` puts model
``i`` on GPU ``i % n`` of the trial's ``n = trial_gpu_number`` GPUs (on a trial without GPUs it
packs). A merged trial travels to its worker as data (each member's graph payload, its trial id and
seed: :func:`nascore.serialization.ship_model`), so remote machines need only nascore and
nascore-formats next to the evaluator's code.

Settings come from ``ExperimentConfig.engine_options``::

    engine = "cgo"
    format = "graph"
    [engine_options]
    max_concurrency_cgo = 4      # most models per merged trial
    batch_waiting_time = 5       # seconds to wait for more models before submitting a batch
    optimizers = ["dedup-input"] # registered optimizers, applied in order
    placement = "spread"         # "pack" (default) or "spread" over the trial's trial_gpu_number GPUs
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from typing import Any

import attrs

from nascore.engine import (
    EngineContext,
    ExecutionEngine,
    TrialEvent,
    TrialResources,
    TrialStatus,
    TrialSubmission,
)
from nascore.errors import ConfigError, EngineError, EvaluatorError, ShippingError
from nascore.evaluator import Evaluator
from nascore.evaluators.placement import check_placement
from nascore.format import ExecutableSpace
from nascore.group import ModelGroup
from nascore.optimizer import LogicalOptimizer
from nascore.options import OptionError
from nascore.serialization import ship_model
from nascore.units import parse_duration
from nascore_cgo.plan import LogicalPlan
from nascore_engines.folders import cannot_write
from nascore_engines.training_service import TrainingServiceEngine, TrainingServiceOptions
from nascore_formats.graph import GraphModel, GraphSpace
from nascore_formats.graph.merge import MergeError, merge_models

__all__ = ["CGOEngine", "CGOOptions"]

_log = logging.getLogger(__name__)

#: Ids of merged trials inside the wrapped engine start here, far from the experiment's trial ids.
MERGED_ID_BASE = 1_000_000_000


def _at_least_one(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise OptionError(attribute.name, f"must be an integer >= 1 (models per merged trial), got {value!r}")


def _placement(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if value is not None:
        try:
            check_placement(value, "it")
        except ValueError as exc:
            raise OptionError(attribute.name, str(exc)[3:]) from None


@attrs.define(kw_only=True)
class CGOOptions(TrainingServiceOptions):
    """The CGO settings (``ExperimentConfig.engine_options``): the ``training-service`` settings that run
    the merged trials, and these.

    :param max_concurrency_cgo: most models merged into one trial (>= 1; 1 merges nothing).
    :param batch_waiting_time: seconds to wait for ``max_concurrency_cgo`` models before optimizing
        and submitting the ones collected (a number or ``"10s"``).
    :param optimizers: names of registered optimizers, applied in order.
    :param placement: where the models of a merged trial train: ``"pack"`` (all on the trial's
        device) or ``"spread"`` (model ``i`` on device ``i % n`` of the trial's ``n`` GPUs; set
        ``trial_gpu_number`` to ``n``). ``None`` (unset): the evaluator's ``placement``, else ``"pack"``.
    """

    max_concurrency_cgo: int = attrs.field(default=4, validator=_at_least_one)
    batch_waiting_time: float | str = attrs.field(default=5.0, converter=parse_duration)
    optimizers: list[str] = attrs.field(factory=lambda: ["dedup-input"], converter=list)
    placement: str | None = attrs.field(default=None, validator=_placement)

    def training_service(self) -> TrainingServiceOptions:
        """The settings of the ``training-service`` engine that runs the merged trials."""
        return TrainingServiceOptions(**{f.name: getattr(self, f.name) for f in attrs.fields(TrainingServiceOptions)})


@attrs.define
class _Merged:
    """A merged trial in flight: its members, and which of them already reported a final result."""

    members: list[TrialSubmission]
    finals: set[int] = attrs.field(factory=set)


class CGOEngine(ExecutionEngine):
    """Registered as ``cgo``: cross-graph optimization around the ``training-service`` engine.

    :param inner: the engine that runs the (merged) trials.
    :param options: the CGO settings.
    :param optimizers: the optimizers to apply (default: those named in ``options``, from the registry).
    """

    name = "cgo"
    options_class = CGOOptions
    config_aliases = ("training_service",)

    def __init__(
        self,
        inner: ExecutionEngine,
        options: CGOOptions | None = None,
        optimizers: list[LogicalOptimizer] | None = None,
    ) -> None:
        self.inner = inner
        self.options = options if options is not None else CGOOptions()
        self.optimizers = optimizers if optimizers is not None else _optimizers(self.options.optimizers)
        self._lock = threading.Lock()
        self._pending: list[TrialSubmission] = []
        self._pending_since: float | None = None
        self._merged: dict[int, _Merged] = {}
        self._member_of: dict[int, int] = {}  # member trial id -> the merged trial it runs in
        self._fallbacks: list[TrialSubmission] = []
        self._open: set[int] = set()
        self._ids = itertools.count(MERGED_ID_BASE)
        self._context: EngineContext | None = None
        self._forwarded = 0
        self._seen = 0
        self._wakeup = threading.Event()  # set on every forwarded event, for waits with nothing inside the wrapped engine
        #: how many merged trials were submitted, and how many of them fell back to separate trials
        self.merged_trials = 0
        self.fallbacks = 0

    @classmethod
    def create(cls, options: CGOOptions | None, resources: TrialResources) -> CGOEngine:
        options = options if options is not None else CGOOptions()
        if options.placement == "spread" and resources.trial_gpu_number < 2:
            _log.warning(
                "config.engine_options.placement is 'spread' but config.trial_gpu_number is %d: a merged trial sees at "
                "most one GPU, so its models are packed onto it; set trial_gpu_number to the number of GPUs a merged "
                "trial should spread its models over", resources.trial_gpu_number,
            )
        engine = cls(TrainingServiceEngine(options.training_service(), resources), options)
        engine.resources = resources
        return engine

    # --- before the first trial ---------------------------------------------------------------

    def check(self, evaluator: Evaluator, space: ExecutableSpace | None = None) -> None:
        if space is not None and not isinstance(space, GraphSpace):
            raise ConfigError(
                f"engine 'cgo' merges graph-format models, but the space is in another format "
                f"({type(space).__name__}); set format = \"graph\" (or use engine \"training-service\" for other formats)"
            )
        if evaluator.merge_key() is None:
            raise ConfigError(
                f"engine 'cgo' trains several models per trial, which {type(evaluator).__name__} cannot (its merge_key() "
                "is None); use nascore.evaluators.Classification / Regression (or a Lightning evaluator with a "
                "SupervisedLearningModule or MultiModelLightningModule recipe), or engine \"training-service\" to run "
                "each model alone"
            )
        try:
            evaluator.check_group({"placement": self.options.placement} if self.options.placement else {})
        except EvaluatorError as exc:
            raise ConfigError(str(exc)) from None
        self.inner.check(evaluator, space)

    def start(self, context: EngineContext) -> None:
        self._context = context
        inner_context = EngineContext(context.experiment_id, context.experiment_dir, context.resources, _Sink(self), context.space)
        self.inner.start(inner_context)

    # --- trials -------------------------------------------------------------------------------

    def submit(self, submission: TrialSubmission) -> None:
        if self._context is None:
            raise EngineError("CGOEngine.submit() was called before start()")
        if not isinstance(submission.model, GraphModel):
            kind = submission.model.format_name or type(submission.model).__name__
            raise ConfigError(
                f"engine 'cgo' got trial {submission.trial_id} in format {kind!r}; it merges graph-format "
                "models only: set format = \"graph\""
            )
        with self._lock:
            self._open.add(submission.trial_id)
            self._pending.append(submission)
            if self._pending_since is None:
                self._pending_since = time.monotonic()
            full = len(self._pending) >= self.options.max_concurrency_cgo
        if full:
            self._flush()

    def idle_slots(self) -> int:
        with self._lock:
            pending = len(self._pending)
        return max(0, self.inner.idle_slots() * self.options.max_concurrency_cgo - pending)

    def running(self) -> int:
        with self._lock:
            return len(self._open)

    def wait(self, timeout: float | None = None) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            self._wakeup.clear()
            self._run_fallbacks()
            with self._lock:
                due = self._pending_since is not None and time.monotonic() >= self._pending_since + self.options.batch_waiting_time
            if due:
                self._flush()
            with self._lock:
                if self._forwarded != self._seen:
                    self._seen = self._forwarded
                    return
                if not self._open:
                    return
                pending = bool(self._pending)
            if pending and self.inner.idle_slots() > 0:
                # No news for the caller, yet it waits although a trial could start: it has nothing more
                # to submit until results come (its budget is spent, or it needs them to propose), so
                # waiting out the batching window gains nothing. Send the partial batch now.
                self._flush()
                continue
            with self._lock:
                batch_due = None if self._pending_since is None else self._pending_since + self.options.batch_waiting_time
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                return
            step = None if deadline is None else deadline - now
            if batch_due is not None:
                step = max(0.0, batch_due - now) if step is None else min(step, max(0.0, batch_due - now))
            with self._lock:
                idle_below = not self._fallbacks
            if idle_below and self.inner.running() == 0:
                # Nothing runs below us: wait for the batching window to close (or a timeout), not for the engine.
                self._wakeup.wait(step)
            else:
                self.inner.wait(step)

    def shutdown(self) -> None:
        with self._lock:
            self._pending.clear()
            self._pending_since = None
            self._fallbacks.clear()
        self.inner.shutdown()
        with self._lock:  # nothing runs any more: the experiment marks what had not ended INTERRUPTED
            self._open.clear()
            self._merged.clear()
            self._member_of.clear()

    # --- batching -----------------------------------------------------------------------------

    def _flush(self) -> None:
        """Optimize the collected models as one plan and submit its groups to the wrapped engine."""
        with self._lock:
            batch, self._pending, self._pending_since = self._pending, [], None
        if not batch:
            return
        plan = LogicalPlan(batch, self.options.max_concurrency_cgo)
        for optimizer in self.optimizers:
            plan = optimizer.convert(plan)
        try:
            plan.check()
        except ValueError as exc:
            raise EngineError(f"a CGO optimizer returned a bad plan ({', '.join(type(o).__name__ for o in self.optimizers)}): {exc}") from exc
        for group, shared in zip(plan.groups, plan.shared_inputs):
            members = [batch[i] for i in group]
            if len(members) == 1:
                self.inner.submit(members[0])
            else:
                self._submit_merged(members, shared_inputs=shared)

    def _submit_merged(self, members: list[TrialSubmission], shared_inputs: bool) -> None:
        assert self._context is not None
        ids = [member.trial_id for member in members]
        model = ModelGroup([member.model for member in members], ids, [member.seed for member in members],
                           settings={"placement": self.options.placement} if self.options.placement else {},
                           combined=_merged_graph(members) if shared_inputs else None)
        try:
            ship_model(model)
        except ShippingError as exc:
            _log.warning("Models %s cannot be merged (%s); running them alone", ids, exc)
            for member in members:
                self.inner.submit(member)
            return
        merged_id = next(self._ids)
        log_dir = self._context.experiment_dir / "cgo" / f"merged-{merged_id - MERGED_ID_BASE}"
        folder = log_dir
        try:
            log_dir.mkdir(parents=True, exist_ok=True)
            for member in members:  # each trial's own folder says where its output went
                folder = member.log_dir
                folder.mkdir(parents=True, exist_ok=True)
                with open(folder / "trial.log", "a") as note:
                    note.write(f"[cgo] trained together with trials {ids}; output in {log_dir / 'trial.log'}\n")
        except OSError as exc:  # the experiment's folder is broken, not the models: they rerun on resume
            for member in members:
                self._forward(TrialEvent.abort(member.trial_id, cannot_write(member.trial_id, folder, exc)))
            return
        with self._lock:
            self._merged[merged_id] = _Merged(members)
            for trial_id in ids:
                self._member_of[trial_id] = merged_id
            self.merged_trials += 1
        _log.info("CGO: trials %s run merged as one trial (log: %s)", ids, log_dir / "trial.log")
        # The merged trial starts from its first member's seed; each member is then built from its own
        # seed, and the training runs from the first member's (see nascore.group.MemberModels).
        self.inner.submit(
            TrialSubmission(merged_id, model, members[0].evaluator, log_dir, dict(model.sample), seed=members[0].seed)
        )

    def _run_fallbacks(self) -> None:
        with self._lock:
            fallbacks, self._fallbacks = self._fallbacks, []
        for submission in fallbacks:
            self.inner.submit(submission)

    # --- events from the wrapped engine (any thread) ------------------------------------------

    def _forward(self, event: TrialEvent) -> None:
        assert self._context is not None
        try:
            self._context.sink.emit(event)
        except Exception:  # noqa: BLE001 - the bookkeeping below must happen, or waits never end
            _log.exception("The experiment could not take event %r of trial %d; carrying on", event.kind, event.trial_id)
        with self._lock:
            self._forwarded += 1
            if event.ends_trial or event.kind == "abort":  # an aborted trial runs no more here
                self._open.discard(event.trial_id)
        self._wakeup.set()

    def _on_event(self, event: TrialEvent) -> None:
        with self._lock:
            merged = self._merged.get(event.trial_id)
            group = self._merged.get(self._member_of.get(event.trial_id, -1))
        if merged is None:
            if group is not None and event.kind == "final":  # a member's own result, reported in its merged trial
                group.finals.add(event.trial_id)
            self._forward(event)
            return
        members = merged.members
        if event.kind in ("intermediate", "final"):
            _log.warning("Merged trial of %s reported a result of its own (%s); each model reports for its own trial",
                         [m.trial_id for m in members], event.metric)
        elif event.kind == "abort":  # where it ran is broken, not the models: each member reruns on resume
            self._end_group(event.trial_id)
            for member in members:
                self._forward(TrialEvent.abort(member.trial_id, event.error or "the merged trial it ran in could not run"))
        elif event.kind == "retry":
            for member in members:
                self._forward(TrialEvent.retry(member.trial_id, event.error or "the merged trial's machine dropped"))
        elif event.kind == "status" and event.status is TrialStatus.FAILED:
            self._end_group(event.trial_id)
            with self._lock:
                self.fallbacks += 1
            first = (event.error or "").strip().splitlines()[0] if event.error else "no error text"
            _log.warning("Merged trial of %s failed (%s); running each model alone", [m.trial_id for m in members], first)
            for member in members:
                self._forward(TrialEvent.retry(member.trial_id, f"the merged trial it ran in failed ({first}); it runs again alone"))
            with self._lock:
                self._fallbacks.extend(members)
            self._wakeup.set()
        elif event.kind == "status" and event.status is TrialStatus.SUCCEEDED:
            self._end_group(event.trial_id)
            for member in members:
                if member.trial_id in merged.finals:
                    self._forward(TrialEvent(member.trial_id, "status", status=TrialStatus.SUCCEEDED, time=event.time))
                else:
                    self._forward(TrialEvent.failed(member.trial_id, "its merged trial succeeded without reporting a final result for this model"))
        else:
            for member in members:
                self._forward(TrialEvent(member.trial_id, event.kind, status=event.status, error=event.error, time=event.time))

    def _end_group(self, merged_id: int) -> None:
        with self._lock:
            merged = self._merged.pop(merged_id, None)
            for member in merged.members if merged is not None else []:
                self._member_of.pop(member.trial_id, None)


class _Sink:
    """The wrapped engine's sink: every event goes through the middleware first."""

    def __init__(self, engine: CGOEngine) -> None:
        self.engine = engine

    def emit(self, event: TrialEvent) -> None:
        self.engine._on_event(event)


def _merged_graph(members: list[TrialSubmission]) -> GraphModel | None:
    """The members' graph IRs merged into one logical graph reading the input once (dedup-input), or ``None``.

    Members grouped by ``dedup-input`` read the same data, so their input nodes are merged: the
    generated module takes the batch once and returns every member's output.
    """
    models = [member.model for member in members]
    if not all(isinstance(model, GraphModel) for model in models):
        return None
    try:
        return merge_models(models, shared_inputs=True)  # type: ignore[arg-type]
    except MergeError as exc:
        _log.info("CGO: trials %s train side by side, not as one graph: %s", [m.trial_id for m in members], exc)
        return None


def _optimizers(names: list[str]) -> list[LogicalOptimizer]:
    from nascore.plugin import create_optimizer

    optimizers = []
    for name in names:
        try:
            optimizers.append(create_optimizer(name))
        except LookupError as exc:
            raise ConfigError(f"config.engine_options.optimizers: {exc}") from None
    return optimizers
