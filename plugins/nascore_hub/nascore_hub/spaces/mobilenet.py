"""Building blocks of the MobileNet family of spaces (:class:`~nascore_hub.spaces.ProxylessNAS`,
:class:`~nascore_hub.spaces.MobileNetV3Space`).

The inverted residual block (MBConv) comes from Sandler et al., "MobileNetV2: Inverted Residuals and
Linear Bottlenecks", CVPR 2018 (https://arxiv.org/abs/1801.04381); squeeze-and-excitation from Hu et
al., "Squeeze-and-Excitation Networks", CVPR 2018 (https://arxiv.org/abs/1709.01507), in the
hard-sigmoid form of Howard et al., "Searching for MobileNetV3", ICCV 2019
(https://arxiv.org/abs/1905.02244).

Every channel count, kernel size and expansion ratio below may be a decision (a
:func:`nascore.choice` or an expression of choices): the blocks are made of ``Mutable<Layer>``
wrappers, which take them as arguments, and :func:`make_divisible` rounds expressions as it rounds
numbers. Built inside :func:`nascore.fixed_arch`, the blocks hold plain ``torch.nn`` layers.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from typing import Any, Union

import torch
import torch.nn as nn

from nascore.errors import SearchSpaceError
from nascore.nn import MutableBatchNorm2d, MutableConv2d
from nascore.space import (
    Categorical,
    Mutable,
    MutableExpression,
    collect_mutables,
    current_frozen_sample,
    dedup_mutables,
)

__all__ = [
    "ACTIVATIONS",
    "ActivationSpec",
    "ConvBNAct",
    "DepthwiseSeparableConv",
    "InvertedResidual",
    "MaybeChoice",
    "SqueezeExcite",
    "SqueezeExciteFactory",
    "always_equal",
    "init_weights",
    "make_activation",
    "make_divisible",
]

#: An int or float, or a decision (choice or expression) whose values are.
MaybeChoice = Union[int, float, Mutable]

#: A way to name an activation: a key of :data:`ACTIVATIONS`, a module class (or any callable
#: without arguments returning a module), or ``None`` for no activation.
ActivationSpec = Union[str, Callable[[], nn.Module], None]

#: The activations known by name.
ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "relu6": nn.ReLU6,
    "hswish": nn.Hardswish,
    "swish": nn.SiLU,
    "hsigmoid": nn.Hardsigmoid,
    "sigmoid": nn.Sigmoid,
}

#: Squeeze-and-excitation factory of a block: ``factory(hidden_channels, in_channels)`` gives the
#: module applied to the block's hidden (expanded) features.
SqueezeExciteFactory = Callable[[MaybeChoice, MaybeChoice], nn.Module]


def make_activation(spec: ActivationSpec) -> nn.Module | None:
    """A new activation module for ``spec`` (see :data:`ActivationSpec`); ``None`` for ``None``."""
    if spec is None:
        return None
    if isinstance(spec, str):
        if spec not in ACTIVATIONS:
            raise SearchSpaceError(f"unknown activation {spec!r}; the known activations are {sorted(ACTIVATIONS)}")
        return ACTIVATIONS[spec]()
    if callable(spec):
        module = spec()
        if not isinstance(module, nn.Module):
            raise SearchSpaceError(f"the activation factory {spec!r} returned a {type(module).__name__}, not an nn.Module")
        return module
    raise SearchSpaceError(
        f"an activation is a name (one of {sorted(ACTIVATIONS)}), a module class or None, got {spec!r}"
    )


def make_divisible(value: MaybeChoice, divisor: int = 8, min_value: int | None = None) -> Any:
    """``value`` rounded to the nearest multiple of ``divisor`` (ties up), at least ``min_value``
    (default ``divisor``), and never more than 10% below ``value`` (one ``divisor`` more then).

    The rule of the MobileNet reference code (TensorFlow's ``slim/nets/mobilenet``). ``value`` may be a
    decision, and then the result is a :class:`~nascore.space.MutableExpression` that rounds each of
    its values the same way: ``make_divisible(nascore.choice("w", [0.5, 1.0]) * 24)`` is 16 or 24.
    """
    if isinstance(divisor, bool) or not isinstance(divisor, int) or divisor < 1:
        raise SearchSpaceError(f"make_divisible: divisor must be a positive int, got {divisor!r}")
    min_value = divisor if min_value is None else min_value
    if isinstance(value, Mutable):
        rounded = MutableExpression.to_int((value + divisor / 2) // divisor) * divisor
        new = MutableExpression.max(min_value, rounded)
        return MutableExpression.condition(new < 0.9 * value, new + divisor, new)
    new = max(min_value, int(value + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * value else new


#: At most this many combinations of decisions are tried by :func:`always_equal`.
_MAX_EQUALITY_CHECKS = 4096


def always_equal(a: MaybeChoice, b: MaybeChoice) -> bool:
    """Whether ``a`` and ``b`` (numbers or decisions) are equal in every architecture.

    Decisions are compared over every combination of the categorical decisions they depend on (two
    widths made from the same width multiplier and the same base width are equal); when they depend
    on other decisions or on too many, only the same object is equal to itself. The answer is the
    same whether the space is built as a search space or frozen, so a block decides its residual
    connection the same way in both.
    """
    if a is b:
        return True
    if not isinstance(a, Mutable) and not isinstance(b, Mutable):
        return bool(a == b)
    leaves = list(dedup_mutables(collect_mutables([a, b])).values())
    if not all(isinstance(leaf, Categorical) for leaf in leaves):
        return False
    if math.prod(len(leaf.values) for leaf in leaves) > _MAX_EQUALITY_CHECKS:
        return False
    for values in itertools.product(*(leaf.values for leaf in leaves)):
        sample = {leaf.label: value for leaf, value in zip(leaves, values)}
        left = a.freeze(sample) if isinstance(a, Mutable) else a
        right = b.freeze(sample) if isinstance(b, Mutable) else b
        if left != right:
            return False
    return True


class ConvBNAct(nn.Sequential):
    """A convolution with "same" padding, batch normalization, then an activation.

    :param in_channels: input channels (may be a decision).
    :param out_channels: output channels (may be a decision).
    :param kernel_size: odd kernel size (may be a decision); the padding is ``(kernel_size - 1) // 2``.
    :param stride: the convolution's stride.
    :param groups: the convolution's groups (``groups=in_channels=out_channels``: depthwise; may be a decision).
    :param activation: see :data:`ActivationSpec` (``None``: linear, as the projection of an MBConv).
    :param norm: with batch normalization (the convolution has no bias then); without, the
        convolution has a bias.
    :param bn_eps: ``eps`` of the batch normalization.
    :param bn_momentum: ``momentum`` of the batch normalization.

    Its children are ``0`` (the convolution), ``1`` (the normalization, when ``norm``) and then the
    activation, when there is one.
    """

    def __init__(
        self,
        in_channels: MaybeChoice,
        out_channels: MaybeChoice,
        kernel_size: MaybeChoice = 3,
        stride: int = 1,
        groups: MaybeChoice = 1,
        *,
        activation: ActivationSpec = "relu6",
        norm: bool = True,
        bn_eps: float = 1e-5,
        bn_momentum: float = 0.1,
    ) -> None:
        padding = (kernel_size - 1) // 2
        layers: list[nn.Module] = [
            MutableConv2d(
                in_channels, out_channels, kernel_size, stride=stride, padding=padding, groups=groups, bias=not norm
            )
        ]
        if norm:
            layers.append(MutableBatchNorm2d(out_channels, eps=bn_eps, momentum=bn_momentum))
        act = make_activation(activation)
        if act is not None:
            layers.append(act)
        super().__init__(*layers)


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation: the features scaled per channel by a gate computed from their spatial mean.

    ``x * gate(conv_expand(act(conv_reduce(mean(x)))))``, where the two 1x1 convolutions (with bias) go
    from ``channels`` to ``make_divisible(squeeze_from * reduction, divisor)`` and back.

    :param channels: the channels of the input and output (may be a decision).
    :param reduction: the ratio of the squeezed channels to ``squeeze_from``.
    :param squeeze_from: the channels the squeezed ones are a fraction of (default ``channels``; an
        MBConv may give its input channels rather than its expanded ones).
    :param activation: the activation between the convolutions.
    :param gate: the gate (MobileNetV3's hard sigmoid by default).
    :param divisor: the squeezed channels are a multiple of it.
    """

    def __init__(
        self,
        channels: MaybeChoice,
        reduction: float = 0.25,
        *,
        squeeze_from: MaybeChoice | None = None,
        activation: ActivationSpec = "relu",
        gate: ActivationSpec = "hsigmoid",
        divisor: int = 8,
    ) -> None:
        super().__init__()
        if not 0 < reduction <= 1:
            raise SearchSpaceError(f"SqueezeExcite: reduction must be in (0, 1], got {reduction!r}")
        squeezed = make_divisible((channels if squeeze_from is None else squeeze_from) * reduction, divisor)
        self.conv_reduce = MutableConv2d(channels, squeezed, 1, bias=True)
        self.act = make_activation(activation) or nn.Identity()
        self.conv_expand = MutableConv2d(squeezed, channels, 1, bias=True)
        self.gate = make_activation(gate) or nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = x.mean((2, 3), keepdim=True)
        scale = self.conv_expand(self.act(self.conv_reduce(scale)))
        return x * self.gate(scale)


def _check_stride(stride: int, what: str) -> None:
    if stride not in (1, 2):
        raise SearchSpaceError(f"{what}: stride must be 1 or 2, got {stride!r}")


class DepthwiseSeparableConv(nn.Module):
    """A depthwise convolution (with batch normalization and activation), optional squeeze-and-excitation,
    then a linear 1x1 projection: MobileNetV2's inverted residual with an expansion ratio of 1.

    With stride 1 and as many output channels as input channels (in every architecture, see
    :func:`always_equal`), the input is added to the output (:attr:`has_skip`).

    :param in_channels: input channels (may be a decision).
    :param out_channels: output channels (may be a decision).
    :param kernel_size: kernel size of the depthwise convolution (may be a decision).
    :param stride: stride of the depthwise convolution (1 or 2).
    :param squeeze_excite: ``factory(in_channels, in_channels)`` giving the squeeze-and-excitation
        module (or a :class:`~nascore.nn.LayerChoice` with or without it), or ``None``.
    :param activation: activation after the depthwise convolution.
    :param bn_eps: ``eps`` of the batch normalizations.
    :param bn_momentum: ``momentum`` of the batch normalizations.
    """

    def __init__(
        self,
        in_channels: MaybeChoice,
        out_channels: MaybeChoice,
        kernel_size: MaybeChoice = 3,
        stride: int = 1,
        *,
        squeeze_excite: SqueezeExciteFactory | None = None,
        activation: ActivationSpec = "relu6",
        bn_eps: float = 1e-5,
        bn_momentum: float = 0.1,
    ) -> None:
        super().__init__()
        _check_stride(stride, "DepthwiseSeparableConv")
        bn = {"bn_eps": bn_eps, "bn_momentum": bn_momentum}
        self.depthwise = ConvBNAct(
            in_channels, in_channels, kernel_size, stride, groups=in_channels, activation=activation, **bn
        )
        self.se = squeeze_excite(in_channels, in_channels) if squeeze_excite is not None else None
        self.project = ConvBNAct(in_channels, out_channels, 1, activation=None, **bn)
        self.has_skip = stride == 1 and always_equal(in_channels, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.depthwise(x)
        if self.se is not None:
            out = self.se(out)
        out = self.project(out)
        return x + out if self.has_skip else out


class InvertedResidual(nn.Module):
    """MobileNetV2's inverted residual block (MBConv): a 1x1 expansion to ``make_divisible(in_channels *
    expand_ratio)`` hidden channels, a ``kernel_size`` depthwise convolution of stride ``stride``
    (both with batch normalization and activation), optional squeeze-and-excitation on the hidden
    features, then a linear 1x1 projection to ``out_channels``.

    With stride 1 and as many output channels as input channels (in every architecture, see
    :func:`always_equal`), the input is added to the output (:attr:`has_skip`).

    :param in_channels: input channels (may be a decision).
    :param out_channels: output channels (may be a decision).
    :param expand_ratio: ratio of the hidden channels to the input channels (may be a decision).
    :param kernel_size: kernel size of the depthwise convolution (may be a decision).
    :param stride: stride of the depthwise convolution (1 or 2).
    :param squeeze_excite: ``factory(hidden_channels, in_channels)`` giving the squeeze-and-excitation
        module applied to the hidden features (or a :class:`~nascore.nn.LayerChoice` with or without
        it), or ``None``.
    :param activation: activation after the expansion and the depthwise convolution.
    :param bn_eps: ``eps`` of the batch normalizations.
    :param bn_momentum: ``momentum`` of the batch normalizations.
    """

    def __init__(
        self,
        in_channels: MaybeChoice,
        out_channels: MaybeChoice,
        expand_ratio: MaybeChoice,
        kernel_size: MaybeChoice = 3,
        stride: int = 1,
        *,
        squeeze_excite: SqueezeExciteFactory | None = None,
        activation: ActivationSpec = "relu6",
        bn_eps: float = 1e-5,
        bn_momentum: float = 0.1,
    ) -> None:
        super().__init__()
        _check_stride(stride, "InvertedResidual")
        hidden = make_divisible(in_channels * expand_ratio, 8)
        sample = current_frozen_sample()
        if sample is not None and isinstance(hidden, Mutable):
            hidden = hidden.freeze(sample)  # a frozen model holds numbers only
        #: The channels of the hidden features (a decision when they depend on one, in a search space).
        self.hidden_channels: MaybeChoice = hidden
        bn = {"bn_eps": bn_eps, "bn_momentum": bn_momentum}
        self.expand = ConvBNAct(in_channels, hidden, 1, activation=activation, **bn)
        self.depthwise = ConvBNAct(hidden, hidden, kernel_size, stride, groups=hidden, activation=activation, **bn)
        self.se = squeeze_excite(hidden, in_channels) if squeeze_excite is not None else None
        self.project = ConvBNAct(hidden, out_channels, 1, activation=None, **bn)
        self.has_skip = stride == 1 and always_equal(in_channels, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.depthwise(self.expand(x))
        if self.se is not None:
            out = self.se(out)
        out = self.project(out)
        return x + out if self.has_skip else out


def init_weights(model: nn.Module) -> None:
    """MobileNet's initialization, in place: convolutions from ``N(0, 2 / (k * k * out_channels))``
    (He, fan out), batch normalizations at weight 1 and bias 0, linear layers from ``N(0, 0.01)``
    with bias 0. Layers on the ``meta`` device (shapes only) are left alone."""
    for module in model.modules():
        weight = getattr(module, "weight", None)
        if isinstance(weight, torch.Tensor) and weight.is_meta:
            continue
        if isinstance(module, nn.Conv2d):
            fan_out = module.kernel_size[0] * module.kernel_size[1] * module.out_channels
            nn.init.normal_(module.weight, 0.0, math.sqrt(2.0 / fan_out))
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, (nn.BatchNorm2d, nn.BatchNorm1d)):
            if module.affine:
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, 0.0, 0.01)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
