"""User mutators: dry runs make their choices plain decisions; freezing replays them on the graph."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from nascore.errors import SearchSpaceError
from nascore.nn import ModelSpace
from nascore.space import Categorical
from nascore_formats import GraphFormat, RawFormat, SimplifiedFormat
from nascore_formats.graph import GraphIR, LeafModule, Mutator, apply_mutators, attached_mutators

from .helpers import exec_code


class Net(ModelSpace):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(4, 4)
        self.drop = nn.Dropout(0.9)
        self.fc2 = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc2(self.drop(self.fc1(x)))


class Dropper(Mutator):
    """Keeps or removes the dropout."""

    def mutate(self, model: GraphIR) -> None:
        [(graph, node)] = model.find("drop")
        if self.choice(["keep", "remove"]) == "remove":
            graph.remove_node(node)


class Normalizer(Mutator):
    """Inserts a LayerNorm after ``fc1``, or not."""

    def mutate(self, model: GraphIR) -> None:
        [(graph, node)] = model.find("fc1")
        if self.choice([False, True]):
            graph.insert_leaf_after(node, "norm", LeafModule(nn.LayerNorm, (4,)))


def space_with(*mutators: Mutator) -> Net:
    return apply_mutators(Net(), list(mutators))  # type: ignore[return-value]


def test_dry_run_turns_choices_into_decisions_and_leaves_the_space_alone():
    graph_space = GraphFormat().build(space_with(Dropper(label="drop"), Normalizer()))
    decisions = graph_space.simplify()
    assert list(decisions) == ["drop/0", "mutator_1/0"]
    assert decisions["drop/0"].equals(Categorical(["keep", "remove"], label="drop/0"))
    assert decisions["mutator_1/0"].values == [False, True]
    assert [str(n.target) for n in graph_space.ir.root_graph.nodes if n.op == "call_module"] == ["fc1", "drop", "fc2"]
    assert len(list(graph_space.grid_samples())) == 4


def test_freezing_replays_the_mutators():
    space = space_with(Dropper(label="drop"), Normalizer(label="norm"))
    graph_space = GraphFormat().build(space)
    x = torch.randn(3, 4)

    model = graph_space.freeze({"drop/0": "remove", "norm/0": True})
    code = model.to_code()
    assert "Dropout" not in code and "self.norm = nn.LayerNorm(4)" in code
    generated = exec_code(code)
    generated.load_state_dict({**space.state_dict(), "norm.weight": torch.ones(4), "norm.bias": torch.zeros(4)})
    expected = space.fc2(nn.functional.layer_norm(space.fc1(x), (4,)))
    assert torch.allclose(generated.train()(x), expected, atol=1e-6), "no dropout even in training mode"

    kept = graph_space.freeze({"drop/0": "keep", "norm/0": False})
    assert "self.drop = nn.Dropout(p=0.9)" in kept.to_code() and "self.norm" not in kept.to_code()
    generated = exec_code(kept.to_code())
    generated.load_state_dict(space.state_dict())
    assert torch.allclose(generated.eval()(x), space.eval()(x), atol=1e-6)


def test_non_stationary_mutators_are_refused_when_the_space_is_built_saying_why_and_what_to_do():
    class Dependent(Mutator):
        def mutate(self, model):
            first = self.choice([1, 2])
            self.choice(list(range(first)))

    with pytest.raises(
        SearchSpaceError,
        match=r"mutator 'dep': choice number 1 offers \[0, 1\] but offered \[0\] in the dry run \(given dep/0=2\); "
        r"this mutator is non-stationary .*switch_case make decisions conditional",
    ):
        GraphFormat().build(space_with(Dependent(label="dep")))

    class Counting(Mutator):
        def mutate(self, model):
            for _ in range(self.choice([1, 2])):
                self.choice(["a", "b"])

    with pytest.raises(SearchSpaceError, match=r"mutator 'count' called choice\(\) more often than in its dry run .*non-stationary"):
        GraphFormat().build(space_with(Counting(label="count")))


def test_a_stationary_mutator_that_reads_its_answers_is_accepted():
    class Reading(Mutator):
        def mutate(self, model):
            first = self.choice([1, 2])
            self.choice([0, 1])  # the same candidates whatever ``first`` is
            assert first in (1, 2)

    graph_space = GraphFormat().build(space_with(Reading(label="read")))
    assert set(graph_space.simplify()) >= {"read/0", "read/1"}
    graph_space.freeze({**graph_space.default_sample(), "read/0": 2, "read/1": 1})


def test_failing_and_misused_mutators():
    class Broken(Mutator):
        def mutate(self, model):
            model.find("nothing")[0]

    with pytest.raises(SearchSpaceError, match=r"mutator 'broken' \(Broken\) failed: IndexError"):
        GraphFormat().build(space_with(Broken(label="broken")))
    with pytest.raises(SearchSpaceError, match="two mutators have the same label"):
        GraphFormat().build(space_with(Dropper(label="same"), Normalizer(label="same")))
    with pytest.raises(SearchSpaceError, match=r"choice\(\) was called outside mutate\(\)"):
        Dropper().choice([1, 2])
    with pytest.raises(SearchSpaceError, match="expects Mutator objects"):
        apply_mutators(Net(), ["not a mutator"])  # type: ignore[list-item]


def test_other_formats_refuse_spaces_with_mutators():
    space = space_with(Dropper())
    assert attached_mutators(space)[0].__class__ is Dropper
    for fmt in (SimplifiedFormat(), RawFormat()):
        with pytest.raises(SearchSpaceError, match=r"only the 'graph' format can apply mutators.*use format='graph'"):
            fmt.build(space)
