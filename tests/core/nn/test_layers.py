"""Mutable<Layer> wrappers: one per torch.nn layer, choices in init arguments, plain torch when frozen."""

from __future__ import annotations

import copy
import pickle

import pytest
import torch
import torch.nn as nn

import nascore.nn as nas_nn
from nascore.errors import SampleValueError
from nascore.nn import (
    ModelSpace,
    MutableBatchNorm2d,
    MutableConv2d,
    MutableDropout,
    MutableLayerNorm,
    MutableLinear,
    MutableModule,
    MutableMultiheadAttention,
    MutableReLU,
    fixed_arch,
)
from nascore.nn.layers import WRAPPED_LAYERS
from nascore.space import Categorical, Numerical, choice

_CONTAINERS = {
    "Module",
    "Sequential",
    "ModuleList",
    "ModuleDict",
    "ParameterList",
    "ParameterDict",
    "Container",
}
TORCH_LAYERS = sorted(
    name
    for name in nn.modules.__all__
    if isinstance(getattr(nn, name, None), type)
    and issubclass(getattr(nn, name), nn.Module)
    and name not in _CONTAINERS
)


def test_a_wrapper_exists_for_every_torch_layer() -> None:
    assert len(TORCH_LAYERS) > 100
    missing = [name for name in TORCH_LAYERS if not hasattr(nas_nn, f"Mutable{name}")]
    assert missing == []
    assert set(WRAPPED_LAYERS) == set(TORCH_LAYERS)


@pytest.mark.parametrize(
    "name", ["Conv2d", "Linear", "BatchNorm2d", "Dropout", "LayerNorm", "MultiheadAttention"]
)
def test_wrapper_is_a_subclass_of_the_layer(name: str) -> None:
    wrapper = getattr(nas_nn, f"Mutable{name}")
    assert issubclass(wrapper, getattr(nn, name))
    assert issubclass(wrapper, MutableModule)
    assert wrapper.__module__ == "nascore.nn.layers"


def test_plain_arguments_make_a_working_layer() -> None:
    linear = MutableLinear(4, 3)
    assert linear.simplify() == {}
    assert linear(torch.randn(2, 4)).shape == (2, 3)


def test_choice_arguments_register_decisions_and_use_defaults() -> None:
    width = choice("width", [8, 16])
    conv = MutableConv2d(3, width, kernel_size=choice("k", [3, 5]), padding=1)
    assert list(conv.simplify()) == ["width", "k"]
    assert conv.out_channels == 8 and conv.kernel_size == (3, 3)
    assert conv(torch.randn(1, 3, 8, 8)).shape == (1, 8, 8, 8)
    assert conv.trace_args == (3, width)
    assert "width" in repr(conv)


@pytest.mark.parametrize(
    ("make", "sample", "check"),
    [
        (
            lambda: MutableConv2d(3, choice("w", [4, 8]), 3),
            {"w": 8},
            lambda m: type(m) is nn.Conv2d and m.out_channels == 8,
        ),
        (
            lambda: MutableLinear(choice("w", [4, 8]) * 2, 3),
            {"w": 8},
            lambda m: type(m) is nn.Linear and m.in_features == 16,
        ),
        (
            lambda: MutableBatchNorm2d(choice("w", [4, 8])),
            {"w": 4},
            lambda m: type(m) is nn.BatchNorm2d and m.num_features == 4,
        ),
        (
            lambda: MutableDropout(p=Numerical(0, 0.5, label="p")),
            {"p": 0.25},
            lambda m: type(m) is nn.Dropout and m.p == 0.25,
        ),
        (
            lambda: MutableLayerNorm(choice("w", [4, 8])),
            {"w": 8},
            lambda m: type(m) is nn.LayerNorm and m.normalized_shape == (8,),
        ),
        (
            lambda: MutableMultiheadAttention(16, choice("heads", [2, 4]), batch_first=True),
            {"heads": 4},
            lambda m: type(m) is nn.MultiheadAttention and m.num_heads == 4,
        ),
        (lambda: MutableReLU(), {}, lambda m: type(m) is nn.ReLU),
    ],
)
def test_frozen_wrapper_is_the_plain_torch_class(make, sample, check) -> None:
    space_layer = make()
    assert check(space_layer.freeze(sample))
    with fixed_arch(sample):
        built = make()
    assert check(built)


def test_expression_arguments() -> None:
    width = choice("w", [2, 3])
    layer = MutableLinear(width, width * 4)
    assert list(layer.simplify()) == ["w"]
    assert (layer.in_features, layer.out_features) == (2, 8)
    frozen = layer.freeze({"w": 3})
    assert (frozen.in_features, frozen.out_features) == (3, 12)


def test_freezing_a_layer_without_choices_keeps_its_weights() -> None:
    class Space(ModelSpace):
        def __init__(self) -> None:
            super().__init__()
            self.conv = MutableConv2d(3, 4, 3)
            self.bn = MutableBatchNorm2d(4)

    space = Space().eval()
    frozen = space.freeze({})
    assert type(frozen.conv) is nn.Conv2d and type(frozen.bn) is nn.BatchNorm2d
    assert torch.equal(frozen.conv.weight, space.conv.weight)
    assert not frozen.bn.training
    x = torch.randn(1, 3, 6, 6)
    torch.testing.assert_close(frozen.bn(frozen.conv(x)), space.bn(space.conv(x)))
    assert type(space.conv) is MutableConv2d  # the space itself is untouched


def test_wrappers_survive_deepcopy_and_pickle_even_inside_fixed_arch() -> None:
    layer = MutableLinear(4, choice("w", [2, 3]))
    relu = MutableReLU()
    with fixed_arch({"w": 3}):
        copied = copy.deepcopy(layer)
        copied_relu = copy.deepcopy(relu)
    assert type(copied) is MutableLinear and type(copied_relu) is MutableReLU
    assert list(copied.simplify()) == ["w"]
    restored = pickle.loads(pickle.dumps(layer))
    assert type(restored) is MutableLinear
    assert torch.equal(restored.weight, layer.weight)
    assert restored.freeze({"w": 3}).out_features == 3


def test_invalid_value_for_a_layer_argument() -> None:
    layer = MutableLinear(4, Categorical([2, 3], label="w"))
    with pytest.raises(SampleValueError, match="label 'w'"):
        layer.freeze({"w": 5})
