"""ModelSpace, ParametrizedModule and fixed_arch: the two ways a sample becomes a model agree."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn as nn

from nascore.errors import SampleMissingError, SampleValueError, SearchSpaceError
from nascore.nn import (
    Cell,
    InputChoice,
    LayerChoice,
    ModelSpace,
    MutableBatchNorm2d,
    MutableConv2d,
    MutableDropout,
    MutableLinear,
    MutableModule,
    ParametrizedModule,
    Repeat,
    fixed_arch,
    is_frozen_build,
    model_context,
)
from nascore.space import Categorical, choice


class Scale(ParametrizedModule):
    """A user module whose init argument may be a choice."""

    def __init__(self, factor: float, bias: bool = False) -> None:
        super().__init__()
        self.factor = factor
        self.offset = nn.Parameter(torch.zeros(1)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.factor + (self.offset if self.offset is not None else 0)


class Net(ModelSpace):
    """A non-trivial space: wrappers with shared choices and expressions, a cell, a repeat, inputs."""

    def __init__(self, num_classes: int = 5, *, in_channels: int = 3) -> None:
        super().__init__()
        width = choice("width", [4, 8])
        self.stem = MutableConv2d(in_channels, width, 3, padding=1)
        self.cell = Cell(
            {
                "conv": lambda node, op, inp: MutableConv2d(width, width, 3, padding=1),
                "pool": nn.MaxPool2d(3, 1, 1),
                "skip": nn.Identity(),
            },
            num_nodes=3,
            num_ops_per_node=2,
            num_predecessors=2,
        )
        self.reduce = MutableConv2d(width * 3, width, 1)
        self.blocks = Repeat(
            lambda i: LayerChoice(
                [
                    MutableConv2d(width, width, 3, padding=1),
                    nn.Sequential(MutableBatchNorm2d(width), nn.ReLU()),
                ]
            ),
            (1, 3),
        )
        self.skip = InputChoice(2, 1)
        self.scale = Scale(choice("factor", [0.5, 2.0]), bias=True)
        self.dropout = MutableDropout(p=choice("p", [0.0, 0.5]))
        self.head = MutableLinear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        stem = self.stem(x)
        reduced = self.reduce(self.cell([stem, stem]))
        x = self.skip([reduced, self.blocks(reduced)])
        x = self.dropout(self.scale(x).mean(dim=(2, 3)))
        return self.head(x)


def search_classes(model: nn.Module) -> list[str]:
    """nascore search primitives left in a model (model spaces and user modules are allowed)."""
    return [
        type(m).__name__
        for m in model.modules()
        if isinstance(m, MutableModule)
        and not isinstance(m, ModelSpace)
        and type(m).__module__.startswith("nascore")
    ]


def shapes(model: nn.Module) -> dict[str, torch.Size]:
    return {key: value.shape for key, value in model.state_dict().items()}


# --- labels ------------------------------------------------------------------------------------------


def test_labels_are_reproducible_across_constructions() -> None:
    first, second = Net().simplify(), Net().simplify()
    assert list(first) == list(second)
    assert {k: m.describe() for k, m in first.items()} == {k: m.describe() for k, m in second.items()}
    assert "width" in first and "cell_1/op_2_0" in first and "cell_1/input_4_1" in first


def test_labels_do_not_depend_on_what_was_built_before() -> None:
    labels = list(Net().simplify())
    LayerChoice([nn.ReLU(), nn.Tanh()])  # consumes a global automatic label
    Net()
    assert list(Net().simplify()) == labels


def test_nested_spaces_get_a_scope_of_their_own() -> None:
    class Inner(ModelSpace):
        def __init__(self) -> None:
            super().__init__()
            self.op = LayerChoice([nn.ReLU(), nn.Tanh()])

    class Middle(ModelSpace):
        def __init__(self) -> None:
            super().__init__()
            self.inner = Inner()

    class Outer(ModelSpace):
        def __init__(self) -> None:
            super().__init__()
            self.op = LayerChoice([nn.ReLU(), nn.Tanh()])
            self.middle = Middle()
            self.stages = Repeat(lambda i: Inner(), 2)

    space = Outer()
    assert list(space.simplify()) == [
        "layerchoice_1",
        "model_2/model_1/layerchoice_1",
        "repeat_3/0/model_1/layerchoice_1",
        "repeat_3/1/model_1/layerchoice_1",
    ]
    sample = {label: 1 for label in space.simplify()}
    with fixed_arch(sample):
        built = Outer()
    assert type(built.middle.inner.op) is nn.Tanh
    assert [type(stage.op) for stage in built.stages] == [nn.Tanh, nn.Tanh]


# --- ModelSpace and init arguments ------------------------------------------------------------------


def test_init_arguments_are_recorded() -> None:
    space = Net(7, in_channels=1)
    assert space.init_arguments == ((7,), {"in_channels": 1})
    assert space.sample is None
    assert Net().init_arguments == ((), {})


def test_parametrized_module_records_its_arguments() -> None:
    factor = choice("factor", [0.5, 2.0])
    scale = Scale(factor, bias=True)
    assert scale.trace_args == (factor,)
    assert scale.trace_kwargs == {"bias": True}
    assert scale.mutables == [factor]
    assert scale.factor == 0.5  # built with the default
    frozen = scale.freeze({"factor": 2.0})
    assert type(frozen) is Scale and frozen.factor == 2.0 and frozen.mutables == []


def test_parametrized_module_built_frozen_has_concrete_arguments() -> None:
    with fixed_arch({"factor": 2.0}):
        scale = Scale(choice("factor", [0.5, 2.0]))
    assert scale.factor == 2.0
    assert scale.simplify() == {}


def test_parametrized_module_without_choices_keeps_its_weights() -> None:
    scale = Scale(3.0, bias=True)
    with torch.no_grad():
        scale.offset.fill_(1.5)
    frozen = scale.freeze({})
    assert frozen.factor == 3.0 and frozen.offset.item() == 1.5


# --- fixed_arch ---------------------------------------------------------------------------------------


def test_fixed_arch_builds_one_frozen_model() -> None:
    space = Net()
    sample = space.random_sample(seed=1)
    assert not is_frozen_build()
    with fixed_arch(sample) as in_force:
        assert is_frozen_build()
        assert in_force == sample
        model = Net()
    assert not is_frozen_build()
    assert model.sample == sample
    assert search_classes(model) == []
    assert model(torch.randn(2, 3, 6, 6)).shape == (2, 5)


def test_fixed_arch_reads_a_json_file(tmp_path: Path) -> None:
    sample = Net().random_sample(seed=2)
    path = tmp_path / "arch.json"
    path.write_text(json.dumps(sample))
    for source in (path, str(path)):
        with fixed_arch(source):
            model = Net()
        assert model.sample == json.loads(json.dumps(sample))
        assert search_classes(model) == []


def test_fixed_arch_file_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(SearchSpaceError, match="cannot read the architecture file .*missing.json"):
        fixed_arch(tmp_path / "missing.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(SearchSpaceError, match="broken.json"):
        fixed_arch(broken)
    listed = tmp_path / "list.json"
    listed.write_text("[1, 2]")
    with pytest.raises(SearchSpaceError, match=r"expects a \{label: value\} dict, got list"):
        fixed_arch(listed)


def test_fixed_arch_contexts_nest_and_inner_wins() -> None:
    with fixed_arch({"a": 0, "b": 0}), model_context({"b": 1}):
        a = LayerChoice([nn.ReLU(), nn.Tanh()], label="a")
        b = LayerChoice([nn.ReLU(), nn.Tanh()], label="b")
    assert (type(a), type(b)) == (nn.ReLU, nn.Tanh)


def test_fixed_arch_with_a_missing_or_wrong_value_names_the_label() -> None:
    sample = Net().default_sample()
    del sample["cell_1/op_3_1"]
    with pytest.raises(SampleMissingError, match="'cell_1/op_3_1'"), fixed_arch(sample):
        Net()
    with pytest.raises(SampleValueError, match="value 12 for label 'width'"), fixed_arch({"width": 12}):
        Net()


# --- freeze -------------------------------------------------------------------------------------------


def test_freeze_keeps_weights_and_leaves_the_space_alone() -> None:
    class Space(ModelSpace):
        def __init__(self) -> None:
            super().__init__()
            self.op = LayerChoice(
                {"small": nn.Linear(4, 4), "big": nn.Sequential(nn.Linear(4, 16), nn.Linear(16, 4))},
                label="op",
            )
            self.out = nn.Linear(4, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.out(self.op(x))

    space = Space()
    frozen = space.freeze({"op": "big"})
    assert torch.equal(frozen.op[0].weight, space.op["big"][0].weight)
    assert frozen.op[0].weight is not space.op["big"][0].weight
    assert torch.equal(frozen.out.weight, space.out.weight)
    assert isinstance(space.op, LayerChoice)  # untouched
    assert frozen.sample == {"op": "big"}
    x = torch.randn(3, 4)
    torch.testing.assert_close(frozen(x), space.out(space.op["big"](x)))
    # the default of a space is what the space computes
    torch.testing.assert_close(space.freeze(space.default_sample())(x), space(x))


def test_freeze_validates_the_whole_sample() -> None:
    space = Net()
    sample = space.default_sample()
    with pytest.raises(SampleMissingError, match="'factor'"):
        space.freeze({k: v for k, v in sample.items() if k != "factor"})
    with pytest.raises(SampleValueError, match="label 'p'"):
        space.freeze({**sample, "p": 0.3})
    assert space.contains(sample)


def test_fixed_arch_and_freeze_agree_for_random_samples() -> None:
    torch.manual_seed(0)
    space = Net().eval()
    x = torch.randn(2, 3, 6, 6)
    for seed in range(20):
        sample = space.random_sample(seed=seed)
        assert space.contains(sample)
        with fixed_arch(sample):
            built = Net().eval()
        frozen = space.freeze(sample).eval()
        assert search_classes(built) == search_classes(frozen) == []
        assert list(built.state_dict()) == list(frozen.state_dict())
        assert shapes(built) == shapes(frozen)
        built.load_state_dict(frozen.state_dict())
        torch.testing.assert_close(built(x), frozen(x), rtol=0, atol=1e-6)


def test_grid_of_a_small_space_freezes_every_sample() -> None:
    class Small(ModelSpace):
        def __init__(self) -> None:
            super().__init__()
            self.op = LayerChoice([nn.ReLU(), nn.Tanh(), nn.Identity()])
            self.linear = MutableLinear(4, Categorical([2, 3], label="out"))

    space = Small()
    sizes = [m.size for m in space.simplify().values()]
    models = list(space.grid())
    assert len(models) == sizes[0] * sizes[1] == 6
    assert {(type(m.op).__name__, m.linear.out_features) for m in models} == {
        (op, out) for op in ("ReLU", "Tanh", "Identity") for out in (2, 3)
    }
    assert all(search_classes(m) == [] for m in models)
