"""Registries: lookup by name, helpful unknown-name errors, conflicts and name rules."""

from __future__ import annotations

import pytest

from nascore.errors import PluginConflictError, PluginError, UnknownPluginError
from nascore.plugin import Registration, Registry


class Evolution:
    pass


class Random:
    pass


def strategy(
    name: str, obj: object, distribution: str = "nascore-strategies", version: str = "1.0"
) -> Registration:
    return Registration(
        "strategy", name, obj, distribution=distribution, version=version, plugin="strategies"
    )


@pytest.fixture
def strategies() -> Registry[type]:
    registry: Registry[type] = Registry("strategy")
    registry.add(strategy("random", Random))
    registry.add(strategy("evolution", Evolution))
    return registry


def test_get_returns_the_registered_object_and_registration_says_who_provided_it(
    strategies: Registry[type],
) -> None:
    assert strategies.get("evolution") is Evolution
    registration = strategies.registration("evolution")
    assert (registration.distribution, registration.version, registration.plugin) == (
        "nascore-strategies",
        "1.0",
        "strategies",
    )


def test_names_and_entries_are_sorted(strategies: Registry[type]) -> None:
    assert strategies.names() == ["evolution", "random"]
    assert [entry.name for entry in strategies.entries()] == ["evolution", "random"]
    assert list(strategies) == ["evolution", "random"]
    assert len(strategies) == 2
    assert "random" in strategies
    assert "tpe" not in strategies


def test_unknown_name_lists_the_registered_names_and_how_to_fix_it(strategies: Registry[type]) -> None:
    with pytest.raises(UnknownPluginError) as excinfo:
        strategies.get("tpe")
    message = str(excinfo.value)
    assert "unknown strategy 'tpe'" in message
    assert "evolution, random" in message  # sorted
    assert "Install the plugin" in message
    assert "NASCORE_DISABLED_PLUGINS" in message and "NASCORE_LOAD_PLUGINS" in message
    assert isinstance(excinfo.value, LookupError)


def test_unknown_name_suggests_a_close_match(strategies: Registry[type]) -> None:
    with pytest.raises(UnknownPluginError, match="Did you mean 'evolution'"):
        strategies.registration("evolutoin")


def test_unknown_name_in_an_empty_registry_says_nothing_is_registered() -> None:
    with pytest.raises(UnknownPluginError, match="No engine is registered at all"):
        Registry("engine").get("sequential")


def test_a_second_registration_of_a_name_conflicts_and_names_both_distributions(
    strategies: Registry[type],
) -> None:
    with pytest.raises(PluginConflictError) as excinfo:
        strategies.add(strategy("evolution", Random, distribution="shiny-evolution", version="0.3"))
    message = str(excinfo.value)
    assert "nascore-strategies 1.0" in message
    assert "shiny-evolution 0.3" in message
    assert "NASCORE_DISABLED_PLUGINS=shiny-evolution" in message
    assert strategies.get("evolution") is Evolution  # the first registration stays


@pytest.mark.parametrize("name", ["", "Evolution", "-darts", "_x", "two words", "naïve", 3, None])
def test_invalid_names_are_rejected_naming_the_distribution(name: object) -> None:
    registry: Registry[type] = Registry("strategy")
    with pytest.raises(PluginError, match="distribution odd-plugin .* invalid name"):
        registry.add(strategy(name, Random, distribution="odd-plugin"))  # type: ignore[arg-type]
    assert len(registry) == 0


@pytest.mark.parametrize("name", ["gumbel-darts", "random-oneshot", "a.b_c", "0x", "tpe"])
def test_valid_names_are_accepted(name: str) -> None:
    registry: Registry[type] = Registry("strategy")
    registry.add(strategy(name, Random))
    assert registry.get(name) is Random


def test_a_registration_of_another_kind_is_refused() -> None:
    with pytest.raises(PluginError, match="cannot go into the engine registry"):
        Registry("engine").add(strategy("random", Random))
