"""The graph IR: a model as torch.fx graphs, one per module call, plus how to build every leaf module.

A :class:`GraphIR` holds named :class:`Graph` objects and the name of the root one. A graph is one
module's ``forward`` as a ``torch.fx.Graph``: ``placeholder`` nodes for its inputs, ``get_attr``,
``call_function``, ``call_method`` and ``call_module`` nodes, and one ``output`` node (the edges are
the nodes' arguments). A ``call_module`` node's target is a path relative to the graph's module,
and the node calls one of:

* a *leaf*: ``graph.modules[target]`` is a :class:`LeafModule`, a class and its init arguments
  (``nn.Conv2d(3, 16, 3)``, a basic unit); choices may sit in the arguments of a search space;
* another graph: ``node.meta["subgraph"]`` names it; its placeholders take the tensors found in the
  call's arguments (flattened, in order) and its output value is the call's value;
* a search primitive: ``graph.modules[target]`` is a LayerChoice / InputChoice / Repeat / Cell
  operation (:mod:`.primitives`), which freezing replaces with one of the above.

Parameters, buffers and constant tensors that a traced module owns itself are the
:class:`TensorValue` entries of ``graph.tensors``. In a frozen model the path of every module is
its call path from the root, the same path it has in the architecture built by the simplified
format, so the two models have the same ``state_dict`` keys.
"""

from __future__ import annotations

import inspect
import operator
from collections.abc import Callable, Iterator
from typing import Any

import attrs
import torch
import torch.fx
import torch.nn as nn
from torch.fx import Node

from nascore.errors import SearchSpaceError
from nascore.space import LabelledMutable, Mutable, Sample

__all__ = [
    "VALUE",
    "LeafModule",
    "TensorValue",
    "Graph",
    "GraphIR",
    "join_path",
    "walk",
    "flat_nodes",
    "map_nodes",
    "template_of",
    "template_key",
    "materialize",
    "replace_uses",
    "remove_unused_getitems",
]


class _Value:
    """The marker of "one value" in an output template (a structure of markers and constants)."""

    def __repr__(self) -> str:
        return "VALUE"

    def __reduce__(self) -> str:
        return "VALUE"

    def __deepcopy__(self, memo: dict[int, Any]) -> _Value:
        return self


VALUE = _Value()


def join_path(*parts: str) -> str:
    """``join_path("cells.0", "ops")`` is ``"cells.0.ops"``; empty parts are skipped."""
    return ".".join(part for part in parts if part)


# --- leaves and tensors -----------------------------------------------------------------------------


def _walk_values(obj: Any) -> Iterator[Any]:
    yield obj
    if isinstance(obj, (list, tuple)):
        for item in obj:
            yield from _walk_values(item)
    elif isinstance(obj, dict):
        for item in obj.values():
            yield from _walk_values(item)
    elif isinstance(obj, LeafModule):
        yield from _walk_values(obj.args)
        yield from _walk_values(obj.kwargs)


def _map_values(obj: Any, fn: Callable[[Any], Any]) -> Any:
    """Apply ``fn`` bottom-up to mutables and leaf modules inside lists, tuples and dicts."""
    if isinstance(obj, (Mutable, LeafModule)):
        return fn(obj)
    if isinstance(obj, list):
        return [_map_values(item, fn) for item in obj]
    if isinstance(obj, tuple) and not hasattr(obj, "_fields"):
        return tuple(_map_values(item, fn) for item in obj)
    if isinstance(obj, dict):
        return {key: _map_values(value, fn) for key, value in obj.items()}
    return obj


