"""Converting spaces to the graph IR: one graph per module call, leaves, tensors, and clear failures."""

from __future__ import annotations

import inspect
import operator

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import nascore
from nascore.errors import SearchSpaceError
from nascore.nn import LayerChoice, ModelSpace, MutableLinear, MutableModule, basic_unit
from nascore_formats import GraphFormat
from nascore_formats.graph import GraphConversionError, LeafModule

from .helpers import check_against_simplified


def line_of(function, text: str) -> int:
    """The line number of the first line of ``function``'s source containing ``text``."""
    lines, start = inspect.getsourcelines(function)
    return start + next(i for i, line in enumerate(lines) if text in line)


# --- structure -----------------------------------------------------------------------------------------------


class Scaled(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor, scale: float | None = None) -> torch.Tensor:
        out = self.fc(x)
        if scale is not None:  # a constant at the call site: each kind of call gets its own graph
            out = out * scale
        return out


class Structured(ModelSpace):
    def __init__(self) -> None:
        super().__init__()
        self.block = Scaled()
        self.shared = nn.Sequential(nn.Linear(4, 4), nn.Tanh())
        self.alpha = nn.Parameter(torch.tensor([0.5, -1.0, 2.0, 0.25]))
        self.register_buffer("offset", torch.ones(4))
        self.spare = nn.Linear(4, 2)  # never used in forward

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        a = self.block(x)
        b = self.block(x, scale=2.0)
        c = self.shared(self.shared(a + b))  # one module, called twice: one graph, two calls
        if mask is not None:
            c = c * mask
        return c * self.alpha + self.offset


def test_one_graph_per_kind_of_module_call():
    ir = GraphFormat().build(Structured()).ir
    assert sorted(ir.graphs) == ["_model", "block", "block@1", "shared"]
    root = ir.root_graph
    calls = [(n.target, n.meta.get("subgraph")) for n in root.nodes if n.op == "call_module"]
    assert calls == [("block", "block"), ("block", "block@1"), ("shared", "shared"), ("shared", "shared")]
    assert [n.name for n in root.inputs] == ["x"], "a forward argument with a default is traced at its default"
    assert ir.graphs["block"].module_path == "block" and ir.graphs["block"].module_type.endswith(":Scaled")
    assert [n.target for n in ir.graphs["block@1"].nodes if n.op == "call_function"] == [operator.mul]
    assert not [n for n in ir.graphs["block"].nodes if n.op == "call_function"]
    [(graph, node)] = ir.find("shared.1")
    assert graph.name == "shared" and isinstance(graph.leaf(node), LeafModule) and graph.leaf(node).factory is nn.Tanh
    assert [g.name for g, _ in ir.find_by_type("Linear")] == ["block", "block@1", "shared"]


def test_own_tensors_and_unused_modules_are_part_of_the_model():
    graph_space = GraphFormat().build(Structured())
    root = graph_space.ir.root_graph
    assert root.tensors["alpha"].kind == "parameter" and root.tensors["offset"].kind == "buffer"
    assert isinstance(root.modules["spare"], LeafModule)
    model = graph_space.freeze({})
    code = model.to_code()
    assert "self.alpha = nn.Parameter(torch.tensor([0.5, -1.0, 2.0, 0.25]))" in code
    assert "self.register_buffer('offset', torch.ones(4))" in code
    built = model.build()
    reference = Structured()
    built.load_state_dict(reference.state_dict())
    x = torch.randn(3, 4)
    assert torch.allclose(built(x), reference(x), atol=1e-6)


def test_generated_code_reads_like_the_model():
    code = GraphFormat().build(Structured()).freeze({}).to_code()
    assert "class Structured(nn.Module):" in code
    assert "def forward(self, x):" in code
    assert "# block: Scaled" in code and "# shared: Sequential" in code
    assert "block_mul = block_fc_1 * 2.0" in code
    assert "self.shared = nn.ModuleList([\n            nn.Linear(4, 4),\n            nn.Tanh(),\n        ])" in code


# --- leaves ------------------------------------------------------------------------------------------------------


