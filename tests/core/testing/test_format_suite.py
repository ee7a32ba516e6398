"""The format conformance suite (nascore.testing.formats) passes a correct format and fails broken ones,
saying what is wrong.

Core only: the formats here are toys defined in this file (no plugin is installed in the core session),
registered for each test in a process-wide plugin host that loads no installed plugin.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch.nn as nn

from nascore.errors import SearchSpaceError, UnknownLabelError
from nascore.format import ExecutableModel, ExecutableSpace, ModelFormat
from nascore.nn import ModelSpace, model_context
from nascore.plugin import get_plugins, hookimpl, reset_plugins
from nascore.serialization import object_spec, resolve
from nascore.space import Sample
from nascore.testing.formats import SPACES, FormatConformance

pytest_plugins = ["pytester"]


# --- a correct format, and a second one to compare it with ----------------------------------------


class ToyModel(ExecutableModel):
    """Space class + init arguments + sample, as the simplified format does it."""

    def __init__(self, format_name: str, space_class: type[ModelSpace], args: tuple, kwargs: dict, sample: Sample):
        super().__init__(sample)
        self.format_name = format_name
        self.space_class = space_class
        self.args = args
        self.kwargs = kwargs

    def build(self) -> nn.Module:
        with model_context(self.sample):
            return self.space_class(*self.args, **self.kwargs)

    def to_payload(self) -> dict[str, Any]:
        return {
            "format": self.format_name,
            "space": object_spec(self.space_class, self.args, self.kwargs),
            "sample": json.loads(json.dumps(self.sample)),  # a tuple becomes a list: load_model maps it back
        }


class ToySpace(ExecutableSpace):
    def __init__(self, space: ModelSpace, model_format: ToyFormat) -> None:
        super().__init__(space, space.simplify())
        self.model_format = model_format

    def freeze(self, sample: Sample) -> ExecutableModel:
        self.validate(sample)
        sample = {label: mutable.canonical_value(sample[label]) for label, mutable in self._mutables.items()}
        return self.model_format.make_model(type(self.space), *self.space.init_arguments, sample)


class ToyFormat(ModelFormat):
    name = "toy"

    def build(self, space: nn.Module) -> ToySpace:
        assert isinstance(space, ModelSpace)
        return ToySpace(space, self)

    def make_model(self, space_class: type[ModelSpace], args: tuple, kwargs: dict, sample: Sample) -> ExecutableModel:
        return ToyModel(self.name, space_class, tuple(args), dict(kwargs), sample)

    def load_model(self, payload: dict[str, Any]) -> ExecutableModel:
        spec = payload["space"]
        space_class = resolve(spec["factory"])
        mutables = space_class(*spec["args"], **spec["kwargs"]).simplify()
        sample = {label: mutables[label].canonical_value(value) for label, value in payload["sample"].items()}
        return self.make_model(space_class, spec["args"], spec["kwargs"], sample)


class ToyCopyModel(ExecutableModel):
    """A frozen copy of the space object, as the raw format does it: it cannot ship payloads."""

    format_name = "toy-copy"

    def __init__(self, space: ModelSpace, sample: Sample) -> None:
        super().__init__(sample)
        self.space = space

    def build(self) -> nn.Module:
        return self.space.freeze(self.sample)


class ToyCopySpace(ToySpace):
    def freeze(self, sample: Sample) -> ExecutableModel:
        self.validate(sample)
        sample = {label: mutable.canonical_value(sample[label]) for label, mutable in self._mutables.items()}
        return ToyCopyModel(self.space, sample)  # type: ignore[arg-type]


class ToyCopyFormat(ToyFormat):
    name = "toy-copy"

    def build(self, space: nn.Module) -> ToySpace:
        assert isinstance(space, ModelSpace)
        return ToyCopySpace(space, self)


# --- broken formats, one fault each ------------------------------------------------------------------


class SameModuleModel(ToyModel):
    def build(self) -> nn.Module:
        if not hasattr(self, "_module"):
            self._module = super().build()
        return self._module


class SameModuleFormat(ToyFormat):
    """build() returns the same module every time."""

    name = "toy-same-module"

    def make_model(self, space_class, args, kwargs, sample):
        return SameModuleModel(self.name, space_class, tuple(args), dict(kwargs), sample)


class SetPayloadModel(ToyModel):
    def to_payload(self) -> dict[str, Any]:
        return {**super().to_payload(), "labels": set(self.sample)}


class SetPayloadFormat(ToyFormat):
    """The payload holds a set: not JSON."""

    name = "toy-set-payload"

    def make_model(self, space_class, args, kwargs, sample):
        return SetPayloadModel(self.name, space_class, tuple(args), dict(kwargs), sample)


class TuplePayloadModel(ToyModel):
    def to_payload(self) -> dict[str, Any]:
        payload = super().to_payload()
        payload["space"] = {**payload["space"], "args": tuple(payload["space"]["args"])}
        return payload


class TuplePayloadFormat(ToyFormat):
    """The payload holds a tuple: json.dumps works, but it comes back as a list."""

    name = "toy-tuple-payload"

    def make_model(self, space_class, args, kwargs, sample):
        return TuplePayloadModel(self.name, space_class, tuple(args), dict(kwargs), sample)


class LostSampleFormat(ToyFormat):
    """load_model() loses the sample."""

    name = "toy-lost-sample"

    def load_model(self, payload: dict[str, Any]) -> ExecutableModel:
        spec = payload["space"]
        return self.make_model(resolve(spec["factory"]), spec["args"], spec["kwargs"], {})


class UnvalidatedSpace(ToySpace):
    def freeze(self, sample: Sample) -> ExecutableModel:
        return self.model_format.make_model(type(self.space), *self.space.init_arguments, dict(sample))


class UnvalidatedFormat(ToyFormat):
    """freeze() accepts any sample."""

    name = "toy-unvalidated"

    def build(self, space: nn.Module) -> ToySpace:
        assert isinstance(space, ModelSpace)
        return UnvalidatedSpace(space, self)


class KeyErrorSpace(ToySpace):
    def freeze(self, sample: Sample) -> ExecutableModel:
        sample = {label: sample[label] for label in self._mutables}  # KeyError for a missing label
        self.validate(sample)
        return super().freeze(sample)


class KeyErrorFormat(ToyFormat):
    """freeze() raises KeyError, not a nascore error, for a missing label."""

    name = "toy-key-error"

    def build(self, space: nn.Module) -> ToySpace:
        assert isinstance(space, ModelSpace)
        return KeyErrorSpace(space, self)


class DropsUnknownSpace(ToySpace):
    def check_contains(self, sample: Sample):
        return super().check_contains({label: value for label, value in sample.items() if label in self._mutables})


class DropsUnknownFormat(ToyFormat):
    """A label the space does not have is dropped from the sample instead of refused."""

    name = "toy-drops-unknown"

    def build(self, space: nn.Module) -> ToySpace:
        assert isinstance(space, ModelSpace)
        return DropsUnknownSpace(space, self)


class OtherErrorSpace(ToySpace):
    def freeze(self, sample: Sample) -> ExecutableModel:
        unknown = set(sample) - set(self._mutables)
        if unknown:
            raise SearchSpaceError("the sample does not belong to the space")
        return super().freeze(sample)


class OtherErrorFormat(ToyFormat):
    """A label the space does not have is refused with an error that does not name it."""

    name = "toy-unnamed-unknown"

    def build(self, space: nn.Module) -> ToySpace:
        assert isinstance(space, ModelSpace)
        return OtherErrorSpace(space, self)


class WrappedModel(ToyModel):
    def build(self) -> nn.Module:
        return nn.Sequential(super().build())


class WrappedFormat(ToyFormat):
    """Models are wrapped in an nn.Sequential: parameter names differ from the other formats' ("0.inp.weight")."""

    name = "toy-wrapped"

    def make_model(self, space_class, args, kwargs, sample):
        return WrappedModel(self.name, space_class, tuple(args), dict(kwargs), sample)


