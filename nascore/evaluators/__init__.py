"""Built-in evaluators: :class:`FunctionalEvaluator`, and the Lightning ``Classification`` / ``Regression``.

The Lightning evaluators (:class:`~nascore.evaluators.lightning.Classification`,
:class:`~nascore.evaluators.lightning.Regression`, the general
:class:`~nascore.evaluators.lightning.Lightning` and its recipe base class
:class:`~nascore.evaluators.lightning.LightningModule`) need the ``lightning`` extra. They are
imported on first use, so ``import nascore.evaluators`` stays fast and works without Lightning;
using one without Lightning installed raises :class:`~nascore.errors.MissingDependencyError` with
the ``pip install`` line.

The Lightning evaluators also train several models in one trial (a :class:`nascore.group.ModelGroup`,
as the ``cgo`` engine submits them): a :class:`SupervisedLearningModule` recipe becomes a
:class:`~nascore.evaluators.multimodel.MultiModelSupervisedLearningModule`, one optimizer per model,
each batch read once, each model's results reported for its own trial. Custom multi-model recipes
derive from :class:`~nascore.evaluators.multimodel.MultiModelLightningModule`.

Each evaluator says which way its metric is better (``Evaluator.optimize_mode``: ``Classification``
maximizes its accuracy, ``Regression`` minimizes its error; a ``FunctionalEvaluator`` when given
``nascore_optimize_mode=``), and the experiment follows it. ``Evaluator.check()`` finds setup
mistakes (a misspelled Trainer or function argument, data that is not a DataLoader) before the
first trial.
"""

from __future__ import annotations

from typing import Any

from nascore.evaluators.functional import FunctionalEvaluator

__all__ = [
    "Classification",
    "FunctionalEvaluator",
    "Lightning",
    "LightningModule",
    "MultiModelLightningModule",
    "MultiModelSupervisedLearningModule",
    "Regression",
    "SupervisedLearningModule",
]

_LIGHTNING_NAMES = frozenset({"Classification", "Lightning", "LightningModule", "Regression", "SupervisedLearningModule"})
_MULTIMODEL_NAMES = frozenset({"MultiModelLightningModule", "MultiModelSupervisedLearningModule"})


def __getattr__(name: str) -> Any:
    if name in _LIGHTNING_NAMES:
        from nascore.evaluators import lightning  # raises MissingDependencyError without the extra

        return getattr(lightning, name)
    if name in _MULTIMODEL_NAMES:
        from nascore.evaluators import multimodel

        return getattr(multimodel, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
