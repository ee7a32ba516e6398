"""nascore's built-in execution engines: ``sequential`` (in-process, one trial at a time)."""

from nascore_engines.sequential import SequentialEngine

__all__ = ["SequentialEngine"]
