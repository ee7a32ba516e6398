"""Each search primitive as a graph mutation: what freezing makes of it, edge cases, and misuse."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

import nascore
from nascore.nn import Cell, InputChoice, LayerChoice, ModelSpace, MutableConv2d, MutableLinear, Repeat
from nascore_formats import GraphFormat
from nascore_formats.graph import GraphConversionError

from .helpers import check_against_simplified


def inputs(*shape: int):
    return lambda: (torch.randn(*shape),)


# --- LayerChoice -------------------------------------------------------------------------------------------------


class Pair(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(4, 4)

    def forward(self, x):
        return self.a(x), x * 2


class Pairs(ModelSpace):
    """Candidates returning tuples; the caller unpacks the LayerChoice's value."""

    def __init__(self) -> None:
        super().__init__()
        self.choice = LayerChoice({"pair": Pair(), "other": Pair()}, label="pairs")
        self.nested = LayerChoice([LayerChoice([nn.ReLU(), nn.Tanh()], label="inner"), nn.Sigmoid()], label="outer")

    def forward(self, x):
        first, second = self.choice(x)
        return self.nested(first) + second


def test_layer_choice_calls_the_chosen_candidate_at_its_own_path():
    graph_space = GraphFormat().build(Pairs())
    root = graph_space.ir.root_graph
    op = root.modules["choice"]
    assert op.kind == "LayerChoice" and set(op.candidates) == {"pair", "other"}
    assert op.candidates["pair"].graph == "choice.pair"
    model = graph_space.freeze({"pairs": "other", "outer": 0, "inner": 1})
    [call] = [n for n in model.ir.root_graph.nodes if n.op == "call_module" and n.target == "choice"]
    assert call.meta["subgraph"] == "choice.other", "the candidate's graph is called at the LayerChoice's path"
    code = model.to_code()
    assert "getitem" not in code and "[0]" not in code, "the items of the candidate's tuple are used directly"
    assert "self.choice = nn.ModuleDict({\n            'a': nn.Linear(4, 4),\n        })" in code
    check_against_simplified(Pairs, inputs(2, 4), samples=6)


def test_layer_choice_candidates_must_return_the_same_structure():
    class Single(nn.Module):
        def forward(self, x):
            return x

    class Bad(ModelSpace):
        def __init__(self) -> None:
            super().__init__()
            self.choice = LayerChoice([Pair(), Single()], label="bad")

        def forward(self, x):
            return self.choice(x)

    with pytest.raises(GraphConversionError, match=r"LayerChoice 'bad' at 'choice': the candidates return different kinds"):
        GraphFormat().build(Bad())


# --- InputChoice -------------------------------------------------------------------------------------------------


class Inputs(ModelSpace):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.one = InputChoice(3, 1, label="one")
        self.sum = InputChoice(3, 2, reduction="sum", label="sum")
        self.mean = InputChoice(3, 3, reduction="mean", label="mean")
        self.cat = InputChoice(3, 2, reduction="concat", label="cat")
        self.listed = InputChoice(3, 2, reduction="none", label="listed")
        self.down = nn.Linear(8, 4)

    def forward(self, x):
        candidates = [x, self.fc(x), x * 3]
        chunks = torch.split(self.fc(x), [1, 1, 2], dim=1)  # a tuple the graph only knows as one value
        a, b = self.listed(candidates)
        return self.one(candidates) + self.sum(candidates) + self.mean(candidates) + self.down(self.cat(candidates)) + a * b + self.one(chunks).sum()


def test_input_choice_becomes_the_chosen_inputs():
    graph_space = GraphFormat().build(Inputs())
    model = graph_space.freeze({"one": 2, "sum": [0, 2], "mean": [0, 1, 2], "cat": [1, 2], "listed": [0, 1]})
    assert not any(n.op == "call_module" and n.target in ("one", "sum", "mean", "cat", "listed") for n in model.ir.root_graph.nodes)
    code = model.to_code()
    assert "torch.cat([fc, mul], dim=1)" in code
    assert "split[2]" in code
    check_against_simplified(Inputs, inputs(2, 4), samples=8)


def test_input_choice_returning_a_list_of_unknown_length_is_rejected():
    class Any(ModelSpace):
        def __init__(self) -> None:
            super().__init__()
            self.pick = InputChoice(3, None, reduction="none", label="pick")

        def forward(self, x):
            return torch.stack(self.pick([x, x, x])).sum(0)

    with pytest.raises(GraphConversionError, match=r"n_chosen=None and reduction='none'.*Give n_chosen"):
        GraphFormat().build(Any())


