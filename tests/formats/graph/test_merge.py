"""Merging frozen graph models into one logical graph (the cgo engine's building block).

Members come from the corpus (cells, ``Repeat``, ``LayerChoice``, choice-valued widths, a traced
parameter) and from small spaces here; each is built and seeded on its own, its weights loaded into
``merged.model_<i>``, and the merged module must compute exactly what the members compute.
"""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn as nn

import nascore
from nascore.nn import LayerChoice, ModelSpace, MutableLinear, Repeat
from nascore.plugin import get_plugins
from nascore.serialization import load_shipped_model, ship_model
from nascore_formats import GraphFormat, GraphModel, SimplifiedFormat
from nascore_formats.graph import merge_models
from nascore_formats.graph.merge import MERGED_LABEL, MergeError, member_path, member_samples

from .corpus import DartsNet, LoopSpace, NB201Space, ProxylessNet, TransformerSpace
from .helpers import exec_code


class TwoInputs(ModelSpace):
    """A small MLP space with two inputs, a LayerChoice and a Repeat."""

    def __init__(self) -> None:
        super().__init__()
        width = nascore.choice("width", [4, 6])
        self.a = MutableLinear(4, width)
        self.b = MutableLinear(3, width)
        self.mix = LayerChoice({"relu": nn.ReLU(), "tanh": nn.Tanh()}, label="mix")
        self.blocks = Repeat(
            lambda i: nn.Sequential(MutableLinear(width, width), nn.ReLU()), (1, 2), label="depth"
        )
        self.out = MutableLinear(width, 2)

    def forward(self, x, y):
        return self.out(self.blocks(self.mix(self.a(x) + self.b(y))))


class Mlp(ModelSpace):
    """A one-input MLP whose output is a pair (members may return structures)."""

    def __init__(self) -> None:
        super().__init__()
        width = nascore.choice("hidden", [3, 5])
        self.fc = MutableLinear(4, width)
        self.act = LayerChoice([nn.ReLU(), nn.Sigmoid()], label="act")
        self.head = MutableLinear(width, 2)

    def forward(self, x):
        h = self.act(self.fc(x))
        return self.head(h), h.sum(dim=1)


def frozen(space: type[ModelSpace], seed: int) -> GraphModel:
    return GraphFormat().build(space()).random(seed=seed)


def image_members() -> list[GraphModel]:
    """Structurally different members taking one image: a DARTS cell net, Repeat/LayerChoice MBConvs, an NB201 cell net, loops."""
    return [frozen(DartsNet, 1), frozen(ProxylessNet, 2), frozen(NB201Space, 3), frozen(LoopSpace, 4)]


def build_members(models: list[GraphModel]) -> list[nn.Module]:
    """Each member built on its own, from its own seed (what a separate trial would build)."""
    built = []
    for index, model in enumerate(models):
        torch.manual_seed(100 + index)
        built.append(model.build())
    return built


def load_members(merged: nn.Module, members: list[nn.Module]) -> None:
    for index, member in enumerate(members):
        getattr(merged, member_path(index)).load_state_dict(member.state_dict())  # strict: the same keys


def assert_outputs_equal(actual, members: list[nn.Module], inputs: list[tuple[torch.Tensor, ...]]) -> None:
    assert isinstance(actual, tuple) and len(actual) == len(members)
    expected = tuple(member(*args) for member, args in zip(members, inputs))
    torch.testing.assert_close(actual, expected)


# --- state dicts and outputs ---------------------------------------------------------------------------------------


def test_merged_state_dict_is_the_members_under_model_i():
    models = image_members()
    merged = merge_models(models).build()
    members = build_members(models)
    expected: set[str] = set()
    for index, member in enumerate(members):
        own = set(member.state_dict())
        assert set(getattr(merged, f"model_{index}").state_dict()) == own
        expected |= {f"model_{index}.{key}" for key in own}
    assert set(merged.state_dict()) == expected
    assert [name for name, _ in merged.named_children()] == [f"model_{i}" for i in range(len(models))]
    # The merged state dict loads as a whole too (strictly), from the members' seeded weights.
    merged.load_state_dict(
        {f"model_{i}.{key}": value for i, m in enumerate(members) for key, value in m.state_dict().items()}
    )


def test_shared_inputs_feed_every_member():
    models = image_members()
    merged_model = merge_models(models)
    assert len(merged_model.ir.root_graph.inputs) == 1, "one set of inputs for all members"
    merged, members = merged_model.build(), build_members(models)
    load_members(merged, members)
    merged.eval()
    for member in members:
        member.eval()
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        assert_outputs_equal(merged(x), members, [(x,)] * len(members))


