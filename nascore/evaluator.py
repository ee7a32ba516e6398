"""The evaluator contract: how one candidate model is trained and scored.

An evaluator receives an :class:`~nascore.format.ExecutableModel`, builds the module, trains and
scores it, and reports through :func:`nascore.report_intermediate_result` and
:func:`nascore.report_final_result` (or returns the final metric). Evaluators that must cross a
process boundary describe themselves as data with :meth:`Evaluator.to_spec`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch.nn as nn

    from nascore.format import ExecutableModel

__all__ = ["Evaluator"]


class Evaluator(ABC):
    """Base class of evaluators. Subclasses implement :meth:`evaluate_module`.

    An evaluator that knows which way its final metric is better (an accuracy is maximized, an error
    minimized) says so in :attr:`optimize_mode`; the experiment follows it unless the user sets
    ``ExperimentConfig.optimize_mode``, and a contradiction is an error before the first trial.
    :meth:`check` finds setup mistakes (misspelled arguments) before the first trial instead of in
    every trial.
    """

    @property
    def optimize_mode(self) -> str | None:
        """``"maximize"`` or ``"minimize"`` if this evaluator knows its metric's direction, else ``None``."""
        return None

    def check(self) -> None:
        """Raise :class:`~nascore.errors.EvaluatorError` for a mistake found without running a trial.

        Called once before the first trial. The default checks nothing.
        """

    def evaluate(self, model: ExecutableModel) -> Any:
        """Build ``model`` and evaluate it; returns what :meth:`evaluate_module` returns."""
        return self.evaluate_module(model.build())

    @abstractmethod
    def evaluate_module(self, module: nn.Module) -> Any:
        """Train and score one built model; report metrics or return the final one."""

    def to_spec(self) -> dict[str, Any] | None:
        """This evaluator as data (import path and arguments), or ``None`` if it cannot be."""
        return None
