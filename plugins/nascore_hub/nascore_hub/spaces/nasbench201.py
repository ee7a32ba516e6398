"""The NAS-Bench-201 model space.

From Dong & Yang, "NAS-Bench-201: Extending the Scope of Reproducible Neural Architecture Search",
ICLR 2020 (https://arxiv.org/abs/2001.00326). One cell architecture, a densely connected DAG of four
nodes whose six edges each pick one of five operators, is repeated in every cell of a fixed
ResNet-like skeleton. The space has ``5 ** 6 = 15,625`` architectures.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch
import torch.nn as nn

from nascore.errors import SearchSpaceError
from nascore.nn import LayerChoice, ModelSpace
from nascore_hub.spaces.presets import PresetSpace, UnknownPresetError, Zero

__all__ = [
    "OPERATORS",
    "EDGE_LABELS",
    "PRESETS",
    "NasBench201",
    "NasBench201Cell",
    "UnknownPresetError",
    "ArchStringError",
    "arch_string",
    "parse_arch_string",
]

#: The five candidate operators of every edge, with NAS-Bench-201's names, in the order of the choices.
OPERATORS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")

#: Number of nodes of a cell (node 0 is the cell's input, node 3 its output).
NUM_NODES = 4

#: The labels of the six edges, ``"j_i"`` for the edge from node ``i`` into node ``j`` (``i < j``).
EDGE_LABELS: tuple[str, ...] = tuple(f"{j}_{i}" for j in range(1, NUM_NODES) for i in range(j))

#: Fixed architectures of the paper, as samples (edge label -> operator).
PRESETS: dict[str, dict[str, str]] = {
    # The cell of ResNet: two 3x3 convolutions and a skip connection around them.
    "resnet": {
        "1_0": "nor_conv_3x3", "2_0": "none", "2_1": "nor_conv_3x3",
        "3_0": "skip_connect", "3_1": "none", "3_2": "none",
    },
    # The best architecture of the benchmark on CIFAR-10.
    "best-cifar10": {
        "1_0": "nor_conv_3x3", "2_0": "nor_conv_3x3", "2_1": "nor_conv_3x3",
        "3_0": "skip_connect", "3_1": "nor_conv_3x3", "3_2": "nor_conv_3x3",
    },
}



class ArchStringError(SearchSpaceError, ValueError):
    """A string that is not a NAS-Bench-201 architecture string (a ``ValueError`` too)."""


# --- operators -------------------------------------------------------------------------------------



class ReLUConvBN(nn.Sequential):
    """ReLU, then a convolution without bias, then batch normalization (NAS-Bench-201's ``nor_conv``)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, padding: int = 0) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=False),
            nn.BatchNorm2d(out_channels),
        )


def make_operator(name: str, channels: int) -> nn.Module:
    """A new module for the operator ``name`` (one of :data:`OPERATORS`) on ``channels`` channels, stride 1."""
    if name == "none":
        return Zero()
    if name == "skip_connect":
        return nn.Identity()
    if name == "nor_conv_1x1":
        return ReLUConvBN(channels, channels, 1)
    if name == "nor_conv_3x3":
        return ReLUConvBN(channels, channels, 3, padding=1)
    if name == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    raise SearchSpaceError(f"unknown NAS-Bench-201 operator {name!r}; the operators are {list(OPERATORS)}")