@attrs.frozen(eq=False)
class LeafModule:
    """A module the graph does not look into, built as ``factory(*args, **kwargs)``.

    ``args`` and ``kwargs`` may hold choices (in a search space) and other leaf modules (a module
    passed to a basic unit). In a frozen model they are plain values.
    """

    factory: Callable[..., nn.Module]
    args: tuple[Any, ...] = attrs.field(default=(), converter=tuple)
    kwargs: dict[str, Any] = attrs.field(factory=dict, converter=dict)

    @property
    def type_name(self) -> str:
        """The class name, e.g. ``"Conv2d"``."""
        return getattr(self.factory, "__name__", repr(self.factory))

    def mutables(self) -> list[LabelledMutable]:
        """The decisions in the arguments (each decision object once)."""
        seen: dict[int, LabelledMutable] = {}
        for value in _walk_values((self.args, self.kwargs)):
            if isinstance(value, Mutable):
                for leaf in value.leaf_mutables():
                    seen.setdefault(id(leaf), leaf)
        return list(seen.values())

    def freeze(self, sample: Sample) -> LeafModule:
        """This leaf with every decision in its arguments replaced by its value in ``sample``."""
        if not self.mutables():
            return self
        freeze = lambda value: value.freeze(sample)  # noqa: E731
        return LeafModule(self.factory, _map_values(self.args, freeze), _map_values(self.kwargs, freeze))

    def build(self) -> nn.Module:
        """A new module (arguments that are leaf modules are built too)."""
        if self.mutables():
            raise SearchSpaceError(f"{self!r} still holds decisions; freeze it with a sample before building")
        build = lambda value: value.build() if isinstance(value, LeafModule) else value  # noqa: E731
        return self.factory(*_map_values(self.args, build), **_map_values(self.kwargs, build))

    def arguments(self) -> dict[str, Any]:
        """The init arguments by parameter name (defaults left out)."""
        bound = inspect.signature(self.factory).bind(*self.args, **self.kwargs)
        return dict(bound.arguments)

    def replace(self, factory: Callable[..., nn.Module] | None = None, **changes: Any) -> LeafModule:
        """A copy with some init arguments changed by name, or another class.

        With ``factory``, the result is ``factory(**changes)`` (the old arguments do not carry over,
        another class takes other arguments); without, ``changes`` update the current arguments::

            conv.replace(kernel_size=5, padding=2)
            act.replace(nn.Tanh)
        """
        if factory is not None and factory is not self.factory:
            return LeafModule(factory, (), changes)
        signature = inspect.signature(self.factory)
        parameters = signature.parameters
        accepts_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
        positional = [
            name
            for name, p in parameters.items()
            if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        ]
        args, kwargs = list(self.args), dict(self.kwargs)
        for name, value in changes.items():
            if name not in parameters and not accepts_any:
                raise SearchSpaceError(f"{self.type_name} has no init argument {name!r}; it takes {list(parameters)}")
            position = positional.index(name) if name in positional else -1
            if 0 <= position < len(args):
                args[position] = value
            else:
                kwargs[name] = value
        return LeafModule(self.factory, tuple(args), kwargs)

    def __repr__(self) -> str:
        parts = [repr(a) for a in self.args] + [f"{k}={v!r}" for k, v in self.kwargs.items()]
        return f"{self.type_name}({', '.join(parts)})"


@attrs.frozen(eq=False)
class TensorValue:
    """A parameter, buffer or constant tensor owned by a traced module (not by a leaf)."""

    kind: str  # "parameter" | "buffer" | "constant"
    value: torch.Tensor
    requires_grad: bool = True
    persistent: bool = True


# --- structures of nodes ----------------------------------------------------------------------------


def walk(obj: Any) -> Iterator[Any]:
    """The leaves of a structure of tuples, lists, dicts (values) and slices, in order."""
    if isinstance(obj, (list, tuple)):
        for item in obj:
            yield from walk(item)
    elif isinstance(obj, dict):
        for item in obj.values():
            yield from walk(item)
    elif isinstance(obj, slice):
        yield from walk((obj.start, obj.stop, obj.step))
    else:
        yield obj


def flat_nodes(obj: Any) -> list[Node]:
    """The nodes in a structure, in the order :func:`walk` visits them."""
    return [item for item in walk(obj) if isinstance(item, Node)]


def map_nodes(obj: Any, fn: Callable[[Node], Any]) -> Any:
    """The structure with every node replaced by ``fn(node)``."""
    if isinstance(obj, Node):
        return fn(obj)
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        return type(obj)(*(map_nodes(item, fn) for item in obj))
    if isinstance(obj, tuple):
        return tuple(map_nodes(item, fn) for item in obj)
    if isinstance(obj, list):
        return [map_nodes(item, fn) for item in obj]
    if isinstance(obj, dict):
        return {key: map_nodes(value, fn) for key, value in obj.items()}
    if isinstance(obj, slice):
        return slice(map_nodes(obj.start, fn), map_nodes(obj.stop, fn), map_nodes(obj.step, fn))
    return obj


