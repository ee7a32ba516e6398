"""What every tabular benchmark evaluator shares: a trial is answered by :meth:`query` on its sample.

A subclass knows its table (:meth:`TabularBenchmark.query`), its main metrics and their directions
(:attr:`TabularBenchmark.METRICS`) and its constructor arguments (:meth:`TabularBenchmark.arguments`);
this base turns that into the :class:`~nascore.evaluator.Evaluator` contract: nothing is built, the
trial's sample is looked up, grouped trials (cgo) answer each member from the table, and the
evaluator travels to workers as its arguments.
"""

from __future__ import annotations

import importlib.util
from abc import abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

from nascore.errors import MissingDependencyError
from nascore.evaluator import Evaluator
from nascore.serialization import object_spec
from nascore.trial import get_current_sample, report_final_result

__all__ = ["TabularBenchmark", "require_package"]


def require_package(import_name: str, needed_by: str, hint: str) -> None:
    """Raise :class:`~nascore.errors.MissingDependencyError` saying what ``needed_by`` needs and how to
    install it (``hint``) when ``import_name`` cannot be imported."""
    if importlib.util.find_spec(import_name) is None:
        raise MissingDependencyError(f"{needed_by} (import name {import_name}), which is not installed: {hint}")


class TabularBenchmark(Evaluator):
    """Base class of the evaluators that look a trial's architecture up in a benchmark's table.

    Subclasses set :attr:`METRICS` (name -> ``"maximize"`` / ``"minimize"``), store the main metric
    in ``self.metric``, and implement :meth:`query` and :meth:`arguments`.
    """

    #: The metrics a main metric may be, and which way each is better.
    METRICS: ClassVar[Mapping[str, str]] = {}

    metric: str

    @abstractmethod
    def query(self, arch: Any) -> dict[str, Any]:
        """The table's metrics of ``arch`` (a sample, or a spelling the benchmark knows), with the main
        metric under ``"default"``."""

    @abstractmethod
    def arguments(self) -> dict[str, Any]:
        """The constructor's keyword arguments that rebuild this evaluator."""

    @property
    def optimize_mode(self) -> str:
        """The direction of the main metric (``"maximize"`` for accuracies, ``"minimize"`` for costs)."""
        return self.METRICS[self.metric]

    def evaluate(self, model: Any) -> None:
        """Report the table's metrics for ``model.sample`` (the model is not built)."""
        from nascore.group import ModelGroup

        self.check_frozen()
        if isinstance(model, ModelGroup):
            self.evaluate_group(model)
            return
        report_final_result(self.query(model.sample))

    def evaluate_module(self, module: Any) -> None:
        """Report the table's metrics for the current trial's sample (``module`` is not used)."""
        report_final_result(self.query(get_current_sample()))

    def evaluate_group(self, group: Any) -> None:
        """Report each member's metrics for its own trial (nothing is built)."""
        for index, member in enumerate(group.members[:]):
            report_final_result(self.query(member.sample), member=index)

    def merge_key(self) -> tuple[Any, ...]:
        """Lookups with the same settings may share a trial (grouping engines)."""
        return (type(self).__module__, type(self).__qualname__, *sorted(self.arguments().items()))

    def to_spec(self) -> dict[str, Any]:
        """The evaluator as data (its arguments), to run in another process."""
        return object_spec(type(self), (), self.arguments())

    def __repr__(self) -> str:
        args = ", ".join(f"{key}={value!r}" for key, value in self.arguments().items())
        return f"{type(self).__name__}({args})"
