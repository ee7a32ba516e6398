""":class:`FunctionalEvaluator`: evaluate a model with a plain function."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch.nn as nn

from nascore.errors import EvaluatorError
from nascore.evaluator import Evaluator
from nascore.serialization import import_path, is_json_data, object_spec, resolve

__all__ = ["FunctionalEvaluator"]


class FunctionalEvaluator(Evaluator):
    """Call ``function(model, **kwargs)`` for each trial.

    The function trains and scores the built ``nn.Module`` and reports with
    :func:`nascore.report_intermediate_result` / :func:`nascore.report_final_result`; returning a
    number (or a metric dict) instead of reporting it counts as the final result.
    """

    def __init__(self, function: Callable[..., Any], **kwargs: Any) -> None:
        if not callable(function):
            raise EvaluatorError(f"FunctionalEvaluator needs a function, got {function!r}")
        self.function = function
        self.arguments = kwargs

    def evaluate_module(self, module: nn.Module) -> Any:
        return self.function(module, **self.arguments)

    @classmethod
    def from_import_path(cls, function: str, /, **kwargs: Any) -> FunctionalEvaluator:
        """Build from the import path of the function (``"package.module:train"``)."""
        return cls(resolve(function), **kwargs)

    def to_spec(self) -> dict[str, Any] | None:
        path = import_path(self.function)
        if path is None or not is_json_data(self.arguments):
            return None
        return object_spec(FunctionalEvaluator.from_import_path, (path,), self.arguments)

    def __repr__(self) -> str:
        name = getattr(self.function, "__qualname__", repr(self.function))
        return f"FunctionalEvaluator({name}, {self.arguments!r})"
