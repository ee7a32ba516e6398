"""Repeat: depth as int, tuple, range, choice or expression; shared vs. independent block decisions."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from nascore.errors import SampleValueError, SearchSpaceError
from nascore.nn import LayerChoice, ModelSpace, MutableLinear, MutableModule, Repeat, fixed_arch
from nascore.space import Categorical, choice


class AddOne(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + 1


def run(module: nn.Module) -> float:
    return module(torch.zeros(1)).item()


def test_fixed_int_depth_has_no_decision() -> None:
    repeat = Repeat(AddOne(), 3, label="r")
    assert repeat.simplify() == {}
    assert run(repeat) == 3
    frozen = repeat.freeze({})
    assert type(frozen) is nn.Sequential and len(frozen) == 3


def test_tuple_depth_is_a_choice_over_the_range() -> None:
    repeat = Repeat(AddOne(), (1, 4), label="r")
    assert repeat.simplify()["r"].values == [1, 2, 3, 4]
    assert (repeat.min_depth, repeat.max_depth) == (1, 4)
    assert len(repeat.blocks) == 4
    assert run(repeat) == 1  # the default depth is the smallest
    for depth in (1, 2, 3, 4):
        frozen = repeat.freeze({"r": depth})
        assert type(frozen) is nn.Sequential and len(frozen) == depth
        assert run(frozen) == depth


def test_range_depth() -> None:
    repeat = Repeat(AddOne(), range(2, 7, 2), label="r")
    assert repeat.simplify()["r"].values == [2, 4, 6]
    assert len(repeat.freeze({"r": 4})) == 4


def test_choice_depth_uses_the_choice_label() -> None:
    depth = choice("depth", [1, 3])
    repeat = Repeat(AddOne(), depth, label="r")
    assert list(repeat.simplify()) == ["depth"]
    assert repeat.max_depth == 3
    assert len(repeat.freeze({"depth": 3})) == 3
    with fixed_arch({"depth": 3}):
        assert len(Repeat(AddOne(), depth, label="r")) == 3


def test_expression_depth() -> None:
    depth = choice("d", [1, 2]) * 2
    repeat = Repeat(AddOne(), depth, label="r")
    assert (repeat.min_depth, repeat.max_depth) == (2, 4)
    assert run(repeat) == 2
    assert len(repeat.freeze({"d": 2})) == 4
    with fixed_arch({"d": 1}):
        assert len(Repeat(AddOne(), depth, label="r")) == 2


def test_zero_depth_is_identity() -> None:
    repeat = Repeat(AddOne(), (0, 2), label="r")
    assert run(repeat) == 0
    assert len(repeat.freeze({"r": 0})) == 0


def test_deepcopied_blocks_share_their_decisions() -> None:
    block = LayerChoice([nn.Identity(), AddOne()], label="op")
    repeat = Repeat(block, 3, label="r")
    assert list(repeat.simplify()) == ["op"]
    frozen = repeat.freeze({"op": 1})
    assert [type(m) for m in frozen] == [AddOne] * 3


def test_deepcopied_blocks_have_their_own_weights() -> None:
    repeat = Repeat(nn.Linear(2, 2), 2, label="r")
    assert repeat.blocks[0].weight is not repeat.blocks[1].weight


def test_factory_blocks_get_index_scoped_labels() -> None:
    repeat = Repeat(lambda index: LayerChoice([nn.Identity(), AddOne()]), (1, 3), label="stage")
    assert list(repeat.simplify()) == [
        "stage",
        "stage/0/layerchoice_1",
        "stage/1/layerchoice_1",
        "stage/2/layerchoice_1",
    ]


def test_factory_receives_the_index() -> None:
    repeat = Repeat(lambda index: nn.Linear(index + 1, index + 2), 3, label="r")
    assert [block.in_features for block in repeat.blocks] == [1, 2, 3]


def test_list_of_blocks() -> None:
    blocks = [nn.Linear(2, 3), nn.Linear(3, 4), nn.Linear(4, 5)]
    repeat = Repeat(blocks, (1, 3), label="r")
    assert repeat(torch.zeros(1, 2)).shape == (1, 3)
    assert repeat.freeze({"r": 2})(torch.zeros(1, 2)).shape == (1, 4)
    with pytest.raises(SearchSpaceError, match="'r': 3 blocks given but depth goes up to 4"):
        Repeat(blocks, (1, 4), label="r")


class Stacked(ModelSpace):
    def __init__(self) -> None:
        super().__init__()
        self.stem = MutableLinear(4, 8)
        self.body = Repeat(
            lambda i: nn.Sequential(MutableLinear(8, 8), LayerChoice([nn.ReLU(), nn.Tanh()])), (1, 3)
        )
        self.shared = Repeat(LayerChoice([nn.Identity(), nn.Sigmoid()]), Categorical([1, 2], label="d"))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shared(self.body(self.stem(x)))


def test_fixed_arch_and_freeze_agree_on_repeat() -> None:
    space = Stacked()
    labels = list(space.simplify())
    assert labels == list(Stacked().simplify())
    assert labels == [
        "repeat_1", "repeat_1/0/layerchoice_1", "repeat_1/1/layerchoice_1", "repeat_1/2/layerchoice_1",
        "d", "layerchoice_2",
    ]  # fmt: skip
    for seed in range(8):
        sample = space.random_sample(seed=seed)
        with fixed_arch(sample):
            built = Stacked()
        frozen = space.freeze(sample)
        assert len(built.body) == len(frozen.body) == sample["repeat_1"]
        assert {k: v.shape for k, v in built.state_dict().items()} == {
            k: v.shape for k, v in frozen.state_dict().items()
        }
        built.load_state_dict(frozen.state_dict())
        x = torch.randn(2, 4)
        torch.testing.assert_close(built(x), frozen(x), rtol=0, atol=1e-6)
        assert not any(
            isinstance(m, MutableModule) and not isinstance(m, ModelSpace) for m in frozen.modules()
        )
        assert not any(
            isinstance(m, MutableModule) and not isinstance(m, ModelSpace) for m in built.modules()
        )


def test_invalid_depths_are_clear_errors() -> None:
    with pytest.raises(SearchSpaceError, match="'r': depth -1 is negative"):
        Repeat(AddOne(), -1, label="r")
    with pytest.raises(SearchSpaceError, match="'r': a depth range must be"):
        Repeat(AddOne(), (3, 1), label="r")
    with pytest.raises(SearchSpaceError, match="'r': depth must be"):
        Repeat(AddOne(), "deep", label="r")
    with pytest.raises(SearchSpaceError, match="'r': depth must be an int"):
        Repeat(AddOne(), True, label="r")
    with pytest.raises(SearchSpaceError, match="'r': every value of the depth choice"):
        Repeat(AddOne(), choice("d", [1, -2]), label="r")
    with pytest.raises(SearchSpaceError, match="'r': the block factory returned int"):
        Repeat(lambda i: 3, 2, label="r")


def test_depth_not_a_candidate() -> None:
    with pytest.raises(SampleValueError, match="value 9 for label 'r'"), fixed_arch({"r": 9}):
        Repeat(AddOne(), (1, 3), label="r")
