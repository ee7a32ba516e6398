"""The nascore plugin system: how strategies, engines, formats, evaluators and optimizers arrive.

A guide for plugin authors
==========================

A plugin is a module with ``@hookimpl`` functions, published by a distribution through the
entry-point group ``nascore``. In your ``pyproject.toml``::

    [project.entry-points.nascore]
    toy = "nascore_toy.plugin"

and in ``nascore_toy/plugin.py``::

    from nascore.plugin import hookimpl

    from nascore_toy.strategy import ToyStrategy


    @hookimpl
    def nascore_register_strategies(register):
        register("toy", ToyStrategy, description="Tries every architecture twice.")

After ``pip install`` of your distribution, ``Experiment(space, evaluator, "toy")`` finds it.

What each kind registers is checked when the plugin loads (:mod:`nascore.plugin.kinds`): a
:class:`~nascore.strategy.Strategy`, :class:`~nascore.engine.ExecutionEngine`,
:class:`~nascore.format.ModelFormat` or :class:`~nascore.optimizer.LogicalOptimizer` subclass with
every abstract method implemented, an :class:`~nascore.evaluator.Evaluator` subclass or a function
returning one. Anything else is refused, naming your distribution.

An engine or format declares its settings as an attrs class, ``options_class``; the user's
``engine_options`` / ``format_options`` (a TOML table or a dict) are structured into it by
:func:`nascore.options.structure_options`, and a wrong or misspelled field is reported as
``config.engine_options.<field>``. A strategy's settings (``strategy_options``) are checked against
its constructor's keyword arguments. An engine is made with ``create(options, resources)`` and sees
only :class:`~nascore.engine.TrialResources` (concurrency, GPUs, timeout, memory), never the
experiment's configuration; a minimal engine::

    class InlineEngine(ExecutionEngine):
        options_class = InlineOptions            # an attrs class, or None for no settings

        @classmethod
        def create(cls, options, resources):
            engine = cls()
            engine.options, engine.resources = options, resources
            return engine

        def start(self, context): self.context = context
        def submit(self, s): run_trial(s.trial_id, s.model, s.evaluator, self.context.sink.emit, seed=s.seed)
        def idle_slots(self): return 1
        def running(self): return 0
        def wait(self, timeout=None): pass
        def shutdown(self): pass

Plugins are made only through the typed facade (:mod:`nascore.plugin.factory`):
:func:`create_strategy`, :func:`create_engine`, :func:`create_format`, :func:`create_optimizer`,
:func:`create_evaluator` and :func:`load_model`. Prove a plugin with the conformance suites of
:mod:`nascore.testing` (``strategies``, ``formats``, ``oneshot``).

The hooks (see :mod:`nascore.plugin.spec` for the full contracts):

* ``nascore_register_strategies(register)``, ``nascore_register_engines(register)``,
  ``nascore_register_formats(register)``, ``nascore_register_evaluators(register)``,
  ``nascore_register_optimizers(register)``: call ``register(name, obj, *, description=None)``
  once per implementation. Names are lowercase (``[a-z0-9][a-z0-9_.-]*``) and unique per kind: if
  two distributions register the same name, the first one loaded is kept and the second is
  reported as a failure naming both.
* ``nascore_trial_started(experiment_id, trial_id, sample)``: a trial was submitted to an engine;
  ``sample`` is (a copy of) the ``{label: value}`` architecture it evaluates.
* ``nascore_trial_finished(experiment_id, trial_id, status, metric)``: a trial ended; ``status``
  is ``"SUCCEEDED"`` or ``"FAILED"``, ``metric`` its final default metric (``None`` if it has none).
* ``nascore_experiment_status_changed(experiment_id, status)``: the experiment is ``"RUNNING"``,
  then ``"DONE"``, ``"INTERRUPTED"`` or ``"FAILED"``.

The last three are notifications for loggers and dashboards, called in the process that runs the
experiment; they return nothing. An observer that raises is logged and ignored. For example::

    @hookimpl
    def nascore_trial_finished(trial_id, status, metric):
        print(f"trial {trial_id} {status}: {metric}")

An implementation may declare only the arguments it uses; new arguments added to a hook later do
not break it. A hook name nascore does not know is reported as a failure (mark it
``@hookimpl(optionalhook=True)`` if it targets another nascore version).

Controlling what loads
----------------------

* ``NASCORE_DISABLED_PLUGINS=broken-plugin,toy``: comma-separated entry-point or distribution
  names (``-``, ``_`` and ``.`` are equivalent, case does not matter) that are never imported.
* ``NASCORE_LOAD_PLUGINS=nascore-strategies``: an allow list; when set, only those load (an empty
  value loads no third-party plugin). nascore's built-in plugins always load.

A plugin that fails to import or register never stops nascore: it is logged as a warning, listed
by distribution in :attr:`PluginHost.failures`, and every other plugin keeps working.

Seeing what is installed
------------------------

``nascore plugins`` (or ``python -m nascore plugins``) prints every kind, name, distribution and
version, then the failures; ``nascore plugins --json`` prints JSON. In Python::

    from nascore.plugin import get_plugins

    plugins = get_plugins()                 # loaded once per process, on first use
    plugins.strategies.names()              # ['evolution', 'random', ...]
    plugins.strategies.get("toy")           # the registered class
    create_strategy("toy", seed=0)          # an instance, its arguments checked
    plugins.failures                        # PluginLoadError per problem

In tests and notebooks, register a plugin object without packaging it, or start over after
installing one::

    get_plugins().register_plugin(my_module_or_class, name="my-plugin")
    reset_plugins()

For tests, :func:`nascore.testing.distributions.make_distribution` writes a real distribution
(``*.dist-info`` with entry points) into a folder you can put on ``sys.path``/``PYTHONPATH``.
"""

from __future__ import annotations

from nascore.plugin.factory import (
    create_engine,
    create_evaluator,
    create_format,
    create_optimizer,
    create_strategy,
    load_model,
)
from nascore.plugin.kinds import KINDS, PluginKind
from nascore.plugin.manager import PluginHost, PluginInfo, get_plugins, reset_plugins
from nascore.plugin.registry import Registration, Registry
from nascore.plugin.spec import RegisterFn, hookimpl, hookspec

__all__ = [
    "KINDS",
    "PluginHost",
    "PluginInfo",
    "PluginKind",
    "RegisterFn",
    "Registration",
    "Registry",
    "create_engine",
    "create_evaluator",
    "create_format",
    "create_optimizer",
    "create_strategy",
    "get_plugins",
    "hookimpl",
    "hookspec",
    "load_model",
    "reset_plugins",
]