class FlatOutputModel(ToyModel):
    def build(self) -> nn.Module:
        return nn.Sequential(super().build(), nn.Flatten(0))


class FlatOutputFormat(ToyFormat):
    """Models flatten their output: wrong output shape."""

    name = "toy-flat-output"

    def make_model(self, space_class, args, kwargs, sample):
        return FlatOutputModel(self.name, space_class, tuple(args), dict(kwargs), sample)


class ClaimsNoPayloadFormat(ToyFormat):
    """Ships payloads, but its suite says supports_payload = False."""

    name = "toy-claims-no-payload"


class UnregisteredFormat(ToyFormat):
    name = "toy-unregistered"


class MisnamedFormat(ToyFormat):
    """Registered as "toy-misnamed", but its name says "toy"."""


TOY_FORMATS: dict[str, type[ToyFormat]] = {
    model_format.name: model_format
    for model_format in (
        ToyFormat,
        ToyCopyFormat,
        SameModuleFormat,
        SetPayloadFormat,
        TuplePayloadFormat,
        LostSampleFormat,
        UnvalidatedFormat,
        KeyErrorFormat,
        DropsUnknownFormat,
        OtherErrorFormat,
        WrappedFormat,
        FlatOutputFormat,
        ClaimsNoPayloadFormat,
    )
}
TOY_FORMATS["toy-misnamed"] = MisnamedFormat


