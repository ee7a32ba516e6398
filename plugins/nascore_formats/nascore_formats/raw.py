"""The ``raw`` format: the space object itself; a frozen model is a copy with its weights.

Use it when the space carries trained weights that the chosen models should inherit (one-shot
search, fine-tuning a supernet's sub-models). Models live in the experiment process.
"""

from __future__ import annotations

import torch.nn as nn

from nascore.format import ExecutableModel, ExecutableSpace, ModelFormat
from nascore.nn import ModelSpace
from nascore.space import Sample
from nascore_formats.common import check_model_space, check_no_graph_mutators, normalized_sample

__all__ = ["RawFormat", "RawSpace", "RawModel"]


class RawModel(ExecutableModel):
    """An architecture as the space object and a sample; built by freezing a copy of the space."""

    format_name = "raw"

    def __init__(self, space: ModelSpace, sample: Sample) -> None:
        super().__init__(sample)
        self.space = space

    def build(self) -> nn.Module:
        return self.space.freeze(self.sample)


class RawSpace(ExecutableSpace):
    """The user's space object, searched as it is."""

    def __init__(self, space: ModelSpace) -> None:
        super().__init__(space, space.simplify())

    def freeze(self, sample: Sample) -> RawModel:
        self.validate(sample)
        return RawModel(self.space, normalized_sample(self._mutables, sample))  # type: ignore[arg-type]


class RawFormat(ModelFormat):
    """Registered as ``raw``."""

    name = "raw"

    def build(self, space: nn.Module) -> RawSpace:
        space = check_model_space(space, self.name)
        check_no_graph_mutators(space, self.name)
        return RawSpace(space)
