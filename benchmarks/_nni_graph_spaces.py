"""NNI 3.0 versions of the graph-format corpus (``tests/formats/graph/corpus.py``), for ``_nni_graph_format.py``.

Each space mirrors its nascore twin line for line, written the way NNI's graph format asks for:
layers from ``nni.nas.nn.pytorch._layers`` (NNI's traced copies of ``torch.nn``), basic units as
``ParametrizedModule`` subclasses, primitives from ``nni.nas.nn.pytorch`` and ``nni.choice``.
It must not import nascore.
"""

from __future__ import annotations

import math

import nni
import nni.nas.nn.pytorch._layers as nn
import torch
import torch.nn.functional as F
from nni.nas.nn.pytorch import (
    Cell,
    InputChoice,
    LayerChoice,
    ModelSpace,
    MutableBatchNorm2d,
    MutableConv2d,
    MutableLayerNorm,
    MutableLinear,
    MutableMultiheadAttention,
    ParametrizedModule,
    Repeat,
)
from nni.nas.space import StationaryMutator

# --- shared operators ---------------------------------------------------------------------------------


class ReLUConvBN(nn.Module):
    def __init__(self, c_in, c_out, kernel, stride=1, padding=0, dilation=1):
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(), nn.Conv2d(c_in, c_out, kernel, stride, padding, dilation=dilation, bias=False), nn.BatchNorm2d(c_out, affine=False)
        )

    def forward(self, x):
        return self.op(x)


class SepConv(nn.Module):
    def __init__(self, c, kernel, stride):
        super().__init__()
        self.depthwise = nn.Conv2d(c, c, kernel, stride, kernel // 2, groups=c, bias=False)
        self.pointwise = nn.Conv2d(c, c, 1, bias=False)
        self.bn = nn.BatchNorm2d(c, affine=False)

    def forward(self, x):
        return self.bn(self.pointwise(self.depthwise(F.relu(x))))


class FactorizedReduce(nn.Module):
    def __init__(self, c_in, c_out):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.conv2 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(c_out, affine=False)

    def forward(self, x):
        x = F.relu(x)
        return self.bn(torch.cat([self.conv1(x), self.conv2(x[:, :, 1:, 1:])], dim=1))


class Zero(nn.Module):
    def forward(self, x):
        return x.mul(0.0)


# --- 1. DARTS-style cell network -------------------------------------------------------------------------


def darts_candidates(c, reduction):
    def stride(input_index):
        return 2 if reduction and (input_index is None or input_index < 2) else 1

    return {
        "max_pool_3x3": lambda node, op, inp: nn.MaxPool2d(3, stride(inp), 1),
        "avg_pool_3x3": lambda node, op, inp: nn.AvgPool2d(3, stride(inp), 1, count_include_pad=False),
        "skip_connect": lambda node, op, inp: nn.Identity() if stride(inp) == 1 else FactorizedReduce(c, c),
        "sep_conv_3x3": lambda node, op, inp: SepConv(c, 3, stride(inp)),
        "dil_conv_3x3": lambda node, op, inp: ReLUConvBN(c, c, 3, stride(inp), 2, dilation=2),
    }


class CellPreprocessor(nn.Module):
    def __init__(self, c_pp, c_p, c, reduction_prev):
        super().__init__()
        self.pre0 = FactorizedReduce(c_pp, c) if reduction_prev else ReLUConvBN(c_pp, c, 1)
        self.pre1 = ReLUConvBN(c_p, c, 1)

    def forward(self, cells):
        return [self.pre0(cells[0]), self.pre1(cells[1])]


def keep_previous(this_cell, previous):
    return previous[-1], this_cell


class DartsNet(ModelSpace):
    def __init__(self, c=4, nodes=2, classes=5):
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
                    darts_candidates(c, reduction), num_nodes=nodes, num_ops_per_node=2, num_predecessors=2, merge_op="all",
                    preprocessor=CellPreprocessor(c_pp, c_p, c, reduction_prev), postprocessor=keep_previous,
                    label="reduce" if reduction else "normal",
                )
            )
            c_pp, c_p, reduction_prev = c_p, c * nodes, reduction
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(c_p, classes)

    def forward(self, x):
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = cell([s0, s1])
        return self.head(torch.flatten(self.pool(s1), 1))