class ToyFormats:
    @staticmethod
    @hookimpl
    def nascore_register_formats(register: Any) -> None:
        for name, model_format in TOY_FORMATS.items():
            register(name, model_format)


def register_toy_formats(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A process-wide plugin host with the toy formats and no installed plugin, for one test."""
    monkeypatch.setenv("NASCORE_LOAD_PLUGINS", "")
    reset_plugins()
    get_plugins().register_plugin(ToyFormats, name="toy-formats", distribution="toy-formats")
    yield
    reset_plugins()


@pytest.fixture(autouse=True)
def toy_formats(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    yield from register_toy_formats(monkeypatch)


# --- running the suite's checks ----------------------------------------------------------------------

CHECKS = sorted(name for name in dir(FormatConformance) if name.startswith("test_"))


def suite_for(format_name: str, **attributes: Any) -> FormatConformance:
    """An instance of a FormatConformance subclass for ``format_name`` (reference: the toy format)."""
    attributes.setdefault("reference_formats", ("toy",))
    return type("ToySuite", (FormatConformance,), {"format_name": format_name, **attributes})()


def run_check(
    suite: FormatConformance, check: str, space_name: str, make_format: Callable[[], ModelFormat] | None = None
) -> None:
    """Call the check as pytest would, with its fixture values."""
    if make_format is None:
        make_format = get_plugins().formats.get(suite.format_name)
    method = getattr(suite, check)
    arguments = {"make_format": make_format, "space_name": space_name}
    method(**{name: arguments[name] for name in inspect.signature(method).parameters})


def failure(format_name: str, check: str, space_name: str = "mlp", **attributes: Any) -> str:
    """The message of the check's failure for the format (the check must fail)."""
    suite = suite_for(format_name, **attributes)
    with pytest.raises(AssertionError) as info:
        run_check(suite, check, space_name)
    message = str(info.value)
    assert message.startswith(f"format {format_name!r}"), f"the message must name the format first: {message}"
    return message


def passes(format_name: str, **attributes: Any) -> None:
    """Every check passes for the format, on every space."""
    suite = suite_for(format_name, **attributes)
    run_check(suite, "test_the_format_is_registered_under_its_name", "mlp")
    for space_name in suite.spaces():
        for check in CHECKS:
            if check != "test_the_format_is_registered_under_its_name":
                run_check(suite, check, space_name)


# --- the tests -----------------------------------------------------------------------------------------


def test_the_suite_has_the_checks_of_the_contract():
    assert CHECKS == [
        "test_an_unknown_label_is_refused_naming_it",
        "test_build_gives_an_executable_space_with_every_decision_of_the_space",
        "test_build_returns_a_new_module_each_call",
        "test_built_modules_run_and_give_the_expected_output_shape",
        "test_freeze_gives_a_model_with_the_sample",
        "test_invalid_samples_are_refused_naming_the_label",
        "test_payload_round_trip",
        "test_same_parameters_as_the_reference_formats",
        "test_shipping_round_trip",
        "test_the_format_is_registered_under_its_name",
    ]
    assert set(SPACES) == {"mlp", "primitives", "tuples"}


def test_a_correct_format_passes_every_check_on_every_space():
    passes("toy", reference_formats=("toy-copy",))


def test_a_format_that_cannot_ship_payloads_passes_when_it_says_so():
    passes("toy-copy", supports_payload=False)


def test_the_same_module_twice_is_reported():
    message = failure("toy-same-module", "test_build_returns_a_new_module_each_call")
    assert "format 'toy-same-module' on space 'mlp': freeze({'mlp_width': 4, 'mlp_act': 'relu'}).build() " in message
    assert "returned the same module twice; build() must return a new nn.Module each call" in message


def test_a_payload_that_is_not_json_is_reported():
    message = failure("toy-set-payload", "test_payload_round_trip")
    assert "to_payload() is not JSON-serializable plain data: payload['labels'] is a set" in message
    message = failure("toy-tuple-payload", "test_payload_round_trip")
    assert "payload['space']['args'] is the tuple (), which comes back from JSON as a list" in message
    message = failure("toy-set-payload", "test_shipping_round_trip")
    assert "ship_model(freeze({'mlp_width': 4, 'mlp_act': 'relu'})) fell back to 'cloudpickle' instead of shipping" in message


def test_a_lost_sample_is_reported():
    message = failure("toy-lost-sample", "test_payload_round_trip")
    assert "load_model(payload) rebuilt a model with the sample {}, not {'mlp_width': 4, 'mlp_act': 'relu'}" in message
    message = failure("toy-lost-sample", "test_shipping_round_trip")
    assert "load_shipped_model(ship_model(model)) (payload) rebuilt a model with the sample {}" in message


def test_an_invalid_sample_that_is_accepted_is_reported():
    message = failure("toy-unvalidated", "test_invalid_samples_are_refused_naming_the_label")
    assert "freeze() accepted an invalid sample without the label 'mlp_width'" in message
    assert "it must refuse it with a nascore error naming the label 'mlp_width'" in message


def test_an_invalid_sample_refused_with_a_non_nascore_error_is_reported():
    message = failure("toy-key-error", "test_invalid_samples_are_refused_naming_the_label")
    assert "freeze() of a sample without the label 'mlp_width' raised KeyError: 'mlp_width'" in message
    assert "it must raise a nascore error (nascore.errors.SampleValidationError)" in message


def test_an_unknown_label_that_is_dropped_is_reported():
    message = failure("toy-drops-unknown", "test_an_unknown_label_is_refused_naming_it")
    assert "freeze() accepted a sample with the unknown label '__nascore_conformance_unknown_label__'" in message
    assert "must be refused with a nascore error naming it, not dropped" in message


def test_an_unknown_label_refused_without_naming_it_is_reported():
    message = failure("toy-unnamed-unknown", "test_an_unknown_label_is_refused_naming_it")
    assert "freeze() of a sample with the unknown label '__nascore_conformance_unknown_label__' raised " in message
    assert "SearchSpaceError: the sample does not belong to the space; the error must name that label" in message


def test_a_correct_format_refuses_an_unknown_label_naming_the_closest_one():
    space = get_plugins().formats.get("toy")().build(SPACES["mlp"].make_space())
    sample = {**space.default_sample(), "mlp_widht": 4}
    with pytest.raises(UnknownLabelError, match=r"'mlp_widht' [(]did you mean 'mlp_width'[?][)]") as info:
        space.freeze(sample)
    assert info.value.label == "mlp_widht" and info.value.expected == ["mlp_width", "mlp_act"]


def test_different_parameters_than_the_reference_format_are_reported():
    message = failure("toy-wrapped", "test_same_parameters_as_the_reference_formats")
    assert "the model of {'mlp_width': 4, 'mlp_act': 'relu'} and the 'toy' model must have the same parameter names" in message
    assert "only the model of {'mlp_width': 4, 'mlp_act': 'relu'} has [0.inp.bias, 0.inp.weight" in message
    assert "only the 'toy' model has [inp.bias, inp.weight" in message


def test_a_wrong_output_shape_is_reported():
    message = failure("toy-flat-output", "test_built_modules_run_and_give_the_expected_output_shape")
    assert "returned an output of shape (6,) on the example input; expected (2, 3)" in message


def test_a_payload_when_the_suite_expects_none_is_reported():
    message = failure("toy-claims-no-payload", "test_payload_round_trip", supports_payload=False)
    assert "supports_payload is False but freeze({'mlp_width': 4, 'mlp_act': 'relu'}).to_payload() returned" in message
    assert "set supports_payload = True" in message


def test_an_unregistered_format_is_reported():
    suite = suite_for("toy-unregistered")
    with pytest.raises(AssertionError, match="format 'toy-unregistered': no format is registered under this name") as info:
        run_check(suite, "test_the_format_is_registered_under_its_name", "mlp", make_format=UnregisteredFormat)
    assert "registered: toy, toy-claims-no-payload," in str(info.value)


def test_a_format_registered_under_another_name_is_reported():
    message = failure("toy-misnamed", "test_the_format_is_registered_under_its_name")
    assert "MisnamedFormat.name is 'toy'; it must be the name the format is registered under" in message
    suite = suite_for("toy-copy")
    with pytest.raises(AssertionError, match="make_format[(][)] returned a ToyFormat, not an instance of the registered"):
        run_check(suite, "test_the_format_is_registered_under_its_name", "mlp", make_format=ToyFormat)


def test_a_missing_reference_format_is_reported():
    message = failure("toy", "test_same_parameters_as_the_reference_formats", reference_formats=("simplified",))
    assert "the reference formats ['simplified'] are not registered" in message
    assert "install the distribution that provides them, or change reference_formats" in message


def test_a_subclass_without_format_name_is_told_what_to_set(pytester: pytest.Pytester):
    pytester.makepyfile(
        """
        from nascore.testing.formats import FormatConformance

        class TestNothing(FormatConformance):
            pass
        """
    )
    result = pytester.runpytest("-q", "-k", "registered", "-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*a FormatConformance subclass must set format_name*"])


