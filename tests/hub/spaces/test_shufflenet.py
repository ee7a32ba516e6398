"""The SPOS ShuffleNet space: its size, channel search, the blocks, the formats, one-shot supernets and the preset."""

from __future__ import annotations

import random

import pytest
import torch
import torch.nn as nn

import nascore
from nascore.errors import SampleMissingError, SearchSpaceError
from nascore.nn import LayerChoice
from nascore_hub.spaces.shufflenet import (
    CANDIDATES,
    ChannelShuffle,
    ShuffleNetBlock,
    ShuffleNetSpace,
    ShuffleXceptionBlock,
    UnknownPresetError,
    channel_shuffle,
    mid_channel_choices,
    shuffle_split,
)

# Three blocks (two in the first stage, so a stride-1 block too) on 8x8 images.
SMALL = {
    "num_labels": 10,
    "stage_repeats": (2, 1),
    "stage_out_channels": (16, 32),
    "first_conv_channels": 8,
    "last_conv_channels": 16,
    "stem_stride": 1,
}
# The paper's 20 blocks, tiny.
TINY_20 = {
    "num_labels": 10,
    "stage_out_channels": (16, 24, 32, 48),
    "first_conv_channels": 8,
    "last_conv_channels": 16,
    "stem_stride": 1,
}


def small(channel_search: bool = True) -> ShuffleNetSpace:
    return ShuffleNetSpace(channel_search=channel_search, **SMALL)


def image_batch() -> torch.Tensor:
    return torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))


def a_sample(seed: int = 0) -> dict:
    return small().random_sample(random_state=random.Random(seed))


def test_the_space_size():
    assert ShuffleNetSpace().space_size() == 4**20 == 1099511627776
    assert ShuffleNetSpace(channel_search=True).space_size() == float(32**20) == 2.0**100
    assert small(channel_search=False).space_size() == 4**3
    assert small().space_size() == 32**3


def test_the_labels_and_choices():
    space = ShuffleNetSpace(channel_search=True)
    blocks = [m for m in space.modules() if isinstance(m, LayerChoice)]
    assert [b.label for b in blocks] == [f"layer_{i}" for i in range(1, 21)]
    assert all(b.names == list(CANDIDATES) == ["k3", "k5", "k7", "xcep"] for b in blocks)
    decisions = space.simplify()
    assert sorted(decisions) == sorted([f"layer_{i}" for i in range(1, 21)] + [f"channel_{i}" for i in range(1, 21)])
    # NNI's mid-channel choices: 0.2x to 1.6x of half the stage's channels (64, 160, 320, 640).
    assert list(decisions["channel_1"].values) == [6, 12, 19, 25, 32, 38, 44, 51]
    assert list(decisions["channel_5"].values) == [16, 32, 48, 64, 80, 96, 112, 128]
    assert list(decisions["channel_13"].values) == [32 * k for k in range(1, 9)]
    assert list(decisions["channel_20"].values) == [64 * k for k in range(1, 9)]
    assert mid_channel_choices(8) == [1, 3, 4, 6, 8, 9, 11, 12]
    assert sorted(ShuffleNetSpace().simplify()) == sorted(f"layer_{i}" for i in range(1, 21))


def test_channel_shuffle():
    x = torch.arange(6.0).view(1, 6, 1, 1)
    assert channel_shuffle(x, 2).flatten().tolist() == [0, 3, 1, 4, 2, 5]
    assert channel_shuffle(x, 3).flatten().tolist() == [0, 2, 4, 1, 3, 5]
    assert ChannelShuffle(2)(x).flatten().tolist() == [0, 3, 1, 4, 2, 5]
    even, odd = shuffle_split(x)
    assert even.flatten().tolist() == [0, 2, 4] and odd.flatten().tolist() == [1, 3, 5]
    first, second = channel_shuffle(x, 3).chunk(2, dim=1)  # a shuffle of C // 2 groups, then a split
    assert torch.equal(first, even) and torch.equal(second, odd)
    with pytest.raises(SearchSpaceError, match="positive int"):
        ChannelShuffle(0)


def test_the_blocks():
    x = torch.randn(2, 8, 6, 6)
    block = ShuffleNetBlock(8, 16, 4, kernel_size=5, stride=2)
    assert block(x).shape == (2, 16, 3, 3)
    assert [m.kernel_size for m in block.modules() if isinstance(m, nn.Conv2d) and m.groups > 1] == [(5, 5), (5, 5)]
    block = ShuffleNetBlock(8, 8, 4, kernel_size=3, stride=1)
    assert block(x).shape == (2, 8, 6, 6)
    assert not any(True for _ in block.branch_proj.children())
    block.eval()
    with torch.no_grad():  # the even channels pass through; the odd ones go through the main branch
        assert torch.equal(block(x)[:, :4], x[:, 0::2])
    xcep = ShuffleXceptionBlock(8, 8, 6, stride=1)
    depthwise = [m for m in xcep.modules() if isinstance(m, nn.Conv2d) and m.groups > 1]
    assert len(depthwise) == 3 and all(m.kernel_size == (3, 3) for m in depthwise)
    assert [m.out_channels for m in xcep.branch_main if isinstance(m, nn.Conv2d)] == [4, 6, 6, 6, 6, 4]
    assert xcep(x).shape == (2, 8, 6, 6)


