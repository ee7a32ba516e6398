"""Symbolic profilers: the same counts as building each sample, and refusals where a sum is not exact."""

from __future__ import annotations

import random

import pytest
import torch
import torch.nn as nn

import nascore
from nascore.errors import SampleValidationError
from nascore.nn import LayerChoice, ModelSpace, MutableConv2d
from nascore_hub.profiler import (
    FlopsProfiler,
    NotSymbolicError,
    ParamsProfiler,
    ProfilerConstraint,
    SymbolicFlopsProfiler,
    SymbolicParamsProfiler,
    flops_filter,
)
from nascore_hub.spaces import NasBench101, NasBench201


def spaces():
    return [
        ("nasbench201", lambda: NasBench201(stem_out_channels=4, num_modules_per_stack=2)),
        ("nasbench101", lambda: NasBench101(stem_out_channels=4, num_modules_per_stack=1)),
    ]


@pytest.mark.parametrize("name, make", spaces(), ids=[n for n, _ in spaces()])
@pytest.mark.parametrize("unit", ["mac", "flop"])
def test_the_counts_equal_those_of_the_built_models(name, make, unit):
    x = torch.randn(2, 3, 8, 8)
    space = make()
    symbolic_flops, symbolic_params = SymbolicFlopsProfiler(space, x, unit=unit), SymbolicParamsProfiler(space)
    built_flops, built_params = FlopsProfiler(make(), x, unit=unit), ParamsProfiler(make())
    rng = random.Random(0)
    samples = [space.random_sample(random_state=rng) for _ in range(6)]
    if name == "nasbench201":
        samples += [NasBench201.preset("resnet"), NasBench201.preset("best-cifar10")]
    flops = set()
    for sample in samples:
        assert symbolic_flops(sample) == built_flops(sample), sample
        assert symbolic_params(sample) == built_params(sample), sample
        flops.add(symbolic_flops(sample))
    assert len(flops) > 1  # the samples differ, and so do their counts
    assert symbolic_flops.builds == symbolic_params.builds == 0  # nothing was built


class Conv(nn.Module):
    def __init__(self, channels: int, kernel: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, kernel, padding=kernel // 2, bias=False)

    def forward(self, x):
        return self.conv(x)


def test_a_hand_counted_space():
    """Two 3x3 / 5x5 choices on 4x8x8: a conv of k x k is 4*4*k*k*8*8 MACs; the stem conv 3->4 3x3."""

    class Space(ModelSpace):
        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(3, 4, 3, padding=1, bias=False)
            self.a = LayerChoice({"k3": Conv(4, 3), "k5": Conv(4, 5), "skip": nn.Identity()}, label="a")
            self.b = LayerChoice({"k3": Conv(4, 3), "k5": Conv(4, 5)}, label="b")

        def forward(self, x):
            return self.b(self.a(self.stem(x)))

    profiler = SymbolicFlopsProfiler(Space(), torch.randn(1, 3, 8, 8))
    stem, k3, k5 = 3 * 4 * 9 * 64, 4 * 4 * 9 * 64, 4 * 4 * 25 * 64
    assert profiler({"a": "k3", "b": "k5"}) == stem + k3 + k5
    assert profiler({"a": "skip", "b": "k3"}) == stem + k3
    params = SymbolicParamsProfiler(Space())
    assert params({"a": "k5", "b": "k5"}) == 3 * 4 * 9 + 2 * 4 * 4 * 25


def test_it_plugs_in_as_a_filter_and_a_constraint():
    space = NasBench201(stem_out_channels=4, num_modules_per_stack=1)
    profiler = SymbolicFlopsProfiler(space, torch.randn(1, 3, 8, 8))
    cheap, costly = NasBench201.preset("resnet"), NasBench201.preset("best-cifar10")
    limit = (profiler(cheap) + profiler(costly)) / 2
    keep = flops_filter(profiler, limit)
    assert keep(cheap) and not keep(costly)
    space.add_mutable(ProfilerConstraint(profiler, max_value=limit, label="flops"))
    assert space.contains(cheap) and not space.contains(costly)


def test_choices_in_layer_arguments_are_refused_naming_the_decision():
    class Widths(ModelSpace):
        def __init__(self):
            super().__init__()
            self.conv = MutableConv2d(3, nascore.choice("width", [4, 8]), 3)

        def forward(self, x):
            return self.conv(x)

    with pytest.raises(NotSymbolicError, match=r"'width' \(Categorical\).*FlopsProfiler"):
        SymbolicFlopsProfiler(Widths(), torch.randn(1, 3, 8, 8))
    with pytest.raises(NotSymbolicError, match="'width'"):
        SymbolicParamsProfiler(Widths())


def test_a_candidate_that_changes_the_shape_is_refused():
    class Shapes(ModelSpace):
        def __init__(self):
            super().__init__()
            self.op = LayerChoice({"same": nn.Conv2d(3, 4, 3, padding=1), "smaller": nn.Conv2d(3, 4, 3)}, label="op")
            self.head = nn.Flatten()

        def forward(self, x):
            return self.head(self.op(x))

    with pytest.raises(NotSymbolicError, match=r"candidate 'smaller' of LayerChoice 'op' outputs \(1, 4, 6, 6\)"):
        SymbolicFlopsProfiler(Shapes(), torch.randn(1, 3, 8, 8))


def test_nested_choices_are_refused():
    class Nested(ModelSpace):
        def __init__(self):
            super().__init__()
            inner = LayerChoice([nn.Identity(), nn.ReLU()], label="inner")
            self.op = LayerChoice({"block": nn.Sequential(inner), "skip": nn.Identity()}, label="outer")

        def forward(self, x):
            return self.op(x)

    with pytest.raises(NotSymbolicError, match="'outer' has a candidate 'block' holding LayerChoice 'inner'"):
        SymbolicParamsProfiler(Nested())


def test_an_invalid_sample_is_refused_by_the_space():
    profiler = SymbolicParamsProfiler(NasBench201(stem_out_channels=4, num_modules_per_stack=1))
    with pytest.raises(SampleValidationError, match="conv_7x7"):
        profiler({**NasBench201.preset("resnet"), "1_0": "conv_7x7"})
