"""Meta-tests: every hook of :mod:`nascore.plugin.spec` is documented, in the spec and in the guide.

The hooks are found by introspecting ``spec.py`` (the attribute pluggy's ``HookspecMarker`` puts on
each hookspec), so a hook added there without documentation fails here, naming the hook and what
is missing. The plugin-author guide is the module docstring of :mod:`nascore.plugin`.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable

import pytest

import nascore.plugin
from nascore.plugin import spec

GUIDE = inspect.getdoc(nascore.plugin) or ""
GUIDE_NAME = "the plugin-author guide (the docstring of nascore/plugin/__init__.py)"


def hookspecs() -> dict[str, Callable[..., object]]:
    """Every function of spec.py marked as a hookspec, by name."""
    marker = f"{spec.hookspec.project_name}_spec"
    return {
        name: function
        for name, function in inspect.getmembers(spec, inspect.isfunction)
        if getattr(function, marker, None) is not None
    }


HOOKSPECS = hookspecs()


def parameters(function: Callable[..., object]) -> list[str]:
    return list(inspect.signature(function).parameters)


def signature_text(name: str) -> str:
    return f"{name}({', '.join(parameters(HOOKSPECS[name]))})"


def documented_calls(text: str, name: str) -> list[list[str]]:
    """The argument lists ``name(...)`` is shown with in ``text`` (``def`` lines of examples included)."""
    calls = re.findall(rf"\b{re.escape(name)}\(([^)]*)\)", " ".join(text.split()))
    return [[argument.strip() for argument in call.split(",") if argument.strip()] for call in calls]


def is_subsequence(part: list[str], whole: list[str]) -> bool:
    remaining = iter(whole)
    return all(item in remaining for item in part)


def test_the_hooks_are_found_by_introspection() -> None:
    """Guards the meta-tests below against passing vacuously."""
    assert HOOKSPECS, "no hookspec found in nascore/plugin/spec.py"
    assert set(HOOKSPECS) == {*spec.REGISTER_HOOKS.values(), *spec.OBSERVER_HOOKS}, (
        "spec.REGISTER_HOOKS / spec.OBSERVER_HOOKS do not list exactly the hookspecs of spec.py"
    )


@pytest.mark.parametrize("name", sorted(HOOKSPECS))
def test_every_hook_is_in_the_guide_with_its_real_signature(name: str) -> None:
    expected = parameters(HOOKSPECS[name])
    shown = documented_calls(GUIDE, name)
    assert shown, f"hook {name} is missing from {GUIDE_NAME}: document it as ``{signature_text(name)}``"
    assert expected in shown, (
        f"hook {name} is not documented in {GUIDE_NAME} with its real signature "
        f"``{signature_text(name)}``; the guide shows only: "
        + ", ".join(f"{name}({', '.join(arguments)})" for arguments in shown)
    )
    # Examples may declare a subset of the arguments (pluggy matches them by name), never others.
    for arguments in shown:
        assert is_subsequence(arguments, expected), (
            f"{GUIDE_NAME} shows hook {name} as {name}({', '.join(arguments)}), but its signature is "
            f"``{signature_text(name)}``: unknown or misordered arguments "
            f"{sorted(set(arguments) - set(expected)) or arguments}"
        )


def test_the_guide_names_no_hook_that_does_not_exist() -> None:
    named = set(re.findall(r"\b(nascore_[a-z0-9_]+)\(", GUIDE))
    unknown = sorted(named - set(HOOKSPECS))
    assert not unknown, f"{GUIDE_NAME} documents hooks that spec.py does not define: {', '.join(unknown)}"


def test_the_guide_shows_the_register_callback_with_its_real_signature() -> None:
    """Every register hook's one argument is this callback: its keyword-only argument matters."""
    signature = inspect.signature(spec.RegisterFn.__call__)
    parts: list[str] = []
    for parameter in list(signature.parameters.values())[1:]:  # without self
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY and "*" not in parts:
            parts.append("*")
        default = "" if parameter.default is inspect.Parameter.empty else f"={parameter.default!r}"
        parts.append(parameter.name + default)
    expected = f"register({', '.join(parts)})"
    assert expected in " ".join(GUIDE.split()), f"{GUIDE_NAME} does not show the register callback as {expected}"


@pytest.mark.parametrize("name", sorted(HOOKSPECS))
def test_every_hookspec_documents_each_parameter(name: str) -> None:
    function = HOOKSPECS[name]
    doc = inspect.getdoc(function)
    assert doc, f"hookspec {name} in nascore/plugin/spec.py has no docstring"
    summary = doc.splitlines()[0].strip()
    assert summary and not summary.startswith(":"), f"hookspec {name} has no one-line summary before its :param: fields"
    fields = dict(re.findall(r"^:param (\w+):(.*?)(?=^:|\Z)", doc, flags=re.MULTILINE | re.DOTALL))
    expected = parameters(function)
    missing = [argument for argument in expected if argument not in fields]
    assert not missing, f"hookspec {name} does not document parameter(s) {', '.join(missing)} (add ':param <name>:')"
    empty = [argument for argument in expected if not fields[argument].strip()]
    assert not empty, f"hookspec {name} documents parameter(s) {', '.join(empty)} with no text"
    stale = sorted(set(fields) - set(expected))
    assert not stale, f"hookspec {name} documents parameter(s) {', '.join(stale)} that it does not have"
