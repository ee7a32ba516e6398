"""The simplified format: class + init arguments + sample; payloads; validation."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn as nn

import nascore
from nascore.errors import (
    SampleMissingError,
    SampleValueError,
    SearchSpaceError,
    ShippingError,
    UnknownLabelError,
)
from nascore.nn import LayerChoice, ModelSpace, MutableConv2d, MutableLinear, Repeat
from nascore.serialization import load_shipped_model, ship_model
from nascore_formats import SimplifiedFormat


class TinySpace(ModelSpace):
    def __init__(self, in_features: int = 4, classes: int = 3):
        super().__init__()
        width = nascore.choice("width", [8, 16])
        self.inp = MutableLinear(in_features, width)
        self.act = LayerChoice({"relu": nn.ReLU(), "tanh": nn.Tanh()}, label="act")
        self.body = Repeat(lambda i: MutableLinear(width, width), (1, 2), label="depth")
        self.out = MutableLinear(width, classes)

    def forward(self, x):
        return self.out(self.body(self.act(self.inp(x))))


def test_build_and_freeze():
    space = SimplifiedFormat().build(TinySpace(in_features=5))
    assert set(space.simplify()) == {"width", "act", "depth"}
    model = space.freeze({"width": 16, "act": "tanh", "depth": 2})
    module = model.build()
    assert isinstance(module, TinySpace)
    assert module.inp.in_features == 5 and module.inp.out_features == 16
    assert isinstance(module.act, nn.Tanh) and len(module.body) == 2
    assert module(torch.randn(2, 5)).shape == (2, 3)
    assert model.build() is not module  # a new module every time


def test_a_sample_with_a_label_the_space_does_not_have_is_refused():
    space = SimplifiedFormat().build(TinySpace())
    sample = {"width": 8, "act": "relu", "depth": 1, "unrelated": 3}
    with pytest.raises(UnknownLabelError, match=r"unknown label 'unrelated'; the space's labels are 'width', 'act', 'depth'"):
        space.freeze(sample)
    assert not space.contains(sample)


def test_invalid_samples_name_the_label():
    space = SimplifiedFormat().build(TinySpace())
    with pytest.raises(SampleMissingError, match="'depth'"):
        space.freeze({"width": 8, "act": "relu"})
    with pytest.raises(SampleValueError, match=r"value 12 for label 'width' is not a candidate.*\[8, 16\]"):
        space.freeze({"width": 12, "act": "relu", "depth": 1})


def test_payload_round_trip():
    fmt = SimplifiedFormat()
    model = fmt.build(TinySpace(in_features=6, classes=2)).freeze({"width": 8, "act": "relu", "depth": 2})
    payload = model.to_payload()
    assert "json_changed" not in payload, "plain JSON values need no space to come back"
    loaded = fmt.load_model(json.loads(json.dumps(payload)))
    assert loaded.sample == model.sample
    module = loaded.build()
    assert module.inp.in_features == 6 and module.out.out_features == 2


def test_not_a_model_space():
    with pytest.raises(SearchSpaceError, match="ModelSpace"):
        SimplifiedFormat().build(nn.Linear(2, 2))


def test_random_and_grid_on_the_executable_space():
    space = SimplifiedFormat().build(TinySpace())
    samples = list(space.grid_samples())
    assert len(samples) == 2 * 2 * 2
    assert all(space.contains(s) for s in samples)
    model = space.random(seed=1)
    assert model.sample == space.random(seed=1).sample


class Marker:
    def __init__(self, n):
        self.n = n


#: Candidates of the "mode" choice of TupleKernel (its init arguments must be JSON).
MODES = {"dicts": [{1: "a", 2: (1, 2)}, {1: "b"}], "markers": [Marker(1), Marker(2)]}


class TupleKernel(ModelSpace):
    built = 0

    def __init__(self, modes=None):
        super().__init__()
        type(self).built += 1
        self.conv = MutableConv2d(3, 4, nascore.choice("kernel", [(1, 1), (3, 3)]), padding=1)
        if modes is not None:
            self.add_mutable(nascore.choice("mode", MODES[modes]))

    def forward(self, x):
        return self.conv(x)


def test_tuple_candidates_ship_as_a_payload_and_come_back_as_tuples():
    fmt = SimplifiedFormat()
    model = fmt.build(TupleKernel()).freeze({"kernel": (3, 3)})
    payload = model.to_payload()
    assert payload["sample"] == {"kernel": [3, 3]} and payload["json_changed"] == ["kernel"]
    shipment = ship_model(model)
    assert shipment["kind"] == "payload", shipment.get("reason")
    for loaded in (fmt.load_model(json.loads(json.dumps(payload))), load_shipped_model(json.loads(json.dumps(shipment)))):
        assert loaded.sample == model.sample and type(loaded.sample["kernel"]) is tuple
        assert loaded.build().conv.kernel_size == (3, 3)


def test_only_payloads_with_changed_values_rebuild_the_space():
    fmt = SimplifiedFormat()
    space = fmt.build(TinySpace())
    payload = json.loads(json.dumps(space.freeze({"width": 8, "act": "relu", "depth": 1}).to_payload()))
    model = fmt.build(TupleKernel()).freeze({"kernel": (1, 1)})
    tuple_payload = json.loads(json.dumps(model.to_payload()))
    before = TupleKernel.built
    assert fmt.load_model(payload).sample == {"width": 8, "act": "relu", "depth": 1}
    assert TupleKernel.built == before
    assert fmt.load_model(tuple_payload).sample == {"kernel": (1, 1)}
    assert TupleKernel.built == before + 1


def test_values_json_changes_otherwise_come_back_as_candidates():
    candidates = MODES["dicts"]
    model = SimplifiedFormat().build(TupleKernel("dicts")).freeze({"kernel": (1, 1), "mode": {1: "a", 2: (1, 2)}})
    payload = json.loads(json.dumps(model.to_payload()))
    assert payload["sample"]["mode"] == {"1": "a", "2": [1, 2]} and sorted(payload["json_changed"]) == ["kernel", "mode"]
    loaded = SimplifiedFormat().load_model(payload)
    assert loaded.sample == model.sample and loaded.sample["mode"] is candidates[0], "the candidate itself"


def test_a_payload_that_does_not_fit_the_space_is_refused():
    payload = json.loads(json.dumps(SimplifiedFormat().build(TupleKernel()).freeze({"kernel": (3, 3)}).to_payload()))
    payload["sample"]["kernel"] = [5, 5]
    with pytest.raises(ShippingError, match="'kernel'"):
        SimplifiedFormat().load_model(payload)


def test_a_value_with_no_json_form_is_pickled_saying_which_label():
    model = SimplifiedFormat().build(TupleKernel("markers")).freeze({"kernel": (1, 1), "mode": MODES["markers"][1]})
    with pytest.raises(ShippingError, match=r"'simplified' payload cannot hold the value .*Marker.* of the label 'mode'"):
        model.to_payload()
    shipment = ship_model(model)
    assert shipment["kind"] == "cloudpickle" and "'mode'" in shipment["reason"]


def test_a_tuple_payload_loads_inside_a_model_context():
    payload = json.loads(json.dumps(SimplifiedFormat().build(TupleKernel()).freeze({"kernel": (3, 3)}).to_payload()))
    with nascore.fixed_arch({"kernel": (1, 1)}):
        loaded = SimplifiedFormat().load_model(payload)
    assert loaded.sample == {"kernel": (3, 3)}
