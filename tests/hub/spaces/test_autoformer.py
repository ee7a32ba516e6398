"""The AutoFormer space: its size, its labels, the formats, one-shot supernets (weight sharing), presets, errors."""

from __future__ import annotations

import random
from typing import Any

import pytest
import torch
import torch.nn as nn

import nascore
from nascore.errors import SearchSpaceError
from nascore.nn import Repeat
from nascore_hub.spaces.autoformer import (
    PRESETS,
    SPACE_CONFIGS,
    AbsolutePositionEmbedding,
    AutoFormer,
    ClassToken,
    MultiheadSelfAttention,
    RelativePosition2D,
    SelfAttention,
    TransformerEncoderLayer,
    UnknownPresetError,
    oneshot_hooks,
)

# 8x8 images in 2x2 patches of 4x4 pixels, 10 classes; heads of width 4.
SMALL: dict[str, Any] = {
    "search_embed_dim": (8, 16),
    "search_mlp_ratio": (2.0, 4.0),
    "search_num_heads": (1, 2),
    "search_depth": (1, 2),
    "img_size": 8,
    "patch_size": 4,
    "num_labels": 10,
    "head_dim": 4,
}
# The variants: AutoFormer's attention (fixed head width, relative positions), nn.MultiheadAttention,
# and post-norm with the class token classified and no position embedding.
VARIANTS: dict[str, dict[str, Any]] = {
    "autoformer": {},
    "torch-mha": {"head_dim": None, "rpe": False},
    "post-norm": {"pre_norm": False, "global_pooling": False, "absolute_position": False, "rpe": False},
}


def small(variant: str = "autoformer") -> AutoFormer:
    return AutoFormer(**{**SMALL, **VARIANTS[variant]})


def image_batch() -> torch.Tensor:
    return torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))


def a_sample(seed: int = 0) -> dict[str, Any]:
    return small().random_sample(random_state=random.Random(seed))


DEEP = {"embed_dim": 16, "depth": 2, "num_head_0": 2, "mlp_ratio_0": 2.0, "num_head_1": 1, "mlp_ratio_1": 4.0}


def test_the_space_sizes():
    # E * sum over depths d of (H * R) ** d: 2 * ((2 * 2) + (2 * 2) ** 2).
    assert small().space_size() == 2 * (4 + 16) == 40
    assert small("torch-mha").space_size() == 40
    with torch.device("meta"):  # the paper's spaces, without allocating their weights
        assert AutoFormer().space_size() == 3 * (6**12 + 6**13 + 6**14) == 280_804_921_344
        assert AutoFormer.from_config("tiny").space_size() == 280_804_921_344
        assert AutoFormer.from_config("small").space_size() == 3 * (9**12 + 9**13 + 9**14) == 77_103_263_459_313
        assert AutoFormer.from_config("base").space_size() == 3 * (9**14 + 9**15 + 9**16) == 6_245_364_340_204_353


def test_the_decisions_and_their_labels():
    space = small()
    decisions = space.simplify()
    assert sorted(decisions) == sorted(["embed_dim", "depth", "num_head_0", "mlp_ratio_0", "num_head_1", "mlp_ratio_1"])
    assert list(decisions["embed_dim"].values) == [8, 16]
    assert list(decisions["depth"].values) == [1, 2]
    assert list(decisions["num_head_1"].values) == [1, 2]
    assert list(decisions["mlp_ratio_0"].values) == [2.0, 4.0]
    assert isinstance(space.blocks, Repeat) and space.blocks.max_depth == 2
    # The second layer's decisions are active only when the depth keeps it.
    assert space.contains({"embed_dim": 8, "depth": 1, "num_head_0": 1, "mlp_ratio_0": 2.0})
    assert not space.contains({"embed_dim": 8, "depth": 2, "num_head_0": 1, "mlp_ratio_0": 2.0})
    assert space(image_batch()).shape == (2, 10)  # the space runs its defaults


