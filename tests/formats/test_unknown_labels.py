"""Every built-in format refuses a sample with a label the space does not have, naming it and the closest label."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

import nascore
from nascore.errors import UnknownLabelError
from nascore.nn import LayerChoice, ModelSpace, MutableLinear, Repeat
from nascore_formats import GraphFormat, RawFormat, SimplifiedFormat

FORMATS = {"raw": RawFormat, "simplified": SimplifiedFormat, "graph": GraphFormat}


class Space(ModelSpace):
    def __init__(self) -> None:
        super().__init__()
        self.fc = MutableLinear(3, nascore.choice("width", [4, 8]))
        self.body = Repeat(lambda i: LayerChoice([nn.ReLU(), nn.Tanh()], label=f"act{i}"), (1, 2), label="depth")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(self.fc(x))


@pytest.mark.parametrize("format_name", sorted(FORMATS))
def test_a_misspelt_label_is_refused_naming_it_the_closest_label_and_the_expected_ones(format_name: str) -> None:
    space = FORMATS[format_name]().build(Space())
    sample = {**space.default_sample(), "dpeth": 2}
    assert not space.contains(sample)
    with pytest.raises(UnknownLabelError) as info:
        space.freeze(sample)
    assert info.value.label == "dpeth" and info.value.expected == ["width", "depth", "act0", "act1"]
    assert "unknown label 'dpeth' (did you mean 'depth'?); the space's labels are 'width', 'depth', 'act0', 'act1'" in str(
        info.value
    )


@pytest.mark.parametrize("format_name", sorted(FORMATS))
def test_labels_of_decisions_the_architecture_does_not_use_are_welcome(format_name: str) -> None:
    space = FORMATS[format_name]().build(Space())
    sample = {"width": 4, "depth": 1, "act0": 1, "act1": 0}  # block 1 is not built
    model = space.freeze(sample)
    assert model.sample == sample
    assert model.build()(torch.randn(2, 3)).shape == (2, 4)
