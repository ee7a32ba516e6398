"""The NAS-Bench-101 model space.

From Ying et al., "NAS-Bench-101: Towards Reproducible Neural Architecture Search", ICML 2019
(https://arxiv.org/abs/1902.09635). One cell architecture, a DAG of at most seven vertices (the input,
five intermediate vertices each computing one of three operators, the output) with at most nine
edges, is repeated in every cell of a fixed skeleton of three stacks of cells.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

import torch
import torch.nn as nn

import nascore
from nascore.errors import ConstraintViolationError, SearchSpaceError
from nascore.nn import LayerChoice, ModelSpace
from nascore_hub.spaces.presets import PresetSpace, UnknownPresetError, Zero

__all__ = [
    "OPERATORS",
    "OP_LABELS",
    "EDGE_LABELS",
    "MAX_EDGES",
    "PRESETS",
    "NasBench101",
    "NasBench101Cell",
    "UnknownPresetError",
]

#: The three candidate operators of every intermediate vertex, in the order of the choices.
OPERATORS: tuple[str, ...] = ("conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3")

#: Number of vertices of a cell: vertex 0 is the cell's input, vertex 6 its output.
NUM_VERTICES = 7

#: The most edges a cell may have (the benchmark's limit).
MAX_EDGES = 9

#: The labels of the operators of the five intermediate vertices, ``"op<v>"`` for vertex ``v``.
OP_LABELS: tuple[str, ...] = tuple(f"op{v}" for v in range(1, NUM_VERTICES - 1))

#: The labels of the 21 possible edges, ``"j_i"`` for the edge from vertex ``i`` into vertex ``j`` (``i < j``).
EDGE_LABELS: tuple[str, ...] = tuple(f"{j}_{i}" for j in range(1, NUM_VERTICES) for i in range(j))


def _cell(ops: tuple[str, ...], edges: set[tuple[int, int]]) -> dict[str, Any]:
    sample: dict[str, Any] = dict(zip(OP_LABELS, ops))
    sample.update({f"{j}_{i}": int((i, j) in edges) for j in range(1, NUM_VERTICES) for i in range(j)})
    return sample


#: Fixed architectures, as samples (``"op<v>"`` -> operator, ``"j_i"`` -> 0 or 1).
PRESETS: dict[str, dict[str, Any]] = {
    # A chain through all five vertices: input -> 1 -> 2 -> 3 -> 4 -> 5 -> output, all 3x3 convolutions.
    "chain": _cell(("conv3x3-bn-relu",) * 5, {(0, 1), (1, 2), (2, 3), (3, 4), (4, 5), (5, 6)}),
    # The ResNet-like cell: two 3x3 convolutions and the input added to the output (the paper's
    # input -> output edge); vertices 3 to 5 are unconnected, so their operators do not matter.
    "resnet": _cell(
        ("conv3x3-bn-relu", "conv3x3-bn-relu", "maxpool3x3", "maxpool3x3", "maxpool3x3"),
        {(0, 1), (1, 2), (2, 6), (0, 6)},
    ),
}



# --- operators -------------------------------------------------------------------------------------



class ConvBNReLU(nn.Sequential):
    """A convolution without bias (stride 1, "same" padding), batch normalization, then ReLU."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=False),
        )


def make_operator(name: str, channels: int) -> nn.Module:
    """A new module for the operator ``name`` (one of :data:`OPERATORS`) on ``channels`` channels, stride 1."""
    if name == "conv3x3-bn-relu":
        return ConvBNReLU(channels, channels, 3)
    if name == "conv1x1-bn-relu":
        return ConvBNReLU(channels, channels, 1)
    if name == "maxpool3x3":
        return nn.MaxPool2d(3, stride=1, padding=1)
    raise SearchSpaceError(f"unknown NAS-Bench-101 operator {name!r}; the operators are {list(OPERATORS)}")


# --- the cell --------------------------------------------------------------------------------------


def _label(label: str, label_prefix: str | None) -> str:
    return f"{label_prefix}/{label}" if label_prefix else label


