"""The graph IR as JSON: what a graph model is when it crosses a process boundary.

Every node is ``{"name", "op", "target", "args", "kwargs"}`` (plus ``"subgraph"`` for calls of
another graph); a function target is its import path (``"torch:relu"``). Values that JSON has no
type for are tagged objects: ``{"$node": name}``, ``{"$tuple": [...]}``, ``{"$slice": [...]}``,
``{"$dtype": "float32"}``, ``{"$import": "torch.nn:ReLU"}``, ``{"$module": {...}}`` (a leaf
module argument), ``{"$tensor": {...}}``. A graph model's sample is written the same way, so that
a tuple candidate comes back as a tuple. A value with no JSON form raises
:class:`~nascore.errors.ShippingError` naming the graph and the node (or the sample's label), so
the engine can fall back.
"""

from __future__ import annotations

import enum
import importlib
import math
from typing import Any

import torch
import torch.fx
from torch.fx import Node

from nascore.errors import ShippingError
from nascore_formats.graph.ir import Graph, GraphIR, LeafModule, TensorValue
from nascore_formats.graph.references import reference_of

__all__ = ["ir_to_json", "ir_from_json", "sample_to_json", "sample_from_json", "FORMAT_VERSION"]

FORMAT_VERSION = 1


def _import_path(obj: Any, where: str) -> str:
    reference = reference_of(obj)
    if reference is None:
        name = getattr(obj, "__qualname__", repr(obj))
        raise ShippingError(
            f"{where}: {name} has no import path (it is defined in __main__, inside a function, or is a lambda), so the "
            "graph model cannot be written as JSON; move it to an importable module"
        )
    return f"{reference[0]}:{reference[1]}"


def _resolve(path: str) -> Any:
    module, _, qualname = path.partition(":")
    try:
        target: Any = importlib.import_module(module)
        for part in qualname.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as exc:
        raise ShippingError(f"cannot import {path!r} while loading a graph model: {exc}") from exc
    return target


def _tensor_json(value: torch.Tensor) -> dict[str, Any]:
    value = value.detach().cpu()
    return {"dtype": str(value.dtype).removeprefix("torch."), "shape": list(value.shape), "values": value.flatten().tolist()}


def _tensor_load(data: dict[str, Any]) -> torch.Tensor:
    dtype = getattr(torch, data["dtype"])
    return torch.tensor(data["values"], dtype=dtype).reshape(data["shape"])


def encode(value: Any, where: str) -> Any:
    """``value`` as JSON data (see the module docstring)."""
    if isinstance(value, Node):
        return {"$node": value.name}
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else {"$float": repr(value)}
    if isinstance(value, list):
        return [encode(v, where) for v in value]
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return {"$namedtuple": _import_path(type(value), where), "items": [encode(v, where) for v in value]}
    if isinstance(value, torch.Size):
        return {"$size": list(value)}
    if isinstance(value, tuple):
        return {"$tuple": [encode(v, where) for v in value]}
    if isinstance(value, dict):
        return {"$dict": [[encode(k, where), encode(v, where)] for k, v in value.items()]}
    if isinstance(value, slice):
        return {"$slice": [encode(value.start, where), encode(value.stop, where), encode(value.step, where)]}
    if value is Ellipsis:
        return {"$ellipsis": True}
    if isinstance(value, torch.dtype):
        return {"$dtype": str(value).removeprefix("torch.")}
    if isinstance(value, (torch.memory_format, torch.layout)):
        return {"$torch": str(value).removeprefix("torch.")}
    if isinstance(value, torch.device):
        return {"$device": str(value)}
    if isinstance(value, torch.Tensor):
        return {"$tensor": _tensor_json(value)}
    if isinstance(value, LeafModule):
        return {"$module": _leaf_json(value, where)}
    if isinstance(value, enum.Enum):
        return {"$enum": _import_path(type(value), where), "name": value.name}
    if isinstance(value, type) or callable(value):
        return {"$import": _import_path(value, where)}
    raise ShippingError(
        f"{where}: a {type(value).__name__} value ({value!r:.80}) cannot be written as JSON, so the graph model cannot be "
        "shipped as data"
    )


def decode(data: Any, nodes: dict[str, Node] | None = None) -> Any:
    """The value :func:`encode` wrote (``nodes`` maps node names back to nodes)."""
    if isinstance(data, list):
        return [decode(v, nodes) for v in data]
    if not isinstance(data, dict):
        return data
    if "$node" in data:
        assert nodes is not None
        return nodes[data["$node"]]
    if "$float" in data:
        return float(data["$float"])
    if "$tuple" in data:
        return tuple(decode(v, nodes) for v in data["$tuple"])
    if "$namedtuple" in data:
        return _resolve(data["$namedtuple"])(*(decode(v, nodes) for v in data["items"]))
    if "$size" in data:
        return torch.Size(data["$size"])
    if "$dict" in data:
        return {decode(k, nodes): decode(v, nodes) for k, v in data["$dict"]}
    if "$slice" in data:
        return slice(*(decode(v, nodes) for v in data["$slice"]))
    if "$ellipsis" in data:
        return Ellipsis
    if "$dtype" in data:
        return getattr(torch, data["$dtype"])
    if "$torch" in data:
        return getattr(torch, data["$torch"])
    if "$device" in data:
        return torch.device(data["$device"])
    if "$tensor" in data:
        return _tensor_load(data["$tensor"])
    if "$module" in data:
        return _leaf_load(data["$module"])
    if "$enum" in data:
        return getattr(_resolve(data["$enum"]), data["name"])
    if "$import" in data:
        return _resolve(data["$import"])
    raise ShippingError(f"unknown tagged value in a graph model: {sorted(data)}")