# --- Repeat ---------------------------------------------------------------------------------------------------------


class Repeated(ModelSpace):
    def __init__(self) -> None:
        super().__init__()
        width = nascore.choice("width", [4, 6])
        self.inp = MutableLinear(4, width)
        self.same = Repeat(nn.Sequential(MutableLinear(width, width), nn.ReLU()), nascore.choice("same", [0, 1, 3]), label="same")
        self.each = Repeat(
            lambda i: LayerChoice([MutableLinear(width, width), nn.Tanh()], label=f"each{i}"), (0, 2), label="each"
        )
        self.leaf = Repeat(nn.Tanh(), 2, label="leaf")
        self.out = MutableLinear(width, 2)

    def forward(self, x):
        return self.out(self.leaf(self.each(self.same(self.inp(x)))))


def test_repeat_becomes_a_chain_of_the_first_blocks():
    graph_space = GraphFormat().build(Repeated())
    model = graph_space.freeze({"width": 4, "same": 0, "each": 2, "each0": 1, "each1": 0})
    calls = [str(n.target) for n in model.ir.root_graph.nodes if n.op == "call_module"]
    assert calls == ["inp", "each.0", "each.1", "leaf.0", "leaf.1", "out"], "depth 0 leaves the input as it is"
    check_against_simplified(Repeated, inputs(3, 4), samples=10)


def test_repeat_blocks_must_return_what_they_take():
    class Growing(ModelSpace):
        def __init__(self) -> None:
            super().__init__()
            self.stack = Repeat(lambda i: Pair(), (1, 2), label="grow")

        def forward(self, x):
            return self.stack(x)

    with pytest.raises(GraphConversionError, match=r"block 0 takes tensor but returns \(tensor, tensor\)"):
        GraphFormat().build(Growing())


# --- Cell --------------------------------------------------------------------------------------------------------------


class LooseEnds(ModelSpace):
    """A cell with a function preprocessor, ``loose_end`` merging and factories that see their input."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3, padding=1)
        self.cell = Cell(
            {
                "conv": lambda node, op, inp: MutableConv2d(4, 4, 3, padding=1, dilation=1 if inp in (None, 0) else 1),
                "scaled": lambda node, op, inp: Scale(0.5 if inp is None else float(inp + 1)),
                "pool": nn.AvgPool2d(3, 1, 1),
            },
            num_nodes=3,
            num_ops_per_node=1,
            num_predecessors=2,
            merge_op="loose_end",
            preprocessor=lambda inputs: [inputs[0], torch.relu(inputs[1])],
            concat_dim=2,
            label="cell",
        )

    def forward(self, x):
        x = self.stem(x)
        return self.cell(x, x * 2).mean(dim=(1, 2, 3))


class Scale(nn.Module):
    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, x):
        return x * self.factor


def test_cell_becomes_a_graph_of_the_chosen_operators():
    graph_space = GraphFormat().build(LooseEnds())
    sample = {
        "cell/op_2_0": "scaled", "cell/input_2_0": 1,
        "cell/op_3_0": "pool", "cell/input_3_0": 0,
        "cell/op_4_0": "conv", "cell/input_4_0": 2,
    }
    model = graph_space.freeze(sample)
    cell = model.ir.graphs["cell"]
    assert [str(n.target) for n in cell.nodes if n.op == "call_module"] == ["ops.0.0", "ops.1.0", "ops.2.0"]
    assert model.ir.graphs[cell.node("ops_0_0").meta["subgraph"]].module_path == "", "a traced factory operator"
    code = model.to_code()
    assert "* 2.0" in code, "the factory saw its chosen input (1), not the space's None"
    assert "torch.cat([" in code and ", 2)" in code, "loose ends concatenated along concat_dim"
    check_against_simplified(LooseEnds, lambda: (torch.randn(2, 3, 5, 5),), samples=10)


def test_cell_input_count_is_checked():
    class Wrong(ModelSpace):
        def __init__(self) -> None:
            super().__init__()
            self.cell = Cell([nn.Identity()], num_nodes=1, num_predecessors=2, label="c")

        def forward(self, x):
            return self.cell([x])

    with pytest.raises(GraphConversionError, match=r"Cell 'c' at 'cell' takes 2 input tensor\(s\)"):
        GraphFormat().build(Wrong())
