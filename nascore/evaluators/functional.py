""":class:`FunctionalEvaluator`: evaluate a model with a plain function."""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable
from typing import Any

import torch.nn as nn

from nascore.errors import EvaluatorError
from nascore.evaluator import Evaluator
from nascore.serialization import import_path, is_json_data, object_spec, resolve
from nascore.space.mutable import (
    LabelledMutable,
    Sample,
    collect_mutables,
    contains_mutable,
    dedup_mutables,
    freeze_structure,
)

__all__ = ["FunctionalEvaluator"]

_OPTIMIZE_MODES = ("maximize", "minimize")


class FunctionalEvaluator(Evaluator):
    """Call ``function(model, **kwargs)`` for each trial.

    The function trains and scores the built ``nn.Module`` and reports with
    :func:`nascore.report_intermediate_result` / :func:`nascore.report_final_result`; returning a
    number (or a metric dict) instead of reporting it counts as the final result.

    :param function: the training function; it receives the built model first.
    :param nascore_optimize_mode: ``"maximize"`` or ``"minimize"`` if you know which way the
        function's metric is better (the experiment then follows it without being told); ``None``
        (the default): not known. It is keyword-only and named after nascore so that it cannot take
        the place of one of ``function``'s own keyword arguments.
    :param kwargs: keyword arguments passed to ``function`` in every trial. They may hold decisions
        (``lr=nascore.choice("lr", [0.1, 0.01])``, also inside lists and dicts): an experiment searches
        them with the architecture, and each trial's function gets the chosen values
        (:meth:`mutables`, :meth:`freeze`).
    """

    _optimize_mode: str | None = None  # also what an instance unpickled from an older nascore has
    #: ``{label: value}`` this evaluator was frozen with by :meth:`freeze`; ``None`` when it was not.
    decisions: Sample | None = None

    def __init__(self, function: Callable[..., Any], *, nascore_optimize_mode: str | None = None, **kwargs: Any) -> None:
        if not callable(function):
            raise EvaluatorError(f"FunctionalEvaluator needs a function, got {function!r}")
        if nascore_optimize_mode is not None and nascore_optimize_mode not in _OPTIMIZE_MODES:
            raise EvaluatorError(
                f"FunctionalEvaluator: nascore_optimize_mode must be 'maximize', 'minimize' or None (not known), "
                f"got {nascore_optimize_mode!r}"
            )
        self.function = function
        self.arguments = kwargs
        self._optimize_mode = nascore_optimize_mode

    @property
    def optimize_mode(self) -> str | None:
        """The direction given as ``nascore_optimize_mode``; ``None`` when it was not given."""
        return self._optimize_mode

    def check(self) -> None:
        """Raise :class:`~nascore.errors.EvaluatorError` if ``function(model, **kwargs)`` cannot be called.

        Binds the arguments to the function's signature without calling it: a misspelled or missing
        keyword argument is found before the first trial instead of failing every trial. Functions
        whose signature cannot be read (some built-ins) are not checked.
        """
        try:
            signature = inspect.signature(self.function)
        except (TypeError, ValueError):
            return
        name = getattr(self.function, "__qualname__", type(self.function).__name__)
        parameters = signature.parameters.values()
        takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)
        keywords = [p.name for p in parameters if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)]
        unknown = [] if takes_any else [key for key in self.arguments if key not in keywords]
        if unknown:
            close = difflib.get_close_matches(unknown[0], keywords, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise EvaluatorError(
                f"FunctionalEvaluator: {name}() takes no argument {unknown[0]!r}{hint} "
                f"(it takes: {', '.join(keywords) or 'no keyword arguments'}); fix the keyword argument given to FunctionalEvaluator"
            )
        try:
            signature.bind(_MODEL, **self.arguments)
        except TypeError as exc:
            raise EvaluatorError(
                f"FunctionalEvaluator: {name}() cannot be called as {name}(model, **kwargs) with "
                f"kwargs={sorted(self.arguments)}: {exc}; every trial calls it with the built model first"
            ) from None

    def evaluate_module(self, module: nn.Module) -> Any:
        self.check_frozen()
        return self.function(module, **self.arguments)

    def mutables(self) -> dict[str, LabelledMutable]:
        """The decisions in the keyword arguments, ``{label: decision}``."""
        return dedup_mutables(collect_mutables(self.arguments))

    def freeze(self, sample: Sample) -> FunctionalEvaluator:
        """A FunctionalEvaluator of the same function whose keyword arguments hold the values of ``sample``."""
        mutables = self.mutables()
        if not mutables:
            return self
        decisions = {label: mutable.freeze(sample) for label, mutable in mutables.items()}  # validates each value
        arguments = {
            key: freeze_structure(value, decisions) if contains_mutable(value) else value  # others: as given
            for key, value in self.arguments.items()
        }
        frozen = FunctionalEvaluator(self.function, nascore_optimize_mode=self._optimize_mode, **arguments)
        frozen.decisions = decisions
        return frozen

    @classmethod
    def from_import_path(cls, function: str, /, **kwargs: Any) -> FunctionalEvaluator:
        """Build from the import path of the function (``"package.module:train"``)."""
        return cls(resolve(function), **kwargs)

    def to_spec(self) -> dict[str, Any] | None:
        path = import_path(self.function)
        if path is None or not is_json_data(self.arguments):
            return None
        kwargs = dict(self.arguments)
        if self._optimize_mode is not None:
            kwargs["nascore_optimize_mode"] = self._optimize_mode
        return object_spec(FunctionalEvaluator.from_import_path, (path,), kwargs)

    def __repr__(self) -> str:
        name = getattr(self.function, "__qualname__", repr(self.function))
        mode = "" if self._optimize_mode is None else f", nascore_optimize_mode={self._optimize_mode!r}"
        return f"FunctionalEvaluator({name}, {self.arguments!r}{mode})"


class _Model:
    """Stands for the built model when the arguments are bound to the function's signature."""

    def __repr__(self) -> str:
        return "<model>"


_MODEL = _Model()
