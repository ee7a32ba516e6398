"""Every hook of :mod:`nascore.plugin.spec` is called by nascore, through a plugin, with its documented arguments.

One test per hook registers a plugin implementing it and checks what nascore passes: register hooks
through :class:`~nascore.plugin.PluginHost` loading (an entry point of a distribution) and
:meth:`~nascore.plugin.PluginHost.register_plugin`, observer hooks through the ``notify_*`` methods
(``tests/integration/test_observer_hooks.py`` checks them again through a real experiment). Each test
is marked ``@calls_hook(<hook>)``; the meta-test at the end fails for a hook of spec.py that no test
marks, as datasette's ``test_plugin_hooks_have_tests`` does.

Nothing here needs a plugin distribution: the core's tests run with none installed.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import pytest
import torch.nn as nn

from nascore.engine import ExecutionEngine
from nascore.evaluator import Evaluator
from nascore.format import ModelFormat
from nascore.optimizer import LogicalOptimizer
from nascore.plugin import PluginHost, get_plugins, hookimpl, reset_plugins, spec
from nascore.plugin.manager import CORE_DISTRIBUTION, RUNTIME_DISTRIBUTION
from nascore.strategy import Strategy

if TYPE_CHECKING:
    from .conftest import PluginEnvironment

Test = TypeVar("Test", bound=Callable[..., None])

#: hook name -> the tests of this module that call it through a plugin (filled by :func:`calls_hook`).
TESTED_HOOKS: dict[str, list[str]] = {}


def calls_hook(hook: str) -> Callable[[Test], Test]:
    """Mark a test as one that shows nascore calling ``hook`` through a plugin."""

    def mark(test: Test) -> Test:
        TESTED_HOOKS.setdefault(hook, []).append(test.__name__)
        return test

    return mark


def hookspec_names() -> list[str]:
    """The hooks of spec.py, found by the attribute pluggy's ``HookspecMarker`` sets on each."""
    marker = f"{spec.hookspec.project_name}_spec"
    return sorted(
        name
        for name, function in inspect.getmembers(spec, inspect.isfunction)
        if getattr(function, marker, None) is not None
    )


@pytest.fixture
def process_plugins() -> Iterator[PluginHost]:
    """The process-wide host, fresh for this test and dropped after it."""
    reset_plugins()
    yield get_plugins()
    reset_plugins()


# --- register hooks -----------------------------------------------------------------------------


class ToyStrategy(Strategy):
    """Toy strategy of the hook tests."""

    def run(self, context: Any) -> None:
        pass


class ToyEngine(ExecutionEngine):
    """Toy engine of the hook tests."""

    def start(self, context: Any) -> None:
        pass

    def submit(self, submission: Any) -> None:
        pass

    def idle_slots(self) -> int:
        return 1

    def running(self) -> int:
        return 0

    def wait(self, timeout: float | None = None) -> None:
        pass

    def shutdown(self) -> None:
        pass


class ToyFormat(ModelFormat):
    """Toy format of the hook tests."""

    def build(self, space: nn.Module) -> Any:
        raise NotImplementedError


class ToyEvaluator(Evaluator):
    """Toy evaluator of the hook tests."""

    def evaluate_module(self, module: nn.Module) -> float:
        return 0.0


def toy_evaluator_factory() -> Evaluator:
    """Toy evaluator factory of the hook tests."""
    return ToyEvaluator()


class ToyOptimizer(LogicalOptimizer):
    """Toy optimizer of the hook tests."""

    def convert(self, plan: Any) -> Any:
        return plan


def register_hook_plugin(
    hook: str, registrations: Mapping[str, tuple[object, str | None]], calls: list[dict[str, Any]]
) -> Callable[..., None]:
    """A ``@hookimpl`` of ``hook`` that records its arguments and registers ``name -> (obj, description)``."""

    def implementation(register: Any) -> None:
        calls.append({"register": register})
        for name, (obj, description) in registrations.items():
            if description is None:
                register(name, obj)
            else:
                register(name, obj, description=description)

    implementation.__name__ = hook
    return hookimpl(implementation)