class NasBench101Cell(nn.Module):
    """The NAS-Bench-101 cell: a DAG over seven vertices, vertex 0 the cell's input, vertex 6 its output.

    Decisions (labels under ``label_prefix`` when one is given; cells built with the same prefix, or
    none, share them: they are one cell architecture, as in the benchmark):

    * ``"op1"`` .. ``"op5"``: a :class:`~nascore.nn.LayerChoice` over :data:`OPERATORS` per
      intermediate vertex (``"conv3x3-bn-relu"``, ``"conv1x1-bn-relu"``, ``"maxpool3x3"``);
    * ``"j_i"`` for ``0 <= i < j <= 6`` (21 labels): whether the edge ``i -> j`` exists, a
      ``LayerChoice`` over ``[Zero(), Identity()]`` whose values are ``0`` (absent) and ``1``;
    * the constraint ``"max_edges"``: at most :data:`MAX_EDGES` (9) edges in the cell, an
      :class:`nascore.ExpressionConstraint` on the sum of the 21 edge decisions, kept in
      :attr:`constraint`. The cell is a plain ``nn.Module`` (the graph format traces through it), so
      the space that holds it adds the constraint: ``space.add_mutable(cell.constraint)``
      (:class:`NasBench101` does).

    Computation: the input is first projected to ``out_channels`` by a 1x1 conv-bn-relu (the paper's
    projection; here one projection shared by every edge leaving the input). Intermediate vertex
    ``j`` applies its operator to the sum of its incoming edges (an absent edge adds zeros). The
    output concatenates the five intermediate vertices, each through its edge ``"6_v"`` (an absent
    edge gives zeros), projects the ``5 * out_channels`` channels back to ``out_channels`` with a 1x1
    conv-bn-relu and adds the projected input when the edge ``"6_0"`` exists.

    Deviations from the paper, all so that one weight-sharing supernet holds every architecture
    (DARTS and RandomOneShot relax the 26 ``LayerChoice`` decisions and nothing else): the paper
    splits the output channels among the vertices feeding the output (widths that depend on the
    architecture); here every vertex has ``out_channels`` channels and the output concatenation has
    fixed slots followed by a 1x1 projection. Vertices that reach neither the input nor the output
    are computed (on zeros, or unused) instead of pruned.

    :param in_channels: channels of the cell's input.
    :param out_channels: channels of every vertex and of the output.
    :param label_prefix: put the labels under this prefix (``None``: the bare labels).
    """

    def __init__(self, in_channels: int, out_channels: int, *, label_prefix: str | None = None) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.label_prefix = label_prefix
        self.input_projection = ConvBNReLU(in_channels, out_channels, 1)
        self.ops = nn.ModuleDict()
        for label in OP_LABELS:
            self.ops[label] = LayerChoice(
                {name: make_operator(name, out_channels) for name in OPERATORS}, label=_label(label, label_prefix)
            )
        self.edges = nn.ModuleDict()
        for label in EDGE_LABELS:
            self.edges[label] = LayerChoice([Zero(), nn.Identity()], label=_label(label, label_prefix))
        self.output_projection = ConvBNReLU((NUM_VERTICES - 2) * out_channels, out_channels, 1)
        #: The constraint of at most nine edges (``None`` when built frozen: the sample was checked).
        self.constraint: nascore.ExpressionConstraint | None = None
        edges = [edge.choice for edge in self.edges.values() if isinstance(edge, LayerChoice)]
        if edges:  # a space; built frozen, the edges are plain modules
            self.constraint = nascore.ExpressionConstraint(
                sum(edges) <= MAX_EDGES, label=_label("max_edges", label_prefix)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        vertices = [self.input_projection(x)]
        for j in range(1, NUM_VERTICES - 1):
            total = self.edges[f"{j}_0"](vertices[0])
            for i in range(1, j):
                total = total + self.edges[f"{j}_{i}"](vertices[i])
            vertices.append(self.ops[f"op{j}"](total))
        last = NUM_VERTICES - 1
        concat = torch.cat([self.edges[f"{last}_{i}"](vertices[i]) for i in range(1, last)], dim=1)
        return self.output_projection(concat) + self.edges[f"{last}_0"](vertices[0])


# --- the model space -------------------------------------------------------------------------------


class NasBench101(PresetSpace, ModelSpace):
    """The NAS-Bench-101 search space (Ying et al., "NAS-Bench-101: Towards Reproducible Neural
    Architecture Search", ICML 2019, https://arxiv.org/abs/1902.09635).

    A 3x3 conv-bn-relu stem with ``stem_out_channels`` (C, 128 in the paper) channels, three stacks of
    ``num_modules_per_stack`` (3) :class:`NasBench101Cell` with C, 2C and 4C channels (the first cell of
    a stack doubles the channels through its input projection), a 2x2 max pooling of stride 2 between
    two stacks, then global average pooling and a linear classifier over ``num_labels`` classes.

    Every cell has the same architecture: they all use the 26 decisions ``"op1"`` .. ``"op5"`` (the
    operators) and ``"j_i"`` (the 21 edges, 0 or 1), under the constraint ``"max_edges"`` (at most 9
    edges).

    **Size.** ``space_size()`` counts decision sets, not the 423,624 architectures of the paper (which
    are the unique graphs up to isomorphism, pruned of vertices off every input-output path): here the
    operator of an unconnected vertex is still a decision, isomorphic graphs are distinct and graphs
    whose output is unreachable are included. Under the constraint there are
    ``3 ** 5 * sum(comb(21, k) for k in range(10)) = 243 * 695,860 = 169,093,980`` decision sets,
    which ``NasBench101().space_size()`` returns: the space counts them itself, in closed form (the
    generic count would enumerate them), for every sample it can hold.

    :param stem_out_channels: C, the channels of the stem and of the first stack.
    :param num_modules_per_stack: the cells in each of the three stacks.
    :param num_labels: the classes of the classifier.

    Fixed architectures: :meth:`preset` (``"chain"``, ``"resnet"``) gives a sample, :meth:`fixed_arch`
    the context in which the space builds as that one model, :meth:`load_preset` the built model.
    """

    #: The names :meth:`preset` knows.
    PRESETS: ClassVar[Mapping[str, Mapping[str, Any]]] = PRESETS
    PRESET_NAMES: ClassVar[tuple[str, ...]] = tuple(PRESETS)

    def __init__(self, stem_out_channels: int = 128, num_modules_per_stack: int = 3, num_labels: int = 10) -> None:
        super().__init__()
        self.channels = c = stem_out_channels
        self.num_modules = n = num_modules_per_stack
        self.num_labels = num_labels
        self.stem = ConvBNReLU(3, c, 3)
        layers: list[nn.Module] = []
        prev = c
        for stack, width in enumerate((c, 2 * c, 4 * c)):
            if stack > 0:
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            for _ in range(n):
                layers.append(NasBench101Cell(prev, width))
                prev = width
        self.cells = nn.Sequential(*layers)
        first = layers[0]
        assert isinstance(first, NasBench101Cell)
        if first.constraint is not None:  # one constraint for the cells' shared decisions
            self.add_mutable(first.constraint)
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(prev, num_labels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.global_pooling(self.cells(self.stem(x)))
        return self.classifier(torch.flatten(out, 1))


    def space_size(self) -> float:
        """The number of decision sets under the constraint: ``169,093,980`` (see the class docstring).

        The operators multiply; of the 21 edge decisions any ``k <= 9`` may be 1, in ``comb(21, k)`` ways.
        """
        decisions = self.decisions()
        edges = [label for label in EDGE_LABELS if label in decisions.mutables]
        ops = [label for label in OP_LABELS if label in decisions.mutables]
        constraints = [constraint.label for constraint, _ in decisions.constraints]
        if sorted([*edges, *ops]) != sorted(decisions.mutables) or constraints != ["max_edges"]:
            return super().space_size()  # not the space this closed form is about (a subclass added decisions)
        operators = math.prod(decisions.mutables[label].size for label in ops)
        return float(operators * sum(math.comb(len(edges), k) for k in range(MAX_EDGES + 1)))

    @classmethod
    def sample_of(cls, arch: str | Mapping[str, Any]) -> dict[str, Any]:
        sample = dict(arch) if isinstance(arch, Mapping) else cls.preset(arch)
        # nascore.fixed_arch checks labels, not constraints: check the cell's constraint here
        edges = sum(1 for label in EDGE_LABELS if sample.get(label) == 1)
        if edges > MAX_EDGES:
            raise ConstraintViolationError(
                f"the sample violates the constraint 'max_edges': it has {edges} edges, at most {MAX_EDGES} are allowed",
                label="max_edges",
            )
        return sample