def test_a_frozen_block_has_the_chosen_mid_channels():
    with nascore.fixed_arch({**a_sample(), "layer_1": "k7", "channel_1": 9}):
        model = small()
    block = model.features[0]
    assert type(block) is ShuffleNetBlock and block.kernel_size == 7 and block.mid_channels == 9
    convs = [m for m in block.branch_main if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.groups) for c in convs] == [(8, 9, 1), (9, 9, 9), (9, 8, 1)]
    assert model(image_batch()).shape == (2, 10)


@pytest.mark.parametrize("format_name", ["raw", "simplified", "graph"])
def test_a_sample_builds_and_runs_in_each_format(format_name, format_checks):
    format_checks.runs(format_name, small, a_sample())


def test_the_graph_format_computes_what_the_simplified_format_builds(format_checks):
    format_checks.graph_matches_simplified(small, a_sample(1))


@pytest.mark.parametrize("strategy_name", ["DARTS", "RandomOneShot", "Proxyless"])
def test_the_supernet_trains_one_step(strategy_name, tiny_evaluator):
    from nascore_strategies import oneshot

    torch.manual_seed(0)
    strategy = getattr(oneshot, strategy_name)(seed=0)
    supernet = strategy.create_supernet(small())
    assert not any(isinstance(m, LayerChoice) for m in supernet.modules())
    before = {k: v.detach().clone() for k, v in supernet.state_dict().items() if v.is_floating_point()}
    exported = strategy.search(tiny_evaluator)
    assert exported and all(small().contains(s) for s in exported)
    assert set(exported[0]) == {"layer_1", "layer_2", "layer_3", "channel_1", "channel_2", "channel_3"}
    after = supernet.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    assert all(torch.isfinite(v).all() for v in after.values() if v.is_floating_point())
    with nascore.fixed_arch(exported[0]):
        model = small()
    assert model(image_batch()).shape == (2, 10)
    if strategy_name == "RandomOneShot":  # SPOS: a sub-net inherits the supernet's weights
        subnet = supernet.freeze(exported[0])
        subnet.eval()
        with torch.no_grad():
            assert subnet(image_batch()).shape == (2, 10)


def test_the_spos_preset():
    sample = ShuffleNetSpace.preset("spos")
    assert ShuffleNetSpace.PRESET_NAMES == ("spos",)
    assert [sample[f"layer_{i}"] for i in range(1, 21)] == [
        "k7", "k5", "k3", "k5", "k7", "k3", "k7", "k3", "k7", "k3",
        "k7", "xcep", "k3", "k3", "k3", "k3", "xcep", "k7", "xcep", "xcep",
    ]
    assert ShuffleNetSpace().contains(sample)
    model = ShuffleNetSpace.load_preset("spos", **TINY_20)
    assert model.sample == sample
    kinds = [(type(b).__name__, b.kernel_size) for b in model.features]
    assert kinds[:2] == [("ShuffleNetBlock", 7), ("ShuffleNetBlock", 5)] and kinds[11] == ("ShuffleXceptionBlock", 3)
    model.eval()
    with torch.no_grad():
        assert model(image_batch()).shape == (2, 10)
    with pytest.raises(SampleMissingError, match="channel_1"):  # the preset does not search channels
        ShuffleNetSpace.load_preset("spos", channel_search=True, **TINY_20)
    with pytest.raises(UnknownPresetError, match=r"no preset 'spos2'.*'spos'"):
        ShuffleNetSpace.preset("spos2")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"stage_repeats": (1, 1, 1)}, "one entry per stage"),
        ({"stage_out_channels": (16, 16)}, "increasing, even"),
        ({"stage_out_channels": (16, 33)}, "increasing, even"),
        ({"first_conv_channels": 16}, "increasing, even"),
        ({"stage_repeats": (2, 0)}, "positive ints"),
        ({"stem_stride": 4}, "stem_stride must be 1 or 2"),
        ({"num_labels": 0}, "num_labels"),
        (
            {"first_conv_channels": 4, "stage_out_channels": (6, 32), "channel_search": True},
            r"must be distinct and positive.*widen",
        ),
        ({"channel_ratios": (0.5, 0.5), "channel_search": True}, "distinct"),
    ],
)
def test_bad_arguments_say_what_to_do(kwargs, message):
    with pytest.raises(SearchSpaceError, match=message):
        ShuffleNetSpace(**{**SMALL, **kwargs})


@pytest.mark.parametrize(
    "args, kwargs, message",
    [
        ((8, 16, 4), {"kernel_size": 4, "stride": 2}, "kernel_size must be 3, 5 or 7"),
        ((8, 16, 4), {"kernel_size": 3, "stride": 3}, "stride must be 1 or 2"),
        ((8, 16, 4), {"kernel_size": 3, "stride": 2, "sequence": "pd"}, "end with 'p'"),
        ((8, 16, 4), {"kernel_size": 3, "stride": 1}, "must be equal and even"),
        ((8, 8, 4), {"kernel_size": 3, "stride": 2}, "must exceed"),
        ((8, 16, 0), {"kernel_size": 3, "stride": 2}, "mid_channels must be positive"),
    ],
)
def test_bad_block_arguments_are_refused(args, kwargs, message):
    with pytest.raises(SearchSpaceError, match=message):
        ShuffleNetBlock(*args, **kwargs)
