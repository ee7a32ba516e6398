"""The ProxylessNAS space: its size and labels, the MBConv candidates, the formats, one-shot supernets and presets."""

from __future__ import annotations

import random

import pytest
import torch
import torch.nn as nn

import nascore
from nascore.errors import SearchSpaceError
from nascore.nn import LayerChoice, MutableModule, Repeat
from nascore_hub.spaces.mobilenet import DepthwiseSeparableConv, InvertedResidual
from nascore_hub.spaces.presets import UnknownPresetError
from nascore_hub.spaces.proxylessnas import PRESET_ARGUMENTS, PRESETS, ProxylessNAS, candidate_name

# Tiny widths, 4 candidates (kernel 3 or 5, ratio 3 or 6), 1 or 2 blocks, strides for 8x8 images.
SMALL = {
    "num_labels": 10,
    "base_widths": (8, 8, 8, 8, 16, 16, 16, 16, 16),
    "kernel_sizes": (3, 5),
    "expand_ratios": (3, 6),
    "depth_range": (1, 2),
    "stride": (1, 1, 1, 2, 1, 1, 2, 1),
}
TINY_WIDTHS = {"base_widths": (8,) * 8 + (16,), "num_labels": 10}


def small(**kwargs) -> ProxylessNAS:
    return ProxylessNAS(**{**SMALL, **kwargs})


def image_batch() -> torch.Tensor:
    return torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))


def a_sample(seed: int = 0) -> dict:
    return small().random_sample(random_state=random.Random(seed))


def test_the_space_size():
    assert ProxylessNAS().space_size() == float(6 * (6 + 6**2 + 6**3 + 6**4) ** 5) == float(6 * 1554**5)
    assert small().space_size() == 4 * (4 + 4**2) ** 5
    assert small(depth_range=(2, 2)).space_size() == 4 * 16**5


def test_the_labels_and_candidates():
    space = ProxylessNAS()
    labels = sorted(space.simplify())
    depths = [f"s{s}_depth" for s in range(2, 7)]
    blocks = [f"s{s}_i{i}" for s in range(2, 7) for i in range(4)] + ["s7_i0"]
    assert labels == sorted(depths + blocks)
    assert list(space.simplify()["s2_depth"].values) == [1, 2, 3, 4]
    assert list(space.simplify()["s3_i1"].values) == ["k3e3", "k5e3", "k7e3", "k3e6", "k5e6", "k7e6"]
    assert candidate_name(5, 2.5) == "k5e2.5"
    repeats = [m for m in space.blocks if isinstance(m, Repeat)]
    assert [r.label for r in repeats] == depths
    assert isinstance(space.blocks[0], DepthwiseSeparableConv) and isinstance(space.blocks[-1], LayerChoice)
    first = space.blocks[1].blocks[0]  # stage 2, block 0: stride 2 and 16 -> 32 channels, no skip
    assert isinstance(first, LayerChoice) and first.label == "s2_i0"
    k7e6 = first["k7e6"]
    assert isinstance(k7e6, InvertedResidual) and not k7e6.has_skip
    assert k7e6.depthwise[0].kernel_size == (7, 7) and k7e6.depthwise[0].stride == (2, 2)
    assert k7e6.expand[0].in_channels == 16 and k7e6.hidden_channels == 96 and k7e6.project[0].out_channels == 32
    assert isinstance(k7e6.expand[2], nn.ReLU6) and len(k7e6.project) == 2  # the projection is linear
    assert space.blocks[1].blocks[1]["k3e3"].has_skip  # later blocks of a stage are residual


def test_a_frozen_model_has_the_chosen_blocks():
    sample = ProxylessNAS.preset("proxyless-mobile")
    with nascore.fixed_arch(sample):
        model = ProxylessNAS(**TINY_WIDTHS)
    assert not any(isinstance(m, MutableModule) and not isinstance(m, nascore.nn.ModelSpace) for m in model.modules())
    stages = list(model.blocks)
    assert [len(stage) for stage in stages[1:6]] == [2, 4, 4, 4, 4]  # depths as chosen
    assert stages[2][0].depthwise[0].kernel_size == (7, 7) and stages[2][0].hidden_channels == 24  # k7e3
    assert isinstance(stages[6], InvertedResidual) and stages[6].depthwise[0].kernel_size == (7, 7)
    assert model(image_batch()).shape == (2, 10)


@pytest.mark.parametrize("format_name", ["raw", "simplified", "graph"])
def test_a_sample_builds_and_runs_in_each_format(format_name, format_checks):
    format_checks.runs(format_name, small, a_sample())


def test_the_graph_format_computes_what_the_simplified_format_builds(format_checks):
    format_checks.graph_matches_simplified(small, a_sample(1))