def test_a_frozen_model_has_the_sampled_widths():
    with nascore.fixed_arch(DEEP):
        model = small()
    assert isinstance(model, AutoFormer) and model.sample == DEEP
    assert model.patch_embed.proj.out_channels == 16
    assert type(model.cls_token) is ClassToken and model.cls_token.cls_token.shape == (1, 1, 16)
    assert type(model.pos_embed) is AbsolutePositionEmbedding and model.pos_embed.pos_embed.shape == (1, 5, 16)
    assert isinstance(model.blocks, nn.Sequential) and len(model.blocks) == 2
    first, second = model.blocks
    assert isinstance(first, TransformerEncoderLayer) and isinstance(first.attn, SelfAttention)
    assert type(first.attn.q) is nn.Linear and first.attn.q.out_features == 2 * 4  # two heads of width 4
    assert second.attn.q.out_features == 4 and second.attn.proj.in_features == 4
    assert (first.fc1.in_features, first.fc1.out_features) == (16, 32)  # mlp ratio 2
    assert (second.fc1.out_features, second.fc2.in_features) == (64, 64)  # mlp ratio 4
    assert type(first.attn_layer_norm) is nn.LayerNorm and first.attn_layer_norm.normalized_shape == (16,)
    assert isinstance(first.attn.rel_pos_embed_k, RelativePosition2D)
    assert model.head.head.in_features == 16
    assert model(image_batch()).shape == (2, 10)

    with nascore.fixed_arch(DEEP):
        mha = small("torch-mha")
    attention = mha.blocks[1].attn
    assert isinstance(attention, MultiheadSelfAttention) and type(attention.attn) is nn.MultiheadAttention
    assert (attention.attn.embed_dim, attention.attn.num_heads) == (16, 1)
    assert mha(image_batch()).shape == (2, 10)


@pytest.mark.parametrize("variant", ["autoformer", "torch-mha"])
@pytest.mark.parametrize("format_name", ["raw", "simplified", "graph"])
def test_a_sample_builds_and_runs_in_each_format(format_name, variant, format_checks):
    format_checks.runs(format_name, lambda: small(variant), DEEP)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_the_graph_format_computes_what_the_simplified_format_builds(variant, format_checks):
    format_checks.graph_matches_simplified(lambda: small(variant), DEEP)
    format_checks.graph_matches_simplified(lambda: small(variant), a_sample(1))


@pytest.mark.parametrize("variant", ["autoformer", "torch-mha"])
@pytest.mark.parametrize("strategy_name", ["DARTS", "RandomOneShot", "GumbelDARTS", "Proxyless", "ENAS"])
def test_the_supernet_trains_one_step(strategy_name, variant, tiny_evaluator):
    from nascore_strategies import oneshot
    from nascore_strategies.oneshot.supermodule import BaseSuperNetModule

    torch.manual_seed(0)
    strategy = getattr(oneshot, strategy_name)(seed=0)
    supernet = strategy.create_supernet(small(variant))
    labels = sorted(small(variant).simplify())
    assert sorted(supernet.simplify()) == labels
    # The class token and the position embedding are mixed operations too (the space's own hooks).
    assert isinstance(supernet.cls_token, BaseSuperNetModule) and type(supernet.cls_token).__name__ == "MixedClassToken"
    assert type(supernet.pos_embed).__name__ == "MixedAbsolutePositionEmbedding"
    before = {k: v.detach().clone() for k, v in supernet.state_dict().items() if v.is_floating_point()}
    exported = strategy.search(tiny_evaluator)
    assert exported and all(small(variant).contains(s) for s in exported)
    after = supernet.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)  # the weights moved
    subnet = supernet.freeze(exported[0])  # the sub-net with the supernet's weights
    assert subnet(image_batch()).shape == (2, 10)
    with nascore.fixed_arch(exported[0]):
        model = small(variant)
    assert model(image_batch()).shape == (2, 10)


@pytest.mark.parametrize("variant", ["autoformer", "torch-mha"])
@pytest.mark.parametrize("strategy_name", ["RandomOneShot", "Proxyless"])
def test_the_supernet_computes_each_subnet_with_its_share_of_the_weights(strategy_name, variant):
    """Weight entanglement: the supernet running a sample (on weight slices, or in the super layout for
    Proxyless) computes exactly what the sub-net frozen from it computes."""
    from nascore_strategies import oneshot

    strategy = getattr(oneshot, strategy_name)(seed=0)
    supernet = strategy.create_supernet(small(variant)).eval()
    for seed in range(3):
        sample = a_sample(seed)
        memo = dict(sample)
        for module in strategy.supernet_modules():
            module.resample(memo)
        subnet = supernet.freeze(sample).eval()
        with torch.no_grad():
            assert torch.allclose(supernet(image_batch()), subnet(image_batch()), atol=1e-5), sample