def test_training_the_merged_module_trains_each_member_as_alone():
    models = [frozen(DartsNet, 5), frozen(NB201Space, 6)]  # batch norm in training mode, no dropout
    merged, members = merge_models(models).build(), build_members(models)
    load_members(merged, members)
    x = torch.randn(2, 3, 8, 8)
    outputs = merged(x)
    expected = tuple(member(x) for member in members)  # one training step each, like the merged module's
    torch.testing.assert_close(outputs, expected)
    sum(out.square().mean() for out in outputs).backward()
    for out in expected:
        out.square().mean().backward()
    for index, member in enumerate(members):
        merged_grads = dict(getattr(merged, f"model_{index}").named_parameters())
        for name, parameter in member.named_parameters():
            torch.testing.assert_close(merged_grads[name].grad, parameter.grad)
        mine = getattr(merged, f"model_{index}").state_dict()
        for key, value in member.state_dict().items():  # running statistics moved the same way
            torch.testing.assert_close(mine[key], value)


def test_separate_inputs_are_taken_member_after_member():
    models = [frozen(TwoInputs, 1), frozen(TransformerSpace, 2), frozen(Mlp, 3), frozen(TwoInputs, 4)]
    merged_model = merge_models(models, shared_inputs=False)
    assert [n.name for n in merged_model.ir.root_graph.inputs] == ["x_0", "y_0", "x_1", "x_2", "x_3", "y_3"]
    assert "    def forward(self, x_0, y_0, x_1, x_2, x_3, y_3):\n" in merged_model.to_code()
    merged, members = merged_model.build(), build_members(models)
    load_members(merged, members)
    merged.eval()
    for member in members:
        member.eval()
    inputs = [
        (torch.randn(3, 4), torch.randn(3, 3)),
        (torch.randn(2, 5, 5),),
        (torch.randn(3, 4),),
        (torch.randn(3, 4), torch.randn(3, 3)),
    ]
    with torch.no_grad():
        outputs = merged(*(x for args in inputs for x in args))
        assert_outputs_equal(outputs, members, inputs)
    assert isinstance(outputs[2], tuple) and len(outputs[2]) == 2, (
        "a member's structured output stays one item"
    )


def test_two_input_members_share_both_inputs():
    models = [frozen(TwoInputs, 5), frozen(TwoInputs, 6)]
    merged_model = merge_models(models)
    assert "    def forward(self, x, y):\n" in merged_model.to_code()
    merged, members = merged_model.build(), build_members(models)
    load_members(merged, members)
    x, y = torch.randn(3, 4), torch.randn(3, 3)
    with torch.no_grad():
        assert_outputs_equal(merged(x, y), members, [(x, y), (x, y)])


def test_one_member_gives_a_one_tuple_and_the_same_model_may_be_merged_twice():
    model = frozen(ProxylessNet, 7)
    merged, members = merge_models([model]).build(), build_members([model])
    load_members(merged, members)
    merged.eval()
    members[0].eval()
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        assert_outputs_equal(merged(x), members, [(x,)])
    twice = merge_models([model, model])
    assert len(twice.ir.graphs) == 2 * len(model.ir.graphs) + 1
    built = twice.build()
    assert set(built.model_0.state_dict()) == set(built.model_1.state_dict()) == set(members[0].state_dict())
    assert built.model_0.stem[0].weight is not built.model_1.stem[0].weight, (
        "two members, two sets of weights"
    )


# --- code, payloads, samples -----------------------------------------------------------------------------------------


def test_generated_code_defines_the_merged_module():
    models = [frozen(LoopSpace, 1), frozen(NB201Space, 2)]
    merged_model = merge_models(models, name="PairOfNets")
    code = merged_model.to_code()
    assert code.startswith('"""The PairOfNets architecture, generated by nascore\'s graph format.')
    assert (
        "class PairOfNets(nn.Module):" in code
        and "        self.model_0 = " in code
        and "        self.model_1 = " in code
    )
    assert "        # model_0: LoopSpace\n" in code and "        # model_1.stem: Sequential\n" in code
    assert "import nascore" not in code and "from nascore" not in code
    assert code.rstrip().endswith("return (model_0_head, model_1_classifier)")
    generated, members = exec_code(code), build_members(models)
    load_members(generated, members)
    generated.eval()
    for member in members:
        member.eval()
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        assert_outputs_equal(generated(x), members, [(x,), (x,)])


def test_payload_round_trips_through_json():
    models = [frozen(DartsNet, 8), frozen(TransformerSpace, 9), frozen(TwoInputs, 10)]
    merged_model = merge_models(models, shared_inputs=False)
    payload = json.loads(json.dumps(merged_model.to_payload()))
    assert payload["format"] == "graph"
    for loaded in (
        GraphFormat().load_model(payload),
        get_plugins().formats.get("graph")().load_model(payload),
        load_shipped_model(json.loads(json.dumps(ship_model(merged_model)))),
    ):
        assert isinstance(loaded, GraphModel)
        assert loaded.sample == merged_model.sample and member_samples(loaded) == [m.sample for m in models]
        assert loaded.to_code() == merged_model.to_code()
        assert loaded.ir.to_json() == merged_model.ir.to_json()
        original, rebuilt = merged_model.build(), loaded.build()
        rebuilt.load_state_dict(original.state_dict())
        original.eval()
        rebuilt.eval()
        inputs = (torch.randn(2, 3, 8, 8), torch.randn(2, 5, 5), torch.randn(2, 4), torch.randn(2, 3))
        with torch.no_grad():
            torch.testing.assert_close(rebuilt(*inputs), original(*inputs))
    assert ship_model(merged_model)["kind"] == "payload"


