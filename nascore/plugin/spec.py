"""The hook specifications of nascore: the contract between the core and its plugins.

There are two families of hooks:

* **register hooks** (``nascore_register_<kind>s``), one per plugin kind. Each receives a
  ``register(name, obj, *, description=None)`` callback and returns nothing; the core owns naming,
  duplicates and error reporting (see :mod:`nascore.plugin.manager`).
* **observer hooks** (``nascore_trial_started`` and friends): plain notifications, no return
  value. An observer that raises is logged and never breaks the experiment.

An implementation may accept any subset of a hook's arguments (pluggy matches them by name), so
adding an argument to a hook later breaks no plugin. The rest of nascore never calls these hooks
directly; it goes through the typed facade :class:`nascore.plugin.manager.PluginHost`.
"""

from __future__ import annotations

from typing import Any, Protocol

import pluggy

PROJECT_NAME = "nascore"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


class RegisterFn(Protocol):
    """The callback a register hook receives.

    ``name`` must match ``[a-z0-9][a-z0-9_.-]*`` and be unique within its kind; ``description``
    is a one-line summary shown by ``nascore plugins`` (defaults to the first docstring line of
    ``obj``).
    """

    def __call__(self, name: str, obj: Any, *, description: str | None = None) -> None: ...


# --- register hooks -----------------------------------------------------------------------------


@hookspec
def nascore_register_strategies(register: RegisterFn) -> None:
    """Register search strategies.

    :param register: call ``register("evolution", RegularizedEvolution)`` once per strategy: a
        :class:`~nascore.strategy.Strategy` subclass (its constructor's keyword arguments are its options).
    """


@hookspec
def nascore_register_engines(register: RegisterFn) -> None:
    """Register execution engines (or engine middleware) that run trials.

    :param register: call ``register("sequential", SequentialEngine)`` once per engine: an
        :class:`~nascore.engine.ExecutionEngine` subclass (its ``options_class`` declares its settings).
    """


@hookspec
def nascore_register_formats(register: RegisterFn) -> None:
    """Register model formats that turn a model space into an executable space.

    :param register: call ``register("simplified", SimplifiedFormat)`` once per format: a
        :class:`~nascore.format.ModelFormat` subclass.
    """


@hookspec
def nascore_register_evaluators(register: RegisterFn) -> None:
    """Register evaluators that train and score one candidate model.

    :param register: call ``register("functional", FunctionalEvaluator)`` once per evaluator: an
        :class:`~nascore.evaluator.Evaluator` subclass, or a function returning one.
    """


@hookspec
def nascore_register_optimizers(register: RegisterFn) -> None:
    """Register cross-graph optimizers used by the cross-graph optimization engine.

    :param register: call ``register("dedup-input", DedupInputOptimizer)`` once per optimizer: a
        :class:`~nascore.optimizer.LogicalOptimizer` subclass.
    """


# --- observer hooks -----------------------------------------------------------------------------


@hookspec
def nascore_trial_started(experiment_id: str, trial_id: int, sample: dict[str, Any]) -> None:
    """Notify that a trial was submitted to an execution engine.

    Called once per submission, before the engine runs the trial; a trial interrupted by a stopped
    experiment is submitted again on resume, under the same ``trial_id``, and notified again.

    :param experiment_id: id of the experiment the trial belongs to.
    :param trial_id: id of the trial, unique within its experiment.
    :param sample: the ``{label: value}`` architecture the trial evaluates (a copy; mutating it
        changes nothing).
    """


@hookspec
def nascore_trial_finished(experiment_id: str, trial_id: int, status: str, metric: float | None) -> None:
    """Notify that a trial reached a final state.

    Called once per finished trial, after its result is recorded. A trial left unfinished when the
    experiment stops (``"INTERRUPTED"``, to rerun on resume) is not notified.

    :param experiment_id: id of the experiment the trial belongs to.
    :param trial_id: id of the trial, unique within its experiment.
    :param status: the final state of the trial, a :class:`~nascore.engine.TrialStatus` value:
        ``"SUCCEEDED"`` or ``"FAILED"``.
    :param metric: the trial's final default metric, or ``None`` when it has none (usually a
        failed trial) or it is NaN.
    """


@hookspec
def nascore_experiment_status_changed(experiment_id: str, status: str) -> None:
    """Notify that an experiment changed state.

    A run (or a resume) notifies ``"RUNNING"`` before its first trial, then one of ``"DONE"``,
    ``"INTERRUPTED"`` (Ctrl-C; resumable) or ``"FAILED"`` (an error stopped the search).

    :param experiment_id: id of the experiment.
    :param status: the new state of the experiment: ``"RUNNING"``, ``"DONE"``, ``"INTERRUPTED"``
        or ``"FAILED"``.
    """


#: plugin kind -> the name of its register hook. Kinds are singular, as in ``nascore plugins``
#: (see :mod:`nascore.plugin.kinds` for what each kind registers).
REGISTER_HOOKS: dict[str, str] = {
    "strategy": "nascore_register_strategies",
    "engine": "nascore_register_engines",
    "format": "nascore_register_formats",
    "evaluator": "nascore_register_evaluators",
    "optimizer": "nascore_register_optimizers",
}

#: names of the observer hooks (notifications with no return value).
OBSERVER_HOOKS: tuple[str, ...] = (
    "nascore_trial_started",
    "nascore_trial_finished",
    "nascore_experiment_status_changed",
)
