"""The NDS cell spaces (NASNet, ENAS, AmoebaNet, PNAS, DARTS): sizes, formats, one-shot supernets, presets, errors."""

from __future__ import annotations

import random
from math import prod

import pytest
import torch

import nascore
from nascore.errors import SearchSpaceError, StrategyError
from nascore.nn import Cell
from nascore.nn.cell import FrozenCell
from nascore_hub.spaces.nds import (
    DARTS,
    ENAS,
    NDS,
    PNAS,
    AmoebaNet,
    NASNet,
    UnknownPresetError,
    genotype_sample,
)
from nascore_hub.spaces.nds_ops import OPS, make_op

SPACES = [NASNet, ENAS, AmoebaNet, PNAS, DARTS]
TINY = {"width": 4, "num_cells": 3}  # one cell per stage: a normal cell, then two reduction cells
IDS = [cls.__name__ for cls in SPACES]


def images(size: int = 8) -> torch.Tensor:
    return torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(0))


def cell_size(cls: type[NDS]) -> int:
    """Samples of one cell: an operator and an input for each of the two operators of every node."""
    nodes = cls.NUM_NODES
    return len(cls.OPERATORS) ** (2 * nodes) * prod(range(2, nodes + 2)) ** 2


def loose_end_sample(cls: type[NDS], seed: int = 0) -> dict:
    """A random sample in which a node reads node 2 in both cells, so loose-end cells leave a node out."""
    sample = cls(**TINY).random_sample(random_state=random.Random(seed))
    sample["normal/input_3_0"] = sample["reduce/input_3_0"] = 2
    return sample


# --- sizes ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", SPACES, ids=IDS)
def test_the_space_size_is_the_square_of_a_cells_times_the_widths_and_depths(cls):
    assert cls(**TINY).space_size() == pytest.approx(cell_size(cls) ** 2, rel=1e-12)
    assert cls(width=(4, 6), num_cells=(3, 5)).space_size() == pytest.approx(4 * cell_size(cls) ** 2, rel=1e-12)


def test_the_documented_sizes():
    assert cell_size(NASNet) == 71_465_842_174_521_600
    assert cell_size(ENAS) == 5_062_500_000_000
    assert cell_size(AmoebaNet) == cell_size(PNAS) == 556_627_761_561_600
    assert cell_size(DARTS) == 83_013_134_400
    # The default space (widths 16, 24, 32; 4 to 20 cells) is counted in closed form, quickly.
    assert DARTS().space_size() == pytest.approx(15 * 83_013_134_400**2, rel=1e-12)


@pytest.mark.parametrize("cls", SPACES, ids=IDS)
def test_the_cells_have_the_papers_operators_nodes_and_labels(cls):
    space = cls(**TINY)
    cells = [m for m in space.modules() if isinstance(m, Cell)]
    assert [c.label for c in cells] == ["normal", "reduce", "reduce"]
    assert all(c.num_nodes == cls.NUM_NODES and c.merge_op == cls.MERGE_OP for c in cells)
    decisions = space.simplify()
    last = 2 + cls.NUM_NODES - 1
    assert decisions[f"normal/op_{last}_1"].values == list(cls.OPERATORS)
    assert decisions[f"reduce/input_{last}_1"].values == list(range(last))
    assert len(decisions) == 2 * 2 * 2 * cls.NUM_NODES


# --- formats --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", SPACES, ids=IDS)
@pytest.mark.parametrize("format_name", ["raw", "simplified", "graph"])
def test_a_sample_builds_and_runs_in_each_format(cls, format_name, format_checks):
    format_checks.runs(format_name, lambda: cls(**TINY), loose_end_sample(cls))


@pytest.mark.parametrize("cls", [NASNet, DARTS], ids=["NASNet", "DARTS"])
def test_the_graph_format_computes_what_the_simplified_format_builds(cls, format_checks):
    format_checks.graph_matches_simplified(lambda: cls(**TINY), loose_end_sample(cls, 1))


@pytest.mark.parametrize("depth", [5, 7])  # stages of [1, 2, 2] and [2, 2, 3] cells (3 cells: [1, 1, 1])
def test_a_choice_of_width_and_depth_builds_in_the_formats(depth, format_checks):
    def make():
        return ENAS(width=(4, 6), num_cells=(3, 5, 7))

    sample = {**loose_end_sample(ENAS, depth), "width": 6, "depth": depth}
    format_checks.graph_matches_simplified(make, sample)
    format_checks.runs("raw", make, sample)
    with nascore.fixed_arch(sample):
        model = make()
    assert sum(isinstance(m, FrozenCell) for m in model.modules()) == depth