@pytest.mark.parametrize("strategy_name", ["DARTS", "RandomOneShot", "Proxyless", "GumbelDARTS"])
def test_the_supernet_trains_one_step(strategy_name, tiny_evaluator):
    from nascore_strategies import oneshot

    torch.manual_seed(0)
    strategy = getattr(oneshot, strategy_name)(seed=0)
    supernet = strategy.create_supernet(small())
    assert not any(isinstance(m, (LayerChoice, Repeat)) for m in supernet.modules())  # all mixed
    labels = sorted(small().simplify())
    assert sorted(supernet.simplify()) == labels
    before = {k: v.detach().clone() for k, v in supernet.state_dict().items() if v.is_floating_point()}
    alphas = [a.detach().clone() for a in strategy.arch.alphas] if strategy_name != "RandomOneShot" else []
    exported = strategy.search(tiny_evaluator)
    assert exported and all(small().contains(s) for s in exported)
    after = supernet.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)  # the weights moved
    if alphas:  # the architecture step reached the decisions
        assert any(not torch.equal(a, b) for a, b in zip(alphas, strategy.arch.alphas))
    with nascore.fixed_arch(exported[0]):
        model = small()
    assert model(image_batch()).shape == (2, 10)


def test_presets():
    assert ProxylessNAS.PRESET_NAMES == (
        "proxyless-gpu", "proxyless-cpu", "proxyless-mobile", "acenas-m1", "acenas-m2", "acenas-m3",
    )
    assert ProxylessNAS.preset("proxyless-gpu") == {
        "s2_depth": 1, "s2_i0": "k5e3",
        "s3_depth": 2, "s3_i0": "k7e3", "s3_i1": "k3e3",
        "s4_depth": 2, "s4_i0": "k7e6", "s4_i1": "k5e3",
        "s5_depth": 3, "s5_i0": "k5e6", "s5_i1": "k3e3", "s5_i2": "k5e3",
        "s6_depth": 4, "s6_i0": "k7e6", "s6_i1": "k7e6", "s6_i2": "k7e6", "s6_i3": "k5e6",
        "s7_i0": "k7e6",
    }
    assert ProxylessNAS.preset_arguments("proxyless-cpu") == {"base_widths": (40, 24, 32, 48, 88, 104, 216, 360, 1432)}
    assert ProxylessNAS.preset_arguments("proxyless-mobile") == {}
    space = ProxylessNAS()
    for name in ProxylessNAS.PRESET_NAMES:
        sample = ProxylessNAS.preset(name)
        assert space.contains(sample), name
        model = ProxylessNAS.load_preset(name, **TINY_WIDTHS)  # tiny widths override the preset's
        assert model.sample == sample
        assert model(image_batch()).shape == (2, 10)
    # The paper's models with 1000 classes (ProxylessNAS reports 7.1M, 4.4M and 4.1M parameters).
    with torch.device("meta"):
        counts = {
            name: sum(p.numel() for p in ProxylessNAS.load_preset(name).parameters())
            for name in ("proxyless-gpu", "proxyless-cpu", "proxyless-mobile")
        }
    assert counts["proxyless-gpu"] == 7_119_848 and counts["proxyless-cpu"] == 4_361_648
    assert counts["proxyless-mobile"] == 4_080_512
    assert set(PRESET_ARGUMENTS) <= set(PRESETS)


def test_an_unknown_preset_names_the_known_ones():
    with pytest.raises(UnknownPresetError, match=r"no preset 'proxyless-tpu'.*'proxyless-gpu', 'proxyless-cpu'"):
        ProxylessNAS.preset("proxyless-tpu")
    with pytest.raises(KeyError):
        ProxylessNAS.load_preset("mobilenetv2")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"base_widths": (32, 16, 32)}, "base_widths must have 9 entries"),
        ({"base_widths": (32, 16, 32, 40, 80, 96, 192, 320, 0)}, "base_widths must be positive ints"),
        ({"kernel_sizes": (3, 4)}, "kernel_sizes must be odd"),
        ({"expand_ratios": (3, -1)}, "expand_ratios must be positive"),
        ({"depth_range": (0, 4)}, r"depth_range must be \(min, max\) with 1 <= min <= max"),
        ({"depth_range": (3, 2)}, r"depth_range must be \(min, max\)"),
        ({"stride": (2, 1, 2)}, "stride must have 8 entries"),
        ({"stride": (2, 1, 3, 2, 2, 1, 2, 1)}, "every stride must be 1 or 2"),
        ({"dropout_rate": 1.0}, r"dropout_rate must be in \[0, 1\)"),
        ({"width_mult": 0}, "width_mult must be positive"),
    ],
)
def test_bad_arguments_are_refused_saying_why(kwargs, message):
    with pytest.raises(SearchSpaceError, match=message):
        ProxylessNAS(**kwargs)
