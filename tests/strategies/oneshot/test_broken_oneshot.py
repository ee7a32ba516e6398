"""The one-shot conformance suite fails broken one-shot strategies, saying what is wrong and naming them.

The toy strategies here are defined in this file (no nascore_strategies import). The suite runs real
experiments, which need the ``raw`` format and the ``sequential`` engine of nascore-formats and
nascore-engines: the core alone has no format and no engine, so these tests live with the one-shot
strategies' tests instead of tests/core. The suite's methods are called directly, with the toy as
``make_strategy``, and the AssertionError each raises is checked.
"""

from __future__ import annotations

import itertools
import re
from typing import Any

import pytest

from nascore.errors import PluginLoadError, StrategyError
from nascore.nn import Cell, InputChoice, LayerChoice, ModelSpace, ParametrizedModule, Repeat
from nascore.plugin import get_plugins, hookimpl, reset_plugins
from nascore.strategy import Strategy, StrategyContext
from nascore.testing.oneshot import OneShotStrategyTestSuite


class Untrained(Strategy):
    """Exports the first value of every decision without training any supernet.

    :param seed: unused.
    """

    def run(self, context: StrategyContext) -> None:
        self.submit(context, {label: decision.default_value() for label, decision in context.space.simplify().items()})

    @staticmethod
    def submit(context: StrategyContext, sample: dict[str, Any]) -> None:
        context.submit(sample)
        while context.running():
            context.wait()


class OutOfSpace(Untrained):
    """Exports a width of 5, which is not a choice of the space."""

    def run(self, context: StrategyContext) -> None:
        sample = {label: decision.default_value() for label, decision in context.space.simplify().items()}
        self.submit(context, {**sample, "width": 5})


class Drifting(Untrained):
    """Exports the next architecture of the grid each time it runs, whatever the seed."""

    runs = itertools.count()

    def run(self, context: StrategyContext) -> None:
        decisions = context.space.simplify()
        grid = list(itertools.product(*(d.values for d in decisions.values())))  # type: ignore[attr-defined]
        self.submit(context, dict(zip(decisions, grid[next(self.runs) % len(grid)])))


class Crashing(Untrained):
    """Looks modules up in a table of the primitives it knows: a KeyError for any other."""

    known = (LayerChoice, InputChoice, ParametrizedModule, Repeat, Cell, ModelSpace)

    def check_space(self, space: Any) -> None:
        table = {cls: cls.__name__ for cls in self.known}
        for module in space.space.modules():
            if getattr(module, "mutables", None) and not isinstance(module, self.known):
                table[type(module)]  # noqa: B018 - the crash is the point


class Vague(Crashing):
    """Refuses unknown primitives with a StrategyError that names neither the decision nor the strategy."""

    def check_space(self, space: Any) -> None:
        try:
            super().check_space(space)
        except KeyError:
            raise StrategyError("unsupported module") from None


class Careful(Crashing):
    """Refuses unknown primitives as the suite wants: a StrategyError naming the labels and the strategy.

    :param seed: seed of its (absent) random choices.
    """

    def check_space(self, space: Any) -> None:
        for name, module in space.space.named_modules():
            labels = sorted(m.label for m in getattr(module, "mutables", ()) or ())
            if labels and not isinstance(module, self.known):
                raise StrategyError(f"Careful cannot search module {name!r} with the decision(s) {', '.join(map(repr, labels))}")


class Undocumented(Careful):
    """Documents ``seed`` (in Careful) but not ``temperature``."""

    def __init__(self, *, temperature: float = 1.0, seed: int | None = None) -> None:
        super().__init__(seed=seed)
        self.temperature = temperature


class Suite(OneShotStrategyTestSuite):
    """The suite as a third party subclasses it; each test gives its toy as make_strategy."""


def factory(cls: type[Strategy]) -> Any:
    return lambda **kwargs: cls(**kwargs)


def failure(check: Any, **kwargs: Any) -> str:
    """Run one check of the suite; it must fail: return its message."""
    with pytest.raises(AssertionError) as caught:
        check(**kwargs)
    return str(caught.value)


@pytest.fixture
def register():
    """Register toys by name as a distribution would, for the registration check; undone afterwards."""

    def add(name: str, obj: Any, distribution: str = "toy-nas") -> None:
        class Plugin:
            @staticmethod
            @hookimpl
            def nascore_register_strategies(register):
                register(name, obj)

        get_plugins().register_plugin(Plugin, name=f"toy-{name}", distribution=distribution)

    yield add
    reset_plugins()