def template_of(obj: Any, is_value: Callable[[Any], bool] = lambda x: isinstance(x, Node)) -> Any:
    """The shape of a value: the structure with each node (or proxy) replaced by :data:`VALUE`."""
    if is_value(obj):
        return VALUE
    if isinstance(obj, tuple) and not hasattr(obj, "_fields"):
        return tuple(template_of(item, is_value) for item in obj)
    if isinstance(obj, list):
        return [template_of(item, is_value) for item in obj]
    if isinstance(obj, dict):
        return {key: template_of(value, is_value) for key, value in obj.items()}
    return obj


def template_key(template: Any) -> str:
    """A string that is equal for templates of the same shape (for comparisons and messages)."""
    if template is VALUE:
        return "tensor"
    if isinstance(template, tuple):
        return "(" + ", ".join(template_key(t) for t in template) + ("," if len(template) == 1 else "") + ")"
    if isinstance(template, list):
        return "[" + ", ".join(template_key(t) for t in template) + "]"
    if isinstance(template, dict):
        return "{" + ", ".join(f"{k!r}: {template_key(v)}" for k, v in template.items()) + "}"
    return repr(template)


def _has_value(template: Any) -> bool:
    return any(item is VALUE for item in walk(template))


def materialize(fx_graph: torch.fx.Graph, node: Node, template: Any) -> Any:
    """The value of ``node`` as a structure: ``getitem`` nodes on ``node`` for each marker of ``template``.

    New nodes go to the graph's current insert point.
    """
    if template is VALUE:
        return node

    def item(key: Any, sub: Any) -> Any:
        if not _has_value(sub):
            return sub
        return materialize(fx_graph, fx_graph.call_function(operator.getitem, (node, key)), sub)

    if isinstance(template, (list, tuple)):
        return type(template)(item(i, sub) for i, sub in enumerate(template))
    if isinstance(template, dict):
        return {key: item(key, sub) for key, sub in template.items()}
    return template


def _getitem_key(user: Node, node: Node) -> tuple[bool, Any]:
    if user.op == "call_function" and user.target is operator.getitem and len(user.args) == 2 and user.args[0] is node:
        key = user.args[1]
        if not isinstance(key, (Node, slice)) and not any(isinstance(x, Node) for x in walk(key)):
            return True, key
    return False, None


def replace_uses(node: Node, value: Any) -> None:
    """Make every user of ``node`` use ``value`` instead: a node, a constant, or a structure of them.

    ``node[i]`` on a structure is resolved statically, so a node standing for a tuple can be
    replaced by the tuple of its items.
    """
    if isinstance(value, Node):
        node.replace_all_uses_with(value)
        return
    for user in list(node.users):
        static, key = _getitem_key(user, node)
        if static and isinstance(value, (list, tuple, dict)):
            replace_uses(user, value[key])
            user.graph.erase_node(user)
            continue
        user.args = map_nodes(user.args, lambda n: value if n is node else n)
        user.kwargs = map_nodes(user.kwargs, lambda n: value if n is node else n)


def remove_unused_getitems(fx_graph: torch.fx.Graph) -> None:
    """Erase ``x[i]`` nodes nobody uses (materializing a structure creates one per item)."""
    for node in reversed(list(fx_graph.nodes)):
        if node.op == "call_function" and node.target is operator.getitem and not node.users:
            fx_graph.erase_node(node)


# --- graphs ---------------------------------------------------------------------------------------------


