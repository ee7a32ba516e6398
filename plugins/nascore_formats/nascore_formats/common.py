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


def normalized_sample(mutables: dict[str, LabelledMutable], sample: Sample) -> Sample:
    """The sample restricted to the space's labels, each value mapped to its candidate."""
    return {label: mutable.canonical_value(sample[label]) for label, mutable in mutables.items()}
