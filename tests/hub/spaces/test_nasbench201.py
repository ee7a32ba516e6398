"""The NAS-Bench-201 space: its size, its labels, the formats, one-shot supernets, presets and architecture strings."""

from __future__ import annotations

import random

import pytest
import torch

import nascore
from nascore.nn import LayerChoice, MutableModule
from nascore_hub.spaces import NasBench201, NasBench201Cell
from nascore_hub.spaces.nasbench201 import (
    EDGE_LABELS,
    OPERATORS,
    ArchStringError,
    UnknownPresetError,
    arch_string,
    parse_arch_string,
)

SMALL = {"stem_out_channels": 4, "num_modules_per_stack": 1, "num_labels": 10}
LABELS = ["1_0", "2_0", "2_1", "3_0", "3_1", "3_2"]
RESNET = "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|none~2|"


def small() -> NasBench201:
    return NasBench201(**SMALL)


def image_batch() -> torch.Tensor:
    return torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))


def a_sample(seed: int = 0) -> dict[str, str]:
    """A sample with several different operators, none of them on every edge."""
    return small().random_sample(random_state=random.Random(seed))


def test_the_space_has_15625_architectures():
    assert NasBench201().space_size() == 15625 == 5**6
    assert small().space_size() == 15625  # the depth does not change the decisions


def test_every_cell_shares_the_six_labels():
    space = NasBench201(stem_out_channels=4, num_modules_per_stack=2)
    cells = [m for m in space.modules() if isinstance(m, NasBench201Cell)]
    assert len(cells) == 6  # 3 stages x 2 cells
    for cell in cells:
        choices = [m for m in cell.modules() if isinstance(m, LayerChoice)]
        assert [c.label for c in choices] == LABELS
        assert all(c.names == list(OPERATORS) for c in choices)
    assert sorted(space.simplify()) == sorted(LABELS) == sorted(EDGE_LABELS)
    for label, choice in space.simplify().items():
        assert list(choice.values) == ["none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"], label


def test_a_label_prefix_puts_the_edges_under_it():
    cell = NasBench201Cell(4, label_prefix="cell")
    assert [c.label for c in cell.edges.values()] == [f"cell/{label}" for label in LABELS]


def test_a_frozen_model_has_one_architecture_in_every_cell():
    sample = NasBench201.preset("best-cifar10")
    with nascore.fixed_arch(sample):
        model = NasBench201(stem_out_channels=4, num_modules_per_stack=2)
    assert not any(isinstance(m, MutableModule) and not isinstance(m, nascore.nn.ModelSpace) for m in model.modules())
    cells = [m for m in model.modules() if isinstance(m, NasBench201Cell)]
    assert len(cells) == 6
    for cell in cells:
        assert [type(cell.edges[label]).__name__ for label in LABELS] == [
            "ReLUConvBN", "ReLUConvBN", "ReLUConvBN", "Identity", "ReLUConvBN", "ReLUConvBN",
        ]
    assert model(image_batch()).shape == (2, 10)


@pytest.mark.parametrize("format_name", ["raw", "simplified", "graph"])
def test_a_sample_builds_and_runs_in_each_format(format_name, format_checks):
    format_checks.runs(format_name, small, a_sample())


def test_the_graph_format_computes_what_the_simplified_format_builds(format_checks):
    format_checks.graph_matches_simplified(small, a_sample(1))


@pytest.mark.parametrize("strategy_name", ["DARTS", "RandomOneShot"])
def test_the_supernet_trains_one_step(strategy_name, tiny_evaluator):
    from nascore_strategies import oneshot

    torch.manual_seed(0)
    strategy = getattr(oneshot, strategy_name)(seed=0)
    supernet = strategy.create_supernet(small())
    assert not any(isinstance(m, LayerChoice) for m in supernet.modules())  # every edge is a mixed operation
    assert sorted(supernet.simplify()) == LABELS  # the cells share the six decisions in the supernet too
    if strategy_name == "DARTS":
        assert strategy.arch.labels() == LABELS  # one set of architecture weights per edge, not per cell
    before = {k: v.detach().clone() for k, v in supernet.state_dict().items() if v.is_floating_point()}
    exported = strategy.search(tiny_evaluator)
    assert exported and all(small().contains(s) for s in exported)
    assert set(exported[0]) == set(LABELS)
    after = supernet.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)  # the weights moved
    with nascore.fixed_arch(exported[0]):
        model = small()
    assert model(image_batch()).shape == (2, 10)


def test_presets():
    assert NasBench201.preset("resnet") == {
        "1_0": "nor_conv_3x3", "2_0": "none", "2_1": "nor_conv_3x3", "3_0": "skip_connect", "3_1": "none", "3_2": "none",
    }
    assert NasBench201.preset("best-cifar10") == {
        "1_0": "nor_conv_3x3", "2_0": "nor_conv_3x3", "2_1": "nor_conv_3x3",
        "3_0": "skip_connect", "3_1": "nor_conv_3x3", "3_2": "nor_conv_3x3",
    }
    for name in NasBench201.PRESET_NAMES:
        sample = NasBench201.preset(name)
        assert small().contains(sample)
        assert parse_arch_string(arch_string(sample)) == sample
        assert NasBench201.parse_arch_string(NasBench201.arch_string(sample)) == sample
        model = NasBench201.load_preset(name, **SMALL)
        assert model.sample == sample
        assert model(image_batch()).shape == (2, 10)
    assert NasBench201.arch_string(NasBench201.preset("resnet")) == RESNET
    assert NasBench201.parse_arch_string(RESNET) == NasBench201.preset("resnet")


def test_fixed_arch_takes_a_preset_a_string_or_a_sample():
    for arch in ("resnet", RESNET, NasBench201.preset("resnet")):
        with NasBench201.fixed_arch(arch):
            model = small()
        assert model.sample == NasBench201.preset("resnet")


def test_an_unknown_preset_names_the_known_ones():
    with pytest.raises(UnknownPresetError, match=r"no preset 'resnet50'.*'resnet', 'best-cifar10'"):
        NasBench201.preset("resnet50")
    with pytest.raises(KeyError):
        NasBench201.fixed_arch("best-imagenet")


def test_every_sample_round_trips_through_its_string():
    rng = random.Random(0)
    space = small()
    for _ in range(50):
        sample = space.random_sample(random_state=rng)
        assert parse_arch_string(arch_string(sample)) == sample
    prefixed = {f"cell/{k}": v for k, v in NasBench201.preset("resnet").items()}
    assert arch_string(prefixed, label_prefix="cell") == RESNET
    assert parse_arch_string(RESNET, label_prefix="cell") == prefixed


@pytest.mark.parametrize(
    "string, message",
    [
        ("|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|", "3 node groups"),
        ("|conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|none~2|", "unknown operator 'conv_3x3'"),
        ("|nor_conv_3x3~1|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|none~2|", "must be '<op>~0'"),
        ("|nor_conv_3x3~0|+|none~0|+|skip_connect~0|none~1|none~2|", "must have 2 edge"),
        ("nor_conv_3x3~0+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|none~2|", "enclosed in '|'"),
    ],
)
def test_a_malformed_string_is_refused_saying_why(string, message):
    with pytest.raises(ArchStringError, match=message):
        parse_arch_string(string)
