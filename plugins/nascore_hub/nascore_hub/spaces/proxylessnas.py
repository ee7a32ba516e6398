"""The ProxylessNAS model space.

From Cai, Zhu & Han, "ProxylessNAS: Direct Neural Architecture Search on Target Task and Hardware",
ICLR 2019 (https://arxiv.org/abs/1812.00332). A MobileNetV2-like chain of inverted residual blocks
(MBConv, :class:`~nascore_hub.spaces.mobilenet.InvertedResidual`) in seven stages: the first is a
fixed depthwise-separable convolution, then each block of stages 2 to 7 picks its kernel size (3, 5
or 7) and expansion ratio (3 or 6) among six MBConv candidates, and stages 2 to 6 pick their depth
(1 to 4 blocks; the paper's "zero" operator that skips a block is a smaller depth). With the
default arguments the space has ``6 * 1554 ** 5`` (about ``5.44e16``) architectures.

The searched architectures of the paper (for GPU, CPU and mobile phone latency) and three of AceNAS
(Zhang et al., "AceNAS: Learning to Rank Ace Neural Architectures with Weak Supervision of Weight
Sharing", ECML-PKDD 2021, https://arxiv.org/abs/2108.03001), found in the same space, are presets.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch
import torch.nn as nn

from nascore.errors import SearchSpaceError
from nascore.nn import LayerChoice, ModelSpace, Repeat
from nascore_hub.spaces.mobilenet import (
    ConvBNAct,
    DepthwiseSeparableConv,
    InvertedResidual,
    init_weights,
    make_divisible,
)
from nascore_hub.spaces.presets import PresetSpace, UnknownPresetError

__all__ = [
    "PRESETS",
    "PRESET_ARGUMENTS",
    "ProxylessNAS",
    "UnknownPresetError",
    "candidate_name",
    "mbconv_choice",
]

#: Stages whose depth is a decision (``"s<stage>_depth"``); stage 7 has one block, stage 1 is fixed.
SEARCHED_DEPTH_STAGES: tuple[int, ...] = (2, 3, 4, 5, 6)


def candidate_name(kernel_size: int, expand_ratio: float) -> str:
    """The name of the MBConv candidate of ``kernel_size`` and ``expand_ratio``: ``"k3e6"``."""
    return f"k{kernel_size}e{expand_ratio:g}"


def mbconv_choice(
    in_channels: int,
    out_channels: int,
    stride: int,
    *,
    kernel_sizes: Sequence[int],
    expand_ratios: Sequence[float],
    label: str,
    bn_eps: float = 1e-3,
    bn_momentum: float = 0.1,
) -> LayerChoice:
    """A :class:`~nascore.nn.LayerChoice` labelled ``label`` between MBConv blocks (ReLU6), one for each
    expansion ratio and kernel size, named by :func:`candidate_name` (``"k3e3"``, ``"k5e3"``, ...,
    expansion ratio slowest), as in ProxylessNAS: the candidates do not share weights."""
    candidates = {
        candidate_name(k, e): InvertedResidual(
            in_channels, out_channels, e, k, stride, activation="relu6", bn_eps=bn_eps, bn_momentum=bn_momentum
        )
        for e in expand_ratios
        for k in kernel_sizes
    }
    return LayerChoice(candidates, label=label)


def _stages(*blocks: str) -> dict[str, Any]:
    """A sample from the candidates of stages 2 to 7, one string per stage: ``"k3e6 k3e3"``."""
    sample: dict[str, Any] = {}
    for stage, ops in enumerate(blocks, start=2):
        names = ops.split()
        if stage in SEARCHED_DEPTH_STAGES:
            sample[f"s{stage}_depth"] = len(names)
        for index, name in enumerate(names):
            sample[f"s{stage}_i{index}"] = name
    return sample


#: The searched architectures, as samples of the default space (``s<stage>_depth`` and ``s<stage>_i<block>``).
PRESETS: dict[str, dict[str, Any]] = {
    # ProxylessNAS, the architectures searched for each hardware (the paper's Figure 4).
    "proxyless-gpu": _stages(
        "k5e3", "k7e3 k3e3", "k7e6 k5e3", "k5e6 k3e3 k5e3", "k7e6 k7e6 k7e6 k5e6", "k7e6",
    ),
    "proxyless-cpu": _stages(
        "k3e6 k3e3 k3e3 k3e3", "k3e6 k3e3 k3e3 k5e3", "k3e6 k3e3", "k5e6 k3e3 k3e3 k3e3",
        "k5e6 k5e3 k5e3 k3e3", "k5e6",
    ),
    "proxyless-mobile": _stages(
        "k5e3 k3e3", "k7e3 k3e3 k5e3 k5e3", "k7e6 k5e3 k5e3 k5e3", "k5e6 k5e3 k5e3 k5e3",
        "k7e6 k7e6 k7e3 k7e3", "k7e6",
    ),
    # AceNAS's three architectures in this space.
    "acenas-m1": _stages(
        "k3e6 k3e3", "k5e3 k3e3 k5e3", "k3e6 k5e3", "k7e6 k3e6 k3e6 k7e3", "k7e6 k7e6 k7e3 k7e3", "k7e6",
    ),
    "acenas-m2": _stages(
        "k5e3", "k3e6 k3e3 k5e3", "k7e6 k5e6", "k5e6 k5e3 k5e6 k3e6", "k7e6 k5e6 k5e3 k5e6", "k7e6",
    ),
    "acenas-m3": _stages(
        "k3e3 k3e6", "k5e3 k3e3", "k5e6 k7e6 k3e6", "k7e6 k7e3 k7e3 k5e3", "k7e6 k7e3 k7e6 k3e3", "k5e6",
    ),
}

#: Init arguments the presets are built with by :meth:`ProxylessNAS.load_preset` (the GPU and CPU
#: models are wider than the default ``base_widths``).
PRESET_ARGUMENTS: dict[str, dict[str, Any]] = {
    "proxyless-gpu": {"base_widths": (40, 24, 32, 56, 112, 128, 256, 432, 1728)},
    "proxyless-cpu": {"base_widths": (40, 24, 32, 48, 88, 104, 216, 360, 1432)},
}

_DEFAULT_WIDTHS = (32, 16, 32, 40, 80, 96, 192, 320, 1280)
_DEFAULT_STRIDES = (2, 1, 2, 2, 2, 1, 2, 1)


def _check_positive_ints(values: Any, what: str, length: int | None = None) -> tuple[int, ...]:
    values = tuple(values) if isinstance(values, (list, tuple)) else (values,)
    if length is not None and len(values) != length:
        raise SearchSpaceError(f"ProxylessNAS: {what} must have {length} entries, got {len(values)}: {values!r}")
    if not values or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in values):
        raise SearchSpaceError(f"ProxylessNAS: {what} must be positive ints, got {values!r}")
    return values


class ProxylessNAS(PresetSpace, ModelSpace):
    """The ProxylessNAS search space (Cai, Zhu & Han, "ProxylessNAS: Direct Neural Architecture Search on
    Target Task and Hardware", ICLR 2019, https://arxiv.org/abs/1812.00332).

    A 3x3 convolution stem (``base_widths[0]`` channels), stage 1, a fixed 3x3 depthwise-separable
    convolution, stages 2 to 7 of MBConv blocks, a 1x1 convolution to ``base_widths[8]`` channels,
    global average pooling, dropout and a linear classifier; every convolution has batch
    normalization and ReLU6 (the projections of the blocks are linear). Channels are
    ``make_divisible(base_width * width_mult, 8)``.

    The decisions: each block of stages 2 to 7 is a :class:`~nascore.nn.LayerChoice` labelled
    ``"s<stage>_i<block>"`` between the MBConv candidates of every ``expand_ratios`` and
    ``kernel_sizes`` (named ``"k<kernel>e<ratio>"``, :func:`candidate_name`; they do not share
    weights); stages 2 to 6 are a :class:`~nascore.nn.Repeat` whose depth, labelled
    ``"s<stage>_depth"``, ranges over ``depth_range``; stage 7 has one block. The first block of a
    stage has the stage's stride and width; the others have stride 1 and a residual connection.

    With ``c = len(kernel_sizes) * len(expand_ratios)`` candidates and depths ``d0`` to ``d1``, the
    space has ``c * (c ** d0 + ... + c ** d1) ** 5`` architectures (samples list the blocks of the
    chosen depth only): ``ProxylessNAS().space_size()`` is ``6 * 1554 ** 5 = 54,375,883,032,510,144``
    (about ``5.44e16``; ``space_size`` returns a float).

    :param num_labels: the classes of the classifier.
    :param base_widths: the widths of the stem, stages 1 to 7 and the last convolution (9 ints).
    :param dropout_rate: dropout before the classifier.
    :param width_mult: multiplier of every width.
    :param bn_eps: ``eps`` of every batch normalization.
    :param bn_momentum: ``momentum`` of every batch normalization.
    :param kernel_sizes: the kernel sizes of the candidates (odd ints).
    :param expand_ratios: the expansion ratios of the candidates.
    :param depth_range: ``(min, max)`` blocks of stages 2 to 6 (``1 <= min <= max``).
    :param stride: the strides of the stem and of stages 1 to 7 (8 entries, each 1 or 2); the
        default, ImageNet's ``(2, 1, 2, 2, 2, 1, 2, 1)``, divides the resolution by 32; use ones
        for small images.

    Fixed architectures: :meth:`preset` (``"proxyless-gpu"``, ``"proxyless-cpu"``,
    ``"proxyless-mobile"``, ``"acenas-m1"``, ``"acenas-m2"``, ``"acenas-m3"``) gives a sample,
    :meth:`fixed_arch` the context in which the space builds as that one model, :meth:`load_preset`
    the built model (with the preset's widths, :data:`PRESET_ARGUMENTS`, unless overridden; fresh
    weights).
    """

    PRESETS: ClassVar[Mapping[str, Mapping[str, Any]]] = PRESETS
    PRESET_NAMES: ClassVar[tuple[str, ...]] = tuple(PRESETS)
    PRESET_ARGUMENTS: ClassVar[Mapping[str, Mapping[str, Any]]] = PRESET_ARGUMENTS

    def __init__(
        self,
        num_labels: int = 1000,
        base_widths: Sequence[int] = _DEFAULT_WIDTHS,
        dropout_rate: float = 0.0,
        width_mult: float = 1.0,
        bn_eps: float = 1e-3,
        bn_momentum: float = 0.1,
        *,
        kernel_sizes: Sequence[int] = (3, 5, 7),
        expand_ratios: Sequence[float] = (3, 6),
        depth_range: tuple[int, int] = (1, 4),
        stride: Sequence[int] = _DEFAULT_STRIDES,
    ) -> None:
        super().__init__()
        base_widths = _check_positive_ints(base_widths, "base_widths", 9)
        kernel_sizes = _check_positive_ints(kernel_sizes, "kernel_sizes")
        if any(k % 2 == 0 for k in kernel_sizes):
            raise SearchSpaceError(f"ProxylessNAS: kernel_sizes must be odd (for 'same' padding), got {kernel_sizes!r}")
        strides = _check_positive_ints(stride, "stride", 8)
        if any(s > 2 for s in strides):
            raise SearchSpaceError(f"ProxylessNAS: every stride must be 1 or 2, got {strides!r}")
        expand_ratios = tuple(expand_ratios) if isinstance(expand_ratios, (list, tuple)) else (expand_ratios,)
        if not expand_ratios or any(isinstance(e, bool) or not isinstance(e, (int, float)) or e <= 0 for e in expand_ratios):
            raise SearchSpaceError(f"ProxylessNAS: expand_ratios must be positive numbers, got {expand_ratios!r}")
        if not (
            isinstance(depth_range, (tuple, list))
            and len(depth_range) == 2
            and all(isinstance(d, int) and not isinstance(d, bool) for d in depth_range)
            and 1 <= depth_range[0] <= depth_range[1]
        ):
            raise SearchSpaceError(f"ProxylessNAS: depth_range must be (min, max) with 1 <= min <= max, got {depth_range!r}")
        if not 0 <= dropout_rate < 1:
            raise SearchSpaceError(f"ProxylessNAS: dropout_rate must be in [0, 1), got {dropout_rate!r}")
        if not width_mult > 0:
            raise SearchSpaceError(f"ProxylessNAS: width_mult must be positive, got {width_mult!r}")

        self.num_labels = num_labels
        self.dropout_rate = dropout_rate
        self.widths = widths = [make_divisible(w * width_mult, 8) for w in base_widths]
        bn = {"bn_eps": bn_eps, "bn_momentum": bn_momentum}
        choice_args = {"kernel_sizes": kernel_sizes, "expand_ratios": expand_ratios, **bn}

        self.stem = ConvBNAct(3, widths[0], 3, strides[0], activation="relu6", **bn)
        blocks: list[nn.Module] = [DepthwiseSeparableConv(widths[0], widths[1], 3, strides[1], activation="relu6", **bn)]
        for stage in range(2, 8):
            in_width, out_width, stage_stride = widths[stage - 1], widths[stage], strides[stage]

            def block(index: int, stage: int = stage, i: int = in_width, o: int = out_width, s: int = stage_stride) -> nn.Module:
                first = index == 0
                return mbconv_choice(i if first else o, o, s if first else 1, label=f"s{stage}_i{index}", **choice_args)

            if stage in SEARCHED_DEPTH_STAGES:
                blocks.append(Repeat(block, tuple(depth_range), label=f"s{stage}_depth"))
            else:
                blocks.append(block(0))
        self.blocks = nn.Sequential(*blocks)
        self.feature_mix_layer = ConvBNAct(widths[7], widths[8], 1, activation="relu6", **bn)
        self.global_avg_pooling = nn.AdaptiveAvgPool2d(1)
        self.dropout_layer = nn.Dropout(dropout_rate)
        self.classifier = nn.Linear(widths[8], num_labels)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.feature_mix_layer(self.blocks(self.stem(x)))
        x = torch.flatten(self.global_avg_pooling(x), 1)
        return self.classifier(self.dropout_layer(x))