class Graph:
    """One module's ``forward`` as a ``torch.fx.Graph``, with the leaves and tensors it owns.

    ``module_path`` is where the module sits in the model space (``""`` for the space itself) and
    ``module_type`` its class (``"package.module:Class"``); both are for lookups and messages.
    """

    def __init__(
        self, name: str, module_path: str = "", module_type: str = "", fx: torch.fx.Graph | None = None
    ) -> None:
        self.name = name
        self.module_path = module_path
        self.module_type = module_type
        self.fx = fx if fx is not None else torch.fx.Graph()
        self.modules: dict[str, Any] = {}
        self.tensors: dict[str, TensorValue] = {}

    # --- reading ---------------------------------------------------------------------------------------

    @property
    def nodes(self) -> list[Node]:
        return list(self.fx.nodes)

    @property
    def inputs(self) -> list[Node]:
        return [node for node in self.fx.nodes if node.op == "placeholder"]

    @property
    def output(self) -> Node:
        return self.fx.output_node()

    def node(self, name: str) -> Node:
        """The node called ``name`` (fx names nodes after what they call: ``conv``, ``relu_1``, ...)."""
        for node in self.fx.nodes:
            if node.name == name:
                return node
        raise SearchSpaceError(f"graph {self.name!r} has no node {name!r}; its nodes are {[n.name for n in self.fx.nodes]}")

    def calls(self, target: str) -> list[Node]:
        """The ``call_module`` nodes calling the module at ``target`` (a path relative to this graph)."""
        return [node for node in self.fx.nodes if node.op == "call_module" and node.target == target]

    def callee(self, node: Node) -> Any:
        """What a ``call_module`` node calls: a :class:`LeafModule`, a graph name, or a primitive."""
        if node.op != "call_module":
            return None
        subgraph = node.meta.get("subgraph")
        if subgraph is not None:
            return subgraph
        return self.modules.get(node.target)

    def leaf(self, node: Node | str) -> LeafModule:
        """The leaf module a node (or target) calls."""
        target = node.target if isinstance(node, Node) else node
        entry = self.modules.get(target)  # type: ignore[arg-type]
        if not isinstance(entry, LeafModule):
            raise SearchSpaceError(f"{target!r} in graph {self.name!r} is not a leaf module (it is {entry!r})")
        return entry

    # --- editing (what mutators use) ---------------------------------------------------------------------

    def set_leaf(self, node: Node | str, leaf: LeafModule) -> None:
        """Make the module at a node's target another leaf: NNI's ``node.update_operation``."""
        target = node.target if isinstance(node, Node) else node
        if not isinstance(leaf, LeafModule):
            raise SearchSpaceError(f"set_leaf needs a LeafModule, got {type(leaf).__name__}")
        if isinstance(node, Node):
            node.meta.pop("subgraph", None)
        self.modules[target] = leaf  # type: ignore[index]

    def insert_leaf_after(self, node: Node, target: str, leaf: LeafModule) -> Node:
        """Insert ``leaf`` (at ``target``) on the output of ``node``; ``node``'s users now read the new node."""
        if target in self.modules or self.calls(target):
            raise SearchSpaceError(f"graph {self.name!r} already has a module at {target!r}")
        self.modules[target] = leaf
        with self.fx.inserting_after(node):
            new = self.fx.call_module(target, (node,))
        node.replace_all_uses_with(new, delete_user_cb=lambda user: user is not new)
        return new

    def insert_function_after(
        self, node: Node, function: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any] | None = None
    ) -> Node:
        """Insert ``function(*args, **kwargs)`` after ``node`` and make ``node``'s users read its result.

        ``args`` usually contain ``node`` itself, e.g. ``(node, skip)`` with ``operator.add`` adds a
        residual edge.
        """
        with self.fx.inserting_after(node):
            new = self.fx.call_function(function, tuple(args), dict(kwargs or {}))
        node.replace_all_uses_with(new, delete_user_cb=lambda user: user is not new)
        return new

    def remove_node(self, node: Node, replacement: Any = None) -> None:
        """Remove ``node``; its users read ``replacement`` (default: the node's first input)."""
        if node.op in ("placeholder", "output"):
            raise SearchSpaceError(f"cannot remove the {node.op} node {node.name!r} of graph {self.name!r}")
        if replacement is None:
            inputs = flat_nodes((node.args, node.kwargs))
            if node.users and not inputs:
                raise SearchSpaceError(f"node {node.name!r} has users and no input to pass to them; give a replacement")
            replacement = inputs[0] if inputs else None
        replace_uses(node, replacement)
        self.fx.erase_node(node)
        if node.op == "call_module" and not self.calls(node.target):  # type: ignore[arg-type]
            self.modules.pop(node.target, None)  # type: ignore[arg-type]

    # --- copies ----------------------------------------------------------------------------------------

    def copy(self, name: str | None = None) -> Graph:
        """An independent copy (nodes are copied; leaves and tensors are shared, they are immutable)."""
        new = Graph(name or self.name, self.module_path, self.module_type)
        mapping: dict[Node, Node] = {}
        output = new.fx.graph_copy(self.fx, mapping)
        new.fx.output(output)
        new.modules = dict(self.modules)
        new.tensors = dict(self.tensors)
        return new

    def __repr__(self) -> str:
        return f"Graph({self.name!r}, module_path={self.module_path!r}, nodes={len(self.fx.nodes)})"


