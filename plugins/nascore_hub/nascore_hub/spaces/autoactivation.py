"""A searchable activation function, and a small network that searches it.

From Ramachandran, Zoph & Le, "Searching for Activation Functions", ICLR 2018 Workshop
(https://arxiv.org/abs/1710.05941). An activation function is built from *core units*
``b(u1(x1), u2(x2))``: two unary functions, one on each input, combined by a binary function. The first
core unit reads the pre-activation ``x`` twice; each further one reads the previous unit's output and ``x``.
The unary and binary functions are searched among the paper's (:data:`UNARY_OPERATORS`,
:data:`BINARY_OPERATORS`). Swish, ``x * sigmoid(beta * x)``, the function the paper found best, is one
core unit: ``sigmoid_mul(scale(x), identity(x))``.

:class:`AutoActivation` is the searchable activation, usable in any model; :class:`AutoActivationResNet`
a ResNet for small images (ResNet-20 by default, the paper's search network on CIFAR-10) whose every
activation is the same searched function: ``25 * 25 * 10 = 6,250`` functions of one core unit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import torch
import torch.nn as nn
import torch.nn.functional as F

from nascore.errors import SearchSpaceError
from nascore.nn import LayerChoice, ModelSpace, ParametrizedModule
from nascore.space import auto_label
from nascore.space.label import check_label
from nascore_hub.spaces.presets import PresetSpace, UnknownPresetError

__all__ = [
    "ACTIVATIONS",
    "BINARY_OPERATORS",
    "PRESETS",
    "UNARY_OPERATORS",
    "AutoActivation",
    "AutoActivationResNet",
    "BinaryOperator",
    "ResidualBlock",
    "UnaryOperator",
    "UnknownPresetError",
    "activation_sample",
]

_EPS = 1e-7

_UnaryFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
_BinaryFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]

#: The unary functions of the paper, by name: ``f(x, beta)`` (``beta`` a trainable scalar, used by a few).
_UNARY: dict[str, _UnaryFn] = {
    "identity": lambda x, b: x,
    "neg": lambda x, b: -x,
    "abs": lambda x, b: torch.abs(x),
    "square": lambda x, b: torch.square(x),
    "cube": lambda x, b: torch.pow(x, 3),
    # sqrt(x), zero (up to sqrt(eps)) where x <= 0 so that it stays finite, with finite gradients.
    "sqrt": lambda x, b: torch.sqrt(torch.clamp(x, min=_EPS)),
    "scale": lambda x, b: b * x,
    "shift": lambda x, b: x + b,
    "log_abs": lambda x, b: torch.log(torch.abs(x) + _EPS),
    "exp": lambda x, b: torch.exp(x),
    "sin": lambda x, b: torch.sin(x),
    "cos": lambda x, b: torch.cos(x),
    "sinh": lambda x, b: torch.sinh(x),
    "cosh": lambda x, b: torch.cosh(x),
    "tanh": lambda x, b: torch.tanh(x),
    "asinh": lambda x, b: torch.asinh(x),
    "atan": lambda x, b: torch.atan(x),
    "sinc": lambda x, b: torch.sinc(x),
    "max_zero": lambda x, b: torch.clamp(x, min=0.0),
    "min_zero": lambda x, b: torch.clamp(x, max=0.0),
    "sigmoid": lambda x, b: torch.sigmoid(x),
    "softplus": lambda x, b: F.softplus(x),
    "gaussian": lambda x, b: torch.exp(-torch.square(x)),
    "erf": lambda x, b: torch.erf(x),
    "const": lambda x, b: b.expand_as(x),
}

#: The binary functions of the paper, by name: ``f(x1, x2, beta)``.
_BINARY: dict[str, _BinaryFn] = {
    "add": lambda x1, x2, b: x1 + x2,
    "mul": lambda x1, x2, b: x1 * x2,
    "sub": lambda x1, x2, b: x1 - x2,
    "div": lambda x1, x2, b: x1 / (x2 + _EPS),
    "max": lambda x1, x2, b: torch.maximum(x1, x2),
    "min": lambda x1, x2, b: torch.minimum(x1, x2),
    "sigmoid_mul": lambda x1, x2, b: torch.sigmoid(x1) * x2,
    "exp_sq_diff": lambda x1, x2, b: torch.exp(-b * torch.square(x1 - x2)),
    "exp_abs_diff": lambda x1, x2, b: torch.exp(-b * torch.abs(x1 - x2)),
    "interp": lambda x1, x2, b: b * x1 + (1 - b) * x2,
}

#: The unary functions with a trainable ``beta``.
_UNARY_BETA = frozenset({"scale", "shift", "const"})
#: The binary functions with a trainable ``beta``.
_BINARY_BETA = frozenset({"exp_sq_diff", "exp_abs_diff", "interp"})

#: The names of the unary candidates, in the order of the choices: ``x``, ``-x``, ``|x|``, ``x^2``, ``x^3``,
#: ``sqrt(x)``, ``beta*x``, ``x+beta``, ``log(|x|+eps)``, ``exp(x)``, ``sin``, ``cos``, ``sinh``, ``cosh``,
#: ``tanh``, ``asinh``, ``atan``, ``sinc``, ``max(x,0)``, ``min(x,0)``, ``sigmoid``, ``log(1+exp(x))``,
#: ``exp(-x^2)``, ``erf`` and the constant ``beta``.
UNARY_OPERATORS: tuple[str, ...] = tuple(_UNARY)

#: The names of the binary candidates, in the order of the choices: ``x1+x2``, ``x1*x2``, ``x1-x2``,
#: ``x1/(x2+eps)``, ``max``, ``min``, ``sigmoid(x1)*x2``, ``exp(-beta*(x1-x2)^2)``, ``exp(-beta*|x1-x2|)``
#: and ``beta*x1+(1-beta)*x2``.
BINARY_OPERATORS: tuple[str, ...] = tuple(_BINARY)

#: Activation functions of the paper as one core unit ``binary(unary_1(x), unary_2(x))``: name -> the three names.
ACTIVATIONS: dict[str, tuple[str, str, str]] = {
    "swish": ("scale", "identity", "sigmoid_mul"),  # sigmoid(beta * x) * x, the paper's best
    "max-x-sigmoid": ("identity", "sigmoid", "max"),  # max(x, sigmoid(x))
    "cos-minus-x": ("cos", "identity", "sub"),  # cos(x) - x
    "min-x-sin": ("identity", "sin", "min"),  # min(x, sin(x))
    "max-x-tanh": ("identity", "tanh", "max"),  # max(x, tanh(x))
    "sinc-plus-x": ("sinc", "identity", "add"),  # sinc(x) + x
    "relu": ("max_zero", "max_zero", "max"),  # max(max(x, 0), max(x, 0)): the baseline
}


def _check_names(names: Sequence[str] | None, known: tuple[str, ...], what: str) -> list[str]:
    if names is None:
        return list(known)
    if isinstance(names, str) or not isinstance(names, Sequence):
        raise SearchSpaceError(f"AutoActivation: {what}_candidates must be a list of names, got {names!r}")
    names = list(names)
    unknown = [n for n in names if n not in known]
    if unknown or not names or len(set(names)) != len(names):
        raise SearchSpaceError(
            f"AutoActivation: {what}_candidates must be distinct names of {what} operators, at least one, got "
            f"{names!r}{f' (unknown: {unknown!r})' if unknown else ''}; the {what} operators are {list(known)}"
        )
    return names


# --- operators -------------------------------------------------------------------------------------


class UnaryOperator(ParametrizedModule):
    """The unary function ``name`` (one of :data:`UNARY_OPERATORS`) as a module; those with a ``beta``
    (``"scale"``, ``"shift"``, ``"const"``) hold it as a trainable scalar initialized to 1."""

    def __init__(self, name: str) -> None:
        super().__init__()
        if name not in _UNARY:
            raise SearchSpaceError(f"unknown unary operator {name!r}; the unary operators are {list(UNARY_OPERATORS)}")
        self.name = name
        if name in _UNARY_BETA:
            self.beta = nn.Parameter(torch.tensor(1.0))
        else:
            self.register_parameter("beta", None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _UNARY[self.name](x, self.beta)

    def extra_repr(self) -> str:
        return repr(self.name)


class BinaryOperator(ParametrizedModule):
    """The binary function ``name`` (one of :data:`BINARY_OPERATORS`) of two tensors as a module; those
    with a ``beta`` (``"exp_sq_diff"``, ``"exp_abs_diff"``, ``"interp"``) hold it as a trainable scalar
    initialized to 1."""

    def __init__(self, name: str) -> None:
        super().__init__()
        if name not in _BINARY:
            raise SearchSpaceError(
                f"unknown binary operator {name!r}; the binary operators are {list(BINARY_OPERATORS)}"
            )
        self.name = name
        if name in _BINARY_BETA:
            self.beta = nn.Parameter(torch.tensor(1.0))
        else:
            self.register_parameter("beta", None)

    def forward(self, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        return _BINARY[self.name](x1, x2, self.beta)

    def extra_repr(self) -> str:
        return repr(self.name)


# --- the searchable activation ---------------------------------------------------------------------


def _unit_labels(label: str, unit: int) -> tuple[str, str, str]:
    return f"{label}/unit_{unit}/unary_1", f"{label}/unit_{unit}/unary_2", f"{label}/unit_{unit}/binary"


class AutoActivation(nn.Module):
    """A searchable activation function (Ramachandran et al., "Searching for Activation Functions",
    ICLR 2018 Workshop, https://arxiv.org/abs/1710.05941): ``unit_num`` core units in a chain.

    Core unit ``i`` computes ``binary(unary_1(a), unary_2(x))`` where ``x`` is the activation's input and
    ``a`` is ``x`` for the first unit and the previous unit's output for the others; the activation's
    output is the last unit's. Each function is a :class:`~nascore.nn.LayerChoice`, labelled
    ``"<label>/unit_<i>/unary_1"``, ``"<label>/unit_<i>/unary_2"`` (over ``unary_candidates``, default all
    of :data:`UNARY_OPERATORS`) and ``"<label>/unit_<i>/binary"`` (over ``binary_candidates``, default all
    of :data:`BINARY_OPERATORS`). With the defaults a unit has ``25 * 25 * 10 = 6250`` functions and the
    activation ``6250 ** unit_num``.

    Activations built with the same ``label`` share their decisions (one function, used in many places)
    but not their ``beta`` parameters. Without a label, an automatic one (``"autoactivation_<n>"``) is used.
    Built inside :func:`nascore.fixed_arch` (see :func:`activation_sample`), it holds the chosen
    :class:`UnaryOperator` and :class:`BinaryOperator` modules.

    The functions are applied elementwise and as written, so some samples diverge (``exp(x) * x^3``, a
    ``div`` by values near zero...), as in the paper, where such functions simply trained badly. Normalize
    the activation's inputs (batch norm before it). With weight sharing, a sampling one-shot strategy
    (RandomOneShot, ENAS) that draws a diverging function spreads its non-finite gradients to the shared
    weights, and DARTS mixing every function overflows from two core units on: for one-shot search, give
    ``unary_candidates`` and ``binary_candidates`` that stay bounded (e.g. without ``exp``, ``sinh``,
    ``cosh``, ``square``, ``cube`` and ``div``).

    :param unit_num: the core units, at least 1.
    :param unary_candidates: the names of the unary functions to search among.
    :param binary_candidates: the names of the binary functions to search among.
    :param label: the prefix of the decisions' labels.
    """

    def __init__(
        self,
        unit_num: int = 1,
        unary_candidates: Sequence[str] | None = None,
        binary_candidates: Sequence[str] | None = None,
        *,
        label: str | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(unit_num, int) or isinstance(unit_num, bool) or unit_num < 1:
            raise SearchSpaceError(
                f"AutoActivation: unit_num must be a positive int (the core units), got {unit_num!r}"
            )
        unaries = _check_names(unary_candidates, UNARY_OPERATORS, "unary")
        binaries = _check_names(binary_candidates, BINARY_OPERATORS, "binary")
        self.label = check_label(label, what="AutoActivation label") if label is not None else auto_label(
            "autoactivation"
        )
        self.unit_num = unit_num
        self.unary_1 = nn.ModuleList()
        self.unary_2 = nn.ModuleList()
        self.binary = nn.ModuleList()
        for unit in range(1, unit_num + 1):
            # The labels are full already (check_label qualified the prefix): pass them to the choices as they are.
            first, second, binary = _unit_labels(self.label, unit)
            self.unary_1.append(LayerChoice({n: UnaryOperator(n) for n in unaries}, label=first))
            self.unary_2.append(LayerChoice({n: UnaryOperator(n) for n in unaries}, label=second))
            self.binary.append(LayerChoice({n: BinaryOperator(n) for n in binaries}, label=binary))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        for first, second, binary in zip(self.unary_1, self.unary_2, self.binary):
            out = binary(first(out), second(x))
        return out

    def extra_repr(self) -> str:
        return f"unit_num={self.unit_num}, label={self.label!r}"


def activation_sample(name: str, label: str = "act") -> dict[str, str]:
    """The sample of the paper's activation function ``name`` (a key of :data:`ACTIVATIONS`, e.g. ``"swish"``)
    for an :class:`AutoActivation` of one core unit labelled ``label``::

        with nascore.fixed_arch(activation_sample("swish")):
            act = AutoActivation(label="act")  # sigmoid(beta * x) * x
    """
    if name not in ACTIVATIONS:
        raise UnknownPresetError(
            f"no activation function {name!r}; the activation functions are {', '.join(map(repr, ACTIVATIONS))}"
        )
    return dict(zip(_unit_labels(label, 1), ACTIVATIONS[name]))


# --- the model space -------------------------------------------------------------------------------


class ResidualBlock(nn.Module):
    """ResNet's basic block with a given activation: 3x3 conv, BN, activation, 3x3 conv, BN, plus the
    shortcut (a 1x1 convolution and BN where the shape changes), then the activation.

    :param activation: builds a new activation module (called twice: the block's two activations).
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int, activation: Callable[[], nn.Module]) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.act1 = activation()
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        if stride != 1 or in_channels != out_channels:
            self.shortcut: nn.Module = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, 0, bias=False), nn.BatchNorm2d(out_channels)
            )
        else:
            self.shortcut = nn.Identity()
        self.act2 = activation()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(self.act1(self.bn1(self.conv1(x)))))
        return self.act2(out + self.shortcut(x))