class ResNetBasicBlock(nn.Module):
    """The reduction block between two stages: a residual block of two 3x3 ReLU-Conv-BN, the first of
    stride 2, whose shortcut is a 2x2 average pooling then a 1x1 convolution."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(in_channels, out_channels, 3, stride=2, padding=1)
        self.conv_b = ReLUConvBN(out_channels, out_channels, 3, padding=1)
        self.downsample = nn.Sequential(
            nn.AvgPool2d(kernel_size=2, stride=2, padding=0),
            nn.Conv2d(in_channels, out_channels, kernel_size=1, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(x) + self.conv_b(self.conv_a(x))


# --- the cell --------------------------------------------------------------------------------------


def _edge_label(label: str, label_prefix: str | None) -> str:
    return f"{label_prefix}/{label}" if label_prefix else label


class NasBench201Cell(nn.Module):
    """The NAS-Bench-201 cell: a DAG of four nodes where every earlier node feeds every later one.

    Node 0 is the cell's input; node ``j`` (1 to 3) is the sum of the edges ``j <- i`` over ``i < j``;
    the cell's output is node 3. Each of the six edges is a :class:`~nascore.nn.LayerChoice` over
    :data:`OPERATORS` (``"none"``, ``"skip_connect"``, ``"nor_conv_1x1"``, ``"nor_conv_3x3"``,
    ``"avg_pool_3x3"``; the convolutions are ReLU-Conv-BN, ``none`` outputs zeros), labelled
    ``"j_i"`` (``"1_0"``, ``"2_0"``, ``"2_1"``, ``"3_0"``, ``"3_1"``, ``"3_2"``), or
    ``"<label_prefix>/j_i"`` with a ``label_prefix``. Cells built with the same prefix (or none) share
    the six decisions: they are one cell architecture, as in the benchmark.

    :param channels: channels of the input and output (every operator keeps them and the resolution).
    :param label_prefix: put the six labels under this prefix (``None``: the bare ``"j_i"`` labels).

    The edges are the ``LayerChoice`` modules of :attr:`edges` (an ``nn.ModuleDict`` keyed by the
    unprefixed ``"j_i"``); built inside :func:`nascore.fixed_arch`, each is the chosen operator.
    """

    def __init__(self, channels: int, *, label_prefix: str | None = None) -> None:
        super().__init__()
        self.channels = channels
        self.label_prefix = label_prefix
        self.edges = nn.ModuleDict()
        for label in EDGE_LABELS:
            self.edges[label] = LayerChoice(
                {name: make_operator(name, channels) for name in OPERATORS},
                label=_edge_label(label, label_prefix),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for j in range(1, NUM_NODES):
            node = self.edges[f"{j}_0"](nodes[0])
            for i in range(1, j):
                node = node + self.edges[f"{j}_{i}"](nodes[i])
            nodes.append(node)
        return nodes[-1]


# --- architecture strings --------------------------------------------------------------------------


def arch_string(sample: Mapping[str, str], *, label_prefix: str | None = None) -> str:
    """NAS-Bench-201's string of the cell architecture ``sample`` (edge label -> operator).

    ``{"1_0": "nor_conv_3x3", "2_0": "none", ...}`` gives
    ``"|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|none~2|"``: one ``|...|`` group
    per node 1 to 3, holding ``op~i`` for each input node ``i``. Labels under ``label_prefix`` are
    read when it is given; other labels of ``sample`` are ignored.
    """
    groups = []
    for j in range(1, NUM_NODES):
        edges = []
        for i in range(j):
            label = _edge_label(f"{j}_{i}", label_prefix)
            if label not in sample:
                raise SearchSpaceError(f"the sample has no operator for the NAS-Bench-201 edge {label!r}")
            op = sample[label]
            if op not in OPERATORS:
                raise SearchSpaceError(
                    f"the sample's operator {op!r} for edge {label!r} is not a NAS-Bench-201 operator "
                    f"(one of {list(OPERATORS)})"
                )
            edges.append(f"{op}~{i}")
        groups.append("|" + "|".join(edges) + "|")
    return "+".join(groups)


def parse_arch_string(string: str, *, label_prefix: str | None = None) -> dict[str, str]:
    """The sample (edge label -> operator) of a NAS-Bench-201 architecture string: the inverse of
    :func:`arch_string`. A malformed string raises :class:`ArchStringError` saying what is wrong."""
    if not isinstance(string, str):
        raise ArchStringError(f"a NAS-Bench-201 architecture string must be a str, got {type(string).__name__}")
    groups = string.split("+")
    if len(groups) != NUM_NODES - 1:
        raise ArchStringError(
            f"{string!r} is not a NAS-Bench-201 architecture string: it must have {NUM_NODES - 1} node groups "
            f"separated by '+', like {arch_string(PRESETS['resnet'])!r}"
        )
    sample: dict[str, str] = {}
    for j, group in enumerate(groups, start=1):
        if not (group.startswith("|") and group.endswith("|")) or len(group) < 2:
            raise ArchStringError(f"node group {j} of {string!r} must be enclosed in '|', got {group!r}")
        edges = group[1:-1].split("|")
        if len(edges) != j:
            raise ArchStringError(f"node group {j} of {string!r} must have {j} edge(s), got {len(edges)}: {group!r}")
        for i, edge in enumerate(edges):
            op, sep, source = edge.partition("~")
            if not sep or source != str(i):
                raise ArchStringError(f"edge {i} of node group {j} of {string!r} must be '<op>~{i}', got {edge!r}")
            if op not in OPERATORS:
                raise ArchStringError(
                    f"unknown operator {op!r} in {string!r}; the NAS-Bench-201 operators are {list(OPERATORS)}"
                )
            sample[_edge_label(f"{j}_{i}", label_prefix)] = op
    return sample


# --- the model space -------------------------------------------------------------------------------


class NasBench201(PresetSpace, ModelSpace):
    """The NAS-Bench-201 search space (Dong & Yang, "NAS-Bench-201: Extending the Scope of Reproducible
    Neural Architecture Search", ICLR 2020, https://arxiv.org/abs/2001.00326).

    A 3x3 convolution and batch normalization stem with ``stem_out_channels`` (C) channels, three
    stages of ``num_modules_per_stack`` (N) :class:`NasBench201Cell` with C, 2C and 4C channels, a
    ResNet basic block of stride 2 between two stages, then batch normalization, ReLU, global average
    pooling and a linear classifier over ``num_labels`` classes.

    Every cell has the same architecture: they all use the six decisions ``"1_0"``, ``"2_0"``,
    ``"2_1"``, ``"3_0"``, ``"3_1"``, ``"3_2"`` (edge ``j <- i``), each one of :data:`OPERATORS`, so
    ``NasBench201().space_size()`` is ``5 ** 6 = 15625`` (``15625.0``: ``space_size`` returns a float;
    architectures are counted as samples: some,
    where ``"none"`` edges cut nodes off, compute the same function).

    :param stem_out_channels: C, the channels of the stem and of the first stage.
    :param num_modules_per_stack: N, the cells in each of the three stages.
    :param num_labels: the classes of the classifier.

    Fixed architectures: :meth:`preset` (``"resnet"``, ``"best-cifar10"``) gives a sample,
    :meth:`fixed_arch` the context in which the space builds as that one model, :meth:`load_preset`
    the built model; :meth:`arch_string` and :meth:`parse_arch_string` convert samples to and from
    the benchmark's architecture strings.
    """

    #: The names :meth:`preset` knows.
    PRESETS: ClassVar[Mapping[str, Mapping[str, Any]]] = PRESETS
    PRESET_NAMES: ClassVar[tuple[str, ...]] = tuple(PRESETS)

    def __init__(self, stem_out_channels: int = 16, num_modules_per_stack: int = 5, num_labels: int = 10) -> None:
        super().__init__()
        self.channels = c = stem_out_channels
        self.num_modules = n = num_modules_per_stack
        self.num_labels = num_labels
        self.stem = nn.Sequential(nn.Conv2d(3, c, kernel_size=3, padding=1, bias=False), nn.BatchNorm2d(c))
        layers: list[nn.Module] = []
        prev = c
        for stage, width in enumerate((c, 2 * c, 4 * c)):
            if stage > 0:
                layers.append(ResNetBasicBlock(prev, width))
            layers.extend(NasBench201Cell(width) for _ in range(n))
            prev = width
        self.cells = nn.Sequential(*layers)
        self.lastact = nn.Sequential(nn.BatchNorm2d(prev), nn.ReLU(inplace=True))
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(prev, num_labels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.global_pooling(self.lastact(self.cells(self.stem(x))))
        return self.classifier(torch.flatten(out, 1))


    @classmethod
    def sample_of(cls, arch: str | Mapping[str, str]) -> dict[str, str]:
        if isinstance(arch, Mapping):
            return dict(arch)
        if isinstance(arch, str) and arch.startswith("|"):
            return parse_arch_string(arch)
        return cls.preset(arch)



    @staticmethod
    def arch_string(sample: Mapping[str, str]) -> str:
        """NAS-Bench-201's architecture string of ``sample``: see :func:`arch_string`."""
        return arch_string(sample)

    @staticmethod
    def parse_arch_string(string: str) -> dict[str, str]:
        """The sample of a NAS-Bench-201 architecture string: see :func:`parse_arch_string`."""
        return parse_arch_string(string)
