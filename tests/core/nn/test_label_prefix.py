"""Nested spaces: ``ModelSpace`` label prefixes and ``frozen_context.bypass()``, as in NNI.

Ported from NNI's test/ut/nas/nn/test_base.py (test_model_space_label, *_label_prefix) and
test/ut/sdk/mutable/test_frozen.py, written as a nascore user would.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from nascore.errors import SearchSpaceError
from nascore.nn import LayerChoice, ModelSpace, MutableLinear, Repeat, fixed_arch, is_frozen_build
from nascore.space import Categorical, auto_label, choice, frozen_context, label_scope
from nascore.space.label import current_label_prefix

# --- label_prefix ------------------------------------------------------------------------------------


def test_label_prefix_prefixes_explicit_labels() -> None:
    class MySpace(ModelSpace, label_prefix="backbone"):
        def __init__(self) -> None:
            super().__init__()
            self.choice = self.add_mutable(choice("depth", [2, 3, 4]))

    assert MySpace().choice.label == "backbone/depth"
    assert list(MySpace().simplify()) == ["backbone/depth"]


def test_label_prefix_numbers_automatic_labels_under_the_prefix() -> None:
    class Model(ModelSpace, label_prefix="model"):
        def __init__(self, in_channels: int) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(in_channels, 10, 3)
            self.conv2 = LayerChoice([nn.Conv2d(10, 10, 3), nn.MaxPool2d(3)])
            self.conv3 = LayerChoice([nn.Identity(), nn.Conv2d(10, 10, 1)])

    model = Model(3)
    assert model.conv2.label.startswith("model/") and model.conv3.label.startswith("model/")
    assert model.conv2.label != model.conv3.label
    assert Model(4).conv2.label == model.conv2.label  # reproducible


def test_label_prefix_belongs_to_the_class_that_declares_it() -> None:
    class Space1(ModelSpace):
        def __init__(self, a: int, b: int = 1) -> None:
            super().__init__()
            self.d = self.add_mutable(Categorical([4, 5, 6], label="d"))

    class Space2(Space1, label_prefix="model2"):
        def __init__(self, c: int = 2) -> None:
            super().__init__(c, b=3)
            self.c = self.add_mutable(Categorical([1, 2, 3], label="c"))

    class Space3(Space2):  # declares no prefix: has none, as in NNI
        pass

    model = Space2(5)
    assert (model.c.label, model.d.label) == ("model2/c", "model2/d")
    assert model.init_arguments == ((5,), {})
    assert Space3().c.label == "c"


def test_nested_prefixes_combine() -> None:
    class Space1(ModelSpace, label_prefix="model1"):
        def __init__(self, a: int, b: int = 1) -> None:
            super().__init__()
            self.d = self.add_mutable(Categorical([4, 5, 6], label="d"))

    class Space2(ModelSpace, label_prefix="model2"):
        def __init__(self, c: int = 2) -> None:
            super().__init__()
            self.s = Space1(1, 2)
            self.c = self.add_mutable(Categorical([1, 2, 3], label="c"))

    model = Space2(5)
    assert model.c.label == "model2/c"
    assert model.s.d.label == "model2/model1/d"
    assert model.s.init_arguments == ((1, 2), {})


def test_a_space_without_prefix_nested_in_one_with_a_prefix() -> None:
    seen: dict[str, str] = {}

    class Space3(ModelSpace):
        def __init__(self) -> None:
            super().__init__()
            seen["inner"] = self.add_mutable(Categorical([1, 2, 3], label="a")).label

    class Space4(ModelSpace, label_prefix="model4"):
        def __init__(self) -> None:
            super().__init__()
            self.inner = Space3()
            self.a = self.add_mutable(Categorical([1, 2, 3], label="a"))

    class Space5(ModelSpace):
        def __init__(self) -> None:
            super().__init__()
            self.outer = Space4()

    space = Space5()
    assert seen["inner"] == "model4/a" and space.outer.a.label == "model4/a"
    assert list(space.simplify()) == ["model4/a"]  # the same label: the same decision


def test_an_empty_or_invalid_label_prefix_is_refused() -> None:
    with pytest.raises(SearchSpaceError, match="label prefix"):

        class Empty(ModelSpace, label_prefix=""):
            pass

    with pytest.raises(SearchSpaceError, match="label prefix"):

        class Spaced(ModelSpace, label_prefix="a b"):
            pass


class Cell(ModelSpace, label_prefix="cell"):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.op = LayerChoice([nn.Linear(width, width), nn.Identity()], label="op")
        self.act = LayerChoice({"relu": nn.ReLU(), "tanh": nn.Tanh()})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.op(x))


class TwoStages(ModelSpace):
    def __init__(self) -> None:
        super().__init__()
        with label_scope("stage1"):
            self.stage1 = Cell(4)
        with label_scope("stage2"):
            self.stage2 = Cell(4)
        self.head = MutableLinear(4, choice("out", [2, 3]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stage2(self.stage1(x)))


def test_label_scopes_around_prefixed_spaces_keep_their_decisions_apart() -> None:
    space = TwoStages()
    assert space.stage1.op.label == "stage1/cell/op"
    assert space.stage2.op.label == "stage2/cell/op"
    labels = list(space.simplify())
    assert labels == ["stage1/cell/op", "stage1/cell/layerchoice_1", "stage2/cell/op", "stage2/cell/layerchoice_1", "out"]


def test_prefixed_labels_freeze_the_same_in_both_ways() -> None:
    space = TwoStages()
    sample = {**space.default_sample(), "stage1/cell/op": 1, "out": 3}
    frozen = space.freeze(sample)
    with fixed_arch(sample):
        built = TwoStages()
    assert str(frozen) == str(built)
    assert isinstance(built.stage1.op, nn.Identity) and isinstance(built.stage2.op, nn.Linear)
    assert built(torch.zeros(1, 4)).shape == (1, 3)


def test_prefixed_space_in_repeat_blocks_gets_one_prefix_per_block() -> None:
    class Net(ModelSpace, label_prefix="net"):
        def __init__(self) -> None:
            super().__init__()
            self.blocks = Repeat(lambda i: Cell(4), (1, 2), label="depth")

    labels = list(Net().simplify())
    assert labels[0] == "net/depth"
    assert "net/depth/0/cell/op" in labels and "net/depth/1/cell/op" in labels


def test_label_scope_with_prefix_labels() -> None:
    with label_scope(None):
        with label_scope("stage", prefix_labels=True):
            assert current_label_prefix() == "stage"
            assert Categorical([1, 2], label="width").label == "stage/width"
            assert Categorical([1, 2], label="stage/width").label == "stage/width"  # already under it
            assert auto_label("choice") == "stage/choice_1"
            with label_scope("plain"):  # a scope without the flag does not change explicit labels
                assert Categorical([1, 2], label="k").label == "stage/k"
                assert auto_label("choice") == "stage/plain/choice_1"
        assert current_label_prefix() is None
        assert Categorical([1, 2], label="width").label == "width"


# --- frozen_context.bypass() (NNI: nni/mutable/frozen.py, test_frozen.py) -------------------------------


def _middle() -> None:
    assert frozen_context.current() == {"a": 1, "b": 2}
    with frozen_context.bypass():
        assert frozen_context.current() is None


def test_bypass_leaves_the_innermost_context() -> None:
    with frozen_context({"a": 1, "b": 2}):
        _middle()
        assert frozen_context.current() == {"a": 1, "b": 2}
    assert frozen_context.current() is None

    with frozen_context({"a": 1, "b": 2}):
        with frozen_context({"c": 3}):
            assert frozen_context.current() == {"a": 1, "b": 2, "c": 3}
            with frozen_context.bypass():
                assert frozen_context.current() == {"a": 1, "b": 2}
                with frozen_context.bypass():
                    assert frozen_context.current() is None
            assert frozen_context.current() == {"a": 1, "b": 2, "c": 3}

    with frozen_context.bypass():  # outside any context: nothing to leave
        assert frozen_context.current() is None


def test_frozen_context_update_writes_to_the_innermost_context() -> None:
    assert frozen_context.current() is None
    with frozen_context():
        assert frozen_context.current() == {}
        frozen_context.update({"a": 1, "b": 2})
        frozen_context.update({"c": 3})
        assert frozen_context.current() == {"a": 1, "b": 2, "c": 3}
        with frozen_context({"c": 4}):
            assert frozen_context.current() == {"a": 1, "b": 2, "c": 4}
            frozen_context.update({"d": 5})
            assert frozen_context.current() == {"a": 1, "b": 2, "c": 4, "d": 5}
        assert frozen_context.current() == {"a": 1, "b": 2, "c": 3}
    assert frozen_context.current() is None
    with pytest.raises(SearchSpaceError, match="needs a frozen_context"):
        frozen_context.update({"a": 1})


class Small(ModelSpace):
    def __init__(self) -> None:
        super().__init__()
        self.op = LayerChoice([nn.Linear(3, 3), nn.Identity()], label="op")


def test_bypass_builds_a_search_space_inside_fixed_arch() -> None:
    with fixed_arch({"op": 1}):
        frozen = Small()
        with frozen_context.bypass():
            assert not is_frozen_build()
            space = Small()
        assert is_frozen_build()
    assert isinstance(frozen.op, nn.Identity)
    assert isinstance(space.op, LayerChoice)
    assert list(space.simplify()) == ["op"]


def test_bypass_inside_a_space_built_frozen() -> None:
    class Outer(ModelSpace):
        def __init__(self) -> None:
            super().__init__()
            self.fc = LayerChoice([nn.Linear(3, 2), nn.Linear(3, 2, bias=False)], label="fc")
            with frozen_context.bypass():
                self.reference_size = len(Small().simplify())  # the full space, also in a frozen build

    with fixed_arch({"fc": 1}):
        model = Outer()
    assert model.reference_size == 1 and isinstance(model.fc, nn.Linear) and model.fc.bias is None
    assert Outer().reference_size == 1
