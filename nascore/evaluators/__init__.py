"""Built-in evaluators: :class:`FunctionalEvaluator` (Lightning ``Classification``/``Regression`` come with the one-shot work)."""

from nascore.evaluators.functional import FunctionalEvaluator

__all__ = ["FunctionalEvaluator"]
