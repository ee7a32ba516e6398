"""The core's own plugin: registers the built-in evaluators through the same hooks as any plugin.

The Lightning evaluators are registered as small factories that import Lightning only when
called: loading plugins (``nascore plugins``, ``nascore list``) never pays for importing Lightning,
and works without it installed.
"""

from __future__ import annotations

from typing import Any

from nascore.evaluator import Evaluator
from nascore.evaluators.functional import FunctionalEvaluator
from nascore.plugin.spec import RegisterFn, hookimpl


def classification(*args: Any, **kwargs: Any) -> Evaluator:
    """Lightning classification evaluator (``nascore.evaluators.Classification``); needs the ``lightning`` extra."""
    from nascore.evaluators.lightning import Classification

    return Classification(*args, **kwargs)


def regression(*args: Any, **kwargs: Any) -> Evaluator:
    """Lightning regression evaluator (``nascore.evaluators.Regression``); needs the ``lightning`` extra."""
    from nascore.evaluators.lightning import Regression

    return Regression(*args, **kwargs)


@hookimpl
def nascore_register_evaluators(register: RegisterFn) -> None:
    register("functional", FunctionalEvaluator, description="call a function with the built model")
    register("classification", classification, description="Lightning: train a classifier, score by val accuracy")
    register("regression", regression, description="Lightning: train a regressor, score by val MSE (minimize)")