# --- 2. ProxylessNAS-like MBConv space with Repeat --------------------------------------------------------


class MBConv(nn.Module):
    def __init__(self, c_in, c_out, kernel, expand, stride):
        super().__init__()
        hidden = c_in * expand
        self.expand = nn.Sequential(MutableConv2d(c_in, hidden, 1, bias=False), MutableBatchNorm2d(hidden), nn.ReLU6())
        self.depthwise = nn.Sequential(
            MutableConv2d(hidden, hidden, kernel, stride, padding=kernel // 2, groups=hidden, bias=False), MutableBatchNorm2d(hidden), nn.ReLU6()
        )
        self.project = nn.Sequential(MutableConv2d(hidden, c_out, 1, bias=False), MutableBatchNorm2d(c_out))
        self.use_residual = stride == 1 and c_in == c_out

    def forward(self, x):
        out = self.project(self.depthwise(self.expand(x)))
        return x + out if self.use_residual else out


class ProxylessNet(ModelSpace):
    def __init__(self, classes=5):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1, bias=False), nn.BatchNorm2d(8), nn.ReLU6())
        stages = []
        c_in = 8
        for i, (c_out, stride) in enumerate([(8, 1), (16, 2)]):
            first = MBConv(c_in, c_out, 3, 3, stride)

            def block(j, c=c_out, i=i):
                return LayerChoice(
                    {"k3e3": MBConv(c, c, 3, 3, 1), "k5e3": MBConv(c, c, 5, 3, 1), "k3e6": MBConv(c, c, 3, 6, 1), "zero": Zero()},
                    label=f"stage{i}_block{j}",
                )

            stages.append(nn.Sequential(first, Repeat(block, (1, 3), label=f"stage{i}_depth")))
            c_in = c_out
        self.stages = nn.Sequential(*stages)
        self.elastic = Repeat(
            lambda j: MBConv(16, 16, nni.choice(f"elastic{j}_kernel", [3, 5]), nni.choice(f"elastic{j}_expand", [2, 4]), 1),
            (0, 2), label="elastic_depth",
        )
        self.head = nn.Sequential(nn.Conv2d(16, 32, 1), nn.ReLU6(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, classes))

    def forward(self, x):
        return self.head(self.elastic(self.stages(self.stem(x))))


# --- 3. ResNet-like space with choice-valued widths ---------------------------------------------------------


