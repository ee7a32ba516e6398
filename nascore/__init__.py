"""nascore: neural architecture search for PyTorch.

Write a model space with :mod:`nascore.nn` primitives, pick an evaluator and a strategy, and run an
:class:`~nascore.experiment.Experiment`::

    import nascore
    from nascore.nn import ModelSpace, LayerChoice, MutableLinear
    from nascore.evaluators import FunctionalEvaluator
    from nascore.experiment import Experiment, ExperimentConfig

Strategies, engines and model formats are plugins (``nascore plugins`` lists what is installed).
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from nascore.nn.base import fixed_arch, model_context
from nascore.space import (
    Categorical,
    CategoricalMultiple,
    Constraint,
    ExpressionConstraint,
    MutableExpression,
    Numerical,
    choice,
    lognormal,
    loguniform,
    normal,
    qlognormal,
    qloguniform,
    qnormal,
    quniform,
    randint,
    uniform,
)
from nascore.trial import get_current_sample, report_final_result, report_intermediate_result

try:
    __version__ = version("nascore")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = [
    "Categorical",
    "CategoricalMultiple",
    "Constraint",
    "ExpressionConstraint",
    "MutableExpression",
    "Numerical",
    "__version__",
    "choice",
    "fixed_arch",
    "get_current_sample",
    "loguniform",
    "lognormal",
    "model_context",
    "normal",
    "qloguniform",
    "qlognormal",
    "qnormal",
    "quniform",
    "randint",
    "report_final_result",
    "report_intermediate_result",
    "uniform",
]