@basic_unit
class Gate(nn.Module):
    """Data-dependent control flow is fine inside a basic unit: it is never traced."""

    def __init__(self, features: int, threshold: float = 0.0) -> None:
        super().__init__()
        self.fc = nn.Linear(features, features)
        self.threshold = threshold

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > self.threshold:
            return self.fc(x)
        return -x


class Gated(ModelSpace):
    def __init__(self) -> None:
        super().__init__()
        width = nascore.choice("width", [3, 6])
        self.inp = MutableLinear(4, width)
        self.gate = Gate(width, threshold=nascore.choice("threshold", [-100.0, 100.0]))
        self.out = MutableLinear(width, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.gate(self.inp(x)))


def test_basic_units_are_leaves_with_choices_in_their_arguments():
    graph_space = GraphFormat().build(Gated())
    gate = graph_space.ir.root_graph.modules["gate"]
    assert isinstance(gate, LeafModule) and gate.factory is Gate
    assert {m.label for m in gate.mutables()} == {"width", "threshold"}
    frozen = graph_space.freeze({"width": 6, "threshold": 100.0}).ir.root_graph.modules["gate"]
    assert frozen.args == (6,) and frozen.kwargs == {"threshold": 100.0}
    check_against_simplified(Gated, lambda: (torch.randn(2, 4),), samples=4)


def test_torch_layers_are_rebuilt_from_their_attributes():
    class Layers(ModelSpace):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False, padding_mode="reflect")
            self.norm = nn.BatchNorm2d(8, eps=1e-3, affine=False)
            self.attention = nn.MultiheadAttention(8, 2, bias=False, batch_first=True)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = self.norm(self.conv(x)).flatten(2).transpose(1, 2)
            return self.attention(h, h, h)[0]

    modules = GraphFormat().build(Layers()).ir.root_graph.modules
    assert repr(modules["conv"]) == "Conv2d(3, 8, 3, stride=2, padding=1, bias=False, padding_mode='reflect')"
    assert repr(modules["norm"]) == "BatchNorm2d(8, eps=0.001, affine=False)"
    assert repr(modules["attention"]) == "MultiheadAttention(8, 2, batch_first=True, bias=False)"


def test_a_layer_whose_arguments_cannot_be_recovered_names_its_wrapper():
    class Recurrent(ModelSpace):
        def __init__(self) -> None:
            super().__init__()
            self.rnn = nn.LSTM(4, 8, num_layers=2, batch_first=True)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.rnn(x)[0]

    with pytest.raises(GraphConversionError, match=r"LSTM at 'rnn'.*nascore\.nn\.MutableLSTM\(\.\.\.\)") as info:
        GraphFormat().build(Recurrent())
    assert info.value.module_path == "rnn"

    class Wrapped(ModelSpace):
        def __init__(self) -> None:
            super().__init__()
            self.rnn = nascore.nn.MutableLSTM(4, 8, num_layers=2, batch_first=True)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.rnn(x)[0]

    check_against_simplified(Wrapped, lambda: (torch.randn(2, 3, 4),), samples=1)


