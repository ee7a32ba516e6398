"""The search primitives as graph mutations: LayerChoice, InputChoice, Repeat and Cell.

Tracing leaves one ``call_module`` node for every call of a primitive, and an operation in
``graph.modules[target]`` that records everything the primitive can become: the candidates of a
LayerChoice (each a leaf or a traced graph), the blocks of a Repeat, the candidate operators and
the pre/postprocessors of a Cell. Freezing applies the operation to its node for a sample:

* ``LayerChoice``: the node calls the chosen candidate, at the LayerChoice's own path;
* ``InputChoice``: the node becomes the chosen input, or their sum / mean / concatenation;
* ``Repeat``: the node becomes a chain of the first ``depth`` blocks, at ``<path>.<i>``;
* ``Cell``: the node calls a new graph, the frozen cell: preprocessor, the chosen operator on the
  chosen input for every operator slot at ``ops.<node>.<slot>``, the sums, the concatenation of
  the output nodes, and the postprocessor.

Those are the paths the simplified format gives the same modules, so both formats build models
with the same ``state_dict`` keys.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any, ClassVar

import attrs
import torch
import torch.nn as nn
from torch.fx import Node

from nascore.errors import SearchSpaceError
from nascore.nn import Cell
from nascore.nn.cell import build_op, loose_ends
from nascore.space import LabelledMutable, Mutable, Sample
from nascore_formats.graph.errors import GraphConversionError
from nascore_formats.graph.ir import (
    VALUE,
    Graph,
    GraphIR,
    LeafModule,
    flat_nodes,
    join_path,
    map_nodes,
    materialize,
    replace_uses,
)

__all__ = [
    "Callee",
    "FreezeContext",
    "LayerChoiceOp",
    "InputChoiceOp",
    "RepeatOp",
    "CellOp",
    "CellSlot",
    "call_callee",
]


@attrs.define(eq=False)
class Callee:
    """What a primitive may call: a leaf module, a module's graph, or a function's graph (inlined).

    ``template`` is the shape of the value it returns (:data:`~.ir.VALUE` for one tensor, or a
    structure of them); a leaf's value counts as one.
    """

    leaf: LeafModule | None = None
    graph: str | None = None
    template: Any = VALUE
    inline: bool = False


class FreezeContext:
    """What applying a primitive needs: the sample and the IR being frozen (to add graphs to)."""

    def __init__(self, ir: GraphIR, sample: Sample) -> None:
        self.ir = ir
        self.sample = sample

    def add_graphs(self, graphs: dict[str, Graph]) -> None:
        for name, graph in graphs.items():
            self.ir.graphs.setdefault(name, graph)


def call_callee(
    graph: Graph, target: str, callee: Callee, args: tuple[Any, ...], kwargs: dict[str, Any], ctx: FreezeContext
) -> Any:
    """Insert a call of ``callee`` at ``target`` (at the graph's insert point); returns its value."""
    fx = graph.fx
    if callee.leaf is not None:
        graph.modules[target] = callee.leaf
        return fx.call_module(target, tuple(args), dict(kwargs))
    assert callee.graph is not None
    if callee.inline:
        return inline_graph(graph, ctx.ir.graphs[callee.graph], flat_nodes((args, kwargs)))
    node = fx.call_module(target, tuple(flat_nodes((args, kwargs))))
    node.meta["subgraph"] = callee.graph
    return materialize(fx, node, callee.template)


def inline_graph(graph: Graph, source: Graph, inputs: list[Node]) -> Any:
    """Copy ``source``'s nodes into ``graph`` (at its insert point) on ``inputs``; returns the output value."""
    placeholders = source.inputs
    if len(placeholders) != len(inputs):
        raise SearchSpaceError(f"graph {source.name!r} takes {len(placeholders)} inputs, got {len(inputs)}")
    env: dict[Node, Any] = dict(zip(placeholders, inputs))
    graph.modules.update(source.modules)
    graph.tensors.update(source.tensors)
    for node in source.fx.nodes:
        if node.op == "placeholder":
            continue
        if node.op == "output":
            return map_nodes(node.args[0], lambda n: env[n])
        env[node] = graph.fx.node_copy(node, lambda n: env[n])
    raise SearchSpaceError(f"graph {source.name!r} has no output node")


def _replace_node(graph: Graph, node: Node, build: Callable[[], Any]) -> None:
    """Insert what ``build`` creates before ``node``, make ``node``'s users read it, remove ``node``."""
    with graph.fx.inserting_before(node):
        value = build()
    replace_uses(node, value)
    graph.fx.erase_node(node)


# --- LayerChoice --------------------------------------------------------------------------------------


@attrs.define(eq=False)
class LayerChoiceOp:
    """A ``LayerChoice`` call: one callee per candidate name."""

    kind: ClassVar[str] = "LayerChoice"
    label: str
    path: str
    mutable: LabelledMutable
    candidates: dict[Any, Callee]
    template: Any = VALUE

    def callee_graphs(self) -> list[str]:
        return [c.graph for c in self.candidates.values() if c.graph is not None]

    def mutables(self) -> list[Mutable]:
        return [self.mutable]

    def apply(self, graph: Graph, node: Node, ctx: FreezeContext) -> None:
        callee = self.candidates[self.mutable.freeze(ctx.sample)]
        target = str(node.target)
        _replace_node(graph, node, lambda: call_callee(graph, target, callee, node.args, node.kwargs, ctx))


# --- InputChoice ----------------------------------------------------------------------------------------


@attrs.define(eq=False)
class InputChoiceOp:
    """An ``InputChoice`` call: the node's first argument holds the candidate inputs."""

    kind: ClassVar[str] = "InputChoice"
    label: str
    path: str
    mutable: LabelledMutable
    n_candidates: int
    n_chosen: int | None
    reduction: str
    template: Any = VALUE

    def callee_graphs(self) -> list[str]:
        return []

    def mutables(self) -> list[Mutable]:
        return [self.mutable]

    def apply(self, graph: Graph, node: Node, ctx: FreezeContext) -> None:
        chosen = self.mutable.freeze(ctx.sample)
        candidates = node.args[0] if node.args else node.kwargs["candidate_inputs"]
        fx = graph.fx

        def element(index: int) -> Any:
            if isinstance(candidates, (list, tuple)):
                if index >= len(candidates):
                    raise SearchSpaceError(
                        f"InputChoice {self.label!r} at {self.path!r} chose input {index} but is called with "
                        f"{len(candidates)} inputs"
                    )
                return candidates[index]
            return fx.call_function(operator.getitem, (candidates, index))

        def build() -> Any:
            if isinstance(chosen, int):
                return element(chosen)
            tensors = [element(i) for i in chosen]
            if self.reduction == "none":
                return tensors
            if not tensors:
                raise SearchSpaceError(
                    f"InputChoice {self.label!r} chose no input, so there is nothing to {self.reduction}"
                )
            if self.reduction == "concat":
                return fx.call_function(torch.cat, (tensors,), {"dim": 1})
            total = tensors[0]
            for tensor in tensors[1:]:
                total = fx.call_function(operator.add, (total, tensor))
            if self.reduction == "mean":
                total = fx.call_function(operator.truediv, (total, len(tensors)))
            return total

        _replace_node(graph, node, build)


# --- Repeat -------------------------------------------------------------------------------------------------


@attrs.define(eq=False)
class RepeatOp:
    """A ``Repeat`` call: the callees of its blocks, called in a chain."""

    kind: ClassVar[str] = "Repeat"
    label: str
    path: str
    depth: Any  # an int or a decision
    blocks: list[Callee]
    template: Any = VALUE

    def callee_graphs(self) -> list[str]:
        return [c.graph for c in self.blocks if c.graph is not None]

    def mutables(self) -> list[Mutable]:
        return [self.depth] if isinstance(self.depth, Mutable) else []

    def apply(self, graph: Graph, node: Node, ctx: FreezeContext) -> None:
        depth = self.depth.freeze(ctx.sample) if isinstance(self.depth, Mutable) else self.depth
        target = str(node.target)

        def build() -> Any:
            value = node.args[0] if node.args else node.kwargs["x"]
            for index in range(depth):
                value = call_callee(graph, join_path(target, str(index)), self.blocks[index], (value,), {}, ctx)
            return value

        _replace_node(graph, node, build)


# --- Cell ------------------------------------------------------------------------------------------------------


@attrs.define(eq=False)
class CellSlot:
    """One operator slot of a cell: the decisions for its input and operator, and the candidates."""

    state: int
    index: int
    input_choice: LabelledMutable
    op_choice: LabelledMutable
    candidates: dict[Any, Callee]


@attrs.define(eq=False)
class CellOp:
    """A ``Cell`` call. Factories that see the chosen input build their operator when freezing."""

    kind: ClassVar[str] = "Cell"
    label: str
    path: str
    num_predecessors: int
    num_nodes: int
    merge_op: str
    concat_dim: int
    slots: list[CellSlot]
    preprocessor: Callee | None
    postprocessor: Callee | None
    template: Any
    cell: Cell
    input_factories: dict[Any, Callable[..., nn.Module]]
    trace_standalone: Callable[[nn.Module, str], tuple[Callee, dict[str, Graph]]]
    _built: dict[tuple[int, int, Any, int], tuple[Callee, dict[str, Graph]]] = attrs.field(factory=dict)

    def callee_graphs(self) -> list[str]:
        names = [c.graph for slot in self.slots for c in slot.candidates.values() if c.graph is not None]
        names += [c.graph for c in (self.preprocessor, self.postprocessor) if c is not None and c.graph is not None]
        return names

    def mutables(self) -> list[Mutable]:
        return [m for slot in self.slots for m in (slot.input_choice, slot.op_choice)]

    def _operator(self, slot: CellSlot, name: Any, input_index: int, ctx: FreezeContext) -> Callee:
        if name not in self.input_factories:
            return slot.candidates[name]
        # A factory (node_index, op_index, input_index) -> module: its module depends on the chosen input.
        key = (slot.state, slot.index, name, input_index)
        if key not in self._built:
            module = build_op(self.label, name, self.input_factories[name], slot.state, slot.index, input_index)
            prefix = join_path(self.path, f"ops.{slot.state - self.num_predecessors}.{slot.index}.{name}@input{input_index}")
            self._built[key] = self.trace_standalone(module, prefix)
        callee, graphs = self._built[key]
        ctx.add_graphs(graphs)
        return callee

    def apply(self, graph: Graph, node: Node, ctx: FreezeContext) -> None:
        inputs = node.args
        predecessors = list(inputs[0]) if len(inputs) == 1 and isinstance(inputs[0], (list, tuple)) else list(inputs)
        predecessor_nodes = flat_nodes(predecessors)
        if len(predecessor_nodes) != self.num_predecessors or len(predecessors) != self.num_predecessors:
            raise GraphConversionError(
                f"Cell {self.label!r} at {self.path!r} takes {self.num_predecessors} input tensor(s) (num_predecessors), "
                f"got {len(predecessors)}",
                module_path=self.path,
            )
        cell_path = join_path(graph.module_path, str(node.target))
        cell = Graph(ctx.ir.unique_name(cell_path or "cell"), cell_path, "nascore.nn.cell:FrozenCell")
        fx = cell.fx
        placeholders = [fx.placeholder(f"input_{i}") for i in range(self.num_predecessors)]
        states: list[Any] = list(placeholders)
        if self.preprocessor is not None:
            processed = call_callee(cell, "preprocessor", self.preprocessor, (list(placeholders),), {}, ctx)
            states = [
                processed[i] if isinstance(processed, (list, tuple)) else fx.call_function(operator.getitem, (processed, i))
                for i in range(self.num_predecessors)
            ]
        chosen_inputs: list[int] = []
        slots = iter(self.slots)
        for n in range(self.num_nodes):
            outputs = []
            for slot in [next(slots) for _ in range(len(self.slots) // self.num_nodes)]:
                input_index = slot.input_choice.freeze(ctx.sample)
                name = slot.op_choice.freeze(ctx.sample)
                callee = self._operator(slot, name, input_index, ctx)
                outputs.append(call_callee(cell, f"ops.{n}.{slot.index}", callee, (states[input_index],), {}, ctx))
                chosen_inputs.append(input_index)
            total = outputs[0]
            for output in outputs[1:]:
                total = fx.call_function(operator.add, (total, output))
            states.append(total)
        if self.merge_op == "all":
            indices = list(range(self.num_predecessors, self.num_predecessors + self.num_nodes))
        else:
            indices = loose_ends(self.num_predecessors, self.num_nodes, chosen_inputs)
        this_cell = fx.call_function(torch.cat, ([states[i] for i in indices], self.concat_dim))
        result = this_cell
        if self.postprocessor is not None:
            result = call_callee(cell, "postprocessor", self.postprocessor, (this_cell, list(placeholders)), {}, ctx)
        fx.output(result)
        ctx.ir.add_graph(cell)

        def build() -> Any:
            call = graph.fx.call_module(node.target, tuple(predecessor_nodes))
            call.meta["subgraph"] = cell.name
            return materialize(graph.fx, call, self.template)

        _replace_node(graph, node, build)


PRIMITIVE_OPS = (LayerChoiceOp, InputChoiceOp, RepeatOp, CellOp)
