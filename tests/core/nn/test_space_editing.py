"""Editing a space: replacing a LayerChoice candidate, containers of decisions edited in a space.

NNI's ``LayerChoice.__setitem__`` (nni/nas/nn/pytorch/choice.py): a candidate is replaced by name
(the index for a list), a new name is a ``KeyError``, deleting is refused.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from nascore.errors import LabelConflictError, SearchSpaceError
from nascore.nn import LayerChoice, ModelSpace, MutableLinear, ParametrizedModule, fixed_arch
from nascore.nn.choice import CandidateNotFoundError
from nascore.space import Categorical, MutableDict, MutableList, choice


def test_replace_a_candidate_by_index() -> None:
    lc = LayerChoice([nn.Linear(3, 2), nn.Linear(3, 2, bias=False)], label="op")
    new = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    lc[1] = new
    assert lc[1] is new and lc.candidates[1] is new
    assert lc.names == [0, 1] and lc.label == "op" and list(lc.simplify()) == ["op"]
    assert lc.freeze({"op": 1}) is not new  # freeze works on a copy
    assert isinstance(lc.freeze({"op": 1}), nn.Sequential)
    assert dict(lc.named_children())["1"] is new


def test_replace_a_candidate_by_name() -> None:
    lc = LayerChoice({"conv": nn.Conv2d(3, 3, 3, padding=1), "pool": nn.MaxPool2d(3, 1, 1)}, label="op")
    lc["pool"] = nn.AvgPool2d(3, 1, 1)
    assert isinstance(lc["pool"], nn.AvgPool2d)
    assert isinstance(lc.freeze({"op": "pool"}), nn.AvgPool2d)
    assert lc(torch.zeros(1, 3, 4, 4)).shape == (1, 3, 4, 4)  # the space runs its default candidate


def test_the_new_candidates_decisions_join_the_space_and_the_old_ones_leave() -> None:
    lc = LayerChoice([LayerChoice([nn.ReLU(), nn.Tanh()], label="act"), nn.Identity()], label="op")
    assert list(lc.simplify()) == ["op", "act"]
    lc[0] = MutableLinear(4, choice("width", [4, 8]))
    assert list(lc.simplify()) == ["op", "width"]
    assert lc.freeze({"op": 0, "width": 8}).out_features == 8


def test_a_new_name_or_a_deletion_is_refused() -> None:
    lc = LayerChoice({"a": nn.ReLU(), "b": nn.Tanh()}, label="op")
    with pytest.raises(KeyError, match="no candidate 'c'.*replaced, not added"):
        lc["c"] = nn.Identity()
    with pytest.raises(CandidateNotFoundError, match="no candidate 'c'"):
        lc["c"]
    with pytest.raises(SearchSpaceError, match="deleting a candidate is not supported"):
        del lc["a"]
    indexed = LayerChoice([nn.ReLU(), nn.Tanh()], label="idx")
    with pytest.raises(SearchSpaceError, match="no candidate 2"):
        indexed[2] = nn.Identity()
    with pytest.raises(SearchSpaceError, match="must be an nn.Module"):
        indexed[0] = "relu"  # type: ignore[assignment]
    assert list(lc.simplify()) == ["op"] and list(lc.names) == ["a", "b"]


def test_a_replacement_that_reuses_a_label_for_another_decision_is_refused() -> None:
    old = LayerChoice([nn.ReLU(), nn.Tanh()], label="act")
    lc = LayerChoice([old, nn.Identity()], label="op")
    with pytest.raises(LabelConflictError, match="'op'"):
        lc[1] = LayerChoice([nn.ReLU(), nn.Tanh(), nn.GELU()], label="op")
    assert lc[0] is old and isinstance(lc[1], nn.Identity)  # left as it was


class Edited(ModelSpace):
    """A space that edits containers of decisions while it is built (works built frozen too)."""

    def __init__(self) -> None:
        super().__init__()
        widths = MutableList([4])
        widths.append(choice("w1", [2, 6]))
        widths.extend([choice("w2", [3, 5])])
        head = MutableDict(act=choice("act", ["relu", "tanh"]))
        head["features"] = widths[-1]
        self.layers = nn.Sequential(*[MutableLinear(widths[i], widths[i + 1]) for i in range(len(widths) - 1)])
        self.head = Head(head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.layers(x))


class Head(ParametrizedModule):
    def __init__(self, config: dict) -> None:
        super().__init__()
        self.fc = nn.Linear(config["features"], 1)
        self.act = nn.ReLU() if config["act"] == "relu" else nn.Tanh()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.fc(x))


def test_containers_edited_in_a_space_give_the_same_model_both_ways() -> None:
    space = Edited()
    assert list(space.simplify()) == ["w1", "w2", "act"]
    sample = {"w1": 6, "w2": 5, "act": "tanh"}
    frozen = space.freeze(sample)
    with fixed_arch(sample):
        built = Edited()
    for model in (frozen, built):
        assert [layer.out_features for layer in model.layers] == [6, 5]
        assert model.head.fc.in_features == 5 and isinstance(model.head.act, nn.Tanh)
        assert model(torch.zeros(2, 4)).shape == (2, 1)


def test_indexed_choice_in_layer_arguments_both_ways() -> None:
    class Indexed(ModelSpace):
        def __init__(self) -> None:
            super().__init__()
            spec = Categorical([(8, 3), (16, 5)], label="spec")
            self.conv = nn.Sequential(MutableLinear(4, spec[0]), nn.ReLU())
            self.out = MutableLinear(spec[0], spec[1])

    space = Indexed()
    assert list(space.simplify()) == ["spec"]
    with fixed_arch({"spec": (16, 5)}):
        built = Indexed()
    frozen = space.freeze({"spec": [16, 5]})  # as read back from JSON
    for model in (built, frozen):
        assert (model.out.in_features, model.out.out_features) == (16, 5)
