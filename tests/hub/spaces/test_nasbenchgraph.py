"""The NAS-Bench-Graph space: its size and constraint, its operators, the formats, the output of leaf nodes."""

from __future__ import annotations

import random

import pytest
import torch

import nascore
from nascore.errors import ConstraintViolationError, SearchSpaceError, StrategyError
from nascore.plugin import create_format
from nascore_hub.spaces import NasBenchGraph
from nascore_hub.spaces.nasbenchgraph import OPERATORS, PROTEINS_OPERATORS, leaves, make_graph_operator

ALL_SKIP = {"op0": "skip", "op1": "skip", "op2": "skip", "op3": "skip", "lk1": 0, "lk2": 0, "lk3": 0}


def small(**kwargs) -> NasBenchGraph:
    return NasBenchGraph(num_features=5, num_labels=3, hidden=8, **kwargs)


def graph() -> tuple[torch.Tensor, torch.Tensor]:
    """Six nodes in a ring, plus a chord; node 5 has no incoming edge from the chord side."""
    generator = torch.Generator().manual_seed(0)
    edge_index = torch.tensor([[0, 1, 2, 3, 4, 5, 0], [1, 2, 3, 4, 5, 0, 3]])
    return torch.randn(6, 5, generator=generator), edge_index


def test_the_space_counts_its_samples():
    assert small().space_size() == 24 * 9**4 - 24 == 157_440
    assert small(operators=PROTEINS_OPERATORS).space_size() == 24 * 5**4 - 24
    assert small(operators=("gcn", "gat")).space_size() == 24 * 2**4  # no skip: nothing to exclude
    assert sorted(small().simplify()) == ["lk1", "lk2", "lk3", "op0", "op1", "op2", "op3"]


def test_a_network_of_skip_connections_is_refused():
    assert not small().contains(ALL_SKIP)
    with pytest.raises(ConstraintViolationError, match="not-all-skip"):
        small().freeze(ALL_SKIP)


def test_unknown_operators_are_refused():
    with pytest.raises(SearchSpaceError, match=r"subset of \['gat', 'gcn'"):
        small(operators=("gcn", "transformer"))
    with pytest.raises(SearchSpaceError, match="unknown NAS-Bench-Graph operator 'mlp'"):
        make_graph_operator("mlp", 4)


@pytest.mark.parametrize("name", OPERATORS)
def test_each_operator_keeps_the_features_and_uses_the_graph(name):
    torch.manual_seed(0)
    op = make_graph_operator(name, 5)
    x, edge_index = graph()
    out = op(x, edge_index)
    assert out.shape == (6, 5) and torch.isfinite(out).all()
    if name not in ("fc", "skip"):  # message passing: a node's output changes when its neighbours change
        moved = x.clone()
        moved[0] += 1.0  # node 0 sends to nodes 1 and 3
        changed = (op(moved, edge_index) - out).abs().sum(-1) > 1e-6
        assert changed[1] and changed[3] and not changed[4]


def test_leaves_follow_the_links():
    assert leaves(1, 2, 3) == (False, False, False, True)  # a chain: only the last node is an output
    assert leaves(0, 0, 0) == (True, True, True, True)  # four branches on the input
    assert leaves(1, 2, 1) == (False, False, True, True)  # nodes 1 and 3 read node 0, node 2 reads node 1


def sample(seed: int) -> dict:
    return small().random_sample(random_state=random.Random(seed))


@pytest.mark.parametrize("format_name", ["raw", "simplified", "graph"])
def test_a_sample_builds_and_runs_in_each_format(format_name):
    x, edge_index = graph()
    for seed in range(3):
        module = create_format(format_name).build(small()).freeze(sample(seed)).build()
        module.eval()
        out = module(x, edge_index)
        assert out.shape == (6, 3) and torch.isfinite(out).all()


def test_the_graph_format_computes_what_the_simplified_format_builds():
    x, edge_index = graph()
    for seed in range(4):
        generated = create_format("graph").build(small()).freeze(sample(seed)).build()
        reference = create_format("simplified").build(small()).freeze(sample(seed)).build()
        generated.load_state_dict(reference.state_dict())
        generated.eval()
        reference.eval()
        assert torch.allclose(generated(x, edge_index), reference(x, edge_index), atol=1e-5)


def test_only_leaf_nodes_reach_the_output():
    """In a chain the first three nodes feed the output only through the last one."""
    chain = {"op0": "gcn", "op1": "fc", "op2": "sage", "op3": "fc", "lk1": 1, "lk2": 2, "lk3": 3}
    with nascore.fixed_arch(chain):
        model = small(dropout=0.0)
    x, edge_index = graph()
    nodes = []
    model.ops[3].register_forward_hook(lambda module, args, out: nodes.append(out))
    out = model(x, edge_index)
    assert torch.allclose(out, model.post(torch.relu(nodes[0])), atol=1e-6)


def test_presets():
    for name in NasBenchGraph.PRESETS:
        model = NasBenchGraph.load_preset(name, num_features=5, num_labels=3, hidden=8)
        assert model.sample == NasBenchGraph.preset(name)
        assert model(*graph()).shape == (6, 3)


def test_one_shot_strategies_say_what_they_need():
    from nascore_strategies.oneshot import RandomOneShot

    with pytest.raises(StrategyError, match=r"'output' \(LeafSum, labels 'lk1', 'lk2', 'lk3'\).*mutation hook"):
        RandomOneShot(seed=0).create_supernet(small())
