"""Plugin discovery and the PluginHost facade, against real (hermetic) installed distributions."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

from nascore.engine import ExecutionEngine
from nascore.errors import PluginConflictError, PluginLoadError
from nascore.plugin import PluginHost, get_plugins, hookimpl, reset_plugins
from nascore.plugin.manager import BUILTIN_PLUGINS, CORE_DISTRIBUTION, PluginSelection, canonical_name
from nascore.strategy import Strategy

if TYPE_CHECKING:
    from .conftest import PluginEnvironment

Source = Callable[..., str]


# --- discovery and attribution ------------------------------------------------------------------


def test_an_entry_point_plugin_registers_under_its_distribution_and_version(
    plugin_env: PluginEnvironment, strategy_source: Source
) -> None:
    plugin_env.add(
        "good-plugin",
        "0.1",
        modules={"good_plugin": strategy_source("toy", "Toy")},
        entry_points={"good": "good_plugin"},
    )
    host = plugin_env.load()

    assert host.failures == []
    assert host.strategies.names() == ["toy"]
    registration = host.strategies.registration("toy")
    assert registration.obj is sys.modules["good_plugin"].Toy
    assert (registration.distribution, registration.version, registration.plugin) == (
        "good-plugin",
        "0.1",
        "good",
    )
    assert registration.description == "A strategy for tests."
    assert [(info.name, info.distribution, info.version) for info in host.plugins] == [
        ("good", "good-plugin", "0.1")
    ]


def test_one_plugin_registers_several_kinds(plugin_env: PluginEnvironment) -> None:
    source = """
        from nascore.engine import ExecutionEngine
        from nascore.format import ModelFormat
        from nascore.plugin import hookimpl

        class Sequential(ExecutionEngine):
            start = submit = idle_slots = running = wait = shutdown = lambda *args: None

        class Raw(ModelFormat):
            build = lambda self, space: None

        @hookimpl
        def nascore_register_engines(register):
            register("sequential", Sequential, description="one trial at a time")

        @hookimpl
        def nascore_register_formats(register):
            register("raw", Raw)
    """
    plugin_env.add("multi", modules={"multi_plugin": source}, entry_points={"multi": "multi_plugin"})
    host = plugin_env.load()

    assert host.engines.names() == ["sequential"]
    assert host.engines.registration("sequential").description == "one trial at a time"
    assert host.formats.names() == ["raw"]
    assert [(r.kind, r.name) for r in host.registrations()] == [("engine", "sequential"), ("format", "raw")]


def test_a_plugin_that_fails_to_import_is_reported_by_distribution_and_the_rest_load(
    plugin_env: PluginEnvironment, strategy_source: Source, caplog: pytest.LogCaptureFixture
) -> None:
    plugin_env.add(
        "broken-plugin",
        "0.1",
        modules={"broken_plugin": "raise RuntimeError('the plugin is broken on purpose')\n"},
        entry_points={"broken": "broken_plugin"},
    )
    plugin_env.add(
        "good-plugin",
        "0.2",
        modules={"good_plugin": strategy_source("toy", "Toy")},
        entry_points={"good": "good_plugin"},
    )

    with caplog.at_level(logging.WARNING, logger="nascore.plugin.manager"):
        host = plugin_env.load()

    assert host.strategies.names() == ["toy"]
    [failure] = host.failures
    message = str(failure)
    assert failure.distribution == "broken-plugin"
    assert "broken-plugin 0.1" in message
    assert "entry point broken = broken_plugin" in message
    assert "RuntimeError: the plugin is broken on purpose" in message
    assert "broken_plugin.py" in message  # the traceback summary points at the culprit
    assert "NASCORE_DISABLED_PLUGINS=broken-plugin" in message
    assert "broken-plugin" in caplog.text


@pytest.mark.parametrize(
    ("source", "error"),
    [
        ("def oops(:\n", "SyntaxError"),
        ("import module_that_does_not_exist_anywhere\n", "ModuleNotFoundError"),
    ],
)
def test_syntax_and_import_errors_are_failures_too(
    plugin_env: PluginEnvironment, source: str, error: str
) -> None:
    plugin_env.add("bad-plugin", "3.0", modules={"bad_plugin": source}, entry_points={"bad": "bad_plugin"})
    host = plugin_env.load()

    [failure] = host.failures
    assert failure.distribution == "bad-plugin"
    assert error in str(failure)


def test_a_register_hook_that_raises_is_a_failure_and_keeps_none_of_its_registrations(
    plugin_env: PluginEnvironment,
) -> None:
    source = """
        from nascore.format import ModelFormat
        from nascore.plugin import hookimpl
        from nascore.strategy import Strategy

        class Half(Strategy):
            run = lambda self, context: None

        class Fine(ModelFormat):
            build = lambda self, space: None

        @hookimpl
        def nascore_register_strategies(register):
            register("half", Half)
            raise ValueError("cannot register today")

        @hookimpl
        def nascore_register_formats(register):
            register("fine", Fine)
    """
    plugin_env.add(
        "flaky-plugin", "1.2", modules={"flaky_plugin": source}, entry_points={"flaky": "flaky_plugin"}
    )
    host = plugin_env.load()

    [failure] = host.failures
    assert failure.distribution == "flaky-plugin"
    assert "nascore_register_strategies hook raised" in str(failure)
    assert "ValueError: cannot register today" in str(failure)
    assert "half" not in host.strategies
    assert host.formats.names() == ["fine"]  # its other hooks still count


def test_an_invalid_name_is_a_failure_naming_the_distribution_and_other_names_still_register(
    plugin_env: PluginEnvironment,
) -> None:
    source = """
        from nascore.plugin import hookimpl
        from nascore.strategy import Strategy

        class Toy(Strategy):
            run = lambda self, context: None

        @hookimpl
        def nascore_register_strategies(register):
            register("Bad Name", Toy)
            register("good-name", Toy)
    """
    plugin_env.add(
        "sloppy-plugin", modules={"sloppy_plugin": source}, entry_points={"sloppy": "sloppy_plugin"}
    )
    host = plugin_env.load()

    [failure] = host.failures
    assert failure.distribution == "sloppy-plugin"
    assert "'Bad Name'" in str(failure)
    assert host.strategies.names() == ["good-name"]


def test_a_conflict_names_both_distributions_and_the_first_registration_stays(
    plugin_env: PluginEnvironment, strategy_source: Source
) -> None:
    plugin_env.add(
        "first-plugin",
        "1.0",
        modules={"first_plugin": strategy_source("toy", "FirstToy")},
        entry_points={"first": "first_plugin"},
    )
    plugin_env.add(
        "second-plugin",
        "2.0",
        modules={"second_plugin": strategy_source("toy", "SecondToy")},
        entry_points={"second": "second_plugin"},
    )
    host = plugin_env.load()

    assert host.strategies.get("toy") is sys.modules["first_plugin"].FirstToy
    [failure] = host.failures
    assert failure.distribution == "second-plugin"
    assert isinstance(failure.__cause__, PluginConflictError)
    assert "first-plugin 1.0" in str(failure)
    assert "second-plugin 2.0" in str(failure)


def test_a_hook_implementation_may_take_fewer_arguments(plugin_env: PluginEnvironment) -> None:
    calls: list[Any] = []

    @hookimpl
    def nascore_register_optimizers() -> None:
        calls.append("registered nothing")

    @hookimpl
    def nascore_trial_finished(status: str) -> None:
        calls.append(status)

    plugin_env.add_in_memory(
        "minimal-plugin",
        modules={
            "minimal_plugin": {
                "nascore_register_optimizers": nascore_register_optimizers,
                "nascore_trial_finished": nascore_trial_finished,
            }
        },
        entry_points={"minimal": "minimal_plugin"},
    )
    host = plugin_env.load()
    host.notify_trial_finished("exp", 3, "succeeded", 0.9)

    assert host.failures == []
    assert calls == ["registered nothing", "succeeded"]


def test_a_misspelt_hook_is_reported_unless_marked_optional(plugin_env: PluginEnvironment) -> None:
    @hookimpl
    def nascore_register_strategy(register: Any) -> None:  # missing the final "s"
        register("never", object)

    @hookimpl(optionalhook=True)
    def nascore_from_the_future(register: Any) -> None:
        pass

    plugin_env.add_in_memory(
        "typo-plugin",
        modules={
            "typo_plugin": {
                "nascore_register_strategy": nascore_register_strategy,
                "nascore_from_the_future": nascore_from_the_future,
            }
        },
        entry_points={"typo": "typo_plugin"},
    )
    host = plugin_env.load()

    [failure] = host.failures
    assert failure.distribution == "typo-plugin"
    assert "'nascore_register_strategy' is not a nascore hook" in str(failure)


def test_an_implementation_asking_for_an_unknown_argument_is_a_failure(plugin_env: PluginEnvironment) -> None:
    @hookimpl
    def nascore_register_strategies(register: Any, experiment: Any) -> None:
        pass

    plugin_env.add_in_memory(
        "greedy-plugin",
        modules={"greedy_plugin": {"nascore_register_strategies": nascore_register_strategies}},
        entry_points={"greedy": "greedy_plugin"},
    )
    host = plugin_env.load()

    [failure] = host.failures
    assert failure.distribution == "greedy-plugin"
    assert "experiment" in str(failure)
    assert host.plugins == []


def test_one_module_behind_two_entry_points_registers_once(
    plugin_env: PluginEnvironment, strategy_source: Source
) -> None:
    plugin_env.add(
        "twice",
        modules={"twice_plugin": strategy_source("toy", "Toy")},
        entry_points={"a": "twice_plugin", "b": "twice_plugin"},
    )
    host = plugin_env.load()

    assert host.failures == []
    assert host.strategies.names() == ["toy"]


# --- built-in plugins ---------------------------------------------------------------------------


def test_builtins_load_first_and_are_attributed_to_nascore(
    plugin_env: PluginEnvironment, strategy_source: Source
) -> None:
    plugin_env.add(
        "core-builtin-stand-in",
        modules={"builtin_stand_in": strategy_source("toy", "CoreToy")},
        entry_points={},
    )
    plugin_env.add(
        "late-plugin",
        modules={"late_plugin": strategy_source("toy", "LateToy")},
        entry_points={"late": "late_plugin"},
    )
    host = plugin_env.load(builtins=("builtin_stand_in",))

    registration = host.strategies.registration("toy")
    assert registration.distribution == CORE_DISTRIBUTION
    assert registration.plugin == "builtin_stand_in"
    [failure] = host.failures  # the later plugin conflicts, the built-in stays
    assert failure.distribution == "late-plugin"


def test_a_missing_builtin_is_a_failure_and_does_not_stop_other_plugins(
    plugin_env: PluginEnvironment, strategy_source: Source
) -> None:
    plugin_env.add(
        "good-plugin",
        modules={"good_plugin": strategy_source("toy", "Toy")},
        entry_points={"good": "good_plugin"},
    )
    host = plugin_env.load(builtins=("nascore_no_such_builtin_module",))

    [failure] = host.failures
    assert failure.distribution == CORE_DISTRIBUTION
    assert "nascore_no_such_builtin_module" in str(failure)
    assert host.strategies.names() == ["toy"]


def test_the_default_builtins_are_the_core_evaluators() -> None:
    assert BUILTIN_PLUGINS == ("nascore.evaluators.plugin",)


# --- NASCORE_DISABLED_PLUGINS / NASCORE_LOAD_PLUGINS --------------------------------------------


@pytest.fixture
def three_plugins(plugin_env: PluginEnvironment, strategy_source: Source) -> PluginEnvironment:
    """Three distributions; ``broken-plugin`` fails if it is ever imported."""
    plugin_env.add(
        "good-plugin",
        "0.1",
        modules={"good_plugin": strategy_source("toy", "Toy")},
        entry_points={"good": "good_plugin"},
    )
    plugin_env.add(
        "other_Plugin",
        "0.2",
        modules={"other_plugin": strategy_source("other", "Other")},
        entry_points={"other": "other_plugin"},
    )
    plugin_env.add(
        "broken-plugin",
        "0.3",
        modules={"broken_plugin": "raise RuntimeError('imported')\n"},
        entry_points={"broken": "broken_plugin"},
    )
    return plugin_env


@pytest.mark.parametrize("disabled", ["broken", "broken-plugin", "Broken_Plugin", " good , broken.plugin "])
def test_disabled_plugins_are_never_imported(three_plugins: PluginEnvironment, disabled: str) -> None:
    host = three_plugins.load(environ={"NASCORE_DISABLED_PLUGINS": disabled})

    assert host.failures == []
    assert "broken_plugin" not in sys.modules
    assert "other" in host.strategies
    assert [info.distribution for info in host.disabled if info.distribution == "broken-plugin"] == [
        "broken-plugin"
    ]


def test_the_allow_list_loads_only_the_listed_plugins_but_always_the_builtins(
    three_plugins: PluginEnvironment, strategy_source: Source
) -> None:
    three_plugins.add(
        "core-stand-in", modules={"core_stand_in": strategy_source("core", "Core")}, entry_points={}
    )
    host = three_plugins.load(builtins=("core_stand_in",), environ={"NASCORE_LOAD_PLUGINS": "other-plugin"})

    assert host.failures == []
    assert host.strategies.names() == ["core", "other"]
    assert sorted(info.distribution for info in host.disabled) == ["broken-plugin", "good-plugin"]


def test_an_empty_allow_list_loads_no_third_party_plugin(three_plugins: PluginEnvironment) -> None:
    host = three_plugins.load(environ={"NASCORE_LOAD_PLUGINS": ""})

    assert host.registrations() == []
    assert host.failures == []


def test_the_block_list_wins_over_the_allow_list() -> None:
    selection = PluginSelection.from_environ(
        {"NASCORE_LOAD_PLUGINS": "good,other", "NASCORE_DISABLED_PLUGINS": "good-plugin"}
    )
    assert selection.reason_to_skip("good", "good-plugin") == "disabled by NASCORE_DISABLED_PLUGINS"
    assert selection.reason_to_skip("other", "other-plugin") is None
    assert selection.reason_to_skip("third", "third-plugin") == "not listed in NASCORE_LOAD_PLUGINS"


def test_canonical_name_follows_pep_503() -> None:
    assert (
        canonical_name("Good_Plugin")
        == canonical_name("good.plugin")
        == canonical_name("good--plugin")
        == "good-plugin"
    )


# --- observers ----------------------------------------------------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []

    @hookimpl
    def nascore_trial_started(self, experiment_id: str, trial_id: int, sample: dict[str, Any]) -> None:
        self.events.append(("started", experiment_id, trial_id, dict(sample)))
        sample["mutated"] = True

    @hookimpl
    def nascore_trial_finished(
        self, experiment_id: str, trial_id: int, status: str, metric: float | None
    ) -> None:
        self.events.append(("finished", experiment_id, trial_id, status, metric))

    @hookimpl
    def nascore_experiment_status_changed(self, experiment_id: str, status: str) -> None:
        self.events.append(("experiment", experiment_id, status))


class Exploding:
    @hookimpl
    def nascore_trial_started(self, trial_id: int) -> None:
        raise RuntimeError(f"dashboard down for trial {trial_id}")


def test_observers_receive_notifications_and_one_that_raises_breaks_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    host = PluginHost()
    first, second = Recorder(), Recorder()
    host.register_plugin(first, name="first")
    host.register_plugin(Exploding(), name="exploding")
    host.register_plugin(second, name="second")
    sample = {"depth": 3}

    with caplog.at_level(logging.WARNING, logger="nascore.plugin.manager"):
        host.notify_trial_started("exp-1", 7, sample)
    host.notify_trial_finished("exp-1", 7, "succeeded", 0.93)
    host.notify_experiment_status_changed("exp-1", "done")

    expected = [
        ("started", "exp-1", 7, {"depth": 3}),
        ("finished", "exp-1", 7, "succeeded", 0.93),
        ("experiment", "exp-1", "done"),
    ]
    assert first.events == expected
    assert second.events == expected  # not disturbed by the other observers
    assert sample == {"depth": 3}
    assert "exploding" in caplog.text and "dashboard down for trial 7" in caplog.text


# --- register_plugin ----------------------------------------------------------------------------


class ToyStrategies:
    """Plugin registering two strategies."""

    class Toy(Strategy):
        """Toy strategy."""

        def run(self, context: Any) -> None:
            pass

    class Other(Strategy):
        def run(self, context: Any) -> None:
            pass

    @staticmethod
    @hookimpl
    def nascore_register_strategies(register: Any) -> None:
        register("toy", ToyStrategies.Toy)
        register("other", ToyStrategies.Other, description="explicit")


def test_register_plugin_registers_an_in_process_plugin() -> None:
    host = PluginHost()
    added = host.register_plugin(ToyStrategies, name="toys", distribution="my-notebook", version="0")

    assert sorted(entry.name for entry in added) == ["other", "toy"]
    assert host.strategies.get("toy") is ToyStrategies.Toy
    assert host.strategies.registration("toy").description == "Toy strategy."
    assert host.strategies.registration("other").description == "explicit"
    assert host.strategies.registration("toy").distribution == "my-notebook"


class FirstToy(Strategy):
    def run(self, context: Any) -> None:
        pass


def test_register_plugin_raises_on_a_conflict_and_keeps_the_rest() -> None:
    class OneToy:
        @staticmethod
        @hookimpl
        def nascore_register_strategies(register: Any) -> None:
            register("toy", FirstToy)

    host = PluginHost()
    host.register_plugin(OneToy, name="one", distribution="first-dist")
    with pytest.raises(PluginLoadError, match="first-dist.*second-dist") as excinfo:
        host.register_plugin(ToyStrategies, name="two", distribution="second-dist")

    assert excinfo.value.distribution == "second-dist"
    assert host.strategies.get("toy") is FirstToy
    assert "other" in host.strategies
    assert host.failures == [excinfo.value]


def test_register_plugin_without_strict_only_records_problems() -> None:
    class SameToys(ToyStrategies):
        pass

    host = PluginHost()
    host.register_plugin(ToyStrategies, name="first")
    added = host.register_plugin(SameToys, name="again", strict=False)

    assert added == []
    assert len(host.failures) == 2  # "toy" and "other" both conflict


def test_register_plugin_refuses_a_plugin_name_twice() -> None:
    host = PluginHost()
    host.register_plugin(ToyStrategies, name="toys")
    with pytest.raises(PluginLoadError, match="already registered"):
        host.register_plugin(Recorder(), name="toys")


# --- the process-wide host ----------------------------------------------------------------------


def test_get_plugins_is_a_lazy_singleton_and_reset_plugins_rediscovers(
    plugin_env: PluginEnvironment,
    strategy_source: Source,
    fresh_plugins: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("NASCORE_DISABLED_PLUGINS", raising=False)
    monkeypatch.delenv("NASCORE_LOAD_PLUGINS", raising=False)
    plugin_env.add(
        "good-plugin",
        modules={"good_plugin": strategy_source("toy", "Toy")},
        entry_points={"good": "good_plugin"},
    )

    host = get_plugins()
    assert get_plugins() is host
    assert "toy" in host.strategies
    assert "late" not in host.strategies

    plugin_env.add(
        "late-plugin",
        modules={"late_plugin": strategy_source("late", "Late")},
        entry_points={"late": "late_plugin"},
    )
    assert "late" not in get_plugins().strategies  # installed after loading: not seen yet
    reset_plugins()
    assert get_plugins() is not host
    assert "late" in get_plugins().strategies


def test_get_plugins_reads_the_environment_variables(
    three_plugins: PluginEnvironment, fresh_plugins: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NASCORE_DISABLED_PLUGINS", "broken-plugin")
    monkeypatch.delenv("NASCORE_LOAD_PLUGINS", raising=False)

    host = get_plugins()
    assert {"toy", "other"} <= set(host.strategies.names())
    assert not [failure for failure in host.failures if failure.distribution == "broken-plugin"]


def test_a_plugin_calling_get_plugins_while_loading_is_a_failure_not_a_recursion(
    plugin_env: PluginEnvironment, fresh_plugins: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NASCORE_LOAD_PLUGINS", raising=False)
    monkeypatch.delenv("NASCORE_DISABLED_PLUGINS", raising=False)
    source = "from nascore.plugin import get_plugins\nget_plugins()\n"
    plugin_env.add("eager-plugin", modules={"eager_plugin": source}, entry_points={"eager": "eager_plugin"})

    failures = [failure for failure in get_plugins().failures if failure.distribution == "eager-plugin"]
    assert len(failures) == 1
    assert "while nascore was loading its plugins" in str(failures[0])


class NotAStrategy:
    """Has a run method, but is no Strategy."""

    def run(self, context: Any) -> None:
        pass


class HalfEngine(ExecutionEngine):
    """Forgets most of the engine contract."""

    def start(self, context: Any) -> None:
        pass


@pytest.mark.parametrize(
    ("hook", "obj", "message"),
    [
        ("nascore_register_strategies", NotAStrategy,
         "distribution wrong-dist registered the strategy 'x' wrongly: "
         "tests.core.plugin.test_manager.NotAStrategy does not derive from nascore.strategy.Strategy"),
        ("nascore_register_strategies", object(), "expected a class deriving from nascore.strategy.Strategy, got object"),
        ("nascore_register_engines", HalfEngine,
         "HalfEngine leaves abstract methods unimplemented: idle_slots, running, shutdown, submit, wait"),
        ("nascore_register_formats", NotAStrategy, "does not derive from nascore.format.ModelFormat"),
        ("nascore_register_evaluators", NotAStrategy, "does not derive from nascore.evaluator.Evaluator"),
        ("nascore_register_optimizers", None, "expected a class deriving from nascore.optimizer.LogicalOptimizer, got NoneType"),
    ],
)
def test_what_is_not_of_its_kind_is_refused_at_registration_naming_the_distribution(hook: str, obj: Any, message: str) -> None:
    def register_it(register: Any) -> None:
        register("x", obj)

    register_it.__name__ = hook
    plugin = type("Wrong", (), {hook: staticmethod(hookimpl(register_it))})
    host = PluginHost()
    with pytest.raises(PluginLoadError) as info:
        host.register_plugin(plugin, name="wrong", distribution="wrong-dist")
    assert message in str(info.value) and "wrong-dist" in str(info.value)
    assert len(host.registrations()) == 0


def test_a_function_may_be_registered_as_an_evaluator_factory() -> None:
    def make_evaluator() -> Any:
        return None

    class Factories:
        @staticmethod
        @hookimpl
        def nascore_register_evaluators(register: Any) -> None:
            register("lazy", make_evaluator)

    host = PluginHost()
    host.register_plugin(Factories, name="factories")
    assert host.evaluators.get("lazy") is make_evaluator