class GraphIR:
    """A model (or a model space) as graphs: ``graphs[root]`` is the model's ``forward``.

    ``name`` is the model's class name (the generated code defines a class of that name).
    """

    def __init__(self, graphs: dict[str, Graph], root: str, name: str = "Model") -> None:
        self.graphs = dict(graphs)
        self.root = root
        self.name = name

    @property
    def root_graph(self) -> Graph:
        return self.graphs[self.root]

    def unique_name(self, base: str) -> str:
        """``base`` or ``base@1``, ``base@2``, ... whichever is not a graph name yet."""
        name, index = base, 0
        while name in self.graphs:
            index += 1
            name = f"{base}@{index}"
        return name

    def add_graph(self, graph: Graph) -> Graph:
        if graph.name in self.graphs:
            raise SearchSpaceError(f"there is already a graph named {graph.name!r}")
        self.graphs[graph.name] = graph
        return graph

    def copy(self) -> GraphIR:
        """An independent copy: every graph copied."""
        return GraphIR({name: graph.copy() for name, graph in self.graphs.items()}, self.root, self.name)

    # --- walking ---------------------------------------------------------------------------------------

    def called_graphs(self, graph: Graph) -> list[str]:
        """The graphs ``graph`` calls directly (through subgraph nodes and primitives)."""
        names: list[str] = []
        for node in graph.fx.nodes:
            callee = graph.callee(node)
            if isinstance(callee, str):
                names.append(callee)
            elif hasattr(callee, "callee_graphs"):
                names.extend(callee.callee_graphs())
        return names

    def reachable(self) -> list[str]:
        """The names of the graphs reachable from the root, root first."""
        order: list[str] = []
        pending = [self.root]
        while pending:
            name = pending.pop(0)
            if name in order:
                continue
            order.append(name)
            pending.extend(n for n in self.called_graphs(self.graphs[name]) if n not in order)
        return order

    def nodes(self) -> Iterator[tuple[Graph, Node]]:
        """Every node of every graph, as ``(graph, node)``."""
        for graph in self.graphs.values():
            for node in graph.fx.nodes:
                yield graph, node

    def find(self, path: str) -> list[tuple[Graph, Node]]:
        """The ``call_module`` nodes calling the module at ``path`` in the space (e.g. ``"stem.conv"``)."""
        return [
            (graph, node)
            for graph, node in self.nodes()
            if node.op == "call_module" and join_path(graph.module_path, node.target) == path  # type: ignore[arg-type]
        ]

    def find_by_type(self, type_name: str) -> list[tuple[Graph, Node]]:
        """The nodes calling a leaf of class ``type_name`` (e.g. ``"Conv2d"``) or a primitive of that kind."""
        found = []
        for graph, node in self.nodes():
            callee = graph.callee(node)
            if isinstance(callee, LeafModule) and callee.type_name == type_name:
                found.append((graph, node))
            elif callee is not None and not isinstance(callee, str) and getattr(callee, "kind", None) == type_name:
                found.append((graph, node))
        return found

    @property
    def frozen(self) -> bool:
        """Whether no primitive and no decision is left (a frozen model)."""
        for graph in self.graphs.values():
            for entry in graph.modules.values():
                if not isinstance(entry, LeafModule) or entry.mutables():
                    return False
        return True

    # --- JSON ------------------------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """The IR as JSON-able data (frozen models only); :meth:`from_json` loads it back."""
        from nascore_formats.graph.serialize import ir_to_json

        return ir_to_json(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> GraphIR:
        from nascore_formats.graph.serialize import ir_from_json

        return ir_from_json(data)

    def __repr__(self) -> str:
        return f"GraphIR({self.name!r}, root={self.root!r}, graphs={len(self.graphs)})"
