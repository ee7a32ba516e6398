"""fixed_arch refuses a sample with a label the space does not have; labels of unused decisions stay welcome."""

from __future__ import annotations

import json
import random

import pytest
import torch
import torch.nn as nn

import nascore
from nascore.errors import SampleMissingError, SampleValueError, UnknownLabelError
from nascore.nn import LayerChoice, ModelSpace, MutableLinear, Repeat, fixed_arch, model_context


class Net(ModelSpace):
    built = 0

    def __init__(self, classes: int = 3) -> None:
        super().__init__()
        type(self).built += 1
        self.fc = MutableLinear(4, nascore.choice("width", [8, 16]))
        self.body = Repeat(
            lambda i: LayerChoice(
                {"act": nn.ReLU(), "lin": MutableLinear(16, 16, bias=nascore.choice(f"bias{i}", [True, False]))},
                label=f"op{i}",
            ),
            (1, 3),
            label="depth",
        )
        self.head = nn.LazyLinear(classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(self.fc(x)))


def full_sample(**changes: object) -> dict:
    """Every label of the space (also those of branches not taken) at its default."""
    sample = {label: mutable.default_value() for label, mutable in Net().simplify().items()}
    sample.update(changes)
    return sample


def test_the_space_has_the_labels_the_tests_expect() -> None:
    assert list(Net().simplify()) == ["width", "depth", "op0", "bias0", "op1", "bias1", "op2", "bias2"]


def test_a_misspelt_extra_label_is_refused_naming_it_the_closest_label_and_the_expected_ones() -> None:
    sample = {**full_sample(), "widht": 16}
    with pytest.raises(UnknownLabelError) as info, fixed_arch(sample):
        Net()
    error = info.value
    assert isinstance(error, SampleValueError)
    assert error.label == "widht" and error.labels == ["widht"]
    assert error.expected == list(Net().simplify())
    message = str(error)
    assert "the sample of fixed_arch has the unknown label 'widht' (did you mean 'width'?)" in message
    assert "the space's labels are 'width', 'depth', 'op0', 'bias0'" in message


def test_every_unknown_label_is_named() -> None:
    sample = {**full_sample(), "bais1": True, "learning_rate": 0.1}
    with pytest.raises(UnknownLabelError, match=r"labels 'bais1' \(did you mean 'bias1'\?\), 'learning_rate';"), fixed_arch(sample):
        Net()


def test_a_typo_in_place_of_a_label_is_still_refused_naming_the_missing_label() -> None:
    sample = full_sample()
    sample["widht"] = sample.pop("width")
    with pytest.raises(SampleMissingError, match="'width'"), fixed_arch(sample):
        Net()


def test_labels_of_decisions_the_architecture_does_not_use_are_accepted() -> None:
    # depth 1: the blocks 1 and 2 are not built, and "bias0" belongs to the candidate not chosen.
    sample = full_sample(depth=1, op0="act")
    with fixed_arch(sample):
        model = Net()
    assert model.sample == sample
    assert isinstance(model.body, nn.Sequential) and len(model.body) == 1


def test_a_sample_with_exactly_the_labels_used_builds_the_space_once() -> None:
    sample = full_sample(depth=3, op0="lin", op1="lin", op2="lin")
    before = Net.built
    with fixed_arch(sample):
        Net()
    assert Net.built == before + 1


def test_the_check_of_unused_labels_leaves_the_random_state_as_it_was() -> None:
    def build(sample: dict) -> tuple[float, float, torch.Tensor]:
        torch.manual_seed(0)
        random.seed(0)
        with fixed_arch(sample):
            model = Net()
        return torch.rand(1).item(), random.random(), model.fc.weight.detach().clone()

    used = full_sample(depth=1, op0="lin")
    used_only = {label: used[label] for label in ("width", "depth", "op0", "bias0")}
    before = Net.built
    with_unused = build(used)
    assert Net.built == before + 2  # the frozen model, and the space once more to tell the unused labels
    without = build(used_only)
    assert with_unused[:2] == without[:2]
    assert torch.equal(with_unused[2], without[2])


def test_a_sample_file_with_an_unknown_label_is_refused(tmp_path) -> None:
    path = tmp_path / "arch.json"
    path.write_text(json.dumps({**full_sample(), "dpeth": 2}))
    with pytest.raises(UnknownLabelError, match=r"'dpeth' \(did you mean 'depth'\?\)"), fixed_arch(path):
        Net()


def test_init_arguments_are_used_to_tell_the_labels() -> None:
    with fixed_arch({**full_sample(depth=1), "extra": 1}):
        with pytest.raises(UnknownLabelError, match="'extra'"):
            Net(classes=5)


def test_model_context_trusts_the_sample_a_format_validated() -> None:
    """The engine-facing context checks nothing more: the formats validated the sample against the space."""
    with model_context({**full_sample(), "not_checked": 1}):
        model = Net()
    assert model.sample is not None and model.sample["not_checked"] == 1


def test_a_space_nested_in_the_space_is_checked_once_as_part_of_it() -> None:
    class Outer(ModelSpace):
        def __init__(self) -> None:
            super().__init__()
            self.inner = Net()
            self.gate = LayerChoice([nn.Identity(), nn.ReLU()], label="gate")

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.gate(self.inner(x))

    sample = Outer().default_sample()
    with fixed_arch(sample):
        Outer()
    with pytest.raises(UnknownLabelError, match=r"'gaet' \(did you mean 'gate'\?\)"), fixed_arch({**sample, "gaet": 1}):
        Outer()