def test_the_sample_lists_the_members_samples():
    models = [frozen(TwoInputs, 1), frozen(Mlp, 2)]
    merged_model = merge_models(models, shared_inputs=False)
    assert merged_model.sample == {MERGED_LABEL: [models[0].sample, models[1].sample]}
    assert member_samples(merged_model) == [models[0].sample, models[1].sample]
    with pytest.raises(MergeError, match="not a merged graph model"):
        member_samples(models[0])


# --- the merged IR -------------------------------------------------------------------------------------------------------


def test_the_merged_ir_is_a_copy_of_every_member_graph_plus_a_root():
    models = image_members()
    before = [(m.ir.to_json(), m.to_code()) for m in models]
    merged = merge_models(models).ir
    assert len(merged.graphs) == sum(len(m.ir.graphs) for m in models) + 1
    assert (
        merged.frozen
        and merged.reachable()[0] == merged.root
        and set(merged.reachable()) == set(merged.graphs)
    )
    member_graphs = [g for m in models for g in m.ir.graphs.values()]
    for graph in merged.graphs.values():
        assert all(
            graph is not g and graph.fx is not g.fx and graph.modules is not g.modules for g in member_graphs
        )
        assert all(graph.tensors is not g.tensors for g in member_graphs)
    root = merged.root_graph
    calls = [n for n in root.nodes if n.op == "call_module"]
    assert [str(n.target) for n in calls] == [f"model_{i}" for i in range(len(models))]
    assert [merged.graphs[n.meta["subgraph"]].module_type for n in calls] == [
        m.ir.root_graph.module_type for m in models
    ]
    assert [n.name for n in root.output.args[0]] == [n.name for n in calls], (
        "the output is the tuple of the calls"
    )
    assert merged.find("model_1.stem") and merged.find("model_3.stack.layers.0")

    # Mutating every graph of the merged IR leaves the members as they were.
    for graph in merged.graphs.values():
        for node in graph.nodes:
            if node.op == "call_module" and node.target in graph.modules:
                graph.set_leaf(node, graph.leaf(node).replace(nn.Identity))
            node.meta.pop("subgraph", None)
        graph.modules.clear()
        graph.tensors.clear()
        graph.module_path = "changed"
    assert [(m.ir.to_json(), m.to_code()) for m in models] == before


def test_traced_tensors_are_copied():
    model = frozen(TransformerSpace, 3)
    member_tensor = model.ir.root_graph.tensors["position"].value
    merged_model = merge_models([model, model], shared_inputs=False)
    copies = [
        merged_model.ir.graphs[n.meta["subgraph"]].tensors["position"].value
        for n in merged_model.ir.root_graph.nodes
        if n.op == "call_module"
    ]
    assert len(copies) == 2 and copies[0] is not copies[1] and all(c is not member_tensor for c in copies)
    copies[0].add_(1.0)
    assert bool((member_tensor == 0).all()) and bool((copies[1] == 0).all())
    assert "position" in dict(merged_model.build().model_0.named_parameters())


# --- what cannot be merged ---------------------------------------------------------------------------------------------------


def test_shared_inputs_need_the_same_number_of_inputs():
    models = [frozen(Mlp, 1), frozen(NB201Space, 2), frozen(TwoInputs, 3)]
    with pytest.raises(
        MergeError,
        match=r"member 2 \(TwoInputs\) takes 2 input\(s\) but member 0 \(Mlp\) takes 1.*shared_inputs=False",
    ):
        merge_models(models)
    assert isinstance(MergeError("x"), ValueError)
    merge_models(models, shared_inputs=False)  # fine with one set of inputs per member


def test_what_cannot_be_merged():
    graph_space = GraphFormat().build(Mlp())
    with pytest.raises(MergeError, match="at least one model"):
        merge_models([])
    with pytest.raises(MergeError, match=r"member 1 .* still holds search decisions"):
        merge_models([frozen(Mlp, 1), GraphModel(graph_space.ir, {})])
    simplified = SimplifiedFormat().build(Mlp()).random(seed=0)
    with pytest.raises(MergeError, match=r"member 0 .* not a graph-format model"):
        merge_models([simplified])
    with pytest.raises(MergeError, match="Python identifier"):
        merge_models([frozen(Mlp, 1)], name="two words")
