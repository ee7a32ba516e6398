"""Built-in evaluators: :class:`FunctionalEvaluator`, and the Lightning ``Classification`` / ``Regression``.

The Lightning evaluators (:class:`~nascore.evaluators.lightning.Classification`,
:class:`~nascore.evaluators.lightning.Regression`, the general
:class:`~nascore.evaluators.lightning.Lightning` and its recipe base class
:class:`~nascore.evaluators.lightning.LightningModule`) need the ``lightning`` extra. They are
imported on first use, so ``import nascore.evaluators`` stays fast and works without Lightning;
using one without Lightning installed raises :class:`~nascore.errors.MissingDependencyError` with
the ``pip install`` line.

Each evaluator says which way its metric is better (``Evaluator.optimize_mode``: ``Classification``
maximizes its accuracy, ``Regression`` minimizes its error; a ``FunctionalEvaluator`` when given
``nascore_optimize_mode=``), and the experiment follows it. ``Evaluator.check()`` finds setup
mistakes (a misspelled Trainer or function argument, data that is not a DataLoader) before the
first trial.
"""

from __future__ import annotations

from typing import Any

from nascore.evaluators.functional import FunctionalEvaluator

__all__ = ["Classification", "FunctionalEvaluator", "Lightning", "LightningModule", "Regression", "SupervisedLearningModule"]

_LIGHTNING_NAMES = frozenset({"Classification", "Lightning", "LightningModule", "Regression", "SupervisedLearningModule"})


def __getattr__(name: str) -> Any:
    if name in _LIGHTNING_NAMES:
        from nascore.evaluators import lightning  # raises MissingDependencyError without the extra

        return getattr(lightning, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
