"""Cell: NNI's DARTS-style cell — labels, candidates forms, merge ops, frozen forms and errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from nascore.errors import SampleMissingError, SampleValueError, SearchSpaceError
from nascore.nn import (
    Cell,
    ChosenInputs,
    InputChoice,
    LayerChoice,
    ModelSpace,
    MutableConv2d,
    MutableModule,
    fixed_arch,
)
from nascore.nn.cell import FrozenCell
from nascore.space import choice


class Add(nn.Module):
    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.value


class Mul(nn.Module):
    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.value


def search_classes(model: nn.Module) -> list[str]:
    return [
        type(m).__name__
        for m in model.modules()
        if isinstance(m, MutableModule) and not isinstance(m, ModelSpace)
    ]


def shapes(model: nn.Module) -> dict[str, torch.Size]:
    return {key: value.shape for key, value in model.state_dict().items()}


# --- structure and labels ---------------------------------------------------------------------------


def test_labels_follow_nni_naming() -> None:
    cell = Cell([Add(1), Mul(2)], num_nodes=3, num_ops_per_node=2, num_predecessors=2, label="normal")
    simple = cell.simplify()
    ops = [f"normal/op_{i}_{k}" for i in (2, 3, 4) for k in (0, 1)]
    inputs = [f"normal/input_{i}_{k}" for i in (2, 3, 4) for k in (0, 1)]
    assert sorted(simple) == sorted(ops + inputs)
    assert all(simple[label].values == [0, 1] for label in ops)
    # node i chooses among the predecessors and the nodes before it
    assert [simple[f"normal/input_{i}_0"].values for i in (2, 3, 4)] == [[0, 1], [0, 1, 2], [0, 1, 2, 3]]
    assert isinstance(cell.ops[0][0], LayerChoice) and isinstance(cell.inputs[2][1], InputChoice)
    assert cell.inputs[2][1].reduction == "none"
    assert "label='normal'" in repr(cell)


def test_dict_candidates_are_named() -> None:
    cell = Cell({"plus": Add(1), "times": Mul(2)}, num_nodes=1, label="c")
    assert cell.simplify()["c/op_1_0"].values == ["plus", "times"]


def test_automatic_labels_are_reproducible() -> None:
    class Space(ModelSpace):
        def __init__(self) -> None:
            super().__init__()
            self.first = Cell([Add(1), Mul(2)], 2)
            self.second = Cell([Add(1), Mul(2)], 1)

    labels = list(Space().simplify())
    assert labels == list(Space().simplify())
    assert {label.split("/")[0] for label in labels} == {"cell_1", "cell_2"}


def test_module_candidates_are_copied_per_operator() -> None:
    conv = nn.Conv2d(2, 2, 1)
    cell = Cell([conv], num_nodes=2, label="c")
    first, second = cell.ops[0][0][0], cell.ops[1][0][0]
    assert first is not conv and second is not first
    assert first.weight is not second.weight


def test_choices_inside_factory_operators_are_scoped_per_candidate() -> None:
    width = choice("width", [2, 4])
    cell = Cell(
        {
            "conv": lambda node, op, inp: MutableConv2d(width, width, 1),
            "act": lambda: LayerChoice([nn.ReLU(), nn.Tanh()]),
        },
        num_nodes=2,
        label="c",
    )
    labels = list(cell.simplify())
    assert "width" in labels  # explicit labels are shared
    assert "c/op_1_0/act/layerchoice_1" in labels and "c/op_2_0/act/layerchoice_1" in labels


# --- forward ------------------------------------------------------------------------------------------


def test_forward_sums_operators_and_concatenates_nodes() -> None:
    # 1 predecessor, 2 nodes of 2 operators each; all candidates keep the shape.
    cell = Cell({"plus": Add(1), "times": Mul(3)}, num_nodes=2, num_ops_per_node=2, label="c")
    sample = {
        "c/op_1_0": "plus", "c/input_1_0": 0,
        "c/op_1_1": "times", "c/input_1_1": 0,
        "c/op_2_0": "times", "c/input_2_0": 1,
        "c/op_2_1": "plus", "c/input_2_1": 0,
    }  # fmt: skip
    x = torch.tensor([[1.0], [2.0]])
    node1 = (x + 1) + (x * 3)
    node2 = node1 * 3 + (x + 1)
    frozen = cell.freeze(sample)
    assert isinstance(frozen, FrozenCell)
    torch.testing.assert_close(frozen(x), torch.cat([node1, node2], dim=1))
    with fixed_arch(sample):
        built = Cell({"plus": Add(1), "times": Mul(3)}, num_nodes=2, num_ops_per_node=2, label="c")
    torch.testing.assert_close(built(x), torch.cat([node1, node2], dim=1))


def test_space_forward_runs_the_defaults() -> None:
    cell = Cell({"plus": Add(1), "times": Mul(3)}, num_nodes=2, num_ops_per_node=2, label="c")
    x = torch.randn(4, 3)
    torch.testing.assert_close(cell(x), cell.freeze(cell.default_sample())(x))
    torch.testing.assert_close(cell(x), torch.cat([2 * (x + 1), 2 * (x + 1)], dim=1))


def test_forward_accepts_a_tensor_a_list_a_tuple_or_several_tensors() -> None:
    cell = Cell([Add(1)], num_nodes=1, num_predecessors=2, label="c")
    a, b = torch.zeros(1, 2), torch.ones(1, 2)
    expected = cell([a, b])
    assert torch.equal(cell((a, b)), expected)
    assert torch.equal(cell(a, b), expected)
    one = Cell([Add(1)], num_nodes=1, label="d")
    assert torch.equal(one(a), one([a]))
    with pytest.raises(SearchSpaceError, match="Cell 'c' takes 2 input"):
        cell(a)


def test_concat_dim() -> None:
    cell = Cell([Add(1)], num_nodes=3, concat_dim=-1, label="c")
    assert cell(torch.zeros(2, 5, 4)).shape == (2, 5, 12)


def test_preprocessor_and_postprocessor() -> None:
    class Pre(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.align = nn.Linear(3, 2)

        def forward(self, inputs: list[torch.Tensor]) -> list[torch.Tensor]:
            return [self.align(inputs[0]), inputs[1]]

    seen: list[int] = []

    def post(this_cell: torch.Tensor, inputs: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        seen.append(len(inputs))
        return this_cell, inputs[-1]

    cell = Cell([Add(1)], num_nodes=2, num_predecessors=2, preprocessor=Pre(), postprocessor=post, label="c")
    assert "preprocessor.align.weight" in cell.state_dict()
    out, last = cell([torch.randn(1, 3), torch.randn(1, 2)])
    assert out.shape == (1, 4) and last.shape == (1, 2)
    frozen = cell.freeze(cell.default_sample())
    assert torch.equal(frozen.preprocessor.align.weight, cell.preprocessor.align.weight)
    frozen([torch.randn(1, 3), torch.randn(1, 2)])
    assert seen == [2, 2]


def test_preprocessor_must_keep_the_number_of_inputs() -> None:
    cell = Cell([Add(1)], num_nodes=1, num_predecessors=2, preprocessor=lambda xs: xs[:1], label="c")
    with pytest.raises(SearchSpaceError, match="'c': the preprocessor returned 1 tensors, expected 2"):
        cell([torch.zeros(1), torch.zeros(1)])


# --- merge ops ------------------------------------------------------------------------------------------


def test_loose_end_uses_defaults_in_the_space_and_chosen_inputs_when_frozen() -> None:
    def make() -> Cell:
        return Cell([Add(1)], num_nodes=3, num_predecessors=1, merge_op="loose_end", label="c")

    cell = make()
    assert cell.output_node_indices == [1, 2, 3]  # default inputs are the predecessor
    assert cell(torch.zeros(1, 2)).shape == (1, 6)
    sample = {**cell.default_sample(), "c/input_2_0": 1, "c/input_3_0": 2}  # a chain 1 -> 2 -> 3
    frozen = cell.freeze(sample)
    with fixed_arch(sample):
        built = make()
    assert frozen.output_node_indices == built.output_node_indices == [3]
    torch.testing.assert_close(frozen(torch.zeros(1, 2)), torch.full((1, 2), 3.0))
    torch.testing.assert_close(built(torch.zeros(1, 2)), torch.full((1, 2), 3.0))


def test_merge_all_keeps_every_node() -> None:
    cell = Cell([Add(1)], num_nodes=3, label="c")
    sample = {**cell.default_sample(), "c/input_2_0": 1, "c/input_3_0": 2}
    assert cell.freeze(sample).output_node_indices == [1, 2, 3]


# --- candidate forms and factories ----------------------------------------------------------------------


def test_factories_get_node_op_and_input_indices() -> None:
    calls: list[tuple] = []

    def factory(node_index: int, op_index: int, input_index: int | None) -> nn.Module:
        calls.append((node_index, op_index, input_index))
        return Add(1)

    Cell([factory], num_nodes=2, num_ops_per_node=2, num_predecessors=2, label="c")
    assert calls == [(2, 0, None), (2, 1, None), (3, 0, None), (3, 1, None)]
    calls.clear()
    sample = {"c/input_2_0": 1, "c/input_2_1": 0, "c/input_3_0": 2, "c/input_3_1": 1}
    sample |= {f"c/op_{i}_{k}": 0 for i in (2, 3) for k in (0, 1)}
    with fixed_arch(sample):
        Cell([factory], num_nodes=2, num_ops_per_node=2, num_predecessors=2, label="c")
    assert calls == [(2, 0, 1), (2, 1, 0), (3, 0, 2), (3, 1, 1)]


def test_factories_may_take_fewer_arguments() -> None:
    seen: list[tuple] = []
    cell = Cell(
        {
            "none": lambda: Add(1),
            "node": lambda node_index: seen.append((node_index,)) or Add(2),
            "two": lambda node_index, op_index: seen.append((node_index, op_index)) or Add(3),
            "class": nn.Identity,  # a module class is a zero-argument factory
            "relu": nn.ReLU,
        },
        num_nodes=1,
        label="c",
    )
    assert [type(cell.ops[0][0][name]) for name in ("none", "node", "two", "class", "relu")] == [
        Add, Add, Add, nn.Identity, nn.ReLU,
    ]  # fmt: skip
    assert seen == [(1,), (1, 0)]
    assert cell.ops[0][0]["relu"].inplace is False


def test_callable_returning_the_candidates_is_accepted() -> None:
    cell = Cell(lambda: {"plus": Add(1), "times": Mul(2)}, num_nodes=2, label="c")
    assert cell.simplify()["c/op_1_0"].values == ["plus", "times"]
    with fixed_arch({**cell.default_sample(), "c/op_2_0": "times"}):
        built = Cell(lambda: {"plus": Add(1), "times": Mul(2)}, num_nodes=2, label="c")
    assert isinstance(built, FrozenCell)
    assert [type(node[0]) for node in built.ops] == [Add, Mul]
    listed = Cell(lambda: [Add(1), Mul(2)], num_nodes=1, label="d")
    assert listed.simplify()["d/op_1_0"].values == [0, 1]


def test_fixed_arch_builds_only_the_chosen_operators() -> None:
    built_ops: list[str] = []

    def make(name: str, module: nn.Module):
        def factory(node_index: int, op_index: int, input_index: int | None) -> nn.Module:
            built_ops.append(name)
            return module

        return factory

    candidates = {"a": make("a", Add(1)), "b": make("b", Mul(2)), "c": make("c", Add(3))}
    sample = {"x/op_1_0": "b", "x/input_1_0": 0, "x/op_2_0": "c", "x/input_2_0": 1}
    with fixed_arch(sample):
        cell = Cell(candidates, num_nodes=2, label="x")
    assert built_ops == ["b", "c"]
    assert isinstance(cell, FrozenCell)
    assert [type(node[0]) for node in cell.ops] == [Mul, Add]
    assert all(isinstance(node[0], ChosenInputs) for node in cell.inputs)
    assert search_classes(cell) == []


def test_freeze_keeps_the_weights_of_the_chosen_operators() -> None:
    cell = Cell(
        {"conv": nn.Conv2d(2, 2, 3, padding=1), "make": lambda node, op, inp: nn.Conv2d(2, 2, 1)},
        num_nodes=2,
        label="c",
    )
    sample = {"c/op_1_0": "conv", "c/input_1_0": 0, "c/op_2_0": "make", "c/input_2_0": 1}
    frozen = cell.freeze(sample)
    assert search_classes(frozen) == []
    assert torch.equal(frozen.ops[0][0].weight, cell.ops[0][0]["conv"].weight)
    # a factory that receives the input index is called again, and keeps the weights when they fit
    assert torch.equal(frozen.ops[1][0].weight, cell.ops[1][0]["make"].weight)
    assert isinstance(cell.ops[0][0], LayerChoice)  # the space is untouched


def test_factories_that_depend_on_the_input_agree_between_fixed_arch_and_freeze() -> None:
    def make_op(node_index: int, op_index: int, input_index: int | None) -> nn.Module:
        # a reduction-cell pattern: reading a predecessor needs a different operator
        if input_index is not None and input_index < 2:
            return nn.Sequential(nn.Conv2d(4, 4, 1), nn.ReLU())
        return nn.Conv2d(4, 4, 3, padding=1)

    class Space(ModelSpace):
        def __init__(self) -> None:
            super().__init__()
            self.cell = Cell(
                {"op": make_op, "pool": nn.AvgPool2d(3, 1, 1), "skip": nn.Identity()},
                num_nodes=3,
                num_ops_per_node=2,
                num_predecessors=2,
                merge_op="loose_end",
            )

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.cell([x, x * 2])

    space = Space()
    x = torch.randn(2, 4, 5, 5)
    for seed in range(20):
        sample = space.random_sample(seed=seed)
        with fixed_arch(sample):
            built = Space()
        frozen = space.freeze(sample)
        assert search_classes(built) == search_classes(frozen) == []
        assert built.cell.output_node_indices == frozen.cell.output_node_indices
        assert list(built.state_dict()) == list(frozen.state_dict())
        assert shapes(built) == shapes(frozen)
        built.load_state_dict(frozen.state_dict())
        torch.testing.assert_close(built(x), frozen(x), rtol=0, atol=1e-6)
        assert built(x).shape[1] == 4 * len(frozen.cell.output_node_indices)


def test_space_labels_are_the_labels_fixed_arch_reads() -> None:
    class Space(ModelSpace):
        def __init__(self) -> None:
            super().__init__()
            self.cell = Cell(
                [lambda i, k, inp: LayerChoice([nn.ReLU(), nn.Tanh()]), nn.Identity()], num_nodes=2
            )

    space = Space()
    sample = {label: 0 for label in space.simplify()}  # candidate 0 everywhere: every label is read
    with fixed_arch(sample):
        assert isinstance(Space().cell, FrozenCell)
    for label in sample:
        partial = {k: v for k, v in sample.items() if k != label}
        with pytest.raises(SampleMissingError, match=f"'{label}'"), fixed_arch(partial):
            Space()


# --- errors --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_nodes": 0}, "'bad': num_nodes must be a positive int, got 0"),
        ({"num_nodes": True}, "'bad': num_nodes must be a positive int"),
        ({"num_nodes": 2, "num_ops_per_node": 0}, "'bad': num_ops_per_node must be"),
        ({"num_nodes": 2, "num_predecessors": -1}, "'bad': num_predecessors must be"),
        (
            {"num_nodes": 2, "merge_op": "sum"},
            r"'bad': merge_op must be one of \('all', 'loose_end'\), got 'sum'",
        ),
        ({"num_nodes": 2, "preprocessor": 3}, "'bad': preprocessor must be callable"),
        ({"num_nodes": 2, "concat_dim": "1"}, "'bad': concat_dim must be an int"),
    ],
)
def test_bad_arguments_name_the_label(kwargs: dict, message: str) -> None:
    with pytest.raises(SearchSpaceError, match=message):
        Cell([nn.Identity()], label="bad", **kwargs)
    with pytest.raises(SearchSpaceError, match=message), fixed_arch({}):
        Cell([nn.Identity()], label="bad", **kwargs)


@pytest.mark.parametrize(
    ("candidates", "message"),
    [
        ([], "'bad' has no op candidates"),
        ({}, "'bad' has no op candidates"),
        ([nn.Identity(), "relu"], "'bad': candidate 1 is a str, not an nn.Module or a factory"),
        ({1: nn.Identity()}, "'bad': candidate names must be strings"),
        (
            [lambda a, b, c, d: nn.Identity()],
            "'bad': candidate factory 0 requires more than the three arguments",
        ),
        (nn.Identity(), "'bad': op_candidates must be a list or a dict"),
        ([lambda: 3], "'bad': the factory of candidate 0 returned a int, not an nn.Module"),
        (lambda: 3, "'bad': the op_candidates callable must return a list or a dict"),
        (lambda: [], "'bad': the op_candidates callable returned no candidates"),
    ],
)
def test_bad_candidates_name_the_label(candidates: object, message: str) -> None:
    with pytest.raises(SearchSpaceError, match=message):
        Cell(candidates, 2, label="bad")


def test_invalid_sample_values_name_the_label() -> None:
    with pytest.raises(SampleValueError, match="value 5 for label 'c/input_2_0'"):
        with fixed_arch({"c/input_1_0": 0, "c/op_1_0": 0, "c/input_2_0": 5, "c/op_2_0": 0}):
            Cell([nn.Identity()], 2, label="c")
    with pytest.raises(SampleValueError, match="label 'c/op_1_0'"):
        Cell([nn.Identity()], 2, label="c").freeze(
            {"c/input_1_0": 0, "c/op_1_0": 3, "c/input_2_0": 0, "c/op_2_0": 0}
        )