class BasicBlock(ParametrizedModule):
    def __init__(self, c_in, c_out, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class ReZeroBlock(nn.Module):
    def __init__(self, c_in, c_out):
        super().__init__()
        self.conv = MutableConv2d(c_in, c_out, 3, 2, 1, bias=False)
        self.bn = MutableBatchNorm2d(c_out)
        self.shortcut = MutableConv2d(c_in, c_out, 1, 2, bias=False)
        self.gate = torch.nn.Parameter(torch.full((1,), 0.5))

    def forward(self, x):
        return self.shortcut(x) + self.gate * F.relu(self.bn(self.conv(x)))


class ResNetSpace(ModelSpace):
    def __init__(self, classes=5):
        super().__init__()
        widths = [nni.choice(f"width{i}", [4, 8, 12]) for i in range(3)]
        self.stem = nn.Sequential(MutableConv2d(3, widths[0], 3, padding=1, bias=False), MutableBatchNorm2d(widths[0]), nn.ReLU())
        self.layer1 = BasicBlock(widths[0], widths[0])
        self.layer2 = BasicBlock(widths[0], widths[1], stride=2)
        self.layer3 = ReZeroBlock(widths[1], widths[2] * 2)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(0.1)
        self.unused = nn.Linear(3, 3)
        self.fc = MutableLinear(widths[2] * 2, classes)

    def forward(self, x):
        x = self.layer3(self.layer2(self.layer1(self.stem(x))))
        return self.fc(self.dropout(self.pool(x).flatten(1)))


# --- 4. Transformer blocks with multi-head attention ------------------------------------------------------------


class SelfAttention(ParametrizedModule):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, t, c = x.shape
        qkv = self.qkv(x).view(b, t, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attention = (q @ k.transpose(-2, -1)) / math.sqrt(c // self.heads)
        out = (attention.softmax(dim=-1) @ v).transpose(1, 2).reshape(b, t, c)
        return self.proj(out)


class TransformerBlock(nn.Module):
    def __init__(self, dim, heads, ratio, index, builtin_attention):
        super().__init__()
        self.norm1 = MutableLayerNorm(dim)
        self.attention = MutableMultiheadAttention(dim, heads, batch_first=True) if builtin_attention else SelfAttention(dim, heads)
        self.builtin_attention = builtin_attention
        self.norm2 = MutableLayerNorm(dim)
        self.mlp = nn.Sequential(
            MutableLinear(dim, dim * ratio), LayerChoice({"gelu": nn.GELU(), "relu": nn.ReLU()}, label=f"activation{index}"), MutableLinear(dim * ratio, dim)
        )

    def forward(self, x):
        h = self.norm1(x)
        if self.builtin_attention:
            a, _ = self.attention(h, h, h, need_weights=False)
        else:
            a = self.attention(h)
        x = x + a
        return x + self.mlp(self.norm2(x))


class TransformerSpace(ModelSpace):
    def __init__(self, features=5, max_length=6, classes=3):
        super().__init__()
        dim = nni.choice("dim", [8, 16])
        heads = nni.choice("heads", [2, 4])
        ratio = nni.choice("mlp_ratio", [1, 2])
        self.position = torch.nn.Parameter(torch.zeros(1, max_length, features))
        self.embed = MutableLinear(features, dim)
        self.blocks = nn.ModuleList([TransformerBlock(dim, heads, ratio, 0, True), TransformerBlock(dim, heads, ratio, 1, False)])
        self.head = MutableLinear(dim, classes)

    def forward(self, x):
        x = self.embed(x + self.position[:, : x.size(1)])
        for block in self.blocks:
            x = block(x)
        return self.head(x.mean(dim=1))


# --- 5. NAS-Bench-201 style cell -----------------------------------------------------------------------------------


def nb201_candidates(c):
    return {
        "none": Zero(), "skip_connect": nn.Identity(), "conv_1x1": ReLUConvBN(c, c, 1), "conv_3x3": ReLUConvBN(c, c, 3, padding=1),
        "avg_pool_3x3": nn.AvgPool2d(3, 1, 1, count_include_pad=False),
    }


class NB201Cell(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.edges = nn.ModuleDict({f"{j}_{i}": LayerChoice(nb201_candidates(c), label=f"edge_{j}_{i}") for j in range(1, 4) for i in range(j)})

    def forward(self, x):
        nodes = [x]
        for j in range(1, 4):
            nodes.append(sum(self.edges[f"{j}_{i}"](nodes[i]) for i in range(j)))
        return nodes[-1]


class ResidualReduction(nn.Module):
    def __init__(self, c_in, c_out):
        super().__init__()
        self.a = ReLUConvBN(c_in, c_out, 3, 2, 1)
        self.b = ReLUConvBN(c_out, c_out, 3, 1, 1)
        self.shortcut = nn.Sequential(nn.AvgPool2d(2, 2), nn.Conv2d(c_in, c_out, 1, bias=False))

    def forward(self, x):
        return self.b(self.a(x)) + self.shortcut(x)


class NB201Space(ModelSpace):
    def __init__(self, c=4, classes=5):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, c, 3, padding=1, bias=False), nn.BatchNorm2d(c))
        self.cells = nn.Sequential(NB201Cell(c), NB201Cell(c), ResidualReduction(c, 2 * c), NB201Cell(2 * c))
        self.lastact = nn.Sequential(nn.BatchNorm2d(2 * c), nn.ReLU())
        self.classifier = nn.Linear(2 * c, classes)

    def forward(self, x):
        out = self.lastact(self.cells(self.stem(x)))
        return self.classifier(F.adaptive_avg_pool2d(out, 1).flatten(1))


# --- 6. InputChoice with n_chosen > 1 -------------------------------------------------------------------------------


class InputChoiceSpace(ModelSpace):
    def __init__(self, c=4, classes=5):
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

    def forward(self, x):
        x = self.stem(x)
        branches = [self.conv3(x), self.conv1(x), self.pool(x), x]
        summed = self.sum2(branches)
        concatenated = self.squeeze(self.concat2(branches))
        mean = self.mean2([summed, concatenated, x])
        first, second = self.pick2([summed, concatenated, mean])
        out = torch.stack([first, second], dim=0).sum(dim=0)
        out = self.skip([out, out + x])
        return self.head(out.mean(dim=(2, 3)))


# --- 7. loops in forward over fixed ranges ------------------------------------------------------------------------------


class LoopStack(nn.Module):
    def __init__(self, c, n):
        super().__init__()
        self.n = n
        self.layers = nn.ModuleList()
        for i in range(n):
            kernel = nni.choice(f"loop{i}_kernel", [1, 3])
            conv = MutableConv2d(c, c, kernel, padding=kernel // 2)
            self.layers.append(LayerChoice([conv, nn.Sequential(nn.Conv2d(c, c, 1), nn.ReLU())], label=f"loop{i}"))

    def forward(self, x):
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
    def __init__(self, c=4, n=3, classes=5):
        super().__init__()
        self.stem = nn.Conv2d(3, c, 3, padding=1)
        self.stack = LoopStack(c, n)
        self.reduce = nn.Conv2d((n + 1) * c, c, 1)
        self.shared = nn.Sequential(nn.Conv2d(c, c, 3, padding=1), nn.Tanh())
        self.head = nn.Linear(c, classes)

    def forward(self, x):
        x = self.reduce(self.stack(self.stem(x)))
        for _ in range(2):
            x = self.shared(x)
        return self.head(x.amax(dim=(2, 3)))


# --- 8. a space driven by custom Mutators ----------------------------------------------------------------------------------


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1)
        self.bn = nn.BatchNorm2d(c)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


class KernelSizeMutator(StationaryMutator):
    """NNI's documented pattern: find the node by name, update its operation's parameters."""

    def __init__(self, target, sizes, label):
        super().__init__(label=label)
        self.target = target
        self.sizes = sizes

    def mutate(self, model):
        node = model.get_node_by_python_name(self.target)
        size = self.choice(self.sizes)
        parameters = dict(node.operation.parameters, kernel_size=size, padding=size // 2)
        node.update_operation(node.operation.type, parameters)


class ActivationMutator(StationaryMutator):
    def __init__(self, target, label):
        super().__init__(label=label)
        self.target = target

    def mutate(self, model):
        node = model.get_node_by_python_name(self.target)
        kind = {"relu": "ReLU", "tanh": "Tanh", "identity": "Identity"}[self.choice(["relu", "tanh", "identity"])]
        node.update_operation(f"__torch__.torch.nn.modules.activation.{kind}" if kind != "Identity" else "__torch__.torch.nn.modules.linear.Identity", {})


class MutatorSpace(ModelSpace):
    def __init__(self, c=8, classes=5):
        super().__init__()
        self.stem = nn.Conv2d(3, c, 3, padding=1)
        self.conv = nn.Conv2d(c, c, 3, padding=1)
        self.act = nn.ReLU()
        self.block = Block(c)
        self.head = nn.Linear(c, classes)

    def forward(self, x):
        x = self.act(self.conv(self.stem(x)))
        x = self.block(x)
        return self.head(x.mean(dim=(2, 3)))


def mutators():
    """The mutators of :class:`MutatorSpace` (NNI applies them to the converted graph space)."""
    return [KernelSizeMutator("conv", [1, 3, 5], label="kernel"), ActivationMutator("act", label="act")]


SPACES = {
    "darts": DartsNet,
    "proxyless": ProxylessNet,
    "resnet": ResNetSpace,
    "transformer": TransformerSpace,
    "nasbench201": NB201Space,
    "input_choice": InputChoiceSpace,
    "loops": LoopSpace,
    "mutators": MutatorSpace,
}