def test_pytest_collects_the_suite_per_space_and_reports_the_failures(pytester: pytest.Pytester):
    """Subclasses in a test module are collected, parametrized by space, and fail with the suite's messages."""
    pytester.makepyfile(
        f"""
        import importlib.util

        import pytest

        from nascore.testing.formats import FormatConformance, SPACES

        spec = importlib.util.spec_from_file_location("format_suite_toys", {str(Path(__file__))!r})
        toys = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(toys)


        @pytest.fixture(autouse=True)
        def toy_formats(monkeypatch):
            yield from toys.register_toy_formats(monkeypatch)


        class TestToy(FormatConformance):
            format_name = "toy"
            reference_formats = ("toy-copy",)


        class TestSameModule(FormatConformance):
            format_name = "toy-same-module"
            reference_formats = ("toy",)

            def spaces(self):
                return {{"mlp": SPACES["mlp"]}}
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "-rf")
    # 10 checks, 9 of them per space: 28 for TestToy on three spaces and 10 for TestSameModule on one.
    result.assert_outcomes(passed=37, failed=1)
    result.stdout.fnmatch_lines(
        [
            "E * AssertionError: format 'toy-same-module' on space 'mlp': freeze(*).build() returned the same module "
            "twice; build() must return a new nn.Module each call",
            "FAILED *TestSameModule::test_build_returns_a_new_module_each_call[[]mlp[]]*",
        ]
    )
