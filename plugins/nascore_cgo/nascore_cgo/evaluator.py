"""The evaluators CGO trains merged trials with: the core's own, under their former ``nascore_cgo`` names.

There is one Lightning evaluator hierarchy: :class:`nascore.evaluators.Classification`,
:class:`~nascore.evaluators.Regression` and :class:`~nascore.evaluators.Lightning` train one model,
or several in one trial (a :class:`nascore.group.ModelGroup`), so switching to ``engine="cgo"``
changes no import. These names are kept so that code written for earlier versions still runs.
"""

from __future__ import annotations

from nascore.evaluators.lightning import Classification, Lightning, Regression
from nascore.evaluators.multimodel import MultiModelLightningModule, MultiModelSupervisedLearningModule

#: The core's Lightning evaluator, which takes multi-model recipes too.
MultiModelLightning = Lightning

__all__ = [
    "Classification",
    "MultiModelLightning",
    "MultiModelLightningModule",
    "MultiModelSupervisedLearningModule",
    "Regression",
]
