"""The NAS-Bench-101 space: its size, its labels, its constraint, the formats, one-shot supernets and presets."""

from __future__ import annotations

import random
from math import comb

import pytest
import torch
import torch.nn as nn

import nascore
from nascore.errors import ConstraintViolationError
from nascore.nn import LayerChoice
from nascore.plugin import create_format
from nascore_hub.spaces import NasBench101, NasBench101Cell
from nascore_hub.spaces.nasbench101 import EDGE_LABELS, MAX_EDGES, OP_LABELS, OPERATORS, UnknownPresetError

SMALL = {"stem_out_channels": 4, "num_modules_per_stack": 1, "num_labels": 10}
LABELS = sorted([*OP_LABELS, *EDGE_LABELS])


def small() -> NasBench101:
    return NasBench101(**SMALL)


def image_batch() -> torch.Tensor:
    return torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))


def a_sample(seed: int = 0) -> dict:
    return small().random_sample(random_state=random.Random(seed))


def test_the_space_counts_the_decision_sets_under_the_constraint():
    assert small().space_size() == 3**5 * sum(comb(21, k) for k in range(MAX_EDGES + 1)) == 169_093_980
    # the closed form counts the 21-edge sets of at most 9 edges, as enumerating them does
    assert sum(1 for edges in range(2**21) if edges.bit_count() <= MAX_EDGES) == 695_860 == 169_093_980 // 3**5
    nine = {**a_sample(), **{label: int(index < 9) for index, label in enumerate(EDGE_LABELS)}}
    assert small().contains(nine) and not small().contains({**nine, EDGE_LABELS[9]: 1})


def test_a_subclass_with_more_decisions_is_counted_generically(monkeypatch):
    import nascore.space.conditions

    monkeypatch.setattr(nascore.space.conditions, "COUNT_LIMIT", 10)  # enumerate 10 samples, not 200,000

    class Wider(NasBench101):
        def __init__(self) -> None:
            super().__init__(**SMALL)
            self.extra = LayerChoice([nn.Identity(), nn.Identity()], label="extra")

    assert Wider().space_size() == 3**5 * 2**21 * 2  # the generic count: the bound, too many to enumerate


def test_every_cell_shares_the_26_labels():
    space = NasBench101(stem_out_channels=4, num_modules_per_stack=2)
    cells = [m for m in space.modules() if isinstance(m, NasBench101Cell)]
    assert len(cells) == 6
    for cell in cells:
        assert sorted(c.label for c in cell.modules() if isinstance(c, LayerChoice)) == LABELS
    assert space.mutables == [cells[0].constraint]  # the space holds the constraint once
    assert sorted(space.simplify()) == LABELS
    assert len(EDGE_LABELS) == 21 and OP_LABELS == ("op1", "op2", "op3", "op4", "op5")
    simplified = space.simplify()
    assert all(list(simplified[label].values) == list(OPERATORS) for label in OP_LABELS)
    assert all(list(simplified[label].values) == [0, 1] for label in EDGE_LABELS)


def test_a_label_prefix_puts_the_decisions_under_it():
    cell = NasBench101Cell(3, 4, label_prefix="cell")
    assert sorted(c.label for c in cell.modules() if isinstance(c, LayerChoice)) == [f"cell/{x}" for x in LABELS]
    assert cell.constraint.label == "cell/max_edges"


def test_random_samples_have_at_most_nine_edges():
    rng = random.Random(0)
    space = small()
    for _ in range(30):
        sample = space.random_sample(random_state=rng)
        assert sum(sample[label] for label in EDGE_LABELS) <= MAX_EDGES


