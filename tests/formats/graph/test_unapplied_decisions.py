"""The graph format refuses a decision it would never apply (every value would build the same model), saying what to do.

The two cases of the issue: a decision registered with ``add_mutable`` and read in ``__init__``, and a
parameter shape set from one. torch.fx records ``forward`` only, so neither changes the graph; the
simplified format (which runs ``__init__`` again for each sample) searches both.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

import nascore
from nascore.errors import SearchSpaceError
from nascore.nn import LayerChoice, ModelSpace, MutableLinear
from nascore.space import Mutable, current_frozen_sample
from nascore_formats import GraphFormat, SimplifiedFormat
from nascore_formats.graph import GraphConversionError


def value_in_init(decision: Mutable):
    """What a user writes to read a decision in ``__init__``: its value when built frozen, else its default."""
    sample = current_frozen_sample()
    return decision.freeze(sample) if sample is not None else decision.default_value()


class ReadInInit(ModelSpace):
    """A width chosen with add_mutable and read in __init__ to size plain layers."""

    def __init__(self) -> None:
        super().__init__()
        width = value_in_init(self.add_mutable(nascore.choice("width", [4, 8])))
        self.fc = nn.Linear(3, width)
        self.out = nn.Linear(width, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.relu(self.fc(x)))


class ShapeFromDecision(ModelSpace):
    """A parameter whose shape is set from a decision."""

    def __init__(self) -> None:
        super().__init__()
        rank = value_in_init(self.add_mutable(nascore.choice("rank", [2, 4])))
        self.down = nn.Parameter(torch.randn(3, rank))
        self.up = nn.Parameter(torch.randn(rank, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.down @ self.up


class Block(ModelSpace):
    """A nested space whose decision is read in __init__."""

    def __init__(self) -> None:
        super().__init__()
        hidden = value_in_init(self.add_mutable(nascore.choice("hidden", [4, 8])))
        self.fc = nn.Sequential(nn.Linear(3, hidden), nn.ReLU(), nn.Linear(hidden, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


class Nested(ModelSpace):
    def __init__(self) -> None:
        super().__init__()
        self.block = Block()
        self.act = LayerChoice([nn.ReLU(), nn.Tanh()], label="act")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.block(x))


class UncalledChoice(ModelSpace):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 3)
        self.spare = LayerChoice([nn.ReLU(), nn.Tanh()], label="spare")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


class ChoiceInALayer(ModelSpace):
    """The fix: the width passed to Mutable<Layer> wrappers, so that the graph records it."""

    def __init__(self) -> None:
        super().__init__()
        width = nascore.choice("width", [4, 8])
        self.fc = MutableLinear(3, width)
        self.out = MutableLinear(width, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.relu(self.fc(x)))


def refusal(space: ModelSpace) -> str:
    with pytest.raises(GraphConversionError) as info:
        GraphFormat().build(space)
    assert isinstance(info.value, SearchSpaceError)
    return str(info.value)


def test_a_decision_read_in_init_is_refused_with_the_fix() -> None:
    message = refusal(ReadInInit())
    assert "the graph format cannot apply the decision 'width', registered on the model space " in message
    assert "ReadInInit with add_mutable" in message
    assert "no node of the traced graph uses it, so every value would build the same model" in message
    assert "Use the format 'simplified' for this space" in message
    assert "pass the choice to a Mutable<Layer> (MutableLinear, MutableConv2d, ...), a ParametrizedModule or a LayerChoice" in message


def test_a_parameter_shape_set_from_a_decision_is_refused_with_the_fix() -> None:
    message = refusal(ShapeFromDecision())
    assert "cannot apply the decision 'rank', registered on the model space " in message
    assert "a parameter shape set from it" in message and "Use the format 'simplified'" in message


def test_the_simplified_format_searches_both_spaces() -> None:
    for space, label, values, shape_of in (
        (ReadInInit, "width", [4, 8], lambda m: m.fc.out_features),
        (ShapeFromDecision, "rank", [2, 4], lambda m: m.down.shape[1]),
    ):
        simplified = SimplifiedFormat().build(space())
        assert [shape_of(simplified.freeze({label: v}).build()) for v in values] == values


def test_a_nested_space_names_the_module_holding_the_decision() -> None:
    with pytest.raises(GraphConversionError) as info:
        GraphFormat().build(Nested())
    assert "the decision 'hidden', registered on module 'block' (" in str(info.value)
    assert info.value.module_path == "block"


def test_a_choice_forward_never_calls_is_refused() -> None:
    message = refusal(UncalledChoice())
    assert "'spare' of module 'spare' (nascore.nn.choice:LayerChoice), which forward never calls" in message
    assert "Call the module in forward, or remove it" in message and "simplified" not in message


def test_several_unapplied_decisions_are_all_named() -> None:
    class Both(ModelSpace):
        def __init__(self) -> None:
            super().__init__()
            self.add_mutable(nascore.choice("a", [1, 2]))
            self.add_mutable(nascore.choice("b", [1, 2]))
            self.fc = nn.Linear(3, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(x)

    message = refusal(Both())
    assert "cannot apply the decisions 'a', registered on" in message and "; 'b', registered on" in message
    assert "no node of the traced graph uses them" in message


def test_a_choice_passed_to_a_layer_is_applied() -> None:
    space = GraphFormat().build(ChoiceInALayer())
    built = [space.freeze({"width": w}).build() for w in (4, 8)]
    assert [m.fc.out_features for m in built] == [4, 8]
    assert all(m(torch.randn(2, 3)).shape == (2, 2) for m in built)