def test_a_basic_unit_with_decisions_inside_is_rejected():
    @basic_unit
    class Opaque(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.choice = LayerChoice([nn.ReLU(), nn.Tanh()], label="inner")

        def forward(self, x):
            return self.choice(x)

    class Space(ModelSpace):
        def __init__(self) -> None:
            super().__init__()
            self.opaque = Opaque()

        def forward(self, x):
            return self.opaque(x)

    with pytest.raises(GraphConversionError, match=r"basic unit Opaque at 'opaque' contains search decisions.*'inner'"):
        GraphFormat().build(Space())


# --- untraceable code: errors name the module, the line and the fix ------------------------------------------------


class DataDependent(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > 0:
            return self.fc(x)
        return x


class WithDataDependent(ModelSpace):
    def __init__(self, opaque: bool = False) -> None:
        super().__init__()
        self.head = nn.Linear(4, 4)
        self.blocks = nn.ModuleList([nn.Identity(), basic_unit(DataDependent)() if opaque else DataDependent()])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return self.head(x)


def test_data_dependent_control_flow_names_module_line_and_fix():
    with pytest.raises(GraphConversionError) as info:
        GraphFormat().build(WithDataDependent())
    error = info.value
    message = str(error)
    assert "cannot trace module 'blocks.1' (tests.formats.graph.test_tracing:DataDependent)" in message
    assert f"test_tracing.py:{line_of(DataDependent.forward, 'if x.sum()')}" in message
    assert "if x.sum() > 0:" in message
    assert "control flow" in message and "@nascore.nn.basic_unit" in message
    assert error.module_path == "blocks.1" and error.lineno == line_of(DataDependent.forward, "if x.sum()")
    assert isinstance(error, SearchSpaceError)


def test_marking_the_module_a_basic_unit_fixes_it():
    graph_space = GraphFormat().build(WithDataDependent(opaque=True))
    assert graph_space.ir.root_graph.modules["blocks.1"].type_name == "DataDependent"
    model = graph_space.freeze({}).build()
    reference = WithDataDependent(opaque=True)
    model.load_state_dict(reference.state_dict())
    x = torch.randn(2, 4)
    assert torch.allclose(model(x), reference(x))


def test_len_of_a_tensor_and_errors_in_the_space_itself():
    class Length(ModelSpace):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(x) / len(x)

    with pytest.raises(GraphConversionError, match=r"(?s)the model space .*Length.*len\(\) of a tensor.*move that code into a submodule"):
        GraphFormat().build(Length())


def test_reading_self_training_is_reported():
    class DropPath(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if not self.training:
                return x
            return x * 0.5

    class Space(ModelSpace):
        def __init__(self) -> None:
            super().__init__()
            self.drop = DropPath()

        def forward(self, x):
            return self.drop(x)

    space = Space()
    with pytest.raises(GraphConversionError, match=r"module 'drop' .*DropPath\) reads self.training") as info:
        GraphFormat().build(space)
    assert info.value.lineno == line_of(DropPath.forward, "if not self.training")
    assert space.drop.training is True, "the space's modules get their training flag back"

    class Functional(nn.Module):
        def forward(self, x):
            return F.dropout(x, 0.5, self.training)

    class Space2(ModelSpace):
        def __init__(self) -> None:
            super().__init__()
            self.drop = Functional()

        def forward(self, x):
            return self.drop(x)

    with pytest.raises(GraphConversionError, match="reads self.training"):
        GraphFormat().build(Space2())


def test_modules_must_only_use_their_own_inputs_and_submodules():
    class Leaky(nn.Module):
        def forward(self, x):
            return x + self.stash  # set by the parent during its forward

    class Space(ModelSpace):
        def __init__(self) -> None:
            super().__init__()
            self.child = Leaky()

        def forward(self, x):
            self.child.stash = x * 2
            return self.child(x)

    with pytest.raises(GraphConversionError, match=r"forward of 'child'.*computed outside this module.*Pass it as an argument"):
        GraphFormat().build(Space())

    class Unregistered(ModelSpace):
        def forward(self, x):
            return nn.ReLU()(x)

    with pytest.raises(GraphConversionError, match=r"ReLU is called in the forward of 'the model space' but is not a submodule"):
        GraphFormat().build(Unregistered())


def test_unknown_mutable_modules_and_star_args_are_rejected():
    class Custom(MutableModule):
        def forward(self, x):
            return x

    class Space(ModelSpace):
        def __init__(self) -> None:
            super().__init__()
            self.custom = Custom()

        def forward(self, x):
            return self.custom(x)

    with pytest.raises(GraphConversionError, match=r"'custom' is a .*Custom, a MutableModule the graph format does not know"):
        GraphFormat().build(Space())

    class Star(ModelSpace):
        def forward(self, *inputs):
            return inputs[0]

    with pytest.raises(GraphConversionError, match=r"takes \*inputs"):
        GraphFormat().build(Star())


def test_the_space_must_be_a_model_space():
    with pytest.raises(SearchSpaceError, match="ModelSpace"):
        GraphFormat().build(nn.Linear(2, 2))
