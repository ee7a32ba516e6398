"""The MobileNetV3 model space.

From Howard et al., "Searching for MobileNetV3", ICCV 2019 (https://arxiv.org/abs/1905.02244), in the
form of the largest space of TuNAS (Bender et al., "Can Weight Sharing Outperform Random Architecture
Search? An Investigation With TuNAS", CVPR 2020, https://arxiv.org/abs/2008.06120), which once-for-all
and NNI's ``MobileNetV3Space`` follow: a stem, a depthwise-separable stage, five stages of inverted
residual blocks (MBConv) and a head, where the width multiplier of every stage, the depth of every
MBConv stage, and the expansion ratio, kernel size and (in some stages) squeeze-and-excitation of
every block are decisions. The decisions are arguments of ``Mutable<Layer>`` wrappers, so one-shot
strategies share the weights between them (a largest kernel, the leading channels). With the default
arguments the space has about ``2.20e36`` architectures (see :class:`MobileNetV3Space`).

MobileNetV3-Large and MobileNetV3-Small (with width multipliers 0.5, 0.75 and 1.0), and the six
architectures of Cream (Peng et al., "Cream of the Crop: Distilling Prioritized Paths For One-Shot
Neural Architecture Search", NeurIPS 2020, https://arxiv.org/abs/2010.15821), are presets.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal

import torch
import torch.nn as nn

import nascore
from nascore.errors import SearchSpaceError
from nascore.nn import LayerChoice, ModelSpace, MutableLinear, Repeat
from nascore_hub.spaces.mobilenet import (
    ACTIVATIONS,
    ConvBNAct,
    DepthwiseSeparableConv,
    InvertedResidual,
    MaybeChoice,
    SqueezeExcite,
    SqueezeExciteFactory,
    init_weights,
    make_divisible,
)
from nascore_hub.spaces.presets import PresetSpace, UnknownPresetError

__all__ = [
    "PRESETS",
    "PRESET_ARGUMENTS",
    "MobileNetV3Space",
    "UnknownPresetError",
]

SqueezeExciteMode = Literal["force", "optional", "none"]

_DEFAULT_WIDTHS = (16, 16, 16, 32, 64, 128, 256, 512, 1024)
_DEFAULT_STRIDES = (2, 1, 2, 2, 2, 1, 2, 1, 1)
_DEFAULT_ACTIVATIONS = ("hswish", "relu", "relu", "relu", "hswish", "hswish", "hswish", "hswish", "hswish")
_DEFAULT_SE: tuple[SqueezeExciteMode, ...] = ("none", "none", "optional", "none", "optional", "optional")


def _arch(*stages: str, stem_ks: int = 3, s0_ks: int = 3) -> dict[str, Any]:
    """A sample from one string per MBConv stage (1 to 5) of ``"<exp>k<kernel>"`` blocks: ``"4k3 3k3"``."""
    sample: dict[str, Any] = {"stem_ks": stem_ks, "s0_i0_ks": s0_ks}
    for stage, blocks in enumerate(stages, start=1):
        names = blocks.split()
        sample[f"s{stage}_depth"] = len(names)
        for index, name in enumerate(names):
            exp, _, ks = name.partition("k")
            sample[f"s{stage}_i{index}_exp"] = float(exp)
            sample[f"s{stage}_i{index}_ks"] = int(ks)
    return sample


def _small_arguments(multiplier: float) -> dict[str, Any]:
    """Init arguments of MobileNetV3-Small with ``multiplier`` (the stem keeps 16 channels below 0.75)."""
    widths = [16, 16, 24, 40, 48, 96, 576, 1024]
    for i in range(7):
        if i > 0 or multiplier >= 0.75:
            widths[i] = make_divisible(widths[i] * multiplier, 8)
    return {
        "base_widths": tuple(widths),
        "width_multipliers": 1.0,
        "expand_ratios": (3.0, 3.67, 4.0, 4.5, 6.0),
        "squeeze_excite": ("force", "none", "force", "force", "force"),
        "depth_range": (1, 3),
        "stride": (2, 2, 2, 2, 1, 2, 1, 1),
        "activation": ("hswish", "relu", "relu", "hswish", "hswish", "hswish", "hswish", "hswish"),
        "bn_eps": 1e-5,
    }


_SMALL = _arch("4.5k3 3.67k3", "4k5 6k5 6k5", "3k5 3k5", "6k5 6k5 6k5")
_CREAM_ARGUMENTS: dict[str, Any] = {
    "base_widths": (16, 16, 24, 40, 80, 96, 192, 320, 1280),
    "width_multipliers": 1.0,
    "expand_ratios": (4.0, 6.0),
    "squeeze_excite": ("force",) * 6,
    "depth_range": (1, 6),
    "activation": ("swish",) * 9,
    "bn_eps": 1e-5,
}

#: The fixed architectures, as samples of the space built with their :data:`PRESET_ARGUMENTS`.
PRESETS: dict[str, dict[str, Any]] = {
    # MobileNetV3-Large 1.0 (Table 1 of the paper).
    "mobilenetv3-large-100": _arch("4k3 3k3", "3k5 3k5 3k5", "6k3 2.5k3 2.3k3 2.3k3", "6k3 6k3", "6k5 6k5 6k5"),
    # MobileNetV3-Small (Table 2 of the paper), with width multipliers 0.5, 0.75 and 1.0.
    "mobilenetv3-small-050": dict(_SMALL),
    "mobilenetv3-small-075": dict(_SMALL),
    "mobilenetv3-small-100": dict(_SMALL),
    # Cream, from 14 to 604 MFLOPs.
    "cream-014": _arch("4k3", "6k5 6k5", "6k5 6k5", "6k3", "6k5"),
    "cream-043": _arch("4k3", "6k5 6k3", "6k5 6k3", "6k5 6k5 6k5", "6k5 6k5"),
    "cream-114": _arch("4k3", "6k5 6k5", "6k5 6k5", "6k5 6k5 6k5", "6k5 6k5"),
    "cream-287": _arch("4k3", "6k5 6k5", "6k5 6k3 6k5", "6k5 6k5 6k5 6k5", "6k5 6k5 6k5"),
    "cream-481": _arch(
        "6k5 4k7 6k5 6k3", "6k5 4k5 6k5 4k3", "6k5 6k5 6k5 6k3 6k3", "6k5 6k5 6k5 6k5", "6k5 6k5 6k5 6k5"
    ),
    "cream-604": _arch(
        "6k5 6k5 4k5 6k5 6k5", "6k5 4k5 6k5 4k5 6k5", "6k5 4k5 6k5 4k5 6k5",
        "6k5 6k5 4k5 4k5 6k5 6k5", "6k5 6k5 4k5 6k5 6k5 6k5",
    ),
}

#: The init arguments each preset is built with by :meth:`MobileNetV3Space.load_preset`.
PRESET_ARGUMENTS: dict[str, dict[str, Any]] = {
    "mobilenetv3-large-100": {
        "base_widths": (16, 16, 24, 40, 80, 112, 160, 960, 1280),
        "width_multipliers": 1.0,
        "expand_ratios": (1.0, 2.0, 2.3, 2.5, 3.0, 4.0, 6.0),
        "squeeze_excite": ("none", "none", "force", "none", "force", "force"),
        "bn_eps": 1e-5,
    },
    "mobilenetv3-small-050": _small_arguments(0.5),
    "mobilenetv3-small-075": _small_arguments(0.75),
    "mobilenetv3-small-100": _small_arguments(1.0),
    **{name: dict(_CREAM_ARGUMENTS) for name in PRESETS if name.startswith("cream-")},
}


def _as_tuple(value: Any) -> tuple[Any, ...]:
    return tuple(value) if isinstance(value, (list, tuple)) else (value,)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _positive(value: Any) -> bool:
    return _is_number(value) and value > 0


def _odd_int(value: Any) -> bool:
    return _is_number(value) and isinstance(value, int) and value > 0 and value % 2 == 1


#: What each kind of decision takes: (check, description).
_CHECKS = {
    "width_multipliers": (_positive, "positive numbers"),
    "expand_ratios": (_positive, "positive numbers"),
    "kernel_sizes": (_odd_int, "odd positive ints (for 'same' padding)"),
    "stem_kernel_sizes": (_odd_int, "odd positive ints (for 'same' padding)"),
}


def _check_values(values: Any, what: str) -> tuple[Any, ...]:
    """The values of the decision ``what`` (a sequence, or one value: fixed), checked."""
    check, description = _CHECKS[what]
    options = _as_tuple(values)
    if not options or not all(check(v) for v in options):
        raise SearchSpaceError(f"MobileNetV3Space: {what} must be {description}, got {values!r}")
    if len(set(options)) != len(options):
        raise SearchSpaceError(f"MobileNetV3Space: {what} has duplicate values: {values!r}")
    return options


def _decision(label: str, values: Any, what: str) -> MaybeChoice:
    """A choice labelled ``label`` over ``values`` (a sequence), or ``values`` itself (a number: fixed)."""
    options = _check_values(values, what)
    return nascore.choice(label, list(options)) if isinstance(values, (list, tuple)) else values


class MobileNetV3Space(PresetSpace, ModelSpace):
    """The MobileNetV3 search space (Howard et al., "Searching for MobileNetV3", ICCV 2019,
    https://arxiv.org/abs/1905.02244), as the largest space of TuNAS (https://arxiv.org/abs/2008.06120).

    With ``n = len(base_widths) - 1`` (8 by default) the network is: a stem convolution (kernel
    ``"stem_ks"``) to ``widths[0]`` channels; stage 0, a :class:`~nascore_hub.spaces.mobilenet.DepthwiseSeparableConv`
    (kernel ``"s0_i0_ks"``) to ``widths[1]``; stages 1 to ``n - 3``, each a :class:`~nascore.nn.Repeat`
    (depth ``"s<i>_depth"`` in ``depth_range``) of :class:`~nascore_hub.spaces.mobilenet.InvertedResidual`
    blocks to ``widths[i + 1]``, block ``j`` with expansion ratio ``"s<i>_i<j>_exp"`` (one of
    ``expand_ratios``) and kernel ``"s<i>_i<j>_ks"`` (one of ``kernel_sizes``), the first block with
    the stage's stride; a 1x1 convolution to ``widths[n - 1]``, global average pooling, a 1x1
    convolution with bias (no batch normalization) to ``widths[n]``, dropout and a linear classifier.
    ``stride[k]`` and ``activation[k]`` are those of the stem (``k = 0``), stage ``k - 1`` and the
    two head convolutions (``k = n - 1, n``).

    Widths are ``make_divisible(base_widths[k] * "s<max(k - 1, 0)>_width_mult", 8)``: the stem and
    stage 0 share one width multiplier, and each later stage and head convolution has its own, chosen
    among ``width_multipliers`` (a float: fixed, no decision). The decisions are arguments of
    ``Mutable<Layer>`` wrappers, so in one-shot strategies the candidates share weights. In a stage
    whose ``squeeze_excite`` is ``"optional"``, every block has a :class:`~nascore.nn.LayerChoice`
    ``"s<i>_i<j>_se"`` between ``"identity"`` and ``"se"`` (a
    :class:`~nascore_hub.spaces.mobilenet.SqueezeExcite` of the hidden features, squeezed to a quarter
    of the hidden channels, or of the input channels with ``se_from_exp=False``); ``"force"`` always
    has it, ``"none"`` never. Stage 0 is a block too: ``"s0_i0_se"`` when its mode is ``"optional"``.

    ``MobileNetV3Space().space_size()`` is ``7 ** 8 * 2 * 3 * S(18) ** 2 * S(36) ** 3`` with
    ``S(b) = b + b ** 2 + b ** 3 + b ** 4``: 8 width multipliers of 7 values, 2 stem and 3 stage-0
    kernels, and stages 1 and 3 (18 blocks: 6 ratios x 3 kernels) and 2, 4 and 5 (36: with or
    without squeeze-and-excitation) of 1 to 4 blocks; about ``2.20e36`` (``space_size`` returns a float).

    :param num_labels: the classes of the classifier.
    :param base_widths: the widths of the stem, the stages and the two head convolutions (``n + 1 >= 5`` ints).
    :param width_multipliers: the width multipliers to choose from, or one float (fixed).
    :param expand_ratios: the expansion ratios to choose from, or one number (fixed).
    :param kernel_sizes: the kernel sizes of stage 0 and of the blocks, or one int (fixed).
    :param stem_kernel_sizes: the kernel sizes of the stem, or one int (fixed).
    :param squeeze_excite: ``"force"``, ``"optional"`` or ``"none"`` for stages 0 to ``n - 3`` (``n - 2`` entries).
    :param depth_range: ``(min, max)`` blocks of each of stages 1 to ``n - 3``, or one pair per stage
        (``n - 3`` pairs), ``1 <= min <= max``.
    :param stride: the strides of the stem, the stages and the head convolutions (``n + 1`` entries, 1 or 2);
        the default divides the resolution by 32, as on ImageNet; use ones for small images.
    :param activation: the activation of the stem, the stages and the head convolutions (``n + 1``
        names among ``"hswish"``, ``"relu"``, ``"swish"``, ``"relu6"``, ...).
    :param se_from_exp: size the squeeze of squeeze-and-excitation from the expanded channels (else
        from the input channels).
    :param dropout_rate: dropout before the classifier.
    :param bn_eps: ``eps`` of every batch normalization.
    :param bn_momentum: ``momentum`` of every batch normalization.

    Fixed architectures: :meth:`preset` (``"mobilenetv3-large-100"``, ``"mobilenetv3-small-050"``,
    ``"mobilenetv3-small-075"``, ``"mobilenetv3-small-100"``, ``"cream-014"``, ``"cream-043"``,
    ``"cream-114"``, ``"cream-287"``, ``"cream-481"``, ``"cream-604"``) gives a sample of the space built
    with :meth:`preset_arguments`; :meth:`load_preset` builds the model with those arguments (updated
    with its keyword arguments; fresh weights), :meth:`fixed_arch` the context to build it yourself.
    """

    PRESETS: ClassVar[Mapping[str, Mapping[str, Any]]] = PRESETS
    PRESET_NAMES: ClassVar[tuple[str, ...]] = tuple(PRESETS)
    PRESET_ARGUMENTS: ClassVar[Mapping[str, Mapping[str, Any]]] = PRESET_ARGUMENTS

    def __init__(
        self,
        num_labels: int = 1000,
        base_widths: Sequence[int] = _DEFAULT_WIDTHS,
        width_multipliers: Sequence[float] | float = (0.5, 0.625, 0.75, 1.0, 1.25, 1.5, 2.0),
        expand_ratios: Sequence[float] | float = (1.0, 2.0, 3.0, 4.0, 5.0, 6.0),
        squeeze_excite: Sequence[SqueezeExciteMode] = _DEFAULT_SE,
        depth_range: tuple[int, int] | Sequence[tuple[int, int]] = (1, 4),
        stride: Sequence[int] = _DEFAULT_STRIDES,
        activation: Sequence[str] = _DEFAULT_ACTIVATIONS,
        se_from_exp: bool = True,
        dropout_rate: float = 0.2,
        bn_eps: float = 1e-3,
        bn_momentum: float = 0.1,
        *,
        kernel_sizes: Sequence[int] | int = (3, 5, 7),
        stem_kernel_sizes: Sequence[int] | int = (3, 5),
    ) -> None:
        super().__init__()
        base_widths = _as_tuple(base_widths)
        if len(base_widths) < 5 or not all(isinstance(w, int) and not isinstance(w, bool) and w > 0 for w in base_widths):
            raise SearchSpaceError(
                f"MobileNetV3Space: base_widths must be at least 5 positive ints (stem, stage 0, one MBConv stage "
                f"and the two head convolutions), got {base_widths!r}"
            )
        self.num_blocks = n = len(base_widths) - 1
        strides, activations = _as_tuple(stride), _as_tuple(activation)
        if len(strides) != n + 1 or any(s not in (1, 2) or isinstance(s, bool) for s in strides):
            raise SearchSpaceError(
                f"MobileNetV3Space: stride must have one entry per base width ({n + 1}), each 1 or 2, got {stride!r}"
            )
        if len(activations) != n + 1 or any(a not in ACTIVATIONS for a in activations):
            raise SearchSpaceError(
                f"MobileNetV3Space: activation must have one name per base width ({n + 1}), each one of "
                f"{sorted(ACTIVATIONS)}, got {activation!r}"
            )
        se_modes = _as_tuple(squeeze_excite)
        if len(se_modes) != n - 2 or any(se not in ("force", "optional", "none") for se in se_modes):
            raise SearchSpaceError(
                f"MobileNetV3Space: squeeze_excite must have one entry per stage 0 to {n - 3} ({n - 2}), each "
                f"'force', 'optional' or 'none', got {squeeze_excite!r}"
            )
        self.depth_range = self._depth_ranges(depth_range, n - 3)
        if not 0 <= dropout_rate < 1:
            raise SearchSpaceError(f"MobileNetV3Space: dropout_rate must be in [0, 1), got {dropout_rate!r}")
        # Check the decisions' values before building anything.
        for what, values in (
            ("width_multipliers", width_multipliers),
            ("expand_ratios", expand_ratios),
            ("kernel_sizes", kernel_sizes),
            ("stem_kernel_sizes", stem_kernel_sizes),
        ):
            _check_values(values, what)

        self.num_labels = num_labels
        self.expand_ratios = expand_ratios
        self.kernel_sizes = kernel_sizes
        self.se_from_exp = se_from_exp
        self._bn = {"bn_eps": bn_eps, "bn_momentum": bn_momentum}

        # The stem and stage 0 share one width multiplier (as TuNAS); equal base widths under one
        # multiplier give one expression, so the blocks between them have a residual connection.
        multipliers: dict[str, MaybeChoice] = {}
        self.widths: list[MaybeChoice] = []
        for k, base in enumerate(base_widths):
            label = f"s{max(k - 1, 0)}_width_mult"
            if label not in multipliers:
                multipliers[label] = _decision(label, width_multipliers, "width_multipliers")
            self.widths.append(make_divisible(multipliers[label] * base, 8))
        widths = self.widths

        stem_ks = _decision("stem_ks", stem_kernel_sizes, "stem_kernel_sizes")
        self.stem = ConvBNAct(3, widths[0], stem_ks, strides[0], activation=activations[0], **self._bn)
        blocks: list[nn.Module] = [
            DepthwiseSeparableConv(
                widths[0],
                widths[1],
                _decision("s0_i0_ks", kernel_sizes, "kernel_sizes"),
                strides[1],
                squeeze_excite=self._squeeze_excite(se_modes[0], "s0_i0_se"),
                activation=activations[1],
                **self._bn,
            )
        ]
        for stage in range(1, n - 2):
            blocks.append(
                self._make_stage(stage, widths[stage], widths[stage + 1], se_modes[stage], strides[stage + 1], activations[stage + 1])
            )
        blocks += [
            ConvBNAct(widths[n - 2], widths[n - 1], 1, strides[n - 1], activation=activations[n - 1], **self._bn),
            nn.AdaptiveAvgPool2d(1),
            ConvBNAct(widths[n - 1], widths[n], 1, strides[n], activation=activations[n], norm=False),
        ]
        self.blocks = nn.Sequential(*blocks)
        self.classifier = nn.Sequential(nn.Dropout(dropout_rate), MutableLinear(widths[n], num_labels))
        init_weights(self)

    @staticmethod
    def _depth_ranges(depth_range: Any, stages: int) -> list[tuple[int, int]]:
        def valid(pair: Any) -> bool:
            return (
                isinstance(pair, (tuple, list))
                and len(pair) == 2
                and all(isinstance(d, int) and not isinstance(d, bool) for d in pair)
                and 1 <= pair[0] <= pair[1]
            )

        if valid(depth_range):
            return [tuple(depth_range)] * stages  # type: ignore[list-item]
        if isinstance(depth_range, (tuple, list)) and len(depth_range) == stages and all(valid(p) for p in depth_range):
            return [tuple(p) for p in depth_range]  # type: ignore[misc]
        raise SearchSpaceError(
            f"MobileNetV3Space: depth_range must be (min, max) with 1 <= min <= max, or {stages} such pairs "
            f"(one per MBConv stage), got {depth_range!r}"
        )

    def _squeeze_excite(self, mode: str, label: str) -> SqueezeExciteFactory | None:
        if mode == "none":
            return None

        def factory(hidden: MaybeChoice, inputs: MaybeChoice) -> nn.Module:
            # Always on the hidden features; se_from_exp=False sizes the squeeze from the input channels.
            se = SqueezeExcite(hidden, squeeze_from=None if self.se_from_exp else inputs)
            if mode == "force":
                return se
            return LayerChoice({"identity": nn.Identity(), "se": se}, label=label)

        return factory

    def _make_stage(
        self, stage: int, in_width: MaybeChoice, out_width: MaybeChoice, se: str, stride: int, activation: str
    ) -> Repeat:
        def block(index: int) -> nn.Module:
            prefix = f"s{stage}_i{index}"
            first = index == 0
            return InvertedResidual(
                in_width if first else out_width,
                out_width,
                _decision(f"{prefix}_exp", self.expand_ratios, "expand_ratios"),
                _decision(f"{prefix}_ks", self.kernel_sizes, "kernel_sizes"),
                stride if first else 1,
                squeeze_excite=self._squeeze_excite(se, f"{prefix}_se"),
                activation=activation,
                **self._bn,
            )

        return Repeat(block, self.depth_range[stage - 1], label=f"s{stage}_depth")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.stem(x))
        return self.classifier(torch.flatten(x, 1))