def check_register_hook(
    plugin_env: PluginEnvironment, kind: str, registrations: Mapping[str, tuple[object, str | None]]
) -> None:
    """Load a plugin implementing the register hook of ``kind``, from a distribution and in-process."""
    hook = spec.REGISTER_HOOKS[kind]

    # 1. From an installed distribution's entry point, as PluginHost.load finds it.
    calls: list[dict[str, Any]] = []
    plugin_env.add_in_memory(
        "toy-hooks",
        "1.2",
        modules={"toy_hooks_plugin": {hook: register_hook_plugin(hook, registrations, calls)}},
        entry_points={"toy": "toy_hooks_plugin"},
    )
    host = plugin_env.load()

    assert host.failures == [], f"{hook}: {host.failures}"
    assert len(calls) == 1, f"{hook} was called {len(calls)} times while loading, expected once"
    [arguments] = calls
    check_register_callback(hook, arguments["register"])
    registry = host.registries[kind]
    assert registry.names() == sorted(registrations), hook
    for name, (obj, description) in registrations.items():
        registration = registry.registration(name)
        assert registration.obj is obj, (hook, name)
        assert (registration.kind, registration.distribution, registration.version, registration.plugin) == (
            kind,
            "toy-hooks",
            "1.2",
            "toy",
        ), (hook, name)
        expected = description if description is not None else inspect.getdoc(obj).splitlines()[0]  # type: ignore[union-attr]
        assert registration.description == expected, (hook, name)
    other_kinds = [r for k, r in host.registries.items() if k != kind and len(r)]
    assert other_kinds == [], f"{hook} registered into other kinds: {other_kinds}"
    # Loading calls no observer and does not call the register hook again.
    host.notify_experiment_status_changed("exp", "RUNNING")
    assert len(calls) == 1, hook

    # 2. In-process, with PluginHost.register_plugin.
    calls.clear()
    plugin = type("InProcessPlugin", (), {hook: staticmethod(register_hook_plugin(hook, registrations, calls))})
    host = PluginHost()
    added = host.register_plugin(plugin, name="in-process")

    assert len(calls) == 1, hook
    check_register_callback(hook, calls[0]["register"])
    assert sorted((entry.kind, entry.name) for entry in added) == [(kind, name) for name in sorted(registrations)]
    assert all(entry.distribution == RUNTIME_DISTRIBUTION for entry in added), hook
    assert {name: host.registries[kind].get(name) for name in registrations} == {
        name: obj for name, (obj, _) in registrations.items()
    }


def check_register_callback(hook: str, register: Any) -> None:
    """``register`` has the documented signature: ``register(name, obj, *, description=None)``."""
    assert callable(register), f"{hook} was not given a callable register"
    parameters = inspect.signature(register).parameters
    assert list(parameters) == ["name", "obj", "description"], f"{hook}: register{inspect.signature(register)}"
    assert parameters["description"].kind is inspect.Parameter.KEYWORD_ONLY, hook
    assert parameters["description"].default is None, hook


@calls_hook("nascore_register_strategies")
def test_nascore_register_strategies_registers_strategies(plugin_env: PluginEnvironment) -> None:
    check_register_hook(
        plugin_env, "strategy", {"toy": (ToyStrategy, None), "toy-described": (ToyStrategy, "Described.")}
    )


@calls_hook("nascore_register_strategies")
def test_strategies_registered_through_the_process_wide_host_are_usable(
    process_plugins: PluginHost,
) -> None:
    from nascore.plugin import create_strategy

    calls: list[dict[str, Any]] = []
    plugin = type(
        "Notebook",
        (),
        {
            "nascore_register_strategies": staticmethod(
                register_hook_plugin("nascore_register_strategies", {"toy-hooks": (ToyStrategy, None)}, calls)
            )
        },
    )
    get_plugins().register_plugin(plugin, name="notebook")

    assert len(calls) == 1
    assert isinstance(create_strategy("toy-hooks"), ToyStrategy)


@calls_hook("nascore_register_engines")
def test_nascore_register_engines_registers_engines(plugin_env: PluginEnvironment) -> None:
    check_register_hook(plugin_env, "engine", {"toy": (ToyEngine, "Runs nothing.")})


@calls_hook("nascore_register_formats")
def test_nascore_register_formats_registers_formats(plugin_env: PluginEnvironment) -> None:
    check_register_hook(plugin_env, "format", {"toy": (ToyFormat, None)})


@calls_hook("nascore_register_evaluators")
def test_nascore_register_evaluators_registers_classes_and_factories(plugin_env: PluginEnvironment) -> None:
    check_register_hook(
        plugin_env, "evaluator", {"toy": (ToyEvaluator, None), "toy-factory": (toy_evaluator_factory, None)}
    )


@calls_hook("nascore_register_evaluators")
def test_the_core_registers_its_evaluators_through_the_hook(plugin_env: PluginEnvironment) -> None:
    from nascore.evaluators import FunctionalEvaluator
    from nascore.evaluators import plugin as builtin

    host = plugin_env.load(builtins=(builtin.__name__,))

    assert host.failures == []
    assert host.evaluators.get("functional") is FunctionalEvaluator
    registration = host.evaluators.registration("functional")
    assert (registration.distribution, registration.plugin) == (CORE_DISTRIBUTION, builtin.__name__)


