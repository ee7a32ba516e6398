"""The MobileNetV3 space: its size and labels, the blocks, the formats, one-shot supernets sharing weights, and presets."""

from __future__ import annotations

import random

import pytest
import torch
import torch.nn as nn

import nascore
from nascore.errors import SearchSpaceError
from nascore.nn import LayerChoice, MutableModule, Repeat
from nascore_hub.spaces.mobilenet import (
    ConvBNAct,
    DepthwiseSeparableConv,
    InvertedResidual,
    SqueezeExcite,
    always_equal,
    make_activation,
    make_divisible,
)
from nascore_hub.spaces.mobilenetv3 import MobileNetV3Space
from nascore_hub.spaces.presets import UnknownPresetError

# A shorter network (3 MBConv stages) of tiny widths: 2 width multipliers, ratios and kernels, depth
# 1 or 2, squeeze-and-excitation forced in stage 0 and optional in stages 1 and 3, strides for 8x8 images.
SMALL = {
    "num_labels": 10,
    "base_widths": (16,) * 7,
    "width_multipliers": (0.5, 1.0),
    "expand_ratios": (2.0, 3.0),
    "kernel_sizes": (3, 5),
    "stem_kernel_sizes": (3, 5),
    "squeeze_excite": ("force", "optional", "none", "optional"),
    "depth_range": (1, 2),
    "stride": (1, 1, 2, 2, 1, 1, 1),
    "activation": ("hswish", "relu", "relu", "hswish", "hswish", "hswish", "hswish"),
    "dropout_rate": 0.0,
}


def small(**kwargs) -> MobileNetV3Space:
    return MobileNetV3Space(**{**SMALL, **kwargs})


def image_batch() -> torch.Tensor:
    return torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))


def a_sample(seed: int = 0) -> dict:
    return small().random_sample(random_state=random.Random(seed))


def tiny_preset_arguments(name: str) -> dict:
    """The preset's arguments with widths of 8 or 16 channels and 10 classes."""
    widths = MobileNetV3Space.preset_arguments(name)["base_widths"]
    return {"base_widths": (8,) * (len(widths) - 2) + (16, 16), "num_labels": 10}


def test_make_divisible_rounds_numbers_and_choices_alike():
    assert [make_divisible(v) for v in (4, 10, 12, 20, 88.08, 184, 1280 * 0.75)] == [8, 16, 16, 24, 88, 184, 960]
    assert make_divisible(3, 4, min_value=4) == 4
    width = nascore.choice("w", [0.5, 0.625, 0.75, 1.0, 1.25, 1.5, 2.0])
    for base in (16, 24, 40, 1280):
        expression = make_divisible(width * base)
        assert [expression.freeze({"w": w}) for w in width.values] == [make_divisible(w * base) for w in width.values]
    with pytest.raises(SearchSpaceError, match="divisor must be a positive int"):
        make_divisible(16, 0)


def test_blocks():
    width = nascore.choice("w", [0.5, 1.0])
    assert always_equal(make_divisible(width * 16), make_divisible(width * 16))
    assert not always_equal(make_divisible(width * 16), make_divisible(width * 32))
    assert always_equal(8, make_divisible(width * 4)) and not always_equal(8, 16)
    block = InvertedResidual(16, 16, 4, 5)
    assert block.has_skip and block.hidden_channels == 64 and block.se is None
    assert block.depthwise[0].groups == 64 and block.depthwise[0].padding == (2, 2)
    x = torch.randn(2, 16, 4, 4)
    assert block(x).shape == (2, 16, 4, 4)
    assert not InvertedResidual(16, 16, 4, stride=2).has_skip and not InvertedResidual(16, 24, 4).has_skip
    se = SqueezeExcite(64)
    assert se.conv_reduce.out_channels == 16 and isinstance(se.gate, nn.Hardsigmoid)
    assert DepthwiseSeparableConv(16, 24, squeeze_excite=lambda h, i: SqueezeExcite(h))(x).shape == (2, 24, 4, 4)
    head = ConvBNAct(16, 32, 1, norm=False, activation="hswish")
    assert head[0].bias is not None and isinstance(head[1], nn.Hardswish) and len(head) == 2
    with pytest.raises(SearchSpaceError, match="unknown activation 'gelu'"):
        make_activation("gelu")
    with pytest.raises(SearchSpaceError, match="stride must be 1 or 2"):
        InvertedResidual(16, 16, 4, stride=3)


def S(b: int, d: int = 4) -> int:  # noqa: N802 - the docstring's name
    """Samples of one MBConv stage of depth 1 to ``d`` with ``b`` choices per block."""
    return sum(b**k for k in range(1, d + 1))


