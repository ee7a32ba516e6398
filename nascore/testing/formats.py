"""A conformance suite for model formats, in the style of Optuna's ``SamplerTestCase``.

A format author subclasses :class:`FormatConformance` in a test module and names the format as
it is registered (``nascore_register_formats``)::

    from nascore.testing.formats import FormatConformance

    class TestMyFormat(FormatConformance):
        format_name = "my-format"

The format is made from its registration; override the ``make_format`` fixture (a factory with no
arguments that returns a new :class:`~nascore.format.ModelFormat`) to pass it arguments. pytest
then checks, on every space of :meth:`FormatConformance.spaces` (by default a small MLP and a
space with every primitive: ``LayerChoice``, ``MutableConv2d``/``MutableLinear`` with a width
choice, ``Repeat``, ``Cell`` and ``InputChoice``, and a space whose choices have tuple candidates)
and on deterministic samples (the whole grid of a small space, else the default sample and seeded
random samples), that:

* the format is registered under its name and is a :class:`~nascore.format.ModelFormat`;
* ``build(space)`` gives an :class:`~nascore.format.ExecutableSpace` whose ``simplify()`` holds
  every decision of the space; ``freeze(sample)`` gives an executable model whose ``sample`` is
  the sample; an invalid sample (a label missing, a value that is not a candidate) is refused
  with a nascore error naming the label; so is a sample with a label the space does not have (a
  typo), the error naming that label; ``contains()`` agrees with ``freeze()``;
* ``model.build()`` returns a new ``nn.Module`` each call, which runs on the space's example input
  and gives an output of the expected shape;
* ``to_payload()`` is plain JSON naming the format and ``load_model(payload)`` rebuilds the same
  model: same sample (a tuple candidate comes back as a tuple, not as the list JSON makes of it),
  same parameter names and shapes and, with the weights copied, the same output; the same through
  :func:`~nascore.serialization.ship_model` and :func:`~nascore.serialization.load_shipped_model`,
  which must ship the payload, not a pickle.
  A format that cannot ship payloads sets :attr:`~FormatConformance.supports_payload` to
  ``False``: then ``to_payload()`` must raise a clear error naming the format, and shipping falls
  back to cloudpickle, which must still give the same model;
* the same sample gives models with the same parameter names, shapes and count, and the same
  output with the same weights, in every format of :attr:`~FormatConformance.reference_formats`
  (``simplified`` by default, from ``nascore-formats``; ``()`` checks against no other format).

Spaces of your own should be defined in an importable module (not in ``__main__`` or a function) with
JSON init arguments, as for real experiments, so that formats can ship them by reference.

Class attributes tune the suite: :attr:`~FormatConformance.max_samples` and
:attr:`~FormatConformance.seed`. A format that supports fewer primitives overrides
:meth:`~FormatConformance.spaces` (start from :data:`SPACES`, or add its own :class:`SpaceCase`).
The spaces are parametrized by the class's ``pytest_generate_tests``: a subclass that defines its
own must call ``super().pytest_generate_tests(metafunc)``.

Every failing check says what is wrong, beginning with ``format '<name>'``.
"""

from __future__ import annotations

import functools
import json
import math
import random
from collections.abc import Callable, Iterable
from typing import Any

import attrs
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import nascore
from nascore.errors import NascoreError, ShippingError
from nascore.format import ExecutableModel, ExecutableSpace, ModelFormat
from nascore.nn import (
    Cell,
    InputChoice,
    LayerChoice,
    ModelSpace,
    MutableConv2d,
    MutableLinear,
    MutableMaxPool2d,
    Repeat,
)
from nascore.plugin import create_format, get_plugins
from nascore.serialization import is_json_data, load_shipped_model, ship_model
from nascore.space import LabelledMutable, Mutable, Sample, sample_key

__all__ = ["FormatConformance", "SpaceCase", "SPACES", "MLPSpace", "PrimitivesSpace", "TupleSpace"]

#: Batch size of the example inputs.
BATCH = 2
#: A label no space has, added to a sample to check that formats refuse it.
UNKNOWN_LABEL = "__nascore_conformance_unknown_label__"
_NOT_A_CANDIDATE = "__nascore_conformance_not_a_candidate__"
_NONE_FOUND = object()


# --- the default spaces ---------------------------------------------------------------------------


