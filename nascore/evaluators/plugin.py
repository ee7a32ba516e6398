"""The core's own plugin: registers the built-in evaluators through the same hooks as any plugin."""

from __future__ import annotations

from nascore.evaluators.functional import FunctionalEvaluator
from nascore.plugin.spec import RegisterFn, hookimpl


@hookimpl
def nascore_register_evaluators(register: RegisterFn) -> None:
    register("functional", FunctionalEvaluator, description="call a function with the built model")
