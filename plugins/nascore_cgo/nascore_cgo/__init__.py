"""nascore-cgo: cross-graph optimization, several models trained in one trial with each batch loaded once.

Use it with the graph format, the training-service engine settings and an evaluator that trains
several models in one trial (the core's Lightning evaluators do)::

    from nascore.evaluators import Classification

    evaluator = Classification(train_dataloaders=train, val_dataloaders=val, num_classes=10, max_epochs=5)
    config = ExperimentConfig(engine="cgo", format="graph", trial_concurrency=2,
                              engine_options={"max_concurrency_cgo": 4, "batch_waiting_time": 5})

A merged trial is one trial whose model is a :class:`nascore.group.ModelGroup`; it gets the devices
of one trial. ``engine_options.placement`` (or the evaluators' ``placement=`` argument) packs its
models onto the trial's device (``"pack"``, the default) or spreads them over its
``trial_gpu_number`` GPUs (``"spread"``; see :mod:`nascore.evaluators.placement`). Each model's
results are events of its own trial.

The ``cgo`` engine (:class:`~nascore_cgo.engine.CGOEngine`) wraps ``training-service`` (local
workers or remote machines, configured by ``engine_options``); optimizers are registered
through ``nascore_register_optimizers`` (built in: ``dedup-input``,
:class:`~nascore_cgo.optimizers.DedupInputOptimizer`) and receive a
:class:`~nascore_cgo.plan.LogicalPlan`.

The evaluators import PyTorch Lightning; they are imported on first use.
"""

from __future__ import annotations

from typing import Any

from nascore_cgo.engine import CGOEngine, CGOOptions
from nascore_cgo.optimizers import DedupInputOptimizer
from nascore_cgo.plan import LogicalPlan

__all__ = [
    "CGOEngine",
    "CGOOptions",
    "Classification",
    "DedupInputOptimizer",
    "LogicalPlan",
    "MultiModelLightning",
    "MultiModelLightningModule",
    "MultiModelSupervisedLearningModule",
    "Regression",
]

_EVALUATOR_NAMES = frozenset({"Classification", "Regression", "MultiModelLightning", "MultiModelLightningModule", "MultiModelSupervisedLearningModule"})


def __getattr__(name: str) -> Any:
    if name in _EVALUATOR_NAMES:
        from nascore_cgo import evaluator

        return getattr(evaluator, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