def test_the_space_size():
    with torch.device("meta"):
        space = MobileNetV3Space()
        assert space.space_size() == pytest.approx(float(7**8 * 2 * 3 * S(18) ** 2 * S(36) ** 3), rel=1e-12)
        assert f"{space.space_size():.3g}" == "2.2e+36"
    # 6 width multipliers of 2 values, 2 stem and 2 stage-0 kernels, stages 1 and 3 with 8 blocks and
    # stage 2 with 4 (no squeeze-and-excitation), of depth 1 or 2.
    assert small().space_size() == 2**6 * 2 * 2 * S(8, 2) * S(4, 2) * S(8, 2) == 26_542_080
    assert small(width_multipliers=1.0, stem_kernel_sizes=3).space_size() == 2 * S(8, 2) * S(4, 2) * S(8, 2)


def test_the_labels():
    space = small()
    widths = [f"s{s}_width_mult" for s in range(6)]
    stages = [f"s{s}_depth" for s in (1, 2, 3)]
    blocks = [f"s{s}_i{i}_{kind}" for s in (1, 2, 3) for i in range(2) for kind in ("exp", "ks")]
    se = [f"s{s}_i{i}_se" for s in (1, 3) for i in range(2)]
    assert sorted(space.simplify()) == sorted(["stem_ks", "s0_i0_ks", *widths, *stages, *blocks, *se])
    assert list(space.simplify()["s1_i0_se"].values) == ["identity", "se"]
    assert [r.label for r in space.blocks if isinstance(r, Repeat)] == stages
    assert isinstance(space.blocks[0].se, SqueezeExcite)  # forced in stage 0
    assert space.blocks[0].has_skip  # the stem and stage 0 share one width
    stage1 = space.blocks[1].blocks
    assert not stage1[0].has_skip and stage1[1].has_skip
    assert isinstance(stage1[0].se, LayerChoice) and stage1[0].se.label == "s1_i0_se"
    assert space.blocks[2].blocks[0].se is None
    assert "s0_i0_se" in small(squeeze_excite=("optional", "none", "none", "none")).simplify()


def test_squeeze_excite_can_be_sized_from_the_input_channels():
    sample = {**a_sample(0), "s1_i0_se": "se", "s1_i0_exp": 3.0, "s0_width_mult": 1.0}
    for se_from_exp, squeezed in ((True, 16), (False, 8)):  # a quarter of 48 or of 16, made divisible by 8
        with nascore.fixed_arch(sample):
            model = small(se_from_exp=se_from_exp)
        se = model.blocks[1][0].se
        assert se.conv_reduce.in_channels == 48 and se.conv_reduce.out_channels == squeezed
        assert model(image_batch()).shape == (2, 10)


def test_a_frozen_model_has_the_chosen_values():
    sample = a_sample(3)
    with nascore.fixed_arch(sample):
        model = small()
    assert not any(isinstance(m, MutableModule) and not isinstance(m, nascore.nn.ModelSpace) for m in model.modules())
    assert model.stem[0].kernel_size == (sample["stem_ks"],) * 2
    assert model.stem[0].out_channels == 16 * sample["s0_width_mult"]
    stage1 = model.blocks[1]
    assert len(stage1) == sample["s1_depth"]
    hidden = make_divisible(make_divisible(16 * sample["s0_width_mult"]) * sample["s1_i0_exp"])
    assert stage1[0].expand[0].out_channels == stage1[0].hidden_channels == hidden
    assert stage1[0].depthwise[0].kernel_size == (sample["s1_i0_ks"],) * 2
    assert isinstance(stage1[0].se, SqueezeExcite if sample["s1_i0_se"] == "se" else nn.Identity)
    assert model(image_batch()).shape == (2, 10)


@pytest.mark.parametrize("format_name", ["raw", "simplified", "graph"])
def test_a_sample_builds_and_runs_in_each_format(format_name, format_checks):
    format_checks.runs(format_name, small, a_sample())


def test_the_graph_format_computes_what_the_simplified_format_builds(format_checks):
    format_checks.graph_matches_simplified(small, a_sample(1))


@pytest.mark.parametrize("strategy_name", ["DARTS", "RandomOneShot", "Proxyless", "GumbelDARTS", "ENAS"])
def test_the_supernet_trains_one_step(strategy_name, tiny_evaluator):
    from nascore_strategies import oneshot
    from nascore_strategies.oneshot.supermodule import BaseSuperNetModule, MixedOperation

    torch.manual_seed(0)
    strategy = getattr(oneshot, strategy_name)(seed=0)
    supernet = strategy.create_supernet(small())
    # Kernel sizes, ratios and widths are arguments of mixed operations, which share their weights.
    left = [name for name, m in supernet.named_modules() if isinstance(m, (LayerChoice, Repeat))
            or isinstance(m, MutableModule) and m.mutables and not isinstance(m, (BaseSuperNetModule, nascore.nn.ModelSpace))]
    assert not left
    mixed = [m for m in supernet.modules() if isinstance(m, MixedOperation)]
    assert {"s1_i0_ks", "s1_i0_exp", "s0_width_mult"} <= {label for m in mixed for label in m.leaves}
    assert sorted(supernet.simplify()) == sorted(small().simplify())
    before = {k: v.detach().clone() for k, v in supernet.state_dict().items() if v.is_floating_point()}
    alphas = [a.detach().clone() for a in strategy.arch.alphas] if strategy_name not in ("RandomOneShot", "ENAS") else []
    exported = strategy.search(tiny_evaluator)
    assert exported and all(small().contains(s) for s in exported)
    after = supernet.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)  # the weights moved
    if alphas:  # the architecture step reached the decisions
        assert any(not torch.equal(a, b) for a, b in zip(alphas, strategy.arch.alphas))
    subnet = supernet.freeze(exported[0])  # the sub-net with its share of the supernet's weights
    assert subnet(image_batch()).shape == (2, 10)
    with nascore.fixed_arch(exported[0]):
        model = small()
    assert model(image_batch()).shape == (2, 10)


