"""NNI space parity across the formats: each feature built in a small ModelSpace, frozen in every format.

The features (issue 12): indexing a choice and the other operators and helpers of expressions,
editing ``MutableList`` / ``MutableDict`` / ``LayerChoice``, ``ModelSpace`` label prefixes and
``frozen_context.bypass()``. Each space is frozen with
``create_format(name).build(space).freeze(sample).build()`` in the raw, simplified and graph formats;
the models must be the same (same state-dict keys and shapes, same outputs with the same weights).
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn

from nascore.errors import SearchSpaceError
from nascore.nn import LayerChoice, ModelSpace, MutableConv2d, MutableLinear, ParametrizedModule, Repeat
from nascore.plugin import create_format
from nascore.space import (
    Categorical,
    MutableDict,
    MutableExpression,
    MutableList,
    choice,
    frozen_context,
    label_scope,
)

FORMATS = ("raw", "simplified", "graph")


def build(space: ModelSpace, sample: dict, format_name: str) -> nn.Module:
    return create_format(format_name).build(space).freeze(sample).build()


def assert_formats_agree(space: ModelSpace, inputs: torch.Tensor, samples: list[dict] | None = None) -> list[nn.Module]:
    """Freeze every sample (default: the grid) in every format; the models must be the same model.

    Returns the raw models, one per sample.
    """
    labels = {name: list(create_format(name).build(space).simplify()) for name in FORMATS}
    assert labels["simplified"] == labels["raw"] and labels["graph"] == labels["raw"], labels
    raw_models = []
    for sample in samples if samples is not None else list(space.grid_samples()):
        reference = build(space, sample, "raw").eval()
        with torch.no_grad():
            expected = reference(inputs)
        for name in ("simplified", "graph"):
            model = build(space, sample, name).eval()
            model.load_state_dict(reference.state_dict())  # strict: the same parameters and buffers
            with torch.no_grad():
                assert torch.allclose(model(inputs), expected, atol=1e-6), (name, sample)
        raw_models.append(reference)
    return raw_models


# --- indexing a choice ---------------------------------------------------------------------------------


class IndexedTuple(ModelSpace):
    def __init__(self) -> None:
        super().__init__()
        spec = choice("spec", [(4, 3), (8, 5)])  # (channels, kernel)
        self.conv = MutableConv2d(3, spec[0], spec[1], padding=spec[1] // 2)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = MutableLinear(spec[0], 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(torch.relu(self.conv(x))).flatten(1))


class IndexedDict(ModelSpace):
    def __init__(self) -> None:
        super().__init__()
        config = choice("config", [{"width": 4, "depth": 1}, {"width": 6, "depth": 2}])
        self.inp = MutableLinear(3, config["width"])
        self.body = Repeat(lambda i: MutableLinear(config["width"], config["width"]), config["depth"], label="depth")
        self.out = MutableLinear(config["width"], 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.body(self.inp(x)))


def test_indexed_choice_of_tuples_in_layer_arguments() -> None:
    space = IndexedTuple()
    assert list(space.simplify()) == ["spec"]
    models = assert_formats_agree(space, torch.randn(2, 3, 6, 6))
    assert [(m.conv.out_channels, m.conv.kernel_size) for m in models] == [(4, (3, 3)), (8, (5, 5))]
    # a sample read back from JSON (the tuple became a list) freezes the same in every format
    for name in FORMATS:
        assert build(space, {"spec": [8, 5]}, name).fc.in_features == 8


def test_indexed_choice_of_dicts_in_layer_arguments_and_repeat_depth() -> None:
    space = IndexedDict()
    assert list(space.simplify()) == ["config"]
    models = assert_formats_agree(space, torch.randn(2, 3))
    assert [(m.inp.out_features, len(m.body)) for m in models] == [(4, 1), (6, 2)]


# --- the operators and helpers of expressions -------------------------------------------------------------


class Operators(ModelSpace):
    def __init__(self) -> None:
        super().__init__()
        a = choice("a", [1, 2, 3])
        b = choice("b", [4, 8])
        # max over one iterable, switch_case, case, xor, shifts, floor: all give layer widths
        self.w1 = MutableExpression.max([a * 4, b]) + (a ^ 1)
        self.w2 = (b >> 2) + MutableExpression.switch_case(a, {1: 1, 2: 3, 3: 5})
        self.w3 = MutableExpression.case([(a < 2, 2), (b > 4, 6), (a >= 2, 4)])
        self.w4 = MutableExpression.to_int(math.floor(b / 3)) + MutableExpression.min(a, 2) + (1 << a)
        self.fc1 = MutableLinear(3, self.w1)
        self.fc2 = MutableLinear(self.w1, self.w2)
        self.fc3 = MutableLinear(self.w2, self.w3)
        self.fc4 = MutableLinear(self.w3, self.w4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc4(self.fc3(self.fc2(self.fc1(x))))


def test_operators_and_helpers_in_layer_arguments() -> None:
    space = Operators()
    assert list(space.simplify()) == ["a", "b"]
    samples = list(space.grid_samples())
    models = assert_formats_agree(space, torch.randn(2, 3), samples)
    for sample, model in zip(samples, models):
        a, b = sample["a"], sample["b"]
        w1 = max(a * 4, b) + (a ^ 1)
        w2 = (b >> 2) + {1: 1, 2: 3, 3: 5}[a]
        w3 = 2 if a < 2 else 6 if b > 4 else 4
        w4 = int(math.floor(b / 3)) + min(a, 2) + (1 << a)
        assert [model.fc1.out_features, model.fc2.out_features, model.fc3.out_features, model.fc4.out_features] == [
            w1, w2, w3, w4
        ], sample


# --- editing containers and layer choices ------------------------------------------------------------------


class Head(ParametrizedModule):
    def __init__(self, config: dict) -> None:
        super().__init__()
        self.fc = nn.Linear(config["features"], 2)
        self.act = nn.ReLU() if config["act"] == "relu" else nn.Tanh()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.fc(x))


class Containers(ModelSpace):
    def __init__(self) -> None:
        super().__init__()
        widths = MutableList([3])
        widths.append(choice("w1", [2, 6]))
        widths.insert(1, 5)
        widths += [choice("w2", [3, 4])]
        head = MutableDict(act=choice("act", ["relu", "tanh"]))
        head.update(features=widths[-1])
        head["unused"] = 0
        del head["unused"]
        self.layers = nn.Sequential(*[MutableLinear(widths[i], widths[i + 1]) for i in range(len(widths) - 1)])
        self.head = Head(head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.layers(x))


def test_mutable_list_and_dict_edited_in_the_space() -> None:
    space = Containers()
    assert list(space.simplify()) == ["w1", "w2", "act"]
    models = assert_formats_agree(space, torch.randn(2, 3))
    assert {tuple(layer.out_features for layer in m.layers) for m in models} == {(5, 2, 3), (5, 2, 4), (5, 6, 3), (5, 6, 4)}
    assert {type(m.head.act) for m in models} == {nn.ReLU, nn.Tanh}


class Replaceable(ModelSpace):
    def __init__(self) -> None:
        super().__init__()
        self.op = LayerChoice([nn.Linear(3, 2), nn.Linear(3, 2, bias=False)], label="op")
        self.act = LayerChoice({"relu": nn.ReLU(), "tanh": nn.Tanh()}, label="act")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.op(x))


def replaced_space() -> Replaceable:
    space = Replaceable()
    space.op[1] = nn.Sequential(nn.Linear(3, 5), nn.ReLU(), nn.Linear(5, 2))
    space.act["tanh"] = LayerChoice([nn.Tanh(), nn.Sigmoid()], label="squash")
    return space


@pytest.mark.parametrize("format_name", ["raw", "graph"])
def test_replaced_layer_choice_candidates(format_name: str) -> None:
    space = replaced_space()
    executable = create_format(format_name).build(space)
    assert list(executable.simplify()) == ["op", "act", "squash"]
    model = executable.freeze({"op": 1, "act": "tanh", "squash": 1}).build()
    assert sum(p.numel() for p in model.parameters()) == 3 * 5 + 5 + 5 * 2 + 2
    x = torch.randn(4, 3)
    assert (model(x) > 0).all()  # the sigmoid: the replacement of "tanh" was built
    reference = build(space, {"op": 1, "act": "tanh", "squash": 1}, "raw")
    model.load_state_dict(reference.state_dict())
    assert torch.allclose(model(x), reference(x))


def test_the_simplified_format_refuses_a_space_edited_after_construction() -> None:
    """It rebuilds the space from its class and init arguments in every trial: the edit would be lost, silently."""
    with pytest.raises(SearchSpaceError, match=r"rebuilds the space in every trial from its class .* it was edited "
                                               r"after construction .* use format 'raw' or 'graph'"):
        create_format("simplified").build(replaced_space())
    create_format("simplified").build(Replaceable())  # unedited: fine


# --- label prefixes of nested spaces and bypass --------------------------------------------------------------


class Cell(ModelSpace, label_prefix="cell"):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.op = LayerChoice([nn.Linear(width, width), nn.Identity()], label="op")
        self.act = LayerChoice({"relu": nn.ReLU(), "tanh": nn.Tanh()})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.op(x))


class Prefixed(ModelSpace, label_prefix="net"):
    def __init__(self) -> None:
        super().__init__()
        with label_scope("stem"):
            self.stem = Cell(3)
        self.blocks = Repeat(lambda i: Cell(3), (1, 2), label="depth")
        self.out = MutableLinear(3, choice("out", [2, 4]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.blocks(self.stem(x)))


def test_label_prefixes_of_nested_spaces() -> None:
    space = Prefixed()
    labels = list(space.simplify())
    assert labels == [
        "net/stem/cell/op", "net/stem/cell/layerchoice_1", "net/depth",
        "net/depth/0/cell/op", "net/depth/0/cell/layerchoice_1",
        "net/depth/1/cell/op", "net/depth/1/cell/layerchoice_1", "net/out",
    ]
    sample = {
        **space.default_sample(), "net/stem/cell/op": 1, "net/depth": 2, "net/depth/1/cell/op": 1,
        "net/depth/1/cell/layerchoice_1": "relu", "net/out": 4,
    }  # the default sample has one block: the second block's decisions are given here
    other = {**sample, "net/stem/cell/op": 0, "net/depth/0/cell/layerchoice_1": "tanh"}
    models = assert_formats_agree(space, torch.randn(2, 3), [sample, other])
    first = models[0]
    assert isinstance(first.stem.op, nn.Identity) and len(first.blocks) == 2
    assert isinstance(first.blocks[0].op, nn.Linear) and isinstance(first.blocks[1].op, nn.Identity)
    assert first.out.out_features == 4


class Sub(ModelSpace):
    def __init__(self) -> None:
        super().__init__()
        self.op = LayerChoice([nn.Linear(3, 3), nn.Identity(), nn.Tanh()], label="sub")


class Bypassing(ModelSpace):
    def __init__(self) -> None:
        super().__init__()
        with frozen_context.bypass():
            reference = Sub()  # the full space, also when this space is built frozen
        self.n_candidates = len(reference.op)
        self.op = LayerChoice([nn.Linear(3, 2), nn.Linear(3, 2, bias=False)], label="op")
        self.scale = nn.Parameter(torch.full((1,), float(self.n_candidates)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x) * self.scale


def test_bypass_in_a_space_built_in_every_format() -> None:
    space = Bypassing()
    assert list(space.simplify()) == ["op"]
    models = assert_formats_agree(space, torch.randn(2, 3))
    assert all(m.n_candidates == 3 for m in models)
    for name in FORMATS:
        assert build(space, {"op": 0}, name).scale.item() == 3.0


def test_categorical_index_used_by_a_layer_choice_and_a_parameter() -> None:
    """An indexed choice shared by a layer argument and a plain expression of the same decision."""

    class Shared(ModelSpace):
        def __init__(self) -> None:
            super().__init__()
            pair = Categorical([(2, "relu"), (4, "tanh")], label="pair")
            self.fc = MutableLinear(3, pair[0] * 2)
            self.out = MutableLinear(pair[0] * 2, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.out(self.fc(x))

    models = assert_formats_agree(Shared(), torch.randn(2, 3))
    assert [m.fc.out_features for m in models] == [4, 8]
