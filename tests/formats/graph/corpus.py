"""A corpus of model spaces for the graph format, each with an input and (optionally) a simplified twin.

Eight spaces a NAS user writes: a DARTS-style cell network, a ProxylessNAS-like MBConv space with
``Repeat``, a ResNet-like space with choice-valued widths, transformer blocks with multi-head
attention and choice-valued heads and width, a NAS-Bench-201 cell, ``InputChoice`` with
``n_chosen > 1``, loops in ``forward`` over fixed ranges, and a space driven by custom
``Mutator`` objects (whose simplified twin expresses the same decisions with inline primitives).
Tensors are small so that the tests are fast. ``benchmarks/graph_format.py`` times the same corpus.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from typing import Any

import attrs
import torch
import torch.nn as nn
import torch.nn.functional as F

import nascore
from nascore.nn import (
    Cell,
    InputChoice,
    LayerChoice,
    ModelSpace,
    MutableBatchNorm2d,
    MutableConv2d,
    MutableLayerNorm,
    MutableLinear,
    MutableMultiheadAttention,
    Repeat,
    basic_unit,
)
from nascore_formats.graph import GraphIR, LeafModule, Mutator, apply_mutators

# --- shared operators ------------------------------------------------------------------------------


class ReLUConvBN(nn.Module):
    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> None:
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(),
            nn.Conv2d(c_in, c_out, kernel, stride, padding, dilation=dilation, bias=False),
            nn.BatchNorm2d(c_out, affine=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class SepConv(nn.Module):
    def __init__(self, c: int, kernel: int, stride: int) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(c, c, kernel, stride, kernel // 2, groups=c, bias=False)
        self.pointwise = nn.Conv2d(c, c, 1, bias=False)
        self.bn = nn.BatchNorm2d(c, affine=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.pointwise(self.depthwise(F.relu(x))))


class FactorizedReduce(nn.Module):
    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.conv2 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(c_out, affine=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(x)
        return self.bn(torch.cat([self.conv1(x), self.conv2(x[:, :, 1:, 1:])], dim=1))


class Zero(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0)


# --- 1. DARTS-style cell network --------------------------------------------------------------------


def darts_candidates(c: int, reduction: bool) -> dict[str, Callable[..., nn.Module]]:
    def stride(input_index: int | None) -> int:
        return 2 if reduction and (input_index is None or input_index < 2) else 1

    return {
        "max_pool_3x3": lambda node, op, inp: nn.MaxPool2d(3, stride(inp), 1),
        "avg_pool_3x3": lambda node, op, inp: nn.AvgPool2d(3, stride(inp), 1, count_include_pad=False),
        "skip_connect": lambda node, op, inp: nn.Identity() if stride(inp) == 1 else FactorizedReduce(c, c),
        "sep_conv_3x3": lambda node, op, inp: SepConv(c, 3, stride(inp)),
        "dil_conv_3x3": lambda node, op, inp: ReLUConvBN(c, c, 3, stride(inp), 2, dilation=2),
    }


class CellPreprocessor(nn.Module):
    """Brings the two predecessors to ``c`` channels (and the same resolution)."""

    def __init__(self, c_pp: int, c_p: int, c: int, reduction_prev: bool) -> None:
        super().__init__()
        self.pre0 = FactorizedReduce(c_pp, c) if reduction_prev else ReLUConvBN(c_pp, c, 1)
        self.pre1 = ReLUConvBN(c_p, c, 1)

    def forward(self, cells: list[torch.Tensor]) -> list[torch.Tensor]:
        return [self.pre0(cells[0]), self.pre1(cells[1])]


def keep_previous(this_cell: torch.Tensor, previous: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    return previous[-1], this_cell


class DartsNet(ModelSpace):
    def __init__(self, c: int = 4, nodes: int = 2, classes: int = 5) -> None:
        super().__init__()
        c_stem = 3 * c
        self.stem = nn.Sequential(nn.Conv2d(3, c_stem, 3, padding=1, bias=False), nn.BatchNorm2d(c_stem))
        self.cells = nn.ModuleList()
        c_pp, c_p, reduction_prev = c_stem, c_stem, False
        for reduction in (False, True, False):
            if reduction:
                c *= 2
            self.cells.append(
                Cell(
                    darts_candidates(c, reduction),
                    num_nodes=nodes,
                    num_ops_per_node=2,
                    num_predecessors=2,
                    merge_op="all",
                    preprocessor=CellPreprocessor(c_pp, c_p, c, reduction_prev),
                    postprocessor=keep_previous,
                    label="reduce" if reduction else "normal",
                )
            )
            c_pp, c_p, reduction_prev = c_p, c * nodes, reduction
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(c_p, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = cell([s0, s1])
        return self.head(torch.flatten(self.pool(s1), 1))


# --- 2. ProxylessNAS-like MBConv space with Repeat ---------------------------------------------------


class MBConv(nn.Module):
    """Inverted residual block; kernel size and expansion may be choices."""

    def __init__(self, c_in: int, c_out: int, kernel: Any, expand: Any, stride: int) -> None:
        super().__init__()
        hidden = c_in * expand
        self.expand = nn.Sequential(MutableConv2d(c_in, hidden, 1, bias=False), MutableBatchNorm2d(hidden), nn.ReLU6())
        self.depthwise = nn.Sequential(
            MutableConv2d(hidden, hidden, kernel, stride, padding=kernel // 2, groups=hidden, bias=False),
            MutableBatchNorm2d(hidden),
            nn.ReLU6(),
        )
        self.project = nn.Sequential(MutableConv2d(hidden, c_out, 1, bias=False), MutableBatchNorm2d(c_out))
        self.use_residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.project(self.depthwise(self.expand(x)))
        return x + out if self.use_residual else out


class ProxylessNet(ModelSpace):
    def __init__(self, classes: int = 5) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1, bias=False), nn.BatchNorm2d(8), nn.ReLU6())
        stages = []
        c_in = 8
        for i, (c_out, stride) in enumerate([(8, 1), (16, 2)]):
            first = MBConv(c_in, c_out, 3, 3, stride)

            def block(j: int, c: int = c_out, i: int = i) -> nn.Module:
                return LayerChoice(
                    {
                        "k3e3": MBConv(c, c, 3, 3, 1),
                        "k5e3": MBConv(c, c, 5, 3, 1),
                        "k3e6": MBConv(c, c, 3, 6, 1),
                        "zero": Zero(),
                    },
                    label=f"stage{i}_block{j}",
                )

            stages.append(nn.Sequential(first, Repeat(block, (1, 3), label=f"stage{i}_depth")))
            c_in = c_out
        self.stages = nn.Sequential(*stages)
        # An elastic stage: kernel size and expansion of every block are choices (once-for-all style).
        self.elastic = Repeat(
            lambda j: MBConv(16, 16, nascore.choice(f"elastic{j}_kernel", [3, 5]), nascore.choice(f"elastic{j}_expand", [2, 4]), 1),
            (0, 2),
            label="elastic_depth",
        )
        self.head = nn.Sequential(nn.Conv2d(16, 32, 1), nn.ReLU6(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.elastic(self.stages(self.stem(x))))


# --- 3. ResNet-like space with choice-valued widths -----------------------------------------------------


@basic_unit
class BasicBlock(nn.Module):
    """A ResNet basic block kept as one opaque node; its widths are choices."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class ReZeroBlock(nn.Module):
    """A traced residual block (widths are choice expressions) with a learned scalar gate of its own."""

    def __init__(self, c_in: Any, c_out: Any) -> None:
        super().__init__()
        self.conv = MutableConv2d(c_in, c_out, 3, 2, 1, bias=False)
        self.bn = MutableBatchNorm2d(c_out)
        self.shortcut = MutableConv2d(c_in, c_out, 1, 2, bias=False)
        self.gate = nn.Parameter(torch.full((1,), 0.5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.gate * F.relu(self.bn(self.conv(x)))


class ResNetSpace(ModelSpace):
    def __init__(self, classes: int = 5) -> None:
        super().__init__()
        widths = [nascore.choice(f"width{i}", [4, 8, 12]) for i in range(3)]
        self.stem = nn.Sequential(MutableConv2d(3, widths[0], 3, padding=1, bias=False), MutableBatchNorm2d(widths[0]), nn.ReLU())
        self.layer1 = BasicBlock(widths[0], widths[0])
        self.layer2 = BasicBlock(widths[0], widths[1], stride=2)
        self.layer3 = ReZeroBlock(widths[1], widths[2] * 2)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(0.1)
        self.unused = nn.Linear(3, 3)  # never called: still part of the model (and of its state_dict)
        self.fc = MutableLinear(widths[2] * 2, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer3(self.layer2(self.layer1(self.stem(x))))
        return self.fc(self.dropout(self.pool(x).flatten(1)))


# --- 4. Transformer blocks with multi-head attention ------------------------------------------------------


@basic_unit
class SelfAttention(nn.Module):
    """Hand-written multi-head self-attention; width and heads are init arguments (choices in the space)."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        qkv = self.qkv(x).view(b, t, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attention = (q @ k.transpose(-2, -1)) / math.sqrt(c // self.heads)
        out = (attention.softmax(dim=-1) @ v).transpose(1, 2).reshape(b, t, c)
        return self.proj(out)


class TransformerBlock(nn.Module):
    def __init__(self, dim: Any, heads: Any, ratio: Any, index: int, builtin_attention: bool) -> None:
        super().__init__()
        self.norm1 = MutableLayerNorm(dim)
        self.attention: nn.Module = (
            MutableMultiheadAttention(dim, heads, batch_first=True) if builtin_attention else SelfAttention(dim, heads)
        )
        self.builtin_attention = builtin_attention
        self.norm2 = MutableLayerNorm(dim)
        self.mlp = nn.Sequential(
            MutableLinear(dim, dim * ratio),
            LayerChoice({"gelu": nn.GELU(), "relu": nn.ReLU()}, label=f"activation{index}"),
            MutableLinear(dim * ratio, dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm1(x)
        if self.builtin_attention:
            a, _ = self.attention(h, h, h, need_weights=False)
        else:
            a = self.attention(h)
        x = x + a
        return x + self.mlp(self.norm2(x))


class TransformerSpace(ModelSpace):
    def __init__(self, features: int = 5, max_length: int = 6, classes: int = 3) -> None:
        super().__init__()
        dim = nascore.choice("dim", [8, 16])
        heads = nascore.choice("heads", [2, 4])
        ratio = nascore.choice("mlp_ratio", [1, 2])
        self.position = nn.Parameter(torch.zeros(1, max_length, features))
        self.embed = MutableLinear(features, dim)
        self.blocks = nn.ModuleList(
            [TransformerBlock(dim, heads, ratio, 0, builtin_attention=True), TransformerBlock(dim, heads, ratio, 1, builtin_attention=False)]
        )
        self.head = MutableLinear(dim, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.embed(x + self.position[:, : x.size(1)])
        for block in self.blocks:
            x = block(x)
        return self.head(x.mean(dim=1))


# --- 5. NAS-Bench-201 style cell ----------------------------------------------------------------------------


def nb201_candidates(c: int) -> dict[str, nn.Module]:
    return {
        "none": Zero(),
        "skip_connect": nn.Identity(),
        "conv_1x1": ReLUConvBN(c, c, 1),
        "conv_3x3": ReLUConvBN(c, c, 3, padding=1),
        "avg_pool_3x3": nn.AvgPool2d(3, 1, 1, count_include_pad=False),
    }


class NB201Cell(nn.Module):
    """Four nodes, every edge ``i -> j`` one operator chosen among five (labels shared by all cells)."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.edges = nn.ModuleDict(
            {f"{j}_{i}": LayerChoice(nb201_candidates(c), label=f"edge_{j}_{i}") for j in range(1, 4) for i in range(j)}
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for j in range(1, 4):
            nodes.append(sum(self.edges[f"{j}_{i}"](nodes[i]) for i in range(j)))
        return nodes[-1]


class ResidualReduction(nn.Module):
    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.a = ReLUConvBN(c_in, c_out, 3, 2, 1)
        self.b = ReLUConvBN(c_out, c_out, 3, 1, 1)
        self.shortcut = nn.Sequential(nn.AvgPool2d(2, 2), nn.Conv2d(c_in, c_out, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(self.a(x)) + self.shortcut(x)


class NB201Space(ModelSpace):
    def __init__(self, c: int = 4, classes: int = 5) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, c, 3, padding=1, bias=False), nn.BatchNorm2d(c))
        self.cells = nn.Sequential(NB201Cell(c), NB201Cell(c), ResidualReduction(c, 2 * c), NB201Cell(2 * c))
        self.lastact = nn.Sequential(nn.BatchNorm2d(2 * c), nn.ReLU())
        self.classifier = nn.Linear(2 * c, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.lastact(self.cells(self.stem(x)))
        return self.classifier(F.adaptive_avg_pool2d(out, 1).flatten(1))


# --- 6. InputChoice with n_chosen > 1 --------------------------------------------------------------------------


class InputChoiceSpace(ModelSpace):
    def __init__(self, c: int = 4, classes: int = 5) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, c, 3, padding=1)
        self.conv3 = nn.Conv2d(c, c, 3, padding=1)
        self.conv1 = nn.Conv2d(c, c, 1)
        self.pool = nn.MaxPool2d(3, 1, 1)
        self.sum2 = InputChoice(4, n_chosen=2, reduction="sum", label="sum2")
        self.concat2 = InputChoice(4, n_chosen=2, reduction="concat", label="concat2")
        self.squeeze = nn.Conv2d(2 * c, c, 1)
        self.mean2 = InputChoice(3, n_chosen=2, reduction="mean", label="mean2")
        self.pick2 = InputChoice(3, n_chosen=2, reduction="none", label="pick2")
        self.skip = InputChoice(2, n_chosen=1, label="skip")
        self.head = nn.Linear(c, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        branches = [self.conv3(x), self.conv1(x), self.pool(x), x]
        summed = self.sum2(branches)
        concatenated = self.squeeze(self.concat2(branches))
        mean = self.mean2([summed, concatenated, x])
        first, second = self.pick2([summed, concatenated, mean])
        out = torch.stack([first, second], dim=0).sum(dim=0)
        out = self.skip([out, out + x])
        return self.head(out.mean(dim=(2, 3)))


# --- 7. loops in forward over fixed ranges ------------------------------------------------------------------------


class LoopStack(nn.Module):
    """``n`` layers applied in a Python loop with residuals, then the outputs mixed in a nested loop."""

    def __init__(self, c: int, n: int) -> None:
        super().__init__()
        self.n = n
        self.layers = nn.ModuleList()
        for i in range(n):
            kernel = nascore.choice(f"loop{i}_kernel", [1, 3])
            conv = MutableConv2d(c, c, kernel, padding=kernel // 2)
            self.layers.append(LayerChoice([conv, nn.Sequential(nn.Conv2d(c, c, 1), nn.ReLU())], label=f"loop{i}"))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs = []
        for i in range(self.n):
            x = self.layers[i](x) + x
            outputs.append(x)
        mixed = outputs[0]
        for k in range(1, self.n):
            for _ in range(k):
                mixed = mixed * 0.5 + outputs[k]
        return torch.cat(outputs + [mixed], dim=1)


class LoopSpace(ModelSpace):
    def __init__(self, c: int = 4, n: int = 3, classes: int = 5) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, c, 3, padding=1)
        self.stack = LoopStack(c, n)
        self.reduce = nn.Conv2d((n + 1) * c, c, 1)
        self.shared = nn.Sequential(nn.Conv2d(c, c, 3, padding=1), nn.Tanh())
        self.head = nn.Linear(c, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.reduce(self.stack(self.stem(x)))
        for _ in range(2):  # the same module (same weights) called twice
            x = self.shared(x)
        return self.head(x.amax(dim=(2, 3)))


# --- 8. a space driven by custom Mutators -------------------------------------------------------------------


class Block(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1)
        self.bn = nn.BatchNorm2d(c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "tanh": nn.Tanh, "identity": nn.Identity}


class KernelSizeMutator(Mutator):
    """Chooses the kernel size of the convolution at ``target`` (updating its padding)."""

    def __init__(self, target: str, sizes: list[int], *, label: str | None = None) -> None:
        super().__init__(label=label)
        self.target = target
        self.sizes = sizes

    def mutate(self, model: GraphIR) -> None:
        [(graph, node)] = model.find(self.target)
        size = self.choice(self.sizes)
        graph.set_leaf(node, graph.leaf(node).replace(kernel_size=size, padding=size // 2))


class ActivationMutator(Mutator):
    """Replaces the activation at ``target`` by one of :data:`ACTIVATIONS`."""

    def __init__(self, target: str, *, label: str | None = None) -> None:
        super().__init__(label=label)
        self.target = target

    def mutate(self, model: GraphIR) -> None:
        [(graph, node)] = model.find(self.target)
        graph.set_leaf(node, LeafModule(ACTIVATIONS[self.choice(list(ACTIVATIONS))]))


class SkipMutator(Mutator):
    """Adds a residual edge around the module at ``target``, or not."""

    def __init__(self, target: str, *, label: str | None = None) -> None:
        super().__init__(label=label)
        self.target = target

    def mutate(self, model: GraphIR) -> None:
        [(graph, node)] = model.find(self.target)
        if self.choice(["none", "residual"]) == "residual":
            graph.insert_function_after(node, operator.add, (node, node.args[0]))


class MutatorSpace(ModelSpace):
    def __init__(self, c: int = 8, classes: int = 5) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, c, 3, padding=1)
        self.conv = nn.Conv2d(c, c, 3, padding=1)
        self.act = nn.ReLU()
        self.block = Block(c)
        self.head = nn.Linear(c, classes)
        apply_mutators(
            self,
            [
                KernelSizeMutator("conv", [1, 3, 5], label="kernel"),
                ActivationMutator("act", label="act"),
                SkipMutator("block", label="skip"),
            ],
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.conv(self.stem(x)))
        x = self.block(x)
        return self.head(x.mean(dim=(2, 3)))


class MutatorSpaceTwin(ModelSpace):
    """:class:`MutatorSpace` with its mutators' decisions written as inline primitives (same labels)."""

    def __init__(self, c: int = 8, classes: int = 5) -> None:
        super().__init__()
        kernel = nascore.choice("kernel/0", [1, 3, 5])
        self.stem = nn.Conv2d(3, c, 3, padding=1)
        self.conv = MutableConv2d(c, c, kernel, padding=kernel // 2)
        self.act = LayerChoice({name: cls() for name, cls in ACTIVATIONS.items()}, label="act/0")
        self.block = Block(c)
        self.skip = LayerChoice({"none": Zero(), "residual": nn.Identity()}, label="skip/0")
        self.head = nn.Linear(c, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.conv(self.stem(x)))
        x = self.block(x) + self.skip(x)
        return self.head(x.mean(dim=(2, 3)))


# --- the corpus ---------------------------------------------------------------------------------------------


def image(batch: int = 2, size: int = 8) -> tuple[torch.Tensor, ...]:
    return (torch.randn(batch, 3, size, size),)


def sequence(batch: int = 2, length: int = 5, features: int = 5) -> tuple[torch.Tensor, ...]:
    return (torch.randn(batch, length, features),)


@attrs.frozen
class CorpusEntry:
    """A space of the corpus: how to build it, an input, and its simplified-format twin."""

    name: str
    space: Callable[[], ModelSpace]
    inputs: Callable[[], tuple[torch.Tensor, ...]] = image
    twin: Callable[[], ModelSpace] | None = None

    def simplified_space(self) -> ModelSpace:
        return (self.twin or self.space)()


CORPUS = [
    CorpusEntry("darts", DartsNet),
    CorpusEntry("proxyless", ProxylessNet),
    CorpusEntry("resnet", ResNetSpace),
    CorpusEntry("transformer", TransformerSpace, sequence),
    CorpusEntry("nasbench201", NB201Space),
    CorpusEntry("input_choice", InputChoiceSpace),
    CorpusEntry("loops", LoopSpace),
    CorpusEntry("mutators", MutatorSpace, twin=MutatorSpaceTwin),
]
