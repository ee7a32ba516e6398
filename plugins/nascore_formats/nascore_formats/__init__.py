"""nascore's built-in model formats: ``simplified`` (class + init arguments + sample), ``raw`` (the space object itself) and ``graph`` (torch.fx graph IR, generated code)."""

from nascore_formats.graph import GraphFormat, GraphModel, GraphSpace, Mutator, apply_mutators
from nascore_formats.raw import RawFormat, RawModel, RawSpace
from nascore_formats.simplified import SimplifiedFormat, SimplifiedModel, SimplifiedSpace

__all__ = [
    "GraphFormat",
    "GraphModel",
    "GraphSpace",
    "Mutator",
    "RawFormat",
    "RawModel",
    "RawSpace",
    "SimplifiedFormat",
    "SimplifiedModel",
    "SimplifiedSpace",
    "apply_mutators",
]