def test_the_oneshot_hooks_need_a_choice_of_width():
    from nascore_strategies.oneshot import RandomOneShot

    hooks = oneshot_hooks()
    assert len(hooks) == 2
    token = ClassToken(4)
    assert all(hook(token, "token", {}, {"mode": "sampling"}) is None for hook in hooks)  # nothing to search
    mixed = hooks[0](ClassToken(nascore.choice("e", [2, 4])), "token", {}, {"mode": "sampling"})
    assert mixed.cls_token.shape == (1, 1, 4)
    assert RandomOneShot(seed=0).create_supernet(small()) is not None


def test_presets():
    assert PRESETS["autoformer-tiny"]["embed_dim"] == 192 and PRESETS["autoformer-tiny"]["depth"] == 13
    assert [PRESETS["autoformer-tiny"][f"num_head_{i}"] for i in range(13)] == [3] * 10 + [4, 3, 3]
    assert [PRESETS["autoformer-small"][f"mlp_ratio_{i}"] for i in range(13)] == [
        3.0, 3.5, 3.0, 3.5, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 3.5, 4.0,
    ]
    assert PRESETS["autoformer-base"]["embed_dim"] == 576 and PRESETS["autoformer-base"]["depth"] == 14
    assert "num_head_14" not in PRESETS["autoformer-base"]  # only the decisions of the layers it has
    assert AutoFormer.PRESET_NAMES == ("autoformer-tiny", "autoformer-small", "autoformer-base")
    assert AutoFormer.space_config("small") == dict(SPACE_CONFIGS["small"])
    # Parameters with 1000 classes at 224x224 (the paper: 5.7M, 22.9M, 54M; here with the relative
    # position tables, which the paper leaves out).
    expected = {"tiny": 5.87, "small": 22.89, "base": 53.69}
    with torch.device("meta"):
        for size, millions in expected.items():
            name = f"autoformer-{size}"
            assert AutoFormer.from_config(size).contains(AutoFormer.preset(name))
            model = AutoFormer.load_preset(name)
            assert model.sample == AutoFormer.preset(name)
            assert len(model.blocks) == PRESETS[name]["depth"]
            assert round(sum(p.numel() for p in model.parameters()) / 1e6, 2) == millions
    # One really runs, on small images.
    model = AutoFormer.load_preset("autoformer-tiny", img_size=32, num_labels=10)
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 10)
    with AutoFormer.fixed_arch("autoformer-tiny"):
        again = AutoFormer.from_config("tiny", img_size=16, patch_size=16, num_labels=10)
    assert again.sample == AutoFormer.preset("autoformer-tiny")


def test_unknown_presets_and_configs_name_the_known_ones():
    with pytest.raises(UnknownPresetError, match=r"no preset 'autoformer-large'.*'autoformer-tiny'"):
        AutoFormer.preset("autoformer-large")
    with pytest.raises(UnknownPresetError, match=r"no space config 'large'.*'tiny', 'small', 'base'"):
        AutoFormer.space_config("large")
    with pytest.raises(KeyError):
        AutoFormer.from_config("huge")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"search_embed_dim": ()}, "search_embed_dim must be a non-empty list"),
        ({"search_num_heads": (2, 0)}, "every value of search_num_heads must be a positive number"),
        ({"search_depth": (1, 1)}, "search_depth has duplicate values"),
        ({"search_mlp_ratio": "4"}, "search_mlp_ratio must be a non-empty list"),
        ({"img_size": 10}, "img_size 10 is not a multiple of patch_size 4"),
        ({"patch_size": 0}, "patch_size must be a positive int"),
        ({"head_dim": None}, r"rpe=True\) need heads of a fixed width"),
        ({"head_dim": 0}, "head_dim must be a positive int or None"),
        ({"head_dim": None, "rpe": False, "search_num_heads": (3,)}, "8 by 3, 16 by 3 are not"),
        ({"drop_path_rate": 1.0}, r"drop_prob must be in \[0, 1\)"),
    ],
)
def test_bad_arguments_are_refused_saying_why(kwargs, message):
    with pytest.raises(SearchSpaceError, match=message):
        AutoFormer(**{**SMALL, **kwargs})


def test_the_papers_small_space_cannot_use_torch_attention():
    # 320 is not divisible by 6: nn.MultiheadAttention cannot have those heads; AutoFormer's attention can.
    with torch.device("meta"), pytest.raises(SearchSpaceError, match="320 by 6"):
        AutoFormer.from_config("small", head_dim=None, rpe=False)
