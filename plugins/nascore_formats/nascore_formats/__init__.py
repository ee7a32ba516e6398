"""nascore's built-in model formats: ``simplified`` (class + init arguments + sample) and ``raw`` (the space object itself)."""

from nascore_formats.raw import RawFormat, RawModel, RawSpace
from nascore_formats.simplified import SimplifiedFormat, SimplifiedModel, SimplifiedSpace

__all__ = ["RawFormat", "RawModel", "RawSpace", "SimplifiedFormat", "SimplifiedModel", "SimplifiedSpace"]
