"""The one exception hierarchy of nascore.

Every error nascore raises on purpose derives from :class:`NascoreError`. Messages say what was
wrong, where (a label, a config path, a plugin distribution, a trial id) and what to do about it,
so that a user can act on the message alone.
"""

from __future__ import annotations

import difflib


class NascoreError(Exception):
    """Base class of every error nascore raises on purpose."""


# --- search space ------------------------------------------------------------------------------


class SearchSpaceError(NascoreError):
    """A search space is malformed (empty choice, conflicting labels, unsupported use)."""


class LabelConflictError(SearchSpaceError):
    """The same label names two different decisions (e.g. different candidate lists)."""


class SampleValidationError(SearchSpaceError):
    """A sample does not belong to the search space."""

    def __init__(self, message: str, label: str | None = None) -> None:
        super().__init__(message)
        self.label = label


class SampleMissingError(SampleValidationError):
    """A sample lacks a value for a label the space needs."""


class SampleValueError(SampleValidationError):
    """A sample holds a value that is not a valid candidate for its label."""


class ConstraintViolationError(SampleValidationError):
    """A sample violates a constraint of the space (``label`` is the constraint's), or none can satisfy it."""


class UnknownLabelError(SampleValueError):
    """A sample holds a label the space does not have (a typo, or a sample of another space).

    ``labels`` are the unknown labels (``label`` is the first of them), ``expected`` the labels of the
    space. :meth:`for_labels` writes the message: each unknown label with the closest expected one.
    """

    def __init__(
        self, message: str, label: str | None = None, *, labels: list[str] | None = None, expected: list[str] | None = None
    ) -> None:
        super().__init__(message, label=label)
        self.labels = list(labels or ([] if label is None else [label]))
        self.expected = list(expected or [])

    @classmethod
    def for_labels(cls, unknown: list[str], expected: list[str], what: str = "sample") -> UnknownLabelError:
        """The error for the ``unknown`` labels of ``what`` (``"sample"``), the space having ``expected``."""
        candidates = [label for label in expected if isinstance(label, str)]
        named = []
        for label in unknown[:_SHOWN_LABELS]:
            close = difflib.get_close_matches(str(label), candidates, n=1, cutoff=0.6)
            named.append(f"{label!r} (did you mean {close[0]!r}?)" if close else repr(label))
        if len(unknown) > _SHOWN_LABELS:
            named.append(f"... ({len(unknown) - _SHOWN_LABELS} more)")
        shown = ", ".join(map(repr, expected[:_SHOWN_LABELS]))
        if len(expected) > _SHOWN_LABELS:
            shown += f", ... ({len(expected) - _SHOWN_LABELS} more)"
        known = f"the space's labels are {shown}" if expected else "the space has no decision"
        plural = "s" if len(unknown) > 1 else ""
        return cls(
            f"{what} has the unknown label{plural} {', '.join(named)}; {known}. Check the spelling, or that the "
            "sample belongs to this space",
            label=unknown[0] if unknown else None,
            labels=list(unknown),
            expected=list(expected),
        )


_SHOWN_LABELS = 30
"""How many of the expected labels an :class:`UnknownLabelError` message lists."""


# --- plugins -----------------------------------------------------------------------------------


class PluginError(NascoreError):
    """A problem with a plugin or the plugin registries."""


class PluginLoadError(PluginError):
    """A plugin distribution failed to import or to register its implementations."""

    def __init__(self, message: str, distribution: str | None = None) -> None:
        super().__init__(message)
        self.distribution = distribution


class UnknownPluginError(PluginError, LookupError):
    """No plugin registered an implementation under the requested name."""


class PluginConflictError(PluginError):
    """Two plugins registered an implementation under the same kind and name."""


class MissingDependencyError(PluginError, ImportError):
    """An optional dependency (an extra of a plugin) is not installed."""


# --- configuration, store, experiment ----------------------------------------------------------


class ConfigError(NascoreError, ValueError):
    """An experiment configuration is invalid. The message names the field path."""


class StoreError(NascoreError):
    """The experiment store cannot be read or written."""


class ExperimentNotFoundError(StoreError, LookupError):
    """No experiment with the given id exists in the experiment directory."""


class ReadOnlyError(StoreError):
    """A write was attempted on an experiment opened read-only."""


class StoreDamagedError(StoreError):
    """The experiment store is damaged (broken rows, a truncated file) or from a newer nascore.

    nascore never writes to a store it could not read; the message names the file, the row and the
    recovery that exists.
    """


class ExperimentLockedError(StoreError):
    """Another process is running the experiment (one experiment has one writer)."""


class ExperimentError(NascoreError):
    """An experiment cannot be run, resumed or exported as asked."""


# --- strategies, engines, evaluators, trials ---------------------------------------------------


class StrategyError(NascoreError):
    """A strategy cannot work on the given space or was misused."""


class EngineError(NascoreError):
    """An execution engine cannot run trials as configured."""


class EvaluatorError(NascoreError):
    """An evaluator is misconfigured or was misused."""


class TrialError(NascoreError):
    """A trial reported something invalid or finished without a result."""


class ShippingError(NascoreError):
    """A model or evaluator cannot be turned into data to cross a process boundary."""
