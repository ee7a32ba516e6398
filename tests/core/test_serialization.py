"""Objects as data: import paths and JSON arguments."""

from __future__ import annotations

import pytest

from nascore.errors import ShippingError
from nascore.evaluators import FunctionalEvaluator
from nascore.serialization import build_from_spec, import_path, is_json_data, object_spec, resolve


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