def _leaf_json(leaf: LeafModule, where: str) -> dict[str, Any]:
    return {
        "factory": _import_path(leaf.factory, where),
        "args": [encode(a, where) for a in leaf.args],
        "kwargs": {k: encode(v, where) for k, v in leaf.kwargs.items()},
    }


def _leaf_load(data: dict[str, Any]) -> LeafModule:
    return LeafModule(_resolve(data["factory"]), tuple(decode(a) for a in data["args"]), {k: decode(v) for k, v in data["kwargs"].items()})


def _graph_json(graph: Graph) -> dict[str, Any]:
    nodes = []
    for node in graph.fx.nodes:
        where = f"graph {graph.name!r}, node {node.name!r}"
        entry: dict[str, Any] = {"name": node.name, "op": node.op}
        if node.op == "call_function":
            entry["target"] = _import_path(node.target, where)
        else:
            entry["target"] = str(node.target)
        if node.args:
            entry["args"] = [encode(a, where) for a in node.args]
        if node.kwargs:
            entry["kwargs"] = {k: encode(v, where) for k, v in node.kwargs.items()}
        if "subgraph" in node.meta:
            entry["subgraph"] = node.meta["subgraph"]
        nodes.append(entry)
    modules = {}
    for target, entry in graph.modules.items():
        if not isinstance(entry, LeafModule):
            raise ShippingError(f"graph {graph.name!r} still holds the {type(entry).__name__} at {target!r}; freeze the model first")
        modules[target] = _leaf_json(entry, f"graph {graph.name!r}, module {target!r}")
    tensors = {
        name: {
            "kind": t.kind,
            "requires_grad": t.requires_grad,
            "persistent": t.persistent,
            "value": _tensor_json(t.value),
        }
        for name, t in graph.tensors.items()
    }
    return {
        "module_path": graph.module_path,
        "module_type": graph.module_type,
        "nodes": nodes,
        "modules": modules,
        "tensors": tensors,
    }


def _graph_load(name: str, data: dict[str, Any]) -> Graph:
    graph = Graph(name, data.get("module_path", ""), data.get("module_type", ""))
    nodes: dict[str, Node] = {}
    for entry in data["nodes"]:
        op = entry["op"]
        target: Any = _resolve(entry["target"]) if op == "call_function" else entry["target"]
        args = tuple(decode(a, nodes) for a in entry.get("args", []))
        kwargs = {k: decode(v, nodes) for k, v in entry.get("kwargs", {}).items()}
        node = graph.fx.create_node(op, target, args, kwargs, name=entry["name"])
        if "subgraph" in entry:
            node.meta["subgraph"] = entry["subgraph"]
        nodes[entry["name"]] = node
    graph.modules = {target: _leaf_load(spec) for target, spec in data.get("modules", {}).items()}
    graph.tensors = {
        name: TensorValue(t["kind"], _tensor_load(t["value"]), t["requires_grad"], t["persistent"])
        for name, t in data.get("tensors", {}).items()
    }
    return graph


def ir_to_json(ir: GraphIR) -> dict[str, Any]:
    """A frozen :class:`GraphIR` as JSON data."""
    return {
        "version": FORMAT_VERSION,
        "name": ir.name,
        "root": ir.root,
        "graphs": {name: _graph_json(graph) for name, graph in ir.graphs.items()},
    }


def ir_from_json(data: dict[str, Any]) -> GraphIR:
    """Load what :func:`ir_to_json` wrote."""
    version = data.get("version")
    if version != FORMAT_VERSION:
        raise ShippingError(f"graph IR version {version!r} is not supported (this nascore reads version {FORMAT_VERSION})")
    graphs = {name: _graph_load(name, graph) for name, graph in data["graphs"].items()}
    return GraphIR(graphs, data["root"], data.get("name", "Model"))


def sample_to_json(sample: dict[str, Any]) -> dict[str, Any]:
    """A graph model's sample as JSON data, each value written as :func:`encode` writes it.

    Numbers, strings and lists of them stay as they are; a tuple is ``{"$tuple": [...]}``, so that
    :func:`sample_from_json` gives back the candidate itself, not the list JSON would make of it.
    """
    return {label: encode(value, f"sample, label {label!r}") for label, value in sample.items()}


def sample_from_json(data: dict[str, Any]) -> dict[str, Any]:
    """The sample :func:`sample_to_json` wrote."""
    return {label: decode(value) for label, value in data.items()}
