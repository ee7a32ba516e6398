"""The hook specifications: documented, complete, and accepted by pluggy as a contract."""

from __future__ import annotations

import inspect

import pluggy
import pytest

from nascore.plugin import hookimpl, spec

HOOKSPECS = {
    name: function
    for name, function in vars(spec).items()
    if inspect.isfunction(function) and hasattr(function, "nascore_spec")
}


def test_there_are_five_register_hooks_and_three_observer_hooks() -> None:
    assert set(HOOKSPECS) == {*spec.REGISTER_HOOKS.values(), *spec.OBSERVER_HOOKS}
    assert set(spec.REGISTER_HOOKS) == {"strategy", "engine", "format", "evaluator", "optimizer"}


@pytest.mark.parametrize("name", sorted(HOOKSPECS))
def test_every_hookspec_documents_each_argument(name: str) -> None:
    """Meta-test: a hook without documentation is a hook plugin authors cannot use."""
    function = HOOKSPECS[name]
    doc = inspect.getdoc(function)
    assert doc, f"hookspec {name} has no docstring"
    for argument in inspect.signature(function).parameters:
        assert f":param {argument}:" in doc, f"hookspec {name} does not document {argument!r}"


@pytest.mark.parametrize("name", sorted(spec.REGISTER_HOOKS.values()))
def test_register_hooks_take_only_the_register_callback(name: str) -> None:
    assert list(inspect.signature(HOOKSPECS[name]).parameters) == ["register"]


def test_hookspecs_are_fully_annotated() -> None:
    for name, function in HOOKSPECS.items():
        signature = inspect.signature(function)
        assert signature.return_annotation == "None", name
        for parameter in signature.parameters.values():
            assert parameter.annotation is not inspect.Parameter.empty, f"{name}({parameter.name})"


def test_pluggy_accepts_the_specs_and_an_implementation_of_every_hook() -> None:
    pm = pluggy.PluginManager(spec.PROJECT_NAME)
    pm.add_hookspecs(spec)

    class Everything:
        pass

    for name, function in HOOKSPECS.items():
        arguments = ", ".join(inspect.signature(function).parameters)
        namespace: dict[str, object] = {}
        exec(f"def {name}({arguments}):\n    return None", namespace)
        setattr(Everything, name, staticmethod(hookimpl(namespace[name])))

    pm.register(Everything)
    pm.check_pending()  # every implementation matches a specification
