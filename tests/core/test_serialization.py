"""Objects as data: import paths and JSON arguments; shipping models and evaluators to workers."""

from __future__ import annotations

import threading

import pytest
import torch.nn as nn

from nascore.errors import ShippingError
from nascore.evaluators import FunctionalEvaluator
from nascore.format import ExecutableModel, ModelFormat
from nascore.plugin import get_plugins, hookimpl, reset_plugins
from nascore.serialization import (
    build_from_spec,
    import_path,
    is_json_data,
    load_shipped_evaluator,
    load_shipped_model,
    object_spec,
    resolve,
    ship_evaluator,
    ship_model,
)


def module_level(x, scale=1):
    return x * scale


def test_import_path_round_trip():
    path = import_path(module_level)
    assert path is not None and resolve(path) is module_level
    assert import_path(FunctionalEvaluator) == "nascore.evaluators.functional:FunctionalEvaluator"


def test_local_objects_have_no_import_path():
    def local():
        pass

    assert import_path(local) is None
    assert import_path(lambda: 0) is None
    with pytest.raises(ShippingError, match="importable module"):
        object_spec(local)


def test_spec_builds_the_object():
    spec = object_spec(module_level, (3,), {"scale": 2})
    assert build_from_spec(spec) == 6


def test_non_json_arguments_are_refused():
    assert is_json_data({"a": [1, 2.5, "x", None]})
    assert not is_json_data({"a": (1, 2)})  # a tuple comes back as a list
    with pytest.raises(ShippingError, match="JSON"):
        object_spec(module_level, (object(),))


def test_functional_evaluator_spec_round_trip():
    evaluator = FunctionalEvaluator(module_level, scale=3)
    rebuilt = build_from_spec(evaluator.to_spec())
    assert rebuilt.function is module_level and rebuilt.arguments == {"scale": 3}
    assert FunctionalEvaluator(lambda m: 0).to_spec() is None


def test_unresolvable_path():
    with pytest.raises(ShippingError, match="cannot import"):
        resolve("no_such_module_xyz:thing")


# --- shipping models and evaluators to worker processes ---------------------------------------------



class ListModel(ExecutableModel):
    """A model whose payload is plain data, loaded back by :class:`ListFormat`."""

    format_name = "test-list"

    def build(self) -> nn.Module:
        return nn.Linear(1, self.sample["width"])

    def to_payload(self):
        return {"format": "test-list", "sample": self.sample}


class ListFormat(ModelFormat):
    name = "test-list"

    def build(self, space):
        raise NotImplementedError

    def load_model(self, payload):
        return ListModel(payload["sample"])


class TestFormatPlugin:
    @hookimpl
    def nascore_register_formats(self, register):
        register("test-list", ListFormat)


@pytest.fixture
def list_format():
    reset_plugins()
    get_plugins().register_plugin(TestFormatPlugin(), "test-list-format")
    yield
    reset_plugins()


def test_a_model_of_a_registered_format_ships_as_its_payload(list_format):
    shipment = ship_model(ListModel({"width": 3}))
    assert shipment == {"kind": "payload", "payload": {"format": "test-list", "sample": {"width": 3}}}
    assert load_shipped_model(shipment).build().out_features == 3


def test_models_that_are_not_data_fall_back_to_cloudpickle():
    class LocalModel(ExecutableModel):  # defined inside a function: no import path, like a class in __main__
        def build(self):
            return nn.Linear(2, self.sample["width"])

    shipment = ship_model(LocalModel({"width": 5}))
    assert shipment["kind"] == "cloudpickle" and "cannot ship models" in shipment["reason"]
    assert load_shipped_model(shipment).build().out_features == 5

    unregistered = ListModel({"width": 2})  # a payload no registered format can load
    shipment = ship_model(unregistered)
    assert shipment["kind"] == "cloudpickle" and "names no registered format" in shipment["reason"]


def test_large_shipments_have_no_size_limit():
    evaluator = FunctionalEvaluator(module_level, blob="x" * (3 * 2**20))
    evaluator.function = lambda m, blob: len(blob)  # not importable: pickled
    shipment = ship_evaluator(evaluator)
    assert shipment["kind"] == "cloudpickle" and len(shipment["data"]) > 4 * 2**20
    assert load_shipped_evaluator(shipment).evaluate_module(None) == 3 * 2**20


def test_evaluators_ship_as_specs_or_pickles():
    spec = ship_evaluator(FunctionalEvaluator(module_level, scale=2))
    assert spec["kind"] == "spec" and load_shipped_evaluator(spec).function is module_level
    offset = 7
    pickled = ship_evaluator(FunctionalEvaluator(lambda model: model + offset))
    assert pickled["kind"] == "cloudpickle" and "to_spec() returned None" in pickled["reason"]
    assert load_shipped_evaluator(pickled).evaluate_module(1) == 8


def test_what_cannot_be_pickled_either_is_a_clear_error():
    lock = threading.Lock()
    with pytest.raises(ShippingError) as info:
        ship_evaluator(FunctionalEvaluator(lambda model: 1, lock=lock))
    message = str(info.value)
    assert "cannot ship the evaluator" in message and "cloudpickle failed too" in message and "lock" in message
    assert "importable module" in message and "sequential" in message
