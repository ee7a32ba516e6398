"""What both built-in formats share: checking the space and normalizing samples."""

from __future__ import annotations

import torch.nn as nn

from nascore.errors import SearchSpaceError
from nascore.nn import ModelSpace
from nascore.space import LabelledMutable, Sample


def check_model_space(space: nn.Module, format_name: str) -> ModelSpace:
    if not isinstance(space, ModelSpace):
        raise SearchSpaceError(
            f"the {format_name!r} format needs a nascore.nn.ModelSpace instance, got {type(space).__name__}; "
            "derive your model class from ModelSpace"
        )
    return space


GRAPH_MUTATORS_ATTRIBUTE = "_nascore_graph_mutators"
"""Where :func:`nascore_formats.graph.apply_mutators` keeps a space's mutators (in its ``__dict__``)."""


def check_no_graph_mutators(space: nn.Module, format_name: str) -> None:
    """Mutators edit the graph IR, which only the graph format has: anywhere else they would be ignored."""
    mutators = space.__dict__.get(GRAPH_MUTATORS_ATTRIBUTE)
    if mutators:
        raise SearchSpaceError(
            f"the space {type(space).__name__} has {len(mutators)} mutator(s) attached with apply_mutators(); only the "
            f"'graph' format can apply mutators, the {format_name!r} format would ignore them: use format='graph'"
        )


def normalized_sample(mutables: dict[str, LabelledMutable], sample: Sample) -> Sample:
    """The sample restricted to the space's labels, each value mapped to its candidate."""
    return {label: mutable.canonical_value(sample[label]) for label, mutable in mutables.items()}
