"""The one exception hierarchy of nascore.

Every error nascore raises on purpose derives from :class:`NascoreError`. Messages say what was
wrong, where (a label, a config path, a plugin distribution, a trial id) and what to do about it,
so that a user can act on the message alone.
"""

from __future__ import annotations


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
