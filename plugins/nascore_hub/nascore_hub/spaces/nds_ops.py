"""The operators and building blocks of the NDS cell spaces (see :mod:`nascore_hub.spaces.nds`).

The operators are those of the cell-based NAS papers that Radosavovic et al. compare in "On Network
Design Spaces for Visual Recognition" (ICCV 2019, https://arxiv.org/abs/1905.13214): NASNet, ENAS,
AmoebaNet, PNAS and DARTS. :data:`OPS` maps each operator name to a factory ``(channels, stride)``.

The modules that read the output of a cell (:class:`ReLUConvBN`, :class:`FactorizedReduce`,
:class:`CellInput`, :class:`Classifier`, :class:`AuxiliaryHead`) are
:class:`~nascore.nn.ParametrizedModule` classes: with ``merge_op="loose_end"`` the width of a cell's
output is the number of its nodes no other node reads, times the cell's channels, which depends on
the cell's input decisions. These modules take that width as an expression of the decisions, build
exactly that width when frozen, and in the search space hold the widest weights and use their first
input channels when a supernet feeds them fewer (weight sharing by prefix, as the mixed operations of
one-shot strategies do).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from nascore.errors import SearchSpaceError
from nascore.nn import MutableBatchNorm2d, MutableConv2d, ParametrizedModule
from nascore.space import Sample, frozen_context

__all__ = [
    "OPS",
    "AsymmetricConv",
    "AuxiliaryHead",
    "CellInput",
    "Classifier",
    "DilConv",
    "DilSepConv",
    "DropPath",
    "FactorizedReduce",
    "ReLUConvBN",
    "SepConv",
    "StridedZero",
    "make_op",
]

Channels = Any  # an int, or an expression of decisions (a width choice, a loose-end count)


# --- modules reading a cell's output: exact when frozen, prefix-sliced in the space ---------------------------


def _conv_on_prefix(conv: nn.Conv2d, x: torch.Tensor, where: str) -> torch.Tensor:
    """``conv(x)``, using the first ``x.shape[1]`` input channels of the weight when ``x`` is narrower."""
    width = x.shape[1]
    if width == conv.in_channels:
        return conv(x)
    if width > conv.in_channels or conv.groups != 1:
        raise SearchSpaceError(
            f"{where}: got {width} input channels, but it was built for at most {conv.in_channels}; build the "
            "model frozen (nascore.fixed_arch or a format's freeze) to get the exact widths"
        )
    return F.conv2d(x, conv.weight[:, :width], conv.bias, conv.stride, conv.padding, conv.dilation, conv.groups)


class _SlicedFreeze(ParametrizedModule):
    """A basic unit whose arguments may be expressions; frozen, it keeps the leading slice of its weights."""

    def frozen(self, sample: Sample) -> nn.Module:
        if not self.mutables:
            return super().frozen(sample)
        with frozen_context(sample):
            module = type(self)(*self.trace_args, **self.trace_kwargs)
        own, new = self.state_dict(), module.state_dict()
        if own.keys() == new.keys() and all(
            own[k].dim() == v.dim() and all(a >= b for a, b in zip(own[k].shape, v.shape)) for k, v in new.items()
        ):
            with torch.no_grad():
                module.load_state_dict({k: own[k][tuple(slice(0, n) for n in v.shape)].clone() for k, v in new.items()})
        reference = next(iter(self.parameters()), None)
        if reference is not None:
            module = module.to(device=reference.device, dtype=reference.dtype)
        return module.train(self.training)


class ReLUConvBN(_SlicedFreeze):
    """ReLU, a convolution without bias, batch normalization (``affine``)."""

    def __init__(
        self,
        in_channels: Channels,
        out_channels: Channels,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        affine: bool = True,
    ) -> None:
        super().__init__()
        self.relu = nn.ReLU(inplace=False)
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(out_channels, affine=affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(_conv_on_prefix(self.conv, self.relu(x), type(self).__name__))


class FactorizedReduce(_SlicedFreeze):
    """Halve the resolution: ReLU, two 1x1 convolutions of stride 2 (the second shifted by one pixel), each
    giving half of ``out_channels`` (which must be even), concatenated, then batch normalization."""

    def __init__(self, in_channels: Channels, out_channels: Channels, affine: bool = True) -> None:
        super().__init__()
        if out_channels % 2:
            raise SearchSpaceError(
                f"FactorizedReduce needs an even number of output channels, got {out_channels}: use an even width"
            )
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(in_channels, out_channels // 2, 1, stride=2, padding=0, bias=False)
        self.conv_2 = nn.Conv2d(in_channels, out_channels // 2, 1, stride=2, padding=0, bias=False)
        self.bn = nn.BatchNorm2d(out_channels, affine=affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        shifted = F.pad(x, (0, 1, 0, 1))[:, :, 1:, 1:]
        where = type(self).__name__
        return self.bn(torch.cat([_conv_on_prefix(self.conv_1, x, where), _conv_on_prefix(self.conv_2, shifted, where)], 1))


class CellInput(_SlicedFreeze):
    """The preprocessing of a cell's first input (the output of the cell before the previous one).

    ``reduce``: the previous cell halved the resolution, so this input is halved too
    (:class:`FactorizedReduce`); otherwise a 1x1 :class:`ReLUConvBN`. ``reduce`` may be an expression
    (with a choice of depth, whether the previous cell is a reduction cell depends on it).
    """

    def __init__(self, in_channels: Channels, out_channels: Channels, reduce: Any) -> None:
        super().__init__()
        self.reduce = bool(reduce)
        self.op = FactorizedReduce(in_channels, out_channels) if reduce else ReLUConvBN(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class Classifier(_SlicedFreeze):
    """Global average pooling and a linear layer over ``num_labels`` classes."""

    def __init__(self, in_features: Channels, num_labels: int) -> None:
        super().__init__()
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.linear = nn.Linear(in_features, num_labels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(self.global_pooling(x), 1)
        width = x.shape[1]
        if width == self.linear.in_features:
            return self.linear(x)
        if width > self.linear.in_features:
            raise SearchSpaceError(f"Classifier: got {width} features, built for at most {self.linear.in_features}")
        return F.linear(x, self.linear.weight[:, :width], self.linear.bias)


class AuxiliaryHead(_SlicedFreeze):
    """The auxiliary classifier of NASNet / DARTS, on the output of the first cell of the last stage.

    ``dataset="cifar"`` assumes an 8x8 input (32x32 images), ``"imagenet"`` a 14x14 one.
    """

    def __init__(self, in_channels: Channels, num_labels: int, dataset: str = "cifar") -> None:
        super().__init__()
        stride = 2 if dataset == "imagenet" else 3
        self.pool = nn.Sequential(nn.ReLU(inplace=False), nn.AvgPool2d(5, stride=stride, padding=0, count_include_pad=False))
        self.conv = nn.Conv2d(in_channels, 128, 1, bias=False)
        self.features = nn.Sequential(
            nn.BatchNorm2d(128), nn.ReLU(inplace=False), nn.Conv2d(128, 768, 2, bias=False), nn.BatchNorm2d(768),
            nn.ReLU(inplace=False),
        )
        self.classifier = nn.Linear(768, num_labels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(_conv_on_prefix(self.conv, self.pool(x), type(self).__name__))
        return self.classifier(torch.flatten(x, 1))


# --- operators ----------------------------------------------------------------------------------------------


class StridedZero(nn.Module):
    """``none``: zeros shaped like the input, subsampled by ``stride``."""

    def __init__(self, stride: int = 1) -> None:
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            return x.mul(0.0)
        return x[:, :, :: self.stride, :: self.stride].mul(0.0)


class DropPath(nn.Module):
    """Drop the whole output of an operator for a random part of the batch while training (FractalNet's
    drop-path), scaling the kept ones by ``1 / (1 - drop_prob)``."""

    def __init__(self, drop_prob: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= drop_prob < 1.0:
            raise SearchSpaceError(f"drop_path_prob must be in [0, 1), got {drop_prob!r}")
        self.drop_prob = drop_prob

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.drop_prob == 0.0:
            return x
        keep = 1.0 - self.drop_prob
        mask = torch.empty(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype).bernoulli_(keep)
        return x / keep * mask


class SepConv(nn.Sequential):
    """Separable convolution applied twice (ReLU, depthwise ``kernel_size`` conv, 1x1 conv, BN; the first of
    stride ``stride``), as NASNet defines it."""

    def __init__(self, channels: Channels, kernel_size: int, stride: int, padding: int, dilation: int = 1) -> None:
        c = channels
        super().__init__(
            nn.ReLU(inplace=False),
            MutableConv2d(c, c, kernel_size, stride=stride, padding=padding, dilation=dilation, groups=c, bias=False),
            MutableConv2d(c, c, 1, bias=False),
            MutableBatchNorm2d(c),
            nn.ReLU(inplace=False),
            MutableConv2d(c, c, kernel_size, stride=1, padding=padding, dilation=dilation, groups=c, bias=False),
            MutableConv2d(c, c, 1, bias=False),
            MutableBatchNorm2d(c),
        )


class DilSepConv(SepConv):
    """:class:`SepConv` with dilated depthwise convolutions (AmoebaNet's ``dil_sep_conv``)."""

    def __init__(self, channels: Channels, kernel_size: int, stride: int, padding: int, dilation: int = 2) -> None:
        super().__init__(channels, kernel_size, stride, padding, dilation)


class DilConv(nn.Sequential):
    """Dilated separable convolution, once: ReLU, dilated depthwise conv, 1x1 conv, BN (DARTS' ``dil_conv``)."""

    def __init__(self, channels: Channels, kernel_size: int, stride: int, padding: int, dilation: int = 2) -> None:
        c = channels
        super().__init__(
            nn.ReLU(inplace=False),
            MutableConv2d(c, c, kernel_size, stride=stride, padding=padding, dilation=dilation, groups=c, bias=False),
            MutableConv2d(c, c, 1, bias=False),
            MutableBatchNorm2d(c),
        )


class AsymmetricConv(nn.Sequential):
    """ReLU, a ``1 x k`` then a ``k x 1`` convolution, BN (``conv_3x1_1x3``, ``conv_7x1_1x7``)."""

    def __init__(self, channels: Channels, kernel_size: int, stride: int) -> None:
        c, k = channels, kernel_size
        super().__init__(
            nn.ReLU(inplace=False),
            MutableConv2d(c, c, (1, k), stride=(1, stride), padding=(0, k // 2), bias=False),
            MutableConv2d(c, c, (k, 1), stride=(stride, 1), padding=(k // 2, 0), bias=False),
            MutableBatchNorm2d(c),
        )


def _conv_bn(channels: Channels, kernel_size: int, stride: int) -> nn.Module:
    c = channels
    return nn.Sequential(
        nn.ReLU(inplace=False),
        MutableConv2d(c, c, kernel_size, stride=stride, padding=kernel_size // 2, bias=False),
        MutableBatchNorm2d(c),
    )


def _skip(channels: Channels, stride: int) -> nn.Module:
    return nn.Identity() if stride == 1 else FactorizedReduce(channels, channels)


#: Every operator of the five spaces: name -> factory ``(channels, stride) -> nn.Module``.
OPS: dict[str, Callable[[Channels, int], nn.Module]] = {
    "none": lambda c, s: StridedZero(s),
    "avg_pool_3x3": lambda c, s: nn.AvgPool2d(3, stride=s, padding=1, count_include_pad=False),
    "avg_pool_5x5": lambda c, s: nn.AvgPool2d(5, stride=s, padding=2, count_include_pad=False),
    "max_pool_3x3": lambda c, s: nn.MaxPool2d(3, stride=s, padding=1),
    "max_pool_5x5": lambda c, s: nn.MaxPool2d(5, stride=s, padding=2),
    "max_pool_7x7": lambda c, s: nn.MaxPool2d(7, stride=s, padding=3),
    "skip_connect": _skip,
    "conv_1x1": lambda c, s: _conv_bn(c, 1, s),
    "conv_3x3": lambda c, s: _conv_bn(c, 3, s),
    "sep_conv_3x3": lambda c, s: SepConv(c, 3, s, 1),
    "sep_conv_5x5": lambda c, s: SepConv(c, 5, s, 2),
    "sep_conv_7x7": lambda c, s: SepConv(c, 7, s, 3),
    "dil_conv_3x3": lambda c, s: DilConv(c, 3, s, 2, 2),
    "dil_conv_5x5": lambda c, s: DilConv(c, 5, s, 4, 2),
    "dil_sep_conv_3x3": lambda c, s: DilSepConv(c, 3, s, 2, 2),
    "conv_3x1_1x3": lambda c, s: AsymmetricConv(c, 3, s),
    "conv_7x1_1x7": lambda c, s: AsymmetricConv(c, 7, s),
}


def make_op(name: str, channels: Channels, stride: int = 1) -> nn.Module:
    """A new operator ``name`` (a key of :data:`OPS`) on ``channels`` channels with ``stride``."""
    if name not in OPS:
        raise SearchSpaceError(f"unknown NDS operator {name!r}; the operators are {sorted(OPS)}")
    return OPS[name](channels, stride)

