"""LayerChoice and InputChoice: candidates, defaults in forward, frozen forms and errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from nascore.errors import LabelConflictError, SampleMissingError, SampleValueError, SearchSpaceError
from nascore.nn import ChosenInputs, InputChoice, LayerChoice, ModelSpace, fixed_arch

# --- LayerChoice -----------------------------------------------------------------------------------


def test_layer_choice_over_a_list_is_indexed() -> None:
    choice = LayerChoice([nn.Linear(4, 4), nn.ReLU(), nn.Identity()], label="op")
    assert choice.label == "op"
    assert list(choice) == [0, 1, 2]
    assert len(choice) == 3
    assert isinstance(choice[1], nn.ReLU)
    assert choice.simplify()["op"].values == [0, 1, 2]
    assert [type(m) for m in choice.candidates] == [nn.Linear, nn.ReLU, nn.Identity]


def test_layer_choice_over_a_dict_is_named() -> None:
    choice = LayerChoice({"conv": nn.Conv2d(3, 3, 1), "pool": nn.MaxPool2d(1)}, label="op")
    assert choice.simplify()["op"].values == ["conv", "pool"]
    assert isinstance(choice["pool"], nn.MaxPool2d)
    assert "op.conv.weight" in nn.ModuleDict({"op": choice}).state_dict()


def test_layer_choice_forward_runs_the_default_candidate() -> None:
    choice = LayerChoice([nn.Identity(), nn.Tanh()], label="act")
    x = torch.randn(3, 4)
    assert torch.equal(choice(x), x)


def test_layer_choice_freeze_returns_the_chosen_module_with_its_weights() -> None:
    choice = LayerChoice({"a": nn.Linear(4, 2), "b": nn.Linear(4, 3)}, label="op")
    frozen = choice.freeze({"op": "b"})
    assert type(frozen) is nn.Linear and frozen.out_features == 3
    assert torch.equal(frozen.weight, choice["b"].weight)
    assert frozen is not choice["b"]  # freeze works on a copy
    assert len(choice) == 2


def test_layer_choice_inside_fixed_arch_is_the_chosen_module() -> None:
    with fixed_arch({"op": 1}):
        module = LayerChoice([nn.ReLU(), nn.Tanh()], label="op")
    assert type(module) is nn.Tanh


def test_layer_choice_errors_name_the_label() -> None:
    with pytest.raises(SearchSpaceError, match="LayerChoice 'op' has no candidates"):
        LayerChoice([], label="op")
    with pytest.raises(SearchSpaceError, match="'op': candidate 1 is a str, not an nn.Module"):
        LayerChoice([nn.ReLU(), "relu"], label="op")
    with pytest.raises(SearchSpaceError, match="'op': candidate names must be strings"):
        LayerChoice({1: nn.ReLU()}, label="op")
    with pytest.raises(SearchSpaceError, match="'op': candidates must be a list or a dict"):
        LayerChoice(nn.ReLU(), label="op")


def test_layer_choice_sample_errors_name_the_label() -> None:
    with pytest.raises(SampleMissingError, match="'op'"), fixed_arch({}):
        LayerChoice([nn.ReLU(), nn.Tanh()], label="op")
    with pytest.raises(SampleValueError, match="value 2 for label 'op'"), fixed_arch({"op": 2}):
        LayerChoice([nn.ReLU(), nn.Tanh()], label="op")


class TwoChoices(ModelSpace):
    def __init__(self, second: list[nn.Module]) -> None:
        super().__init__()
        self.a = LayerChoice([nn.ReLU(), nn.Tanh()], label="shared")
        self.b = LayerChoice(second, label="shared")


def test_same_label_same_candidates_is_one_decision() -> None:
    space = TwoChoices([nn.Sigmoid(), nn.Identity()])
    assert list(space.simplify()) == ["shared"]
    frozen = space.freeze({"shared": 1})
    assert type(frozen.a) is nn.Tanh and type(frozen.b) is nn.Identity


def test_same_label_different_candidates_is_a_conflict() -> None:
    space = TwoChoices([nn.Sigmoid(), nn.Identity(), nn.ReLU()])
    with pytest.raises(LabelConflictError, match="label 'shared'"):
        space.simplify()


def test_automatic_labels_are_reproducible_in_a_space() -> None:
    class Space(ModelSpace):
        def __init__(self) -> None:
            super().__init__()
            self.a = LayerChoice([nn.ReLU(), nn.Tanh()])
            self.b = InputChoice(3)

    assert list(Space().simplify()) == list(Space().simplify()) == ["layerchoice_1", "inputchoice_2"]


# --- InputChoice -----------------------------------------------------------------------------------


@pytest.fixture
def tensors() -> list[torch.Tensor]:
    return [torch.full((2, 3), float(i + 1)) for i in range(4)]


def test_input_choice_one_input(tensors: list[torch.Tensor]) -> None:
    choice = InputChoice(4, 1, label="in")
    assert choice.simplify()["in"].values == [0, 1, 2, 3]
    assert torch.equal(choice(tensors), tensors[0])  # default: first candidate
    frozen = choice.freeze({"in": 2})
    assert isinstance(frozen, ChosenInputs)
    assert torch.equal(frozen(tensors), tensors[2])


@pytest.mark.parametrize(
    ("reduction", "expected"),
    [
        ("sum", lambda t: t[1] + t[3]),
        ("mean", lambda t: (t[1] + t[3]) / 2),
        ("concat", lambda t: torch.cat([t[1], t[3]], dim=1)),
        ("none", lambda t: [t[1], t[3]]),
    ],
)
def test_input_choice_two_inputs_each_reduction(
    tensors: list[torch.Tensor], reduction: str, expected
) -> None:
    choice = InputChoice(4, 2, reduction, label="in")
    assert choice.simplify()["in"].size == 6
    with fixed_arch({"in": [3, 1]}):  # order does not matter: inputs come in candidate order
        frozen = InputChoice(4, 2, reduction, label="in")
    result, want = frozen(tensors), expected(tensors)
    if reduction == "none":
        assert len(result) == 2 and all(torch.equal(r, w) for r, w in zip(result, want))
    else:
        assert torch.equal(result, want)
    via_freeze = choice.freeze({"in": [1, 3]})
    assert via_freeze.chosen == frozen.chosen == [1, 3]


def test_input_choice_default_of_two_is_the_first_two(tensors: list[torch.Tensor]) -> None:
    assert torch.equal(InputChoice(4, 2, "sum", label="in")(tensors), tensors[0] + tensors[1])


def test_input_choice_any_number(tensors: list[torch.Tensor]) -> None:
    choice = InputChoice(3, None, "sum", label="in")
    assert choice.simplify()["in"].size == 8
    assert torch.equal(choice(tensors[:3]), tensors[0] + tensors[1] + tensors[2])  # default: all
    frozen = choice.freeze({"in": [2]})
    assert torch.equal(frozen(tensors), tensors[2])
    empty = choice.freeze({"in": []})
    with pytest.raises(SearchSpaceError, match="chose no input"):
        empty(tensors)
    assert choice.freeze({"in": []}).chosen == []
    assert ChosenInputs([], "none")(tensors) == []


def test_input_choice_errors_name_the_label() -> None:
    with pytest.raises(SearchSpaceError, match="'in': reduction must be one of"):
        InputChoice(3, 1, "max", label="in")
    with pytest.raises(SearchSpaceError, match="'in': n_candidates must be a positive int"):
        InputChoice(0, label="in")
    with pytest.raises(SampleValueError, match="label 'in'"), fixed_arch({"in": 5}):
        InputChoice(3, label="in")
    with pytest.raises(SampleValueError, match="label 'in'.*exactly 2"), fixed_arch({"in": [0]}):
        InputChoice(3, 2, label="in")


def test_repr_shows_the_label() -> None:
    assert "label='op'" in repr(LayerChoice([nn.ReLU()], label="op"))
    assert "label='in'" in repr(InputChoice(2, label="in"))
    assert "chosen=[0, 1]" in repr(ChosenInputs([0, 1], "sum"))