def test_a_sample_with_ten_edges_is_refused():
    sample = NasBench101.preset("chain")
    for label in ("2_0", "3_0", "4_0", "6_0"):
        sample[label] = 1
    assert sum(sample[label] for label in EDGE_LABELS) == 10
    space = small()
    assert not space.contains(sample)
    with pytest.raises(ConstraintViolationError, match="max_edges"):
        space.validate(sample)
    with pytest.raises(ConstraintViolationError, match="max_edges"):
        space.freeze(sample)
    with pytest.raises(ConstraintViolationError, match="max_edges"):
        NasBench101.load_preset(sample, **SMALL)


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
    if strategy_name == "DARTS":
        # After one step DARTS's near-uniform edge weights turn about half of the 21 edges on, so its
        # best architectures usually violate "max_edges" (set up with the space, the strategy drops
        # them and, when none is left, raises a StrategyError saying so): train the bare supernet.
        supernet = strategy.create_supernet(small())
    else:
        strategy.setup(create_format("raw").build(small()))  # with the space: exports are checked
        supernet = strategy.supernet
    assert not any(isinstance(m, LayerChoice) for m in supernet.modules())  # every choice is a mixed operation
    assert sorted(supernet.simplify()) == LABELS
    if strategy_name == "DARTS":
        assert sorted(strategy.arch.labels()) == LABELS  # one set of architecture weights per decision
    before = {k: v.detach().clone() for k, v in supernet.state_dict().items() if v.is_floating_point()}
    exported = strategy.search(tiny_evaluator)
    assert exported and all(set(s) == set(LABELS) for s in exported)
    after = supernet.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)  # the weights moved
    for sample in exported:
        error = small().check_contains(sample)
        if strategy_name == "DARTS":  # nothing but the constraint can be wrong with an export
            assert error is None or isinstance(error, ConstraintViolationError)
        else:  # violating exports were dropped
            assert error is None and sum(sample[label] for label in EDGE_LABELS) <= MAX_EDGES
    sample = dict(exported[0])
    while sum(sample[label] for label in EDGE_LABELS) > MAX_EDGES:  # make a DARTS export valid to build it
        sample[next(label for label in EDGE_LABELS if sample[label])] = 0
    with nascore.fixed_arch(sample):
        model = small()
    assert model(image_batch()).shape == (2, 10)


def test_darts_set_up_with_the_space_exports_only_satisfying_architectures_or_says_why(tiny_evaluator):
    from nascore.errors import StrategyError
    from nascore_strategies import oneshot

    torch.manual_seed(0)
    strategy = oneshot.DARTS(seed=0, top_k=2)
    strategy.setup(create_format("raw").build(small()))
    try:
        exported = strategy.search(tiny_evaluator)
    except StrategyError as exc:  # every ranked architecture had more than nine edges
        assert "max_edges" in str(exc) and "raise top_k" in str(exc)
    else:
        assert exported and all(small().contains(s) for s in exported)


def test_presets():
    chain = NasBench101.preset("chain")
    assert [label for label in EDGE_LABELS if chain[label]] == ["1_0", "2_1", "3_2", "4_3", "5_4", "6_5"]
    assert all(chain[label] == "conv3x3-bn-relu" for label in OP_LABELS)
    for name in NasBench101.PRESET_NAMES:
        sample = NasBench101.preset(name)
        assert small().contains(sample)
        model = NasBench101.load_preset(name, **SMALL)
        assert model.sample == sample
        assert not any(isinstance(m, LayerChoice) for m in model.modules())
        assert model(image_batch()).shape == (2, 10)
    with NasBench101.fixed_arch(chain):
        assert small().sample == chain


def test_an_unknown_preset_names_the_known_ones():
    with pytest.raises(UnknownPresetError, match=r"no preset 'best'.*'chain', 'resnet'"):
        NasBench101.preset("best")
    with pytest.raises(KeyError):
        NasBench101.fixed_arch("best")


def test_the_paper_sized_space_builds_and_runs_a_preset():
    model = NasBench101.load_preset("resnet", num_labels=10)
    assert model.stem[0].out_channels == 128 and model.classifier.in_features == 512
    assert sum(isinstance(m, NasBench101Cell) for m in model.modules()) == 9
    assert sum(isinstance(m, nn.MaxPool2d) and m.kernel_size == 2 for m in model.modules()) == 2
    with torch.no_grad():
        assert model.eval()(torch.randn(1, 3, 8, 8)).shape == (1, 10)