#: Fixed architectures of :class:`AutoActivationResNet` (one core unit, default candidates): the paper's
#: activation functions of :data:`ACTIVATIONS`, as samples.
PRESETS: dict[str, dict[str, str]] = {name: activation_sample(name) for name in ACTIVATIONS}


class AutoActivationResNet(PresetSpace, ModelSpace):
    """A ResNet whose activation function is searched (Ramachandran et al., "Searching for Activation
    Functions", ICLR 2018 Workshop, https://arxiv.org/abs/1710.05941; the paper searched with ResNet-20
    on CIFAR-10).

    A 3x3 convolution with ``stage_channels[0]`` channels, BN and the activation; stages of
    ``blocks_per_stage`` :class:`ResidualBlock` with ``stage_channels`` channels, every stage after the
    first starting with a stride of 2; global average pooling and a linear classifier over ``num_labels``
    classes. The defaults are ResNet-20: three stages of three blocks with 16, 32 and 64 channels.

    Every activation of the network is an :class:`AutoActivation` labelled ``"act"``: one searched
    function (each place with its own ``beta`` parameters). With one core unit and every candidate,
    the decisions are ``"act/unit_1/unary_1"``, ``"act/unit_1/unary_2"`` (25 unary functions each) and
    ``"act/unit_1/binary"`` (10), so ``AutoActivationResNet().space_size()`` is ``25 * 25 * 10 = 6250``
    (``6250 ** unit_num`` in general; ``space_size`` returns a float).

    :param num_labels: the classes of the classifier.
    :param stage_channels: the channels of each stage.
    :param blocks_per_stage: the residual blocks of each stage.
    :param unit_num: the core units of the activation.
    :param unary_candidates: the unary functions to search among (default: :data:`UNARY_OPERATORS`).
    :param binary_candidates: the binary functions to search among (default: :data:`BINARY_OPERATORS`).

    Fixed architectures: :meth:`preset` (the keys of :data:`ACTIVATIONS`: ``"swish"``, ``"relu"``,
    ``"max-x-sigmoid"``...; for one core unit) gives a sample, :meth:`fixed_arch` the context in which the
    space builds as that one model, :meth:`load_preset` the built model.
    """

    PRESETS: ClassVar[Mapping[str, Mapping[str, Any]]] = PRESETS
    PRESET_NAMES: ClassVar[tuple[str, ...]] = tuple(PRESETS)

    def __init__(
        self,
        num_labels: int = 10,
        stage_channels: Sequence[int] = (16, 32, 64),
        blocks_per_stage: int = 3,
        unit_num: int = 1,
        unary_candidates: Sequence[str] | None = None,
        binary_candidates: Sequence[str] | None = None,
    ) -> None:
        super().__init__()
        widths = tuple(stage_channels) if isinstance(stage_channels, Sequence) else ()
        if isinstance(stage_channels, (str, bytes)) or not widths or not all(
            isinstance(c, int) and not isinstance(c, bool) and c > 0 for c in widths
        ):
            raise SearchSpaceError(
                "AutoActivationResNet: stage_channels must be a non-empty sequence of positive ints (the channels of "
                f"each stage), got {stage_channels!r}"
            )
        for name, value in (("blocks_per_stage", blocks_per_stage), ("num_labels", num_labels)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise SearchSpaceError(f"AutoActivationResNet: {name} must be a positive int, got {value!r}")
        self.num_labels = num_labels
        self.unit_num = unit_num

        def activation() -> AutoActivation:
            return AutoActivation(unit_num, unary_candidates, binary_candidates, label="act")

        self.stem = nn.Sequential(nn.Conv2d(3, widths[0], 3, 1, 1, bias=False), nn.BatchNorm2d(widths[0]), activation())
        blocks: list[nn.Module] = []
        previous = widths[0]
        for stage, width in enumerate(widths):
            for block in range(blocks_per_stage):
                stride = 2 if stage > 0 and block == 0 else 1
                blocks.append(ResidualBlock(previous, width, stride, activation))
                previous = width
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(previous, num_labels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.pool(self.blocks(self.stem(x))), 1))
