"""Freezing a graph space for a sample: apply every primitive's mutation, freeze every leaf's arguments.

Only the graphs reachable from the root are visited. A graph with nothing to freeze is shared with
the space (graphs of a frozen model are not edited afterwards); the others are copied first, so
the space stays as it was.
"""

from __future__ import annotations

from nascore.space import Sample
from nascore_formats.graph.ir import Graph, GraphIR, LeafModule, remove_unused_getitems
from nascore_formats.graph.primitives import PRIMITIVE_OPS, FreezeContext

__all__ = ["freeze_ir", "needs_freezing"]


def needs_freezing(graph: Graph) -> bool:
    """Whether the graph holds a primitive or a leaf with decisions in its arguments."""
    return any(not isinstance(entry, LeafModule) or entry.mutables() for entry in graph.modules.values())


def freeze_ir(space: GraphIR, sample: Sample) -> GraphIR:
    """The frozen model of ``space`` for ``sample`` (``space`` is left unchanged)."""
    work = GraphIR(dict(space.graphs), space.root, space.name)
    context = FreezeContext(work, sample)
    frozen: dict[str, Graph] = {}
    pending = [space.root]
    while pending:
        name = pending.pop()
        if name in frozen:
            continue
        graph = work.graphs[name]
        if needs_freezing(graph):
            graph = graph.copy()
            work.graphs[name] = graph
            _freeze_graph(graph, context)
        frozen[name] = graph
        pending.extend(n for n in work.called_graphs(graph) if n not in frozen)
    return GraphIR(frozen, space.root, space.name)


def _freeze_graph(graph: Graph, context: FreezeContext) -> None:
    operations = {target: entry for target, entry in graph.modules.items() if isinstance(entry, PRIMITIVE_OPS)}
    for node in list(graph.fx.nodes):
        if node.op == "call_module" and "subgraph" not in node.meta and node.target in operations:
            operations[node.target].apply(graph, node, context)  # type: ignore[index]
    for target, entry in list(graph.modules.items()):
        if isinstance(entry, PRIMITIVE_OPS) and graph.modules[target] is entry:
            del graph.modules[target]
        elif isinstance(entry, LeafModule):
            graph.modules[target] = entry.freeze(context.sample)
    remove_unused_getitems(graph.fx)