@calls_hook("nascore_register_optimizers")
def test_nascore_register_optimizers_registers_optimizers(plugin_env: PluginEnvironment) -> None:
    check_register_hook(plugin_env, "optimizer", {"toy": (ToyOptimizer, None)})


# --- observer hooks -----------------------------------------------------------------------------


class TrialStarted:
    """Implements nascore_trial_started with every argument."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int, dict[str, Any]]] = []

    @hookimpl
    def nascore_trial_started(self, experiment_id: str, trial_id: int, sample: dict[str, Any]) -> None:
        self.calls.append((experiment_id, trial_id, dict(sample)))
        sample["changed by an observer"] = True


class TrialStartedIdOnly:
    """Implements nascore_trial_started with a subset of its arguments (pluggy matches them by name)."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    @hookimpl
    def nascore_trial_started(self, trial_id: int) -> None:
        self.calls.append(trial_id)


@calls_hook("nascore_trial_started")
def test_nascore_trial_started_is_called_by_notify_trial_started() -> None:
    host = PluginHost()
    full, partial = TrialStarted(), TrialStartedIdOnly()
    host.register_plugin(full, name="full")
    host.register_plugin(partial, name="partial")
    sample = {"width": 8, "act": "relu"}

    host.notify_trial_started("exp-1", 3, sample)
    host.notify_trial_started("exp-1", 4, {"width": 4, "act": "tanh"})

    assert full.calls == [("exp-1", 3, {"width": 8, "act": "relu"}), ("exp-1", 4, {"width": 4, "act": "tanh"})]
    assert partial.calls == [3, 4]
    assert sample == {"width": 8, "act": "relu"}  # observers get a copy


class TrialFinished:
    """Implements nascore_trial_finished with every argument."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int, str, float | None]] = []

    @hookimpl
    def nascore_trial_finished(self, experiment_id: str, trial_id: int, status: str, metric: float | None) -> None:
        self.calls.append((experiment_id, trial_id, status, metric))


class TrialFinishedMetricOnly:
    def __init__(self) -> None:
        self.calls: list[float | None] = []

    @hookimpl
    def nascore_trial_finished(self, metric: float | None) -> None:
        self.calls.append(metric)


@calls_hook("nascore_trial_finished")
def test_nascore_trial_finished_is_called_by_notify_trial_finished(process_plugins: PluginHost) -> None:
    full, partial = TrialFinished(), TrialFinishedMetricOnly()
    get_plugins().register_plugin(full, name="full")
    get_plugins().register_plugin(partial, name="partial")

    get_plugins().notify_trial_finished("exp-1", 3, "SUCCEEDED", 0.93)
    get_plugins().notify_trial_finished("exp-1", 4, "FAILED", None)

    assert full.calls == [("exp-1", 3, "SUCCEEDED", 0.93), ("exp-1", 4, "FAILED", None)]
    assert partial.calls == [0.93, None]


class ExperimentStatus:
    """Implements nascore_experiment_status_changed with every argument."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    @hookimpl
    def nascore_experiment_status_changed(self, experiment_id: str, status: str) -> None:
        self.calls.append((experiment_id, status))


class Broken:
    @hookimpl
    def nascore_experiment_status_changed(self, status: str) -> None:
        raise RuntimeError(f"cannot show {status}")


@calls_hook("nascore_experiment_status_changed")
def test_nascore_experiment_status_changed_is_called_by_notify_experiment_status_changed() -> None:
    host = PluginHost()
    observer = ExperimentStatus()
    host.register_plugin(Broken(), name="broken")  # logged and ignored; the next observer still runs
    host.register_plugin(observer, name="observer")

    host.notify_experiment_status_changed("exp-1", "RUNNING")
    host.notify_experiment_status_changed("exp-1", "DONE")

    assert observer.calls == [("exp-1", "RUNNING"), ("exp-1", "DONE")]


# --- meta-test ----------------------------------------------------------------------------------


def test_every_hook_has_a_test_calling_it_through_a_plugin() -> None:
    hooks = hookspec_names()
    assert hooks, "no hookspec found in nascore/plugin/spec.py"
    untested = [hook for hook in hooks if hook not in TESTED_HOOKS]
    assert not untested, (
        f"hook(s) of nascore/plugin/spec.py with no test calling them through a plugin: {', '.join(untested)}. "
        "Add a test marked @calls_hook('<hook>') to tests/core/plugin/test_hooks_called.py."
    )
    unknown = sorted(set(TESTED_HOOKS) - set(hooks))
    assert not unknown, f"@calls_hook names hook(s) that spec.py does not define: {', '.join(unknown)}"
    module = globals()
    for hook, tests in TESTED_HOOKS.items():
        for name in tests:
            assert name.startswith("test_") and callable(module.get(name)), (
                f"@calls_hook({hook!r}) marks {name}, which is not a test of this module"
            )
