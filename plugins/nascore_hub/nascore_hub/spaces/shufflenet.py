"""The ShuffleNet space of Single Path One-Shot (SPOS).

From Guo et al., "Single Path One-Shot Neural Architecture Search with Uniform Sampling", ECCV 2020
(https://arxiv.org/abs/1904.00420). A ShuffleNetV2-like network (Ma et al., "ShuffleNet V2: Practical
Guidelines for Efficient CNN Architecture Design", ECCV 2018, https://arxiv.org/abs/1807.11164) of 20
choice blocks in four stages; each block is one of four candidates: a ShuffleNetV2 block with a 3x3, 5x5
or 7x7 depthwise convolution (``"k3"``, ``"k5"``, ``"k7"``) or an Xception-like block of three 3x3
depthwise convolutions (``"xcep"``). That is ``4 ** 20 = 1,099,511,627,776`` architectures. With
channel search (SPOS's "channel search", NNI's ``channel_search=True``), the mid-channels of each block
are searched too, among 0.2x to 1.6x of the default in steps of 0.2 (8 widths shared by the block's four
candidates): ``(4 * 8) ** 20 = 2 ** 100`` (about ``1.27e30``) architectures.

Building blocks: :class:`ShuffleNetBlock`, :class:`ShuffleXceptionBlock`, :func:`channel_shuffle`
(ShuffleNet's channel shuffle), :func:`shuffle_split` (SPOS's shuffle-then-split of a block's input)
and :class:`ChannelShuffle` (the shuffle as a module).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch
import torch.nn as nn

from nascore.errors import SearchSpaceError
from nascore.nn import LayerChoice, ModelSpace, MutableBatchNorm2d, MutableConv2d
from nascore.space import Categorical, Mutable, MutableExpression, choice, current_frozen_sample
from nascore_hub.spaces.presets import PresetSpace, UnknownPresetError

__all__ = [
    "CANDIDATES",
    "CHANNEL_RATIOS",
    "PRESETS",
    "ChannelShuffle",
    "ShuffleNetBlock",
    "ShuffleNetSpace",
    "ShuffleXceptionBlock",
    "UnknownPresetError",
    "channel_shuffle",
    "mid_channel_choices",
    "shuffle_split",
]

#: The candidates of every choice block, in the order of the choices.
CANDIDATES: tuple[str, ...] = ("k3", "k5", "k7", "xcep")

#: The mid-channel multipliers of channel search (0.2x to 1.6x of the default, in steps of 0.2).
CHANNEL_RATIOS: tuple[float, ...] = (0.2, 0.4, 0.6, 0.8, 1.0, 1.2, 1.4, 1.6)

#: Fixed architectures, as samples (block label -> candidate), for the default 20 blocks without channel search.
PRESETS: dict[str, dict[str, str]] = {
    # The architecture SPOS found on ImageNet (NNI's ``load_searched_model("spos")``).
    "spos": {
        "layer_1": "k7", "layer_2": "k5", "layer_3": "k3", "layer_4": "k5",
        "layer_5": "k7", "layer_6": "k3", "layer_7": "k7", "layer_8": "k3",
        "layer_9": "k7", "layer_10": "k3", "layer_11": "k7", "layer_12": "xcep",
        "layer_13": "k3", "layer_14": "k3", "layer_15": "k3", "layer_16": "k3",
        "layer_17": "xcep", "layer_18": "k7", "layer_19": "xcep", "layer_20": "xcep",
    },
}

Channels = int | MutableExpression | Categorical


# --- channel shuffle -------------------------------------------------------------------------------


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """ShuffleNet's channel shuffle of an ``(N, C, ...)`` tensor: the channels, seen as ``groups`` groups
    of ``C // groups``, are interleaved (channel ``g * (C // groups) + i`` moves to ``i * groups + g``).

    ``C`` must be a multiple of ``groups``. ``channel_shuffle(x, 2)`` of channels ``[0, 1, 2, 3]`` is
    ``[0, 2, 1, 3]``.
    """
    return x.unflatten(1, (groups, -1)).transpose(1, 2).flatten(1, 2)


def shuffle_split(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """SPOS's channel shuffle and split at the start of a stride-1 ShuffleNetV2 block: the channels of even
    index and those of odd index, i.e. the two halves of ``channel_shuffle(x, C // 2)``.

    The previous block concatenated its shortcut and main branch; taking every other channel mixes the
    two into both halves, which is what a shuffle of two groups followed by a split does.
    """
    return x[:, 0::2], x[:, 1::2]


class ChannelShuffle(nn.Module):
    """:func:`channel_shuffle` with ``groups`` groups, as a module."""

    def __init__(self, groups: int) -> None:
        super().__init__()
        if not isinstance(groups, int) or groups < 1:
            raise SearchSpaceError(f"ChannelShuffle: groups must be a positive int, got {groups!r}")
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return channel_shuffle(x, self.groups)

    def extra_repr(self) -> str:
        return f"groups={self.groups}"


# --- blocks ----------------------------------------------------------------------------------------


class ShuffleNetBlock(nn.Module):
    """The ShuffleNetV2 block (Ma et al., ECCV 2018, https://arxiv.org/abs/1807.11164) with a searchable
    kernel size and mid-channels, as SPOS uses it.

    Stride 1: the input (``in_channels == out_channels``, an even number) is split by :func:`shuffle_split`
    into a shortcut half, passed through, and a main half. Stride 2: the whole input goes through both a
    projection branch (a depthwise ``kernel_size`` convolution of stride 2, BN, a 1x1 convolution, BN, ReLU)
    and the main branch. The output concatenates the shortcut (or projection) with the main branch's
    ``out_channels - in_channels // 2`` (stride 1) or ``out_channels - in_channels`` (stride 2) channels.

    The main branch is the convolutions of ``sequence``: ``"p"`` a pointwise (1x1) convolution, BN, ReLU;
    ``"d"`` a depthwise ``kernel_size`` convolution and BN (the first one carries the stride). The first
    pointwise convolution outputs ``mid_channels``; a depthwise convolution keeps its channels; the last
    operation must be pointwise and outputs the main branch's channels. ``"pdp"`` (the default) is the
    ShuffleNetV2 block; :class:`ShuffleXceptionBlock` is ``"dpdpdp"``.

    :param in_channels: input channels.
    :param out_channels: output channels.
    :param mid_channels: channels inside the main branch: an int or a choice (``nascore.choice``) or an
        expression of choices, which makes the block a space over its width.
    :param kernel_size: of the depthwise convolutions, 3, 5 or 7.
    :param stride: 1 or 2.
    :param sequence: the main branch's operations, ``"p"`` and ``"d"``, ending with ``"p"``.
    :param affine: whether the batch normalizations have learnable affine parameters.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        mid_channels: Channels,
        *,
        kernel_size: int,
        stride: int,
        sequence: str = "pdp",
        affine: bool = True,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        if stride not in (1, 2):
            raise SearchSpaceError(f"{name}: stride must be 1 or 2, got {stride!r}")
        if kernel_size not in (3, 5, 7):
            raise SearchSpaceError(f"{name}: kernel_size must be 3, 5 or 7, got {kernel_size!r}")
        if not sequence or set(sequence) - {"p", "d"} or sequence[-1] != "p":
            raise SearchSpaceError(
                f"{name}: sequence must be made of 'p' (pointwise) and 'd' (depthwise) and end with 'p', "
                f"got {sequence!r}"
            )
        if stride == 1 and (in_channels != out_channels or in_channels % 2):
            raise SearchSpaceError(
                f"{name}: a stride-1 block splits its input in two halves and keeps its width, so in_channels and "
                f"out_channels must be equal and even, got {in_channels} and {out_channels}"
            )
        self.channels = in_channels // 2 if stride == 1 else in_channels
        self.main_out_channels = out_channels - self.channels
        if self.main_out_channels <= 0:
            raise SearchSpaceError(
                f"{name}: out_channels ({out_channels}) must exceed the {self.channels} channels of the shortcut "
                f"(in_channels {in_channels}, stride {stride}): give a stride-2 block more output than input channels"
            )
        if isinstance(mid_channels, int) and mid_channels < 1:
            raise SearchSpaceError(f"{name}: mid_channels must be positive, got {mid_channels}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        sample = current_frozen_sample()
        if sample is not None and isinstance(mid_channels, Mutable):
            mid_channels = mid_channels.freeze(sample)
        #: The mid-channels: an int, or (built as a space) the decision; built frozen, the chosen int.
        self.mid_channels = mid_channels
        self.kernel_size = kernel_size
        self.stride = stride
        self.sequence = sequence
        self.affine = affine
        self.branch_main = nn.Sequential(*self._main_branch())
        if stride == 2:
            c, pad = self.channels, kernel_size // 2
            self.branch_proj = nn.Sequential(
                MutableConv2d(c, c, kernel_size, stride, pad, groups=c, bias=False),
                MutableBatchNorm2d(c, affine=affine),
                MutableConv2d(c, c, 1, 1, 0, bias=False),
                MutableBatchNorm2d(c, affine=affine),
                nn.ReLU(),
            )
        else:
            self.branch_proj = nn.Sequential()

    def _main_branch(self) -> list[nn.Module]:
        layers: list[nn.Module] = []
        pad = self.kernel_size // 2
        prev: Channels = self.channels
        first_point = first_depth = True
        for i, token in enumerate(self.sequence):
            if i == len(self.sequence) - 1:
                out: Channels = self.main_out_channels
            elif token == "p" and first_point:
                out = self.mid_channels
            else:
                out = prev
            if token == "d":
                stride = self.stride if first_depth else 1
                layers.append(MutableConv2d(prev, prev, self.kernel_size, stride, pad, groups=prev, bias=False))
                layers.append(MutableBatchNorm2d(prev, affine=self.affine))  # depthwise: out is prev
                first_depth = False
            else:
                layers.append(MutableConv2d(prev, out, 1, 1, 0, bias=False))
                layers.append(MutableBatchNorm2d(out, affine=self.affine))
                layers.append(nn.ReLU())
                first_point = False
            prev = out
        return layers

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 2:
            shortcut, main = self.branch_proj(x), x
        else:
            shortcut, main = shuffle_split(x)
        return torch.cat((shortcut, self.branch_main(main)), 1)


class ShuffleXceptionBlock(ShuffleNetBlock):
    """SPOS's ``choice_x`` block: a :class:`ShuffleNetBlock` whose main branch is Xception-like, three
    3x3 depthwise convolutions each followed by a pointwise one (``sequence="dpdpdp"``).

    The first pointwise convolution outputs ``mid_channels``, the second keeps them, the last outputs the
    main branch's channels; the first depthwise convolution carries the stride.
    """

    def __init__(
        self, in_channels: int, out_channels: int, mid_channels: Channels, *, stride: int, affine: bool = True
    ) -> None:
        super().__init__(
            in_channels, out_channels, mid_channels, kernel_size=3, stride=stride, sequence="dpdpdp", affine=affine
        )


def mid_channel_choices(base: int, ratios: Sequence[float] = CHANNEL_RATIOS) -> list[int]:
    """The mid-channels of channel search: ``floor(base * ratio)`` for each ratio (NNI's and SPOS's
    quantization; ``base`` 32 gives ``[6, 12, 19, 25, 32, 38, 44, 51]``). They must be positive and distinct."""
    values = [math.floor(base * ratio + 1e-9) for ratio in ratios]
    if not values or min(values) < 1 or len(set(values)) != len(values):
        raise SearchSpaceError(
            f"channel search: the mid-channel choices {values} of a block of {base} default mid-channels (ratios "
            f"{list(ratios)}) must be distinct and positive; widen the stage (stage_out_channels: mid-channels are "
            "half a stage's output channels) or give fewer, wider-apart channel_ratios"
        )
    return values


# --- the model space -------------------------------------------------------------------------------


def _positive_ints(value: Any, name: str) -> tuple[int, ...]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise SearchSpaceError(f"ShuffleNetSpace: {name} must be a sequence of positive ints, got {value!r}")
    values = tuple(value)
    if not values or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in values):
        raise SearchSpaceError(f"ShuffleNetSpace: {name} must be a non-empty sequence of positive ints, got {value!r}")
    return values


class ShuffleNetSpace(PresetSpace, ModelSpace):
    """The ShuffleNet search space of SPOS (Guo et al., "Single Path One-Shot Neural Architecture Search with
    Uniform Sampling", ECCV 2020, https://arxiv.org/abs/1904.00420).

    A 3x3 convolution of stride ``stem_stride`` with ``first_conv_channels`` channels, BN and ReLU; stages of
    ``stage_repeats`` choice blocks with ``stage_out_channels`` output channels, the first block of each
    stage of stride 2; a 1x1 convolution to ``last_conv_channels``, BN, ReLU, global average pooling,
    dropout and a linear classifier (no bias) over ``num_labels`` classes. The defaults are the paper's
    ImageNet network: 4 stages of 4, 4, 8 and 4 blocks (20 in all) with 64, 160, 320 and 640 channels.

    Block ``i`` (counting from 1 over all stages) is a :class:`~nascore.nn.LayerChoice` labelled
    ``"layer_<i>"`` over :data:`CANDIDATES`: ``"k3"``, ``"k5"``, ``"k7"`` (a :class:`ShuffleNetBlock` with
    that depthwise kernel) and ``"xcep"`` (a :class:`ShuffleXceptionBlock`). Its mid-channels are half
    its output channels; with ``channel_search=True`` they are the decision ``"channel_<i>"`` over
    :func:`mid_channel_choices` (0.2x to 1.6x of that, ``channel_ratios``), shared by its four candidates.
    So ``ShuffleNetSpace().space_size()`` is ``4 ** 20 = 1099511627776`` and
    ``ShuffleNetSpace(channel_search=True).space_size()`` is ``32 ** 20 = 2 ** 100`` (about ``1.27e30``;
    ``space_size`` returns a float).

    :param num_labels: the classes of the classifier.
    :param channel_search: search the mid-channels of each block too.
    :param affine: whether the blocks' and the last convolution's batch normalizations have affine parameters.
    :param stage_repeats: the blocks of each stage.
    :param stage_out_channels: the output channels of each stage (as many as ``stage_repeats``): even,
        increasing numbers (a stage's first block concatenates its input with new channels).
    :param first_conv_channels: the stem's channels.
    :param last_conv_channels: the channels of the last 1x1 convolution.
    :param stem_stride: 2 (the paper's, for ImageNet: the network downsamples 32 times); 1 for small
        images (CIFAR's 32x32, the tests' 8x8).
    :param channel_ratios: the mid-channel multipliers of channel search.
    :param dropout: the dropout rate before the classifier.

    Fixed architectures: :meth:`preset` (``"spos"``, the network SPOS found, for the default 20 blocks
    without channel search) gives a sample, :meth:`fixed_arch` the context in which the space builds as
    that one model, :meth:`load_preset` the built model (fresh weights: nothing is downloaded).
    """

    PRESETS: ClassVar[Mapping[str, Mapping[str, Any]]] = PRESETS
    PRESET_NAMES: ClassVar[tuple[str, ...]] = tuple(PRESETS)

    def __init__(
        self,
        num_labels: int = 1000,
        channel_search: bool = False,
        affine: bool = True,
        *,
        stage_repeats: Sequence[int] = (4, 4, 8, 4),
        stage_out_channels: Sequence[int] = (64, 160, 320, 640),
        first_conv_channels: int = 16,
        last_conv_channels: int = 1024,
        stem_stride: int = 2,
        channel_ratios: Sequence[float] = CHANNEL_RATIOS,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        repeats = _positive_ints(stage_repeats, "stage_repeats")
        widths = _positive_ints(stage_out_channels, "stage_out_channels")
        if len(repeats) != len(widths):
            raise SearchSpaceError(
                f"ShuffleNetSpace: stage_repeats {list(repeats)} and stage_out_channels {list(widths)} must have one "
                "entry per stage each"
            )
        (first, last) = _positive_ints((first_conv_channels, last_conv_channels), "the stem and last channels")
        if stem_stride not in (1, 2):
            raise SearchSpaceError(
                f"ShuffleNetSpace: stem_stride must be 1 or 2 (1 for small images), got {stem_stride!r}"
            )
        if not isinstance(num_labels, int) or num_labels < 1:
            raise SearchSpaceError(f"ShuffleNetSpace: num_labels must be a positive int, got {num_labels!r}")
        previous = first
        for stage, width in enumerate(widths):
            if width % 2 or width <= previous:
                raise SearchSpaceError(
                    f"ShuffleNetSpace: stage {stage + 1} has {width} output channels after {previous}: a stage's "
                    "channels must be even and more than its input's (its first block concatenates the input with "
                    "new channels); give increasing, even stage_out_channels above first_conv_channels"
                )
            previous = width
        self.num_labels = num_labels
        self.channel_search = channel_search
        self.affine = affine
        self.stage_repeats = repeats
        self.stage_out_channels = widths
        self.last_conv_channels = last

        self.first_conv = nn.Sequential(
            nn.Conv2d(3, first, 3, stem_stride, 1, bias=False),
            nn.BatchNorm2d(first),
            nn.ReLU(),
        )
        blocks: list[nn.Module] = []
        in_channels, index = first, 0
        for repeat, out_channels in zip(repeats, widths):
            for position in range(repeat):
                index += 1
                stride = 2 if position == 0 else 1
                base = out_channels // 2
                mid: Channels = (
                    choice(f"channel_{index}", mid_channel_choices(base, channel_ratios)) if channel_search else base
                )
                shape = (in_channels, out_channels, mid)
                candidates: dict[str, nn.Module] = {
                    f"k{k}": ShuffleNetBlock(*shape, kernel_size=k, stride=stride, affine=affine) for k in (3, 5, 7)
                }
                candidates["xcep"] = ShuffleXceptionBlock(*shape, stride=stride, affine=affine)
                blocks.append(LayerChoice(candidates, label=f"layer_{index}"))
                in_channels = out_channels
        self.num_blocks = index
        self.features = nn.Sequential(*blocks)
        self.conv_last = nn.Sequential(
            nn.Conv2d(in_channels, last, 1, 1, 0, bias=False),
            nn.BatchNorm2d(last, affine=affine),
            nn.ReLU(),
        )
        self.globalpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(last, num_labels, bias=False)
        self._init_weights()

    def _init_weights(self) -> None:
        """ShuffleNetV2's initialization: convolutions normal with std ``1 / fan-in channels`` (0.01 for the
        stem), batch norm weights 1 and biases 1e-4, the classifier normal with std 0.01."""
        for name, module in self.named_modules():
            if isinstance(module, nn.Conv2d):
                std = 0.01 if name.startswith("first_conv") else 1.0 / module.weight.shape[1]
                nn.init.normal_(module.weight, 0.0, std)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.BatchNorm2d) and module.affine:
                nn.init.ones_(module.weight)
                nn.init.constant_(module.bias, 1e-4)
            elif isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, 0.0, 0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv_last(self.features(self.first_conv(x)))
        x = torch.flatten(self.globalpool(x), 1)
        return self.classifier(self.dropout(x))