def test_a_loose_end_cell_outputs_the_nodes_no_operator_reads():
    # NASNet-A's reduction cell and AmoebaNet-A's cells concatenate the nodes the papers list.
    for cls, name, expected in ((NASNet, "nasnet-a", [[2, 3, 4, 5, 6], [4, 5, 6]]),
                                (AmoebaNet, "amoebanet-a", [[4, 5, 6], [3, 4, 6]])):
        model = cls.load_preset(name, **TINY)
        cells = [m for m in model.modules() if isinstance(m, FrozenCell)]
        assert [c.output_node_indices for c in cells] == [expected[0], expected[1], expected[1]]
        # The next cell reads exactly that many times the channels.
        assert model.stages[1][0].preprocessor.pre1.conv.in_channels == len(expected[0]) * 4
        assert model.classifier.linear.in_features == len(expected[1]) * 16


def test_the_imagenet_stem_and_the_auxiliary_head():
    model = DARTS(width=4, num_cells=3, dataset="imagenet", num_labels=10)
    assert hasattr(model, "stem0") and not hasattr(model, "stem")
    assert model.eval()(images(16)).shape == (2, 10)
    assert DARTS(width=4, num_cells=3, dataset="imagenet").num_labels == 1000
    with DARTS.fixed_arch("darts-v2"):
        model = DARTS(width=4, num_cells=3, auxiliary_loss=True)
    logits, aux = model.train()(images(32))  # the auxiliary head expects 8x8 maps: 32x32 CIFAR images
    assert logits.shape == aux.shape == (2, 10)
    assert model.eval()(images(32)).shape == (2, 10)


# --- one-shot -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [ENAS, DARTS], ids=["ENAS", "DARTS"])
@pytest.mark.parametrize("strategy_name", ["DARTS", "RandomOneShot"])
def test_the_supernet_trains_one_step(cls, strategy_name, tiny_evaluator):
    from nascore_strategies import oneshot

    torch.manual_seed(0)
    strategy = getattr(oneshot, strategy_name)(seed=0)
    supernet = strategy.create_supernet(cls(**TINY))
    assert not any(isinstance(m, Cell) for m in supernet.modules())
    before = {k: v.detach().clone() for k, v in supernet.state_dict().items() if v.is_floating_point()}
    exported = strategy.search(tiny_evaluator)
    assert exported and all(cls(**TINY).contains(s) for s in exported)
    after = supernet.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    model = supernet.freeze(exported[0]).eval()  # the trained weights, sliced to the exported widths
    assert model(images()).shape == (2, 10)


@pytest.mark.parametrize(
    "cls, strategy_name",
    [(cls, "RandomOneShot") for cls in SPACES] + [(NASNet, "Proxyless"), (ENAS, "GumbelDARTS"), (PNAS, "ENAS")],
    ids=[f"RandomOneShot-{name}" for name in IDS] + ["Proxyless-NASNet", "GumbelDARTS-ENAS", "ENAS-PNAS"],
)
def test_every_supernet_runs_forward_and_backward(cls, strategy_name):
    from nascore_strategies import oneshot

    torch.manual_seed(0)
    strategy = getattr(oneshot, strategy_name)(seed=0)
    supernet = strategy.create_supernet(cls(**TINY))
    if strategy_name != "GumbelDARTS":
        strategy.apply_sample(loose_end_sample(cls))
    assert not any(isinstance(m, Cell) for m in supernet.modules())
    supernet(images()).sum().backward()


@pytest.mark.parametrize("cls", [ENAS], ids=["ENAS"])
def test_a_sampled_loose_end_path_is_the_frozen_model_with_sliced_weights(cls):
    from nascore_strategies.oneshot import RandomOneShot

    torch.manual_seed(0)
    strategy = RandomOneShot(seed=0)
    supernet = strategy.create_supernet(cls(**TINY)).eval()
    sample = loose_end_sample(cls, 2)
    strategy.apply_sample(sample)
    frozen = supernet.freeze(sample).eval()
    assert frozen.stages[1][0].preprocessor.pre1.conv.in_channels < 5 * 4  # sliced to the loose ends
    with torch.no_grad():
        torch.testing.assert_close(supernet(images()), frozen(images()))


