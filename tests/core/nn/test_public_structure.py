"""The public structure of the nn primitives: what tools that convert or supernet a space read."""

from __future__ import annotations

from types import MappingProxyType

import pytest
import torch
import torch.nn as nn

from nascore.errors import SearchSpaceError
from nascore.nn import (
    Cell,
    InputChoice,
    LayerChoice,
    MutableConv2d,
    MutableLinear,
    ParametrizedModule,
    Repeat,
)
from nascore.nn.cell import build_op, loose_ends
from nascore.space import Categorical, CategoricalMultiple, choice


def per_input(node_index: int, op_index: int, input_index: int | None) -> nn.Module:
    return nn.Linear(4, 4)


def no_arguments() -> nn.Module:
    return nn.Identity()


def small_cell() -> Cell:
    return Cell(
        {"conv": nn.Linear(4, 4), "per_input": per_input, "id": no_arguments},
        num_nodes=2,
        num_predecessors=2,
        merge_op="loose_end",
        label="c",
    )


# --- Cell --------------------------------------------------------------------------------------------


def test_cell_input_factories_holds_only_the_factories_that_take_the_input_index() -> None:
    cell = small_cell()
    assert dict(cell.input_factories) == {"per_input": per_input}


def test_cell_input_factories_is_read_only() -> None:
    cell = small_cell()
    assert isinstance(cell.input_factories, MappingProxyType)
    with pytest.raises(TypeError):
        cell.input_factories["other"] = per_input  # type: ignore[index]
    with pytest.raises(AttributeError):
        cell.input_factories = {}  # type: ignore[misc]


def test_cell_ops_and_inputs_are_the_choices_of_every_operator_slot() -> None:
    cell = small_cell()
    assert [[lc.label for lc in node] for node in cell.ops] == [["c/op_2_0"], ["c/op_3_0"]]
    assert [[ic.label for ic in node] for node in cell.inputs] == [["c/input_2_0"], ["c/input_3_0"]]
    assert all(isinstance(lc, LayerChoice) and lc.names == ["conv", "per_input", "id"] for node in cell.ops for lc in node)
    assert [ic.n_candidates for node in cell.inputs for ic in node] == [2, 3]


def test_cell_arguments_are_public_attributes() -> None:
    cell = small_cell()
    assert (cell.label, cell.num_nodes, cell.num_ops_per_node, cell.num_predecessors) == ("c", 2, 1, 2)
    assert (cell.merge_op, cell.concat_dim, cell.preprocessor, cell.postprocessor) == ("loose_end", 1, None, None)


def test_cell_output_node_indices_are_the_loose_ends_under_the_defaults() -> None:
    # The default inputs are 0 for both nodes, so neither node is read.
    assert small_cell().output_node_indices == [2, 3]


# --- build_op and loose_ends ---------------------------------------------------------------------------


def test_build_op_copies_a_module_candidate() -> None:
    candidate = nn.Linear(4, 4)
    built = build_op("c", "conv", candidate, 2, 0, None)
    assert isinstance(built, nn.Linear) and built is not candidate
    assert torch.equal(built.weight, candidate.weight)


def test_build_op_passes_a_factory_as_many_indices_as_it_takes() -> None:
    calls = []

    def factory(node_index: int, op_index: int, input_index: int | None) -> nn.Module:
        calls.append((node_index, op_index, input_index))
        return nn.Identity()

    build_op("c", "f", factory, 3, 1, 2)
    assert calls == [(3, 1, 2)]
    assert isinstance(build_op("c", "id", no_arguments, 3, 1, 2), nn.Identity)


def test_build_op_gives_automatic_labels_inside_a_factory_as_the_cell_does() -> None:
    def factory() -> nn.Module:
        return MutableLinear(4, Categorical([4, 8]))

    built = build_op("c", "lin", factory, 2, 0, None)
    assert list(built.simplify()) == ["c/op_2_0/lin/choice_1"]
    in_cell = Cell({"lin": factory}, num_nodes=1, label="c")
    assert "c/op_1_0/lin/choice_1" in in_cell.simplify()


def test_build_op_refuses_a_factory_that_returns_no_module() -> None:
    with pytest.raises(SearchSpaceError, match="'c'.*'bad'.*int"):
        build_op("c", "bad", lambda: 3, 2, 0, None)


def test_loose_ends_are_the_nodes_no_operator_reads() -> None:
    assert loose_ends(2, 3, [0, 1, 2, 2]) == [3, 4]
    assert loose_ends(1, 2, [0, 1]) == [2]
    assert loose_ends(2, 2, iter([])) == [2, 3]


# --- Repeat ----------------------------------------------------------------------------------------


def test_repeat_with_a_depth_range_holds_its_decision_and_its_largest_number_of_blocks() -> None:
    repeat = Repeat(nn.Identity(), (1, 3), label="r")
    assert repeat.label == "r"
    assert isinstance(repeat.depth_choice, Categorical) and repeat.depth_choice.values == [1, 2, 3]
    assert (repeat.min_depth, repeat.max_depth) == (1, 3)
    assert len(repeat.blocks) == 3 and isinstance(repeat.blocks, nn.ModuleList)


def test_repeat_with_a_fixed_depth_holds_an_int() -> None:
    repeat = Repeat(nn.Identity(), 2, label="r")
    assert (repeat.depth_choice, repeat.min_depth, repeat.max_depth) == (2, 2, 2)


# --- LayerChoice and InputChoice ---------------------------------------------------------------------


def test_layer_choice_names_choice_candidates_and_items() -> None:
    relu, tanh = nn.ReLU(), nn.Tanh()
    lc = LayerChoice({"relu": relu, "tanh": tanh}, label="act")
    assert lc.names == ["relu", "tanh"]
    assert isinstance(lc.choice, Categorical) and lc.choice.values == ["relu", "tanh"]
    assert lc.label == "act"
    assert lc.candidates == [relu, tanh]
    assert lc["tanh"] is tanh


def test_layer_choice_of_a_list_is_indexed() -> None:
    lc = LayerChoice([nn.ReLU(), nn.Tanh()], label="act")
    assert lc.names == [0, 1]
    assert isinstance(lc[1], nn.Tanh)


def test_input_choice_structure() -> None:
    single = InputChoice(3, 1, label="one")
    assert (single.n_candidates, single.n_chosen, single.reduction, single.label) == (3, 1, "sum", "one")
    assert isinstance(single.choice, Categorical)
    several = InputChoice(3, 2, "concat", label="two")
    assert isinstance(several.choice, CategoricalMultiple)


# --- ParametrizedModule -------------------------------------------------------------------------------


def test_wrapped_layer_is_the_declared_layer() -> None:
    assert MutableConv2d.wrapped_layer() is nn.Conv2d
    assert MutableConv2d(3, 4, 3).wrapped_layer() is nn.Conv2d


def test_wrapped_layer_of_a_subclass_is_inherited_only_on_request() -> None:
    class MyConv(MutableConv2d):
        pass

    class Own(ParametrizedModule):
        def __init__(self, width: int) -> None:
            super().__init__()

    assert MyConv.wrapped_layer() is None
    assert MyConv.wrapped_layer(inherited=True) is nn.Conv2d
    assert Own.wrapped_layer() is None and Own.wrapped_layer(inherited=True) is None


def test_trace_arguments_keep_the_decisions() -> None:
    width = choice("width", [4, 8])
    module = MutableLinear(3, width, bias=False)
    assert module.trace_args == (3, width)
    assert module.trace_kwargs == {"bias": False}
    assert module.out_features == 4
