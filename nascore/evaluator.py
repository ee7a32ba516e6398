"""The evaluator contract: how one candidate model is trained and scored.

An evaluator receives an :class:`~nascore.format.ExecutableModel`, builds the module, trains and
scores it, and reports through :func:`nascore.report_intermediate_result` and
:func:`nascore.report_final_result` (or returns the final metric). Evaluators that must cross a
process boundary describe themselves as data with :meth:`Evaluator.to_spec`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Hashable, Mapping
from typing import TYPE_CHECKING, Any

from nascore.errors import EvaluatorError

if TYPE_CHECKING:
    import torch.nn as nn

    from nascore.format import ExecutableModel
    from nascore.group import ModelGroup

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
        """Build ``model`` and evaluate it; returns what :meth:`evaluate_module` returns.

        A :class:`~nascore.group.ModelGroup` goes to :meth:`evaluate_group` instead.
        """
        from nascore.group import ModelGroup

        if isinstance(model, ModelGroup):
            return self.evaluate_group(model)
        return self.evaluate_module(model.build())

    # --- several models in one trial (engines that group models, such as cgo) ------------------

    def merge_key(self) -> Hashable | None:
        """Models whose evaluators have equal keys may train together in one trial; ``None``: never.

        An evaluator that implements :meth:`evaluate_group` returns what two evaluations must share to
        be done as one (the same data read the same way, the same recipe). The default is ``None``.
        """
        return None

    def check_group(self, settings: Mapping[str, Any]) -> None:
        """Raise :class:`~nascore.errors.EvaluatorError` if this evaluator cannot train groups with ``settings``.

        ``settings`` are what the grouping engine will put in every :attr:`ModelGroup.settings
        <nascore.group.ModelGroup.settings>` (e.g. ``{"placement": "spread"}``); called before the
        first trial. The default accepts anything.
        """

    def evaluate_group(self, group: ModelGroup) -> Any:
        """Train and score the members of ``group`` in one pass; report each with ``report_*_result(metric, member=i)``.

        Iterate ``group.members`` to build the members (each is then built from its own trial's seed).
        Evaluators whose :meth:`merge_key` is ``None`` are never given a group.
        """
        raise EvaluatorError(
            f"{type(self).__name__} cannot train several models in one trial (its merge_key() is None); "
            "use an evaluator that can, such as nascore.evaluators.Classification / Regression"
        )

    @abstractmethod
    def evaluate_module(self, module: nn.Module) -> Any:
        """Train and score one built model; report metrics or return the final one."""

    def to_spec(self) -> dict[str, Any] | None:
        """This evaluator as data (import path and arguments), or ``None`` if it cannot be."""
        return None
