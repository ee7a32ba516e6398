"""The NAS-Bench-Graph model space: graph neural networks for node classification.

From Qin et al., "NAS-Bench-Graph: Benchmarking Graph Neural Architecture Search", NeurIPS 2022
Datasets and Benchmarks (https://arxiv.org/abs/2206.09166). A network is a pre-processing linear
layer, four computing nodes and a post-processing linear layer. Computing node ``i`` (0 to 3) applies
one of nine graph operators to one earlier node (node 0 reads the pre-processed input; node ``i``
reads the input or one of nodes ``0 .. i-1``); the nodes no other node reads are summed into the
output. ``24 * 9 ** 4 - 24 = 157,440`` samples (the 24 where every node is a skip connection are
excluded: they are not networks), which are 26,206 architectures up to isomorphism, the entries of
the benchmark's table (:class:`~nascore_hub.benchmarks.NasBenchGraphBenchmark`).

The operators are written here in plain PyTorch over an ``edge_index`` (``2 x E``, source row then
target row, as PyTorch Geometric stores a graph), so the space needs no graph library. They follow
the layers the benchmark trained (GCN, GAT with two heads, GIN, Chebyshev of order 2, GraphSAGE with
mean aggregation, ARMA with one stack and one layer, k-GNN's GraphConv, a linear layer, identity);
their initialization and details are this module's own.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any, ClassVar

import torch
import torch.nn as nn
import torch.nn.functional as F

import nascore
from nascore.errors import SearchSpaceError
from nascore.nn import InputChoice, LayerChoice, ModelSpace, ParametrizedModule
from nascore_hub.spaces.presets import PresetSpace

__all__ = [
    "OPERATORS",
    "PROTEINS_OPERATORS",
    "NUM_NODES",
    "NasBenchGraph",
    "make_graph_operator",
    "leaves",
    "LeafSum",
    "GCNConv",
    "GATConv",
    "GINConv",
    "ChebConv",
    "SAGEConv",
    "ARMAConv",
    "GraphConv",
]

#: The nine operators of a computing node, with NAS-Bench-Graph's names, in the order of the choices.
OPERATORS: tuple[str, ...] = ("gat", "gcn", "gin", "cheb", "sage", "arma", "graph", "fc", "skip")
#: The five operators the benchmark trained on ogbn-proteins.
PROTEINS_OPERATORS: tuple[str, ...] = ("gcn", "sage", "arma", "fc", "skip")
#: Computing nodes of a network.
NUM_NODES = 4


# --- message passing over an edge_index ------------------------------------------------------------


def _with_self_loops(edge_index: torch.Tensor, num_nodes: int) -> torch.Tensor:
    loops = torch.arange(num_nodes, device=edge_index.device).unsqueeze(0).expand(2, num_nodes)
    return torch.cat([edge_index, loops], dim=1)


def _aggregate(messages: torch.Tensor, target: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """The sum of ``messages`` (one row per edge) at each edge's target node, shaped like ``like``
    (one row per node; a template rather than a shape, so that torch.fx can trace it)."""
    return torch.zeros_like(like).index_add(0, target, messages)


def _in_degree(target: torch.Tensor, num_nodes: int, like: torch.Tensor) -> torch.Tensor:
    return like.new_zeros(num_nodes).index_add(0, target, like.new_ones(target.shape[0]))


def _normalized_propagate(x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
    """``D^-1/2 A D^-1/2 x`` over the edges given (GCN's propagation when they include self loops)."""
    source, target = edge_index[0], edge_index[1]
    degree = _in_degree(target, x.shape[0], x)
    scale = degree.clamp(min=1.0).pow(-0.5)
    weight = scale[source] * scale[target]
    return _aggregate(x[source] * weight.unsqueeze(-1), target, x)


class GCNConv(nn.Module):
    """Graph convolution (Kipf & Welling, 2017): ``D^-1/2 (A + I) D^-1/2 X W``."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        return _normalized_propagate(self.linear(x), _with_self_loops(edge_index, x.shape[0]))


class GATConv(nn.Module):
    """Graph attention (Veličković et al., 2018) with ``heads`` heads whose outputs are averaged."""

    def __init__(self, in_features: int, out_features: int, heads: int = 2) -> None:
        super().__init__()
        self.heads, self.out_features = heads, out_features
        self.linear = nn.Linear(in_features, heads * out_features, bias=False)
        self.attend_source = nn.Parameter(torch.randn(heads, out_features) * out_features**-0.5)
        self.attend_target = nn.Parameter(torch.randn(heads, out_features) * out_features**-0.5)
        self.bias = nn.Parameter(torch.zeros(out_features))

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        num_nodes = x.shape[0]
        edges = _with_self_loops(edge_index, num_nodes)
        source, target = edges[0], edges[1]
        h = self.linear(x).view(num_nodes, self.heads, self.out_features)
        score = F.leaky_relu(
            (h * self.attend_source).sum(-1)[source] + (h * self.attend_target).sum(-1)[target], 0.2
        )
        # softmax over the edges into each node: subtract each node's largest score first
        largest = score.new_full((num_nodes, self.heads), float("-inf")).scatter_reduce(
            0, target.unsqueeze(-1).expand_as(score), score, reduce="amax", include_self=True
        )
        weight = (score - largest[target]).exp()
        total = _aggregate(weight, target, largest)
        attention = weight / total[target].clamp(min=1e-16)
        out = _aggregate(h[source] * attention.unsqueeze(-1), target, h)
        return out.mean(dim=1) + self.bias


class GINConv(nn.Module):
    """Graph isomorphism network layer (Xu et al., 2019): ``MLP((1 + eps) x + sum of neighbours)``."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.eps = nn.Parameter(torch.zeros(1))
        self.mlp = nn.Sequential(nn.Linear(in_features, out_features), nn.ReLU(), nn.Linear(out_features, out_features))

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        neighbours = _aggregate(x[edge_index[0]], edge_index[1], x)
        return self.mlp((1 + self.eps) * x + neighbours)


class ChebConv(nn.Module):
    """Chebyshev spectral convolution of order 2 (Defferrard et al., 2016), largest eigenvalue taken as 2:
    ``T0 W0 + T1 W1`` with ``T0 = x`` and ``T1 = -D^-1/2 A D^-1/2 x``."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.order0 = nn.Linear(in_features, out_features)
        self.order1 = nn.Linear(in_features, out_features, bias=False)

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        return self.order0(x) - self.order1(_normalized_propagate(x, edge_index))


class SAGEConv(nn.Module):
    """GraphSAGE with mean aggregation (Hamilton et al., 2017): ``W1 x + W2 mean of neighbours``."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.root = nn.Linear(in_features, out_features)
        self.neighbours = nn.Linear(in_features, out_features, bias=False)

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        source, target = edge_index[0], edge_index[1]
        total = _aggregate(x[source], target, x)
        mean = total / _in_degree(target, x.shape[0], x).clamp(min=1.0).unsqueeze(-1)
        return self.root(x) + self.neighbours(mean)


class ARMAConv(nn.Module):
    """ARMA graph convolution (Bianchi et al., 2021) with one stack of one layer:
    ``ReLU(D^-1/2 A D^-1/2 X W + X V)``."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.propagate = nn.Linear(in_features, out_features, bias=False)
        self.root = nn.Linear(in_features, out_features)

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        return F.relu(_normalized_propagate(self.propagate(x), edge_index) + self.root(x))


class GraphConv(nn.Module):
    """k-GNN's graph convolution (Morris et al., 2019): ``W1 x + W2 sum of neighbours``."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.root = nn.Linear(in_features, out_features)
        self.neighbours = nn.Linear(in_features, out_features, bias=False)

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        return self.root(x) + self.neighbours(_aggregate(x[edge_index[0]], edge_index[1], x))


class _Linear(nn.Linear):
    """``fc``: a linear layer that ignores the graph."""

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return super().forward(x)


class _Skip(nn.Module):
    """``skip``: the input, unchanged."""

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        return x


_OPERATOR_CLASSES: dict[str, Any] = {
    "gat": GATConv,
    "gcn": GCNConv,
    "gin": GINConv,
    "cheb": ChebConv,
    "sage": SAGEConv,
    "arma": ARMAConv,
    "graph": GraphConv,
    "fc": _Linear,
}


def make_graph_operator(name: str, features: int) -> nn.Module:
    """A new module for the operator ``name`` (one of :data:`OPERATORS`) on ``features`` features;
    its forward takes ``(x, edge_index)``."""
    if name == "skip":
        return _Skip()
    if name not in _OPERATOR_CLASSES:
        raise SearchSpaceError(f"unknown NAS-Bench-Graph operator {name!r}; the operators are {list(OPERATORS)}")
    return _OPERATOR_CLASSES[name](features, features)


def link_labels() -> tuple[str, ...]:
    """The labels of the links: ``"lk1"``, ``"lk2"``, ``"lk3"`` (node 0 always reads the input)."""
    return tuple(f"lk{i}" for i in range(1, NUM_NODES))


def op_labels() -> tuple[str, ...]:
    """The labels of the operators: ``"op0"`` .. ``"op3"``."""
    return tuple(f"op{i}" for i in range(NUM_NODES))


def leaves(*links: int) -> tuple[bool, ...]:
    """Which computing nodes no later node reads, for the links ``lk1, lk2, lk3``: the output sums those."""
    read = {link - 1 for link in links if link > 0}
    return tuple(node not in read for node in range(NUM_NODES))


class LeafSum(ParametrizedModule):
    """The sum of the computing nodes whose entry of ``leaves`` is true; ``leaves`` may be an expression
    of the link decisions (see :func:`leaves`), fixed in each frozen model."""

    def __init__(self, leaves: Any) -> None:
        super().__init__()
        self.leaves = tuple(bool(leaf) for leaf in leaves)
        if not any(self.leaves):
            raise SearchSpaceError("LeafSum: at least one node must be an output (a leaf)")

    def forward(self, nodes: list[torch.Tensor]) -> torch.Tensor:
        chosen = [node for node, leaf in zip(nodes, self.leaves) if leaf]
        return sum(chosen[1:], chosen[0])


def _not_all_skip(*ops: str) -> bool:
    return not all(op == "skip" for op in ops)


class NasBenchGraph(PresetSpace, ModelSpace):
    """The NAS-Bench-Graph search space (Qin et al., "NAS-Bench-Graph: Benchmarking Graph Neural
    Architecture Search", NeurIPS 2022 Datasets and Benchmarks, https://arxiv.org/abs/2206.09166).

    ``forward(x, edge_index)`` maps node features (``N x num_features``) and a graph (``2 x E``
    source and target rows) to class scores per node (``N x num_labels``): a linear layer to
    ``hidden`` features, four computing nodes, and a linear layer on the sum of the nodes no other
    node reads. Decisions:

    * ``"op0"`` .. ``"op3"``: each node's operator, one of :data:`OPERATORS`
      (:data:`PROTEINS_OPERATORS` with ``operators=PROTEINS_OPERATORS``: the benchmark trained only
      those on ogbn-proteins);
    * ``"lk1"``, ``"lk2"``, ``"lk3"``: the node that node ``i`` reads, ``0`` for the input and ``k``
      for computing node ``k - 1`` (an :class:`~nascore.nn.InputChoice` over the ``i + 1`` earlier
      nodes); node 0 reads the input.

    A constraint excludes networks of skip connections only, so ``space_size()`` is
    ``24 * 9 ** 4 - 24 = 157,440`` (``24 * 5 ** 4 - 24 = 14,976`` with the proteins operators).

    :param num_features: features of a node in the input.
    :param num_labels: classes.
    :param hidden: features inside the network.
    :param dropout: dropout before each computing node and the output layer.
    :param operators: the operators a node may choose (a subset of :data:`OPERATORS`).
    """

    #: The architectures of the benchmark's figures: a GCN of two layers in a chain, and GAT / GCN branches.
    PRESETS: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        "gcn-chain": {"lk1": 1, "lk2": 2, "lk3": 3, "op0": "gcn", "op1": "gcn", "op2": "skip", "op3": "skip"},
        "paper-figure": {"lk1": 1, "lk2": 2, "lk3": 1, "op0": "gcn", "op1": "gin", "op2": "fc", "op3": "cheb"},
    }

    def __init__(
        self,
        num_features: int,
        num_labels: int,
        hidden: int = 64,
        dropout: float = 0.5,
        operators: tuple[str, ...] | list[str] = OPERATORS,
    ) -> None:
        super().__init__()
        unknown = [op for op in operators if op not in OPERATORS]
        if unknown or not operators:
            raise SearchSpaceError(
                f"NasBenchGraph: operators must be a non-empty subset of {list(OPERATORS)}, got {list(operators)}"
            )
        self.num_features, self.num_labels, self.hidden = num_features, num_labels, hidden
        self.dropout = nn.Dropout(dropout)
        self.pre = nn.Linear(num_features, hidden)
        self.ops = nn.ModuleList(
            LayerChoice({name: make_graph_operator(name, hidden) for name in operators}, label=f"op{i}")
            for i in range(NUM_NODES)
        )
        self.links = nn.ModuleList(
            InputChoice(n_candidates=i + 1, n_chosen=1, reduction="sum", label=f"lk{i}") for i in range(1, NUM_NODES)
        )
        #: The sum of the nodes no later node reads (which those are follows the links).
        self.output = LeafSum(nascore.MutableExpression(leaves, [nascore.choice(label, list(range(i + 1)))
                                                                  for i, label in enumerate(link_labels(), start=1)]))
        self.post = nn.Linear(hidden, num_labels)
        choices = [op.choice for op in self.ops if isinstance(op, LayerChoice)]
        if "skip" in operators and choices:  # built frozen, the sample was checked already
            self.add_mutable(
                nascore.ExpressionConstraint(
                    nascore.MutableExpression(_not_all_skip, choices), label="not-all-skip"
                )
            )

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        nodes = [F.relu(self.pre(x))]
        for i in range(NUM_NODES):
            source = nodes[0] if i == 0 else self.links[i - 1](nodes[: i + 1])
            nodes.append(F.relu(self.ops[i](self.dropout(source), edge_index)))
        return self.post(self.dropout(self.output(nodes[1:])))

    @staticmethod
    def link_labels() -> tuple[str, ...]:
        """``("lk1", "lk2", "lk3")``."""
        return link_labels()

    @staticmethod
    def op_labels() -> tuple[str, ...]:
        """``("op0", "op1", "op2", "op3")``."""
        return op_labels()

    @staticmethod
    def all_links() -> list[tuple[int, ...]]:
        """Every choice of links ``(lk1, lk2, lk3)``: 24."""
        return list(itertools.product(*(range(i + 1) for i in range(1, NUM_NODES))))