@pytest.mark.parametrize("strategy_name", ["RandomOneShot", "Proxyless"])
def test_the_supernet_computes_each_subnet_with_its_share_of_the_weights(strategy_name):
    """Weight sharing: the supernet running a sample (on weight slices, or in the super layout for
    Proxyless) computes what the sub-net frozen from it computes."""
    from nascore_strategies import oneshot

    strategy = getattr(oneshot, strategy_name)(seed=0)
    supernet = strategy.create_supernet(small()).eval()
    for seed in range(2):
        sample = a_sample(seed)
        memo = dict(sample)
        for module in strategy.supernet_modules():
            module.resample(memo)
        subnet = supernet.freeze(sample).eval()
        with torch.no_grad():
            assert torch.allclose(supernet(image_batch()), subnet(image_batch()), atol=1e-5), sample


def test_presets():
    assert MobileNetV3Space.PRESET_NAMES == (
        "mobilenetv3-large-100", "mobilenetv3-small-050", "mobilenetv3-small-075", "mobilenetv3-small-100",
        "cream-014", "cream-043", "cream-114", "cream-287", "cream-481", "cream-604",
    )
    large = MobileNetV3Space.preset("mobilenetv3-large-100")
    assert [large[f"s3_i{i}_exp"] for i in range(4)] == [6.0, 2.5, 2.3, 2.3]
    assert MobileNetV3Space.preset_arguments("mobilenetv3-small-050")["base_widths"] == (16, 8, 16, 24, 24, 48, 288, 1024)
    for name in MobileNetV3Space.PRESET_NAMES:
        sample = MobileNetV3Space.preset(name)
        arguments = MobileNetV3Space.preset_arguments(name)
        model = MobileNetV3Space.load_preset(name, **tiny_preset_arguments(name))
        assert model.sample == sample
        assert model(image_batch()).shape == (2, 10)
        assert MobileNetV3Space(**{**arguments, **tiny_preset_arguments(name)}).contains(sample), name
    # The paper's models with 1000 classes (MobileNetV3-Large 1.0: 5.4M parameters, Small 1.0: 2.5M).
    with torch.device("meta"):
        counts = {
            name: sum(p.numel() for p in MobileNetV3Space.load_preset(name).parameters())
            for name in ("mobilenetv3-large-100", "mobilenetv3-small-100", "mobilenetv3-small-050")
        }
    assert counts["mobilenetv3-large-100"] == 5_483_032
    assert counts["mobilenetv3-small-100"] == 2_542_856 and counts["mobilenetv3-small-050"] == 1_593_224


def test_an_unknown_preset_names_the_known_ones():
    with pytest.raises(UnknownPresetError, match=r"no preset 'mobilenetv3-large-075'.*'mobilenetv3-large-100'"):
        MobileNetV3Space.preset("mobilenetv3-large-075")
    with pytest.raises(KeyError):
        MobileNetV3Space.load_preset("cream-999")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"base_widths": (16, 16, 16, 16)}, "base_widths must be at least 5 positive ints"),
        ({"stride": (1, 1, 2)}, r"stride must have one entry per base width \(7\)"),
        ({"activation": ("hswish",) * 6 + ("gelu",)}, "activation must have one name per base width"),
        ({"squeeze_excite": ("force", "maybe", "none", "none")}, "squeeze_excite must have one entry per stage"),
        ({"depth_range": (0, 2)}, r"depth_range must be \(min, max\) with 1 <= min <= max, or 3 such pairs"),
        ({"depth_range": [(1, 2), (1, 2)]}, "or 3 such pairs"),
        ({"width_multipliers": (0.5, -1.0)}, "width_multipliers must be positive numbers"),
        ({"expand_ratios": (2.0, 2.0)}, "expand_ratios has duplicate values"),
        ({"kernel_sizes": (3, 4)}, "kernel_sizes must be odd positive ints"),
        ({"stem_kernel_sizes": 2}, "stem_kernel_sizes must be odd positive ints"),
        ({"dropout_rate": -0.1}, r"dropout_rate must be in \[0, 1\)"),
    ],
)
def test_bad_arguments_are_refused_saying_why(kwargs, message):
    with pytest.raises(SearchSpaceError, match=message):
        small(**kwargs)