def test_one_shot_strategies_refuse_a_choice_of_width_or_depth():
    from nascore_strategies.oneshot import DARTS as DartsStrategy

    with pytest.raises(StrategyError, match=r"choice of width and num_cells.*Pass ints"):
        DartsStrategy().create_supernet(ENAS(width=(4, 6), num_cells=(3, 4)))


# --- presets --------------------------------------------------------------------------------------------------


def test_presets():
    assert NASNet.PRESET_NAMES == ("nasnet-a",)
    assert AmoebaNet.PRESET_NAMES == ("amoebanet-a",)
    assert PNAS.PRESET_NAMES == ("pnasnet-5",)
    assert DARTS.PRESET_NAMES == ("darts-v1", "darts-v2")
    assert ENAS.PRESET_NAMES == ()
    assert DARTS.preset("darts-v2")["normal/op_5_1"] == "dil_conv_3x3"
    assert DARTS.preset("darts-v2")["normal/input_5_1"] == 2
    for cls in SPACES:
        for name in cls.PRESET_NAMES:
            sample = cls.preset(name)
            assert cls(**TINY).contains(sample)
            model = cls.load_preset(name, **TINY)
            assert model.sample == sample
            assert model.eval()(images()).shape == (2, 10)


def test_darts_presets_default_to_the_papers_cifar_size():
    sample = DARTS.preset("darts-v2")
    assert DARTS.PRESET_ARGUMENTS["darts-v2"] == {"width": 36, "num_cells": 20}
    with nascore.fixed_arch(sample):
        small = DARTS(width=4, num_cells=6)
    assert sum(isinstance(m, FrozenCell) for m in small.modules()) == 6
    assert genotype_sample([("skip_connect", 0), ("sep_conv_3x3", 1)], [("max_pool_3x3", 1), ("skip_connect", 0)]) == {
        "normal/op_2_0": "skip_connect", "normal/input_2_0": 0, "normal/op_2_1": "sep_conv_3x3", "normal/input_2_1": 1,
        "reduce/op_2_0": "max_pool_3x3", "reduce/input_2_0": 1, "reduce/op_2_1": "skip_connect", "reduce/input_2_1": 0,
    }


# --- errors ---------------------------------------------------------------------------------------------------


def test_bad_arguments_are_refused_saying_what_to_do():
    with pytest.raises(SearchSpaceError, match=r"op_candidates must be distinct names.*unknown: \['conv_9x9'\]"):
        NDS(["sep_conv_3x3", "conv_9x9"])
    with pytest.raises(SearchSpaceError, match="merge_op must be 'all' or 'loose_end'"):
        NDS(["sep_conv_3x3"], merge_op="sum")
    with pytest.raises(SearchSpaceError, match="width must be even"):
        DARTS(width=5, num_cells=3)
    with pytest.raises(SearchSpaceError, match="every num_cells must be an int of at least 3"):
        DARTS(width=4, num_cells=(2, 4))
    with pytest.raises(SearchSpaceError, match="width must be an int or a tuple of ints"):
        DARTS(width="16")
    with pytest.raises(SearchSpaceError, match="dataset must be 'cifar' or 'imagenet'"):
        DARTS(width=4, num_cells=3, dataset="mnist")
    with pytest.raises(SearchSpaceError, match="drop_path_prob"):
        DARTS(width=4, num_cells=3, drop_path_prob=1.0)
    with pytest.raises(SearchSpaceError, match=r"unknown NDS operator 'conv_9x9'"):
        make_op("conv_9x9", 4)
    with pytest.raises(UnknownPresetError, match=r"no preset 'nasnet-b'.*'nasnet-a'"):
        NASNet.preset("nasnet-b")
    with pytest.raises(SearchSpaceError, match=r"fixes the cells only; pass width=<int>"):
        NASNet.load_preset("nasnet-a")


def test_every_operator_keeps_or_halves_the_resolution():
    x = torch.randn(2, 4, 8, 8)
    for name in OPS:
        assert make_op(name, 4, 1)(x).shape == (2, 4, 8, 8), name
        assert make_op(name, 4, 2)(x).shape == (2, 4, 4, 4), name


def test_drop_path_is_applied_in_training_only():
    from nascore_hub.spaces.nds_ops import DropPath

    with DARTS.fixed_arch("darts-v2"):
        model = DARTS(width=4, num_cells=3, drop_path_prob=0.5)
    assert any(isinstance(m, DropPath) for m in model.modules())
    torch.manual_seed(0)
    model.eval()
    torch.testing.assert_close(model(images()), model(images()))
    model.train()
    assert not torch.allclose(model(images()), model(images()))