def test_a_strategy_that_trains_no_supernet_fails_the_training_checks(tmp_path):
    suite = Suite()
    message = failure(suite.test_a_run_trains_the_supernet_and_exports_an_architecture_of_the_space,
                      make_strategy=factory(Untrained), tmp_path=tmp_path / "run")
    assert message.startswith("Untrained: the supernet trained for 0 epoch(s)")
    assert "max_epochs=2" in message
    message = failure(suite.test_the_supernet_trains_every_candidate_during_the_search,
                      make_strategy=factory(Untrained), tmp_path=tmp_path / "candidates")
    assert re.match(r"Untrained: during the search, the candidate\(s\) \['linear', 'tanh', 'relu'\] of the LayerChoice "
                    r"'op' never ran a training forward pass", message)


def test_an_export_outside_the_space_is_reported(tmp_path):
    message = failure(Suite().test_a_run_trains_the_supernet_and_exports_an_architecture_of_the_space,
                      make_strategy=factory(OutOfSpace), tmp_path=tmp_path)
    assert message.startswith("OutOfSpace: Experiment.run() raised SampleValueError: value 5 for label 'width'")


def test_exports_that_change_between_seeded_runs_are_reported(tmp_path):
    message = failure(Suite().test_the_same_seed_exports_the_same_architectures,
                      make_strategy=factory(Drifting), tmp_path=tmp_path)
    assert message.startswith("Drifting: three runs with ExperimentConfig(seed=7)")
    assert "exported different architectures" in message


def test_an_unknown_primitive_must_be_refused_with_a_strategy_error_naming_it(tmp_path):
    suite = Suite()
    check = suite.test_a_primitive_no_one_shot_strategy_knows_is_refused_clearly
    message = failure(check, make_strategy=factory(Crashing), tmp_path=tmp_path / "crashing")
    assert message.startswith("Crashing cannot search a space whose module 'scale'")
    assert "and says so with KeyError" in message
    message = failure(check, make_strategy=factory(Vague), tmp_path=tmp_path / "vague")
    assert message.startswith("Vague refused a space whose module 'scale'")
    assert "its error does not name the decision ('scale'): unsupported module" in message
    check(make_strategy=factory(Careful), tmp_path=tmp_path / "careful")  # passes


def test_the_declared_unsupported_primitives_must_be_refused_and_the_others_searched(tmp_path):
    class Declared(Suite):
        unsupported = {"cell"}

    suite = Declared()
    check = suite.test_each_primitive_is_searched_or_refused_clearly
    message = failure(check, make_strategy=factory(Careful), tmp_path=tmp_path / "cell", primitive="cell")
    assert message.startswith("Careful searched a space with cell (label 'cell')")
    assert "lists it in unsupported" in message
    check(make_strategy=factory(Careful), tmp_path=tmp_path / "repeat", primitive="repeat")  # passes

    class Misspelled(Suite):
        unsupported = {"cells"}

    message = failure(Misspelled().test_each_primitive_is_searched_or_refused_clearly,
                      make_strategy=factory(Careful), tmp_path=tmp_path / "misspelled", primitive="cell")
    assert message.startswith("Careful: the suite's unsupported lists ['cells'], which are not among")


def test_the_registration_must_be_by_a_distribution_and_document_every_option(register):
    class Named(Suite):
        strategy_name = "toy-careful"

    check = Named().test_registered_by_a_distribution_with_documented_options
    message = failure(check, make_strategy=factory(Careful))
    assert message.startswith("no strategy is registered as 'toy-careful'")

    register("toy-careful", Careful, distribution="<runtime>")
    message = failure(check, make_strategy=factory(Careful))
    assert message.startswith("strategy 'toy-careful' is registered in-process")
    reset_plugins()

    register("toy-careful", Careful)
    check(make_strategy=factory(Careful))  # passes
    message = failure(check, make_strategy=factory(Untrained))
    assert "registered as Careful, but the suite's make_strategy gives a Untrained" in message

    class Undoc(Suite):
        strategy_name = "toy-undocumented"

    register("toy-undocumented", Undocumented)
    message = failure(Undoc().test_registered_by_a_distribution_with_documented_options,
                      make_strategy=factory(Undocumented))
    assert message.startswith("'toy-undocumented' (Undocumented): the constructor option(s) ['temperature'] are not documented")

    class NotAStrategy(Suite):
        strategy_name = "toy-function"

    try:
        register("toy-function", lambda **kwargs: Careful(**kwargs))
    except PluginLoadError:  # newer cores refuse such a registration themselves
        return
    message = failure(NotAStrategy().test_registered_by_a_distribution_with_documented_options,
                      make_strategy=factory(Careful))
    assert "which is not a nascore.strategy.Strategy subclass" in message