class MLPSpace(ModelSpace):
    """A small MLP: a ``MutableLinear`` with a width choice and a ``LayerChoice`` of activations."""

    def __init__(self, in_features: int = 6, classes: int = 3) -> None:
        super().__init__()
        width = nascore.choice("mlp_width", [4, 8])
        self.inp = MutableLinear(in_features, width)
        self.act = LayerChoice({"relu": nn.ReLU(), "tanh": nn.Tanh()}, label="mlp_act")
        self.out = MutableLinear(width, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.act(self.inp(x)))


class PrimitivesSpace(ModelSpace):
    """Every search primitive once: a width choice in ``MutableConv2d`` and ``MutableLinear`` (as an
    expression), a ``LayerChoice``, a ``Repeat``, a ``Cell`` and an ``InputChoice`` choosing two inputs."""

    def __init__(self, in_channels: int = 3, classes: int = 3) -> None:
        super().__init__()
        width = nascore.choice("width", [4, 8])
        self.stem = MutableConv2d(in_channels, width, 3, padding=1)
        self.op = LayerChoice(
            {
                "conv3": MutableConv2d(width, width, 3, padding=1),
                "conv5": MutableConv2d(width, width, 5, padding=2),
                "pool": nn.MaxPool2d(3, 1, 1),
            },
            label="op",
        )
        self.blocks = Repeat(lambda i: nn.Sequential(MutableConv2d(width, width, 1), nn.ReLU()), (1, 2), label="depth")
        self.cell = Cell(
            {"conv": lambda: MutableConv2d(width, width, 3, padding=1), "pool": lambda: nn.AvgPool2d(3, 1, 1)},
            num_nodes=2,
            num_predecessors=1,
            merge_op="all",
            label="cell",
        )
        self.skip = InputChoice(3, n_chosen=2, reduction="sum", label="skip")
        self.head = MutableLinear(width * 2, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        y = self.blocks(self.op(x))
        z = self.skip([self.cell(y), torch.cat([y, x], dim=1), torch.cat([x, y], dim=1)])
        return self.head(torch.flatten(F.adaptive_avg_pool2d(z, 1), 1))


class TupleSpace(ModelSpace):
    """Choices whose candidates are tuples, which JSON turns into lists: the kernel size of a
    ``MutableConv2d`` and the window of a ``MutableMaxPool2d``. A payload must give them back as tuples."""

    def __init__(self, in_channels: int = 3, classes: int = 3) -> None:
        super().__init__()
        self.conv = MutableConv2d(in_channels, 4, nascore.choice("kernel_size", [(1, 3), (3, 1), (3, 3)]), padding="same")
        self.pool = MutableMaxPool2d(nascore.choice("pool_window", [(2, 2), (1, 2)]))
        self.head = MutableLinear(4, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(F.relu(self.conv(x)))
        return self.head(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def _mlp_input() -> tuple[torch.Tensor, ...]:
    return (torch.randn(BATCH, 6, generator=torch.Generator().manual_seed(0)),)


def _image_input() -> tuple[torch.Tensor, ...]:
    return (torch.randn(BATCH, 3, 8, 8, generator=torch.Generator().manual_seed(0)),)


OutputShape = Any
"""The shape of a model's output: a tuple of ints for a tensor, a tuple or list of shapes for a tuple or
list of tensors, a dict of shapes for a dict; or a function of the sample that returns one."""


@attrs.frozen
class SpaceCase:
    """A model space to check a format on: how to make it, an example input and the output's shape.

    :ivar make_space: makes a new instance of the space (formats may keep or change what they build).
    :ivar make_inputs: the example input, a tuple of positional arguments of ``forward`` (deterministic).
    :ivar output_shape: the shape of the output (see :data:`OutputShape`), or a function
        ``(sample) -> shape``; ``None`` checks only that the model runs.
    """

    make_space: Callable[[], nn.Module]
    make_inputs: Callable[[], tuple[Any, ...]]
    output_shape: OutputShape | Callable[[Sample], OutputShape]

    def expected_shape(self, sample: Sample) -> OutputShape:
        return self.output_shape(sample) if callable(self.output_shape) else self.output_shape


#: The spaces every format is checked on by default.
SPACES: dict[str, SpaceCase] = {
    "mlp": SpaceCase(MLPSpace, _mlp_input, (BATCH, 3)),
    "primitives": SpaceCase(PrimitivesSpace, _image_input, (BATCH, 3)),
    "tuples": SpaceCase(TupleSpace, _image_input, (BATCH, 3)),
}


# --- helpers ----------------------------------------------------------------------------------------


def _shape_of(output: Any) -> Any:
    if isinstance(output, torch.Tensor):
        return tuple(output.shape)
    if isinstance(output, (tuple, list)):
        return type(output)(_shape_of(item) for item in output)
    if isinstance(output, dict):
        return {key: _shape_of(value) for key, value in output.items()}
    return type(output).__name__


def _normalized_shape(shape: Any) -> Any:
    if isinstance(shape, torch.Size):
        return tuple(shape)
    if isinstance(shape, (tuple, list)) and all(isinstance(d, int) for d in shape):
        return tuple(shape)
    if isinstance(shape, (tuple, list)):
        return type(shape)(_normalized_shape(item) for item in shape)
    if isinstance(shape, dict):
        return {key: _normalized_shape(value) for key, value in shape.items()}
    return shape


def _tensors(output: Any) -> list[torch.Tensor]:
    if isinstance(output, torch.Tensor):
        return [output]
    if isinstance(output, (tuple, list)):
        return [t for item in output for t in _tensors(item)]
    if isinstance(output, dict):
        return [t for key in sorted(output, key=repr) for t in _tensors(output[key])]
    return []


def _largest_difference(first: Any, second: Any) -> float | None:
    """The largest absolute difference between two outputs, or ``None`` if they are not alike at all."""
    a, b = _tensors(first), _tensors(second)
    if _shape_of(first) != _shape_of(second) or len(a) != len(b):
        return None
    worst = 0.0
    for x, y in zip(a, b):
        if x.numel():
            worst = max(worst, float((x.double() - y.double()).abs().max()))
    return worst


def _state_shapes(module: nn.Module) -> dict[str, tuple[int, ...]]:
    return {name: tuple(value.shape) for name, value in module.state_dict().items()}


def _parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _shape_difference(first: dict[str, tuple[int, ...]], second: dict[str, tuple[int, ...]], names: tuple[str, str]) -> str:
    """What differs between two ``{name: shape}`` dicts, in words (``""`` when nothing does)."""
    parts = []
    only_first = sorted(set(first) - set(second))
    only_second = sorted(set(second) - set(first))
    if only_first:
        parts.append(f"only {names[0]} has {_short_list(only_first)}")
    if only_second:
        parts.append(f"only {names[1]} has {_short_list(only_second)}")
    shapes = [f"{n}: {first[n]} vs {second[n]}" for n in sorted(set(first) & set(second)) if first[n] != second[n]]
    if shapes:
        parts.append(f"shapes differ ({names[0]} vs {names[1]}): {_short_list(shapes)}")
    return "; ".join(parts)


def _short_list(items: list[str], limit: int = 6) -> str:
    shown = ", ".join(items[:limit])
    return f"[{shown}{f', ... ({len(items)} in all)' if len(items) > limit else ''}]"


def _run(module: nn.Module, inputs: tuple[Any, ...]) -> Any:
    module.eval()
    with torch.no_grad():
        return module(*inputs)


def _invalid_values(mutable: LabelledMutable) -> Iterable[Any]:
    """Values to try as not-a-candidate: a number past the largest candidate or the upper bound first."""
    values = getattr(mutable, "values", None)
    if isinstance(values, list) and values and all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        yield max(values) + 1
    high = getattr(mutable, "high", None)
    if isinstance(high, (int, float)) and not isinstance(high, bool) and math.isfinite(high):
        yield high + 1
    yield _NOT_A_CANDIDATE
    yield [_NOT_A_CANDIDATE]


def _invalid_value(mutable: LabelledMutable) -> Any:
    """A value ``mutable`` refuses, or :data:`_NONE_FOUND`."""
    for value in _invalid_values(mutable):
        try:
            if mutable.check_value(value) is not None:
                return value
        except Exception:  # a decision kind that cannot even check this value: try the next one
            continue
    return _NONE_FOUND


def _names_label(exc: BaseException, label: str) -> bool:
    return getattr(exc, "label", None) == label or label in str(exc)


def _load_payload(make_format: Callable[[], ModelFormat], text: str) -> ExecutableModel:
    return make_format().load_model(json.loads(text))


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _short_repr(value: Any, limit: int = 200) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _json_change(value: Any, path: str) -> str | None:
    """Where ``value`` stops being plain JSON data (what a JSON round trip would change), in words."""
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"{path} has the key {key!r}, which JSON turns into a string"
            found = _json_change(item, f"{path}[{key!r}]")
            if found:
                return found
        return None if type(value) is dict else f"{path} is a {type(value).__name__}, which comes back as a dict"
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            found = _json_change(item, f"{path}[{index}]")
            if found:
                return found
        if type(value) is list:
            return None
        return f"{path} is the {type(value).__name__} {_short_repr(value, 80)}, which comes back from JSON as a list"
    if value is None or type(value) in (str, bool, int):
        return None
    if type(value) is float:
        return None if math.isfinite(value) else f"{path} is {value!r}, which is not standard JSON"
    return f"{path} is a {type(value).__name__} ({_short_repr(value, 80)}), which is not JSON data"


# --- the suite --------------------------------------------------------------------------------------


class FormatConformance:
    """Subclass with :attr:`format_name`; see the module documentation."""

    #: The name the format is registered under (``nascore_register_formats``).
    format_name: str = ""
    #: Whether models ship as JSON payloads (``to_payload`` / ``load_model``).
    supports_payload: bool = True
    #: Registered formats whose models must have the same parameters as this format's (this format
    #: itself is left out). Their distribution must be installed in the test environment.
    reference_formats: tuple[str, ...] = ("simplified",)
    #: Samples per space and test: a space with at most this many samples is checked on all of them.
    max_samples: int = 8
    #: Seed of the random samples.
    seed: int = 0

    @pytest.fixture
    def make_format(self) -> Callable[[], ModelFormat]:
        """A factory with no arguments that returns a new instance of the format under test."""
        if not self.format_name:
            raise NotImplementedError(
                f"{type(self).__name__}: a FormatConformance subclass must set format_name to the name its format "
                "is registered under, e.g. format_name = 'my-format'"
            )
        name = self.format_name
        return lambda: create_format(name)

    def spaces(self) -> dict[str, SpaceCase]:
        """The spaces to check, by name; override to drop the ones the format does not support or add others."""
        return dict(SPACES)

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        if "space_name" in metafunc.fixturenames:
            names = list(self.spaces())
            metafunc.parametrize("space_name", names, ids=names)

    # --- helpers --------------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.format_name or type(self).__name__

    def fail(self, message: str, space_name: str | None = None) -> AssertionError:
        """An ``AssertionError`` whose message starts with ``format '<name>'`` (and the space)."""
        where = f"format {self.name!r}" + (f" on space {space_name!r}" if space_name else "")
        return AssertionError(f"{where}: {message}")

    def call(self, what: str, fn: Callable[[], Any], space_name: str | None = None) -> Any:
        """``fn()``; an exception it raises becomes a failure saying that ``what`` raised it."""
        try:
            return fn()
        except Exception as exc:
            raise self.fail(f"{what} raised {_error(exc)}", space_name) from exc

    def build_space(self, model_format: ModelFormat, space_name: str, space: nn.Module | None = None) -> ExecutableSpace:
        """The executable space of ``model_format`` for ``space`` (default: a new space ``space_name``)."""
        if space is None:
            space = self.call(f"making the space {space_name!r}", self.spaces()[space_name].make_space, space_name)
        built = self.call(
            f"build({type(space).__name__}(...)) (if the format does not support this space, leave it out by "
            "overriding spaces())",
            lambda: model_format.build(space),
            space_name,
        )
        if not isinstance(built, ExecutableSpace):
            raise self.fail(
                f"build() returned a {type(built).__name__}; it must return a nascore.format.ExecutableSpace",
                space_name,
            )
        return built

    def samples(self, space: Mutable) -> list[Sample]:
        """Deterministic samples of ``space``: all of them if there are at most :attr:`max_samples`,
        else the default sample and seeded random ones (each once)."""
        mutables = space.simplify()
        if math.prod(m.size for m in mutables.values()) <= self.max_samples:
            return list(space.grid_samples())
        rng = random.Random(self.seed)
        chosen = [space.default_sample()]
        seen = {sample_key(chosen[0])}
        for _ in range(100 * self.max_samples):
            if len(chosen) >= self.max_samples:
                break
            sample = space.random_sample(random_state=rng)
            if sample_key(sample) not in seen:
                seen.add(sample_key(sample))
                chosen.append(sample)
        return chosen

    def freeze(self, space: ExecutableSpace, sample: Sample, space_name: str) -> ExecutableModel:
        model = self.call(f"freeze({sample!r}) of a valid sample", lambda: space.freeze(sample), space_name)
        if not isinstance(model, ExecutableModel):
            raise self.fail(
                f"freeze({sample!r}) returned a {type(model).__name__}; it must return a nascore.format.ExecutableModel",
                space_name,
            )
        return model

    def build_module(self, model: ExecutableModel, space_name: str, what: str = "") -> nn.Module:
        what = what or f"freeze({model.sample!r}).build()"
        module = self.call(what, model.build, space_name)
        if not isinstance(module, nn.Module):
            raise self.fail(f"{what} returned a {type(module).__name__}; it must return an nn.Module", space_name)
        return module

    def example_inputs(self, space_name: str) -> tuple[Any, ...]:
        inputs = self.call(
            f"making the example input of {space_name!r}", self.spaces()[space_name].make_inputs, space_name
        )
        return tuple(inputs)

    def forward(self, module: nn.Module, space_name: str, what: str, inputs: tuple[Any, ...] | None = None) -> Any:
        """``module``'s output (in eval mode, without gradients) on ``inputs`` (default: the example input)."""
        if inputs is None:
            inputs = self.example_inputs(space_name)
        return self.call(f"running {what} on the example input", lambda: _run(module, inputs), space_name)

    def check_same_model(
        self, module: nn.Module, reference: nn.Module, space_name: str, what: str, reference_what: str
    ) -> None:
        """Same state_dict names and shapes, same parameter count and, with ``reference``'s weights, the same output."""
        difference = _shape_difference(_state_shapes(module), _state_shapes(reference), (what, reference_what))
        if difference:
            raise self.fail(
                f"{what} and {reference_what} must have the same parameter names and shapes, but {difference}",
                space_name,
            )
        count, reference_count = _parameter_count(module), _parameter_count(reference)
        if count != reference_count:
            raise self.fail(
                f"{what} has {count} parameters and {reference_what} {reference_count}; they must be the same",
                space_name,
            )
        self.call(
            f"loading the state_dict of {reference_what} into {what}",
            lambda: module.load_state_dict(reference.state_dict()),
            space_name,
        )
        inputs = self.example_inputs(space_name)  # once: an example input may be random
        expected = self.forward(reference, space_name, reference_what, inputs)
        actual = self.forward(module, space_name, what, inputs)
        difference_value = _largest_difference(actual, expected)
        if difference_value is None:
            raise self.fail(
                f"{what} returns {_shape_of(actual)} and {reference_what} {_shape_of(expected)} on the example input; "
                "they must return the same",
                space_name,
            )
        if difference_value > 1e-5:
            raise self.fail(
                f"with the same weights, {what} and {reference_what} give different outputs on the example input "
                f"(largest difference {difference_value:.3g}); they must compute the same function",
                space_name,
            )

    # --- the checks -----------------------------------------------------------------------------

    def test_the_format_is_registered_under_its_name(self, make_format: Callable[[], ModelFormat]) -> None:
        formats = get_plugins().formats
        if self.format_name not in formats:
            raise self.fail(
                f"no format is registered under this name (registered: {', '.join(formats.names()) or 'none'}); "
                "register it in a nascore_register_formats hook with register(name, FormatClass)"
            )
        registered = formats.get(self.format_name)
        if not (isinstance(registered, type) and issubclass(registered, ModelFormat)):
            raise self.fail(
                f"the registered object is {registered!r}, not a subclass of nascore.format.ModelFormat; "
                "register the format class"
            )
        model_format = make_format()
        if not isinstance(model_format, registered):
            raise self.fail(
                f"make_format() returned a {type(model_format).__name__}, not an instance of the registered class "
                f"{registered.__name__}"
            )
        if model_format.name != self.format_name:
            raise self.fail(
                f"{type(model_format).__name__}.name is {model_format.name!r}; it must be the name the format is "
                "registered under"
            )

    def test_build_gives_an_executable_space_with_every_decision_of_the_space(
        self, make_format: Callable[[], ModelFormat], space_name: str
    ) -> None:
        space = self.call(f"making the space {space_name!r}", self.spaces()[space_name].make_space, space_name)
        expected = space.simplify() if isinstance(space, Mutable) else {}
        built = self.build_space(make_format(), space_name, space)
        decisions = self.call("simplify() of the executable space", built.simplify, space_name)
        missing = sorted(set(expected) - set(decisions))
        if missing:
            raise self.fail(
                f"simplify() of the executable space lacks the labels {missing} of the space "
                f"(it has {sorted(decisions)}); it must hold every decision of the space",
                space_name,
            )
        for label, mutable in decisions.items():
            if not isinstance(mutable, LabelledMutable) or mutable.label != label:
                raise self.fail(
                    f"simplify() maps {label!r} to {mutable!r}; it must map each label to the LabelledMutable "
                    "with that label",
                    space_name,
                )
            if label in expected and not mutable.equals(expected[label]):
                raise self.fail(
                    f"simplify() has {mutable!r} for {label!r} but the space has {expected[label]!r}; a format "
                    "must keep the space's decisions as they are",
                    space_name,
                )

    def test_freeze_gives_a_model_with_the_sample(
        self, make_format: Callable[[], ModelFormat], space_name: str
    ) -> None:
        space = self.build_space(make_format(), space_name)
        for sample in self.samples(space):
            model = self.freeze(space, sample, space_name)
            if model.sample != sample:
                raise self.fail(
                    f"freeze({sample!r}) gave a model whose sample is {model.sample!r}; the model's sample must be "
                    "the sample it was frozen with",
                    space_name,
                )
            if not space.contains(sample):
                raise self.fail(
                    f"contains({sample!r}) is False but freeze() accepts it: {space.check_contains(sample)}; "
                    "contains() must agree with freeze()",
                    space_name,
                )

    def test_invalid_samples_are_refused_naming_the_label(
        self, make_format: Callable[[], ModelFormat], space_name: str
    ) -> None:
        space = self.build_space(make_format(), space_name)
        valid = self.samples(space)[0]
        cases: list[tuple[str, str, Sample]] = []
        for label, mutable in space.simplify().items():
            missing = {k: v for k, v in valid.items() if k != label}
            cases.append((label, f"without the label {label!r}", missing))
            value = _invalid_value(mutable)
            if value is not _NONE_FOUND:
                cases.append((label, f"with {label!r} = {value!r}, not a candidate", {**valid, label: value}))
        for label, how, sample in cases:
            try:
                model = space.freeze(sample)
            except NascoreError as exc:
                if not _names_label(exc, label):
                    raise self.fail(
                        f"freeze() of a sample {how} raised {_error(exc)}; the error must name the label {label!r}",
                        space_name,
                    ) from exc
            except Exception as exc:
                raise self.fail(
                    f"freeze() of a sample {how} raised {_error(exc)}; it must raise a nascore error "
                    f"(nascore.errors.SampleValidationError) naming the label {label!r}",
                    space_name,
                ) from exc
            else:
                raise self.fail(
                    f"freeze() accepted an invalid sample {how} and returned {model!r}; it must refuse it with a "
                    f"nascore error naming the label {label!r} (call self.validate(sample) in freeze)",
                    space_name,
                )
            if space.contains(sample):
                raise self.fail(
                    f"contains() is True for a sample {how} that freeze() refuses; contains() must agree with freeze()",
                    space_name,
                )
            error = space.check_contains(sample)
            if error is None or not _names_label(error, label):
                raise self.fail(
                    f"check_contains() of a sample {how} returned {error!r}; it must return an error naming "
                    f"the label {label!r}",
                    space_name,
                )

    def test_an_unknown_label_is_refused_naming_it(
        self, make_format: Callable[[], ModelFormat], space_name: str
    ) -> None:
        space = self.build_space(make_format(), space_name)
        valid = self.samples(space)[0]
        sample = {**valid, UNKNOWN_LABEL: 1}
        how = f"a sample with the unknown label {UNKNOWN_LABEL!r}"
        try:
            model = space.freeze(sample)
        except NascoreError as exc:
            if not _names_label(exc, UNKNOWN_LABEL):
                raise self.fail(
                    f"freeze() of {how} raised {_error(exc)}; the error must name that label",
                    space_name,
                ) from exc
        except Exception as exc:
            raise self.fail(
                f"freeze() of {how} raised {_error(exc)}; it must raise a nascore error "
                "(nascore.errors.UnknownLabelError) naming the label",
                space_name,
            ) from exc
        else:
            raise self.fail(
                f"freeze() accepted {how} and returned {model!r}; a label the space does not have (a typo) must "
                "be refused with a nascore error naming it, not dropped (call self.validate(sample) in freeze)",
                space_name,
            )
        if space.contains(sample):
            raise self.fail(
                f"contains() is True for {how} that freeze() refuses; contains() must agree with freeze()",
                space_name,
            )
        error = space.check_contains(sample)
        if error is None or not _names_label(error, UNKNOWN_LABEL):
            raise self.fail(
                f"check_contains() of {how} returned {error!r}; it must return an error naming that label",
                space_name,
            )

    def test_build_returns_a_new_module_each_call(
        self, make_format: Callable[[], ModelFormat], space_name: str
    ) -> None:
        space = self.build_space(make_format(), space_name)
        for sample in self.samples(space):
            model = self.freeze(space, sample, space_name)
            first = self.build_module(model, space_name)
            second = self.build_module(model, space_name)
            what = f"freeze({sample!r}).build()"
            if first is second:
                raise self.fail(
                    f"{what} returned the same module twice; build() must return a new nn.Module each call",
                    space_name,
                )
            storage = {p.data_ptr(): n for n, p in first.named_parameters() if p.numel()}
            shared = sorted(storage[p.data_ptr()] for p in second.parameters() if p.numel() and p.data_ptr() in storage)
            if shared:
                raise self.fail(
                    f"two modules from {what} share the parameters {_short_list(shared)}; build() must return a new "
                    "nn.Module each call, with its own parameters",
                    space_name,
                )

    def test_built_modules_run_and_give_the_expected_output_shape(
        self, make_format: Callable[[], ModelFormat], space_name: str
    ) -> None:
        case = self.spaces()[space_name]
        space = self.build_space(make_format(), space_name)
        for sample in self.samples(space):
            what = f"freeze({sample!r}).build()"
            output = self.forward(self.build_module(self.freeze(space, sample, space_name), space_name), space_name, what)
            expected = _normalized_shape(case.expected_shape(sample))
            if expected is not None and _shape_of(output) != expected:
                raise self.fail(
                    f"{what} returned an output of shape {_shape_of(output)} on the example input; "
                    f"expected {expected}",
                    space_name,
                )

    def test_payload_round_trip(self, make_format: Callable[[], ModelFormat], space_name: str) -> None:
        space = self.build_space(make_format(), space_name)
        for sample in self.samples(space):
            model = self.freeze(space, sample, space_name)
            what = f"freeze({sample!r}).to_payload()"
            if not self.supports_payload:
                self._check_no_payload(model, what, space_name)
                continue
            payload = self.call(
                f"{what} (if the format cannot ship payloads, set supports_payload = False)", model.to_payload, space_name
            )
            change = _json_change(payload, "payload")
            if change is not None or not is_json_data(payload):
                raise self.fail(
                    f"{what} is not JSON-serializable plain data: {change or 'it changes through JSON'}; a payload "
                    "must be dicts with string keys, lists, strings, numbers, booleans and None only, which come "
                    "back from JSON unchanged (otherwise ship_model pickles the model instead)",
                    space_name,
                )
            text = json.dumps(payload)
            if not isinstance(payload, dict) or payload.get("format") != self.format_name:
                found = payload.get("format") if isinstance(payload, dict) else payload
                raise self.fail(
                    f"{what} must be a dict whose 'format' is {self.format_name!r} (load_shipped_model finds the "
                    f"format by it), got {found!r}",
                    space_name,
                )
            loaded = self.call(
                f"load_model() of the JSON payload of {sample!r}",
                functools.partial(_load_payload, make_format, text),
                space_name,
            )
            self._check_round_trip(model, loaded, "load_model(payload)", space_name)

    def test_shipping_round_trip(self, make_format: Callable[[], ModelFormat], space_name: str) -> None:
        space = self.build_space(make_format(), space_name)
        for sample in self.samples(space)[:2]:
            model = self.freeze(space, sample, space_name)
            shipment = self.call(f"ship_model(freeze({sample!r}))", functools.partial(ship_model, model), space_name)
            kind = shipment.get("kind")
            if self.supports_payload and kind != "payload":
                raise self.fail(
                    f"ship_model(freeze({sample!r})) fell back to {kind!r} instead of shipping the payload, because "
                    f"{shipment.get('reason', 'of an unknown reason')}",
                    space_name,
                )
            try:
                text = json.dumps(shipment)
            except (TypeError, ValueError) as exc:
                raise self.fail(f"the shipment of freeze({sample!r}) is not JSON ({_error(exc)})", space_name) from exc
            loaded = self.call(
                f"load_shipped_model() of the {kind} shipment of {sample!r}",
                functools.partial(load_shipped_model, json.loads(text)),
                space_name,
            )
            self._check_round_trip(model, loaded, f"load_shipped_model(ship_model(model)) ({kind})", space_name)

    def test_same_parameters_as_the_reference_formats(
        self, make_format: Callable[[], ModelFormat], space_name: str
    ) -> None:
        references = [name for name in self.reference_formats if name != self.format_name]
        if not references:
            pytest.skip(f"format {self.name!r}: no reference format other than itself (reference_formats)")
        formats = get_plugins().formats
        unknown = [name for name in references if name not in formats]
        if unknown:
            raise self.fail(
                f"the reference formats {unknown} are not registered (registered: {', '.join(formats.names())}); "
                "install the distribution that provides them, or change reference_formats"
            )
        space = self.build_space(make_format(), space_name)
        case = self.spaces()[space_name]
        for reference_name in references:
            reference_space = self.call(
                f"build() of the reference format {reference_name!r}",
                lambda name=reference_name: formats.get(name)().build(case.make_space()),
                space_name,
            )
            for sample in self.samples(space):
                module = self.build_module(self.freeze(space, sample, space_name), space_name)
                reference = self.call(
                    f"building {sample!r} in the reference format {reference_name!r}",
                    lambda rs=reference_space, s=sample: rs.freeze(s).build(),
                    space_name,
                )
                self.check_same_model(
                    module,
                    reference,
                    space_name,
                    f"the model of {sample!r}",
                    f"the {reference_name!r} model",
                )

    # --- parts of the checks ------------------------------------------------------------------------

    def _check_no_payload(self, model: ExecutableModel, what: str, space_name: str) -> None:
        try:
            payload = model.to_payload()
        except (NotImplementedError, ShippingError) as exc:
            if self.format_name not in str(exc):
                raise self.fail(
                    f"{what} raised {_error(exc)}; the error must name the format ({self.format_name!r}) so that "
                    "users know which format cannot ship",
                    space_name,
                ) from exc
            return
        except Exception as exc:
            raise self.fail(
                f"{what} raised {_error(exc)}; a format that cannot ship payloads must raise NotImplementedError "
                "or nascore.errors.ShippingError naming the format",
                space_name,
            ) from exc
        raise self.fail(
            f"supports_payload is False but {what} returned {_short_repr(payload)}; set supports_payload = True so that the "
            "suite checks the payload, or make to_payload() raise NotImplementedError",
            space_name,
        )

    def _check_round_trip(self, model: ExecutableModel, loaded: Any, how: str, space_name: str) -> None:
        if not isinstance(loaded, ExecutableModel):
            raise self.fail(
                f"{how} returned a {type(loaded).__name__}; it must return a nascore.format.ExecutableModel", space_name
            )
        if loaded.sample != model.sample:
            hint = ""
            if sample_key(loaded.sample) == sample_key(model.sample):
                hint = (
                    " (the values JSON changes, such as tuples, which come back as lists, must come back as the space's "
                    "candidates: map them back with the decisions' canonical_value, or write them in a form that keeps "
                    "their type)"
                )
            raise self.fail(
                f"{how} rebuilt a model with the sample {loaded.sample!r}, not {model.sample!r}; it must keep "
                f"the sample{hint}",
                space_name,
            )
        original = self.build_module(model, space_name)
        rebuilt = self.build_module(loaded, space_name, f"{how}.build()")
        self.check_same_model(rebuilt, original, space_name, f"the model from {how}", "the original model")
