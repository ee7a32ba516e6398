"""Converting a model space into the graph IR with ``torch.fx`` symbolic tracing.

One ``torch.fx`` trace runs over the space's ``forward``. The tracer opens a new graph each time
``forward`` calls a module it steps into, so every module call gets its own graph (called from
its parent's graph by a ``call_module`` node). Tensor arguments of the call become the graph's
placeholders; other arguments (``None``, flags, sizes) are constants of that graph, so a module
called with ``mask=None`` is traced with ``mask is None``. Leaves (basic units and ``torch.nn``
layers, :mod:`.leaves`) become single ``call_module`` nodes, and each search primitive becomes a
node with an operation of :mod:`.primitives`, its candidates traced as graphs of their own.

Code torch.fx cannot record (Python control flow on tensor values, ``len()`` of a tensor, calls
into other libraries) raises :class:`~.errors.GraphConversionError`, naming the module, its class
and the line, and saying how to fix it: mark the module a basic unit. Nothing falls back.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import math
import os
import sysconfig
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import torch
import torch.fx
import torch.nn as nn
from torch.fx import Node, Proxy

import nascore
from nascore.nn import Cell, InputChoice, LayerChoice, ModelSpace, MutableModule, Repeat
from nascore.space import collect_mutables
from nascore_formats.graph.errors import GraphConversionError
from nascore_formats.graph.ir import (
    VALUE,
    Graph,
    GraphIR,
    LeafModule,
    TensorValue,
    join_path,
    remove_unused_getitems,
    template_key,
    template_of,
    walk,
)
from nascore_formats.graph.leaves import class_path, is_leaf_module, leaf_module_spec
from nascore_formats.graph.primitives import (
    Callee,
    CellOp,
    CellSlot,
    InputChoiceOp,
    LayerChoiceOp,
    RepeatOp,
)

__all__ = ["convert_space", "convert_module_call", "check_decisions_applied", "ROOT_GRAPH"]

_log = logging.getLogger(__name__)

ROOT_GRAPH = "_model"
PRIMITIVES = (LayerChoice, InputChoice, Repeat, Cell)

_INTERNAL = tuple(
    str(Path(p).resolve()) + os.sep
    for p in (
        os.path.dirname(torch.__file__),
        os.path.dirname(nascore.__file__),
        os.path.dirname(os.path.dirname(__file__)),
        sysconfig.get_paths()["stdlib"],
    )
)


def convert_space(space: nn.Module) -> GraphIR:
    """Trace ``space`` (its ``forward``) into a :class:`GraphIR` that still holds its primitives."""
    converter = _Converter(space, root_name=ROOT_GRAPH)
    converter.run()
    _log.debug("Converted %s into %d graph(s)", type(space).__name__, len(converter.graphs))
    return GraphIR(converter.graphs, ROOT_GRAPH, type(space).__name__)


def applied_labels(ir: GraphIR) -> set[str]:
    """The labels of the decisions the IR applies: those of its primitives and in its leaves' arguments.

    A leaf may be a graph's module or a primitive's callee (a ``LayerChoice`` candidate, a block).
    """
    mutables: list[Any] = []
    for graph in ir.graphs.values():
        for entry in graph.modules.values():
            mutables.extend(entry.mutables())
            if isinstance(entry, LayerChoiceOp):
                callees: list[Callee | None] = list(entry.candidates.values())
            elif isinstance(entry, RepeatOp):
                callees = list(entry.blocks)
            elif isinstance(entry, CellOp):
                callees = [c for slot in entry.slots for c in slot.candidates.values()]
                callees += [entry.preprocessor, entry.postprocessor]
            else:
                callees = []
            for callee in callees:
                if callee is not None and callee.leaf is not None:
                    mutables.extend(callee.leaf.mutables())
    return {m.label for m in collect_mutables(mutables)}


def check_decisions_applied(space: nn.Module, ir: GraphIR) -> None:
    """Refuse a space with decisions that the traced IR never applies (every value would build the same model).

    A decision registered with ``add_mutable`` and read in ``__init__`` (a value, a parameter shape
    set from it) changes nothing that torch.fx records; a search primitive never called in
    ``forward`` is left out of the graph. The one-shot supernets refuse such decisions too.

    :raises GraphConversionError: naming each such decision, the module that holds it and what to do.
    """
    decisions = space.simplify() if isinstance(space, MutableModule) else {}
    applied = applied_labels(ir)
    unapplied = [label for label in decisions if label not in applied]
    if not unapplied:
        return
    owners: dict[str, tuple[str, nn.Module]] = {}
    for path, module in space.named_modules():
        if isinstance(module, MutableModule):
            for mutable in collect_mutables(module.mutables):
                owners.setdefault(mutable.label, (path, module))
    reasons, uncalled, in_init = [], False, False
    for label in unapplied:
        path, module = owners.get(label, ("", space))
        what = f"module {path!r} ({class_path(type(module))})" if path else f"the model space {class_path(type(module))}"
        if isinstance(module, PRIMITIVES) or (isinstance(module, MutableModule) and not isinstance(module, ModelSpace)):
            reasons.append(f"{label!r} of {what}, which forward never calls (the graph leaves it out)")
            uncalled = True
        else:
            reasons.append(f"{label!r}, registered on {what} with add_mutable")
            in_init = True
    fixes = []
    if in_init:
        fixes.append(
            "A decision read in __init__ (a value, a parameter shape set from it) is not recorded by torch.fx. Use the "
            "format 'simplified' for this space (it runs __init__ again for each sample), or pass the choice to a "
            "Mutable<Layer> (MutableLinear, MutableConv2d, ...), a ParametrizedModule or a LayerChoice that forward "
            "calls, so that the graph records it"
        )
    if uncalled:
        fixes.append("Call the module in forward, or remove it (or its decisions) from the space")
    plural = "s" if len(unapplied) > 1 else ""
    raise GraphConversionError(
        f"the graph format cannot apply the decision{plural} {'; '.join(reasons)}: no node of the traced graph "
        f"uses {'them' if plural else 'it'}, so every value would build the same model. {'. '.join(fixes)}",
        module_path=owners.get(unapplied[0], ("", space))[0],
    )


def convert_module_call(module: nn.Module, name_prefix: str, template: Any = (VALUE,)) -> tuple[Callee, dict[str, Graph]]:
    """Trace a module outside any space, called with positional arguments shaped like ``template``.

    Used for cell operators built when freezing. Returns the callee and the graphs it needs.
    """
    if is_leaf_module(module):
        return Callee(leaf=leaf_module_spec(module, name_prefix)), {}
    converter = _Converter(module, root_name=name_prefix, call_template=template, name_prefix=name_prefix)
    root = converter.run()
    return Callee(graph=root.name, template=template_of(root.output.args[0])), converter.graphs


@attrs.define(eq=False)
class _Frame:
    """The graph being recorded and the module (and its path in the space) it belongs to."""

    graph: Graph
    path: str
    module: nn.Module | None
    param_cache: dict[str, Proxy] = attrs.field(factory=dict)


class _Converter:
    """The state of one conversion: the graphs made so far and caches."""

    def __init__(self, root: nn.Module, *, root_name: str, call_template: Any = None, name_prefix: str = "") -> None:
        self.root = root
        self.root_name = root_name
        self.name_prefix = name_prefix
        self.call_template = call_template
        self.graphs: dict[str, Graph] = {}
        self.callees: dict[Any, Callee] = {}
        self.leaves: dict[int, LeafModule] = {}

    def new_graph(self, base: str, module_path: str, module: nn.Module | None) -> Graph:
        if base != self.root_name and self.name_prefix:
            base = f"{self.name_prefix}/{base}"
        name, index = base, 0
        while name in self.graphs:
            index += 1
            name = f"{base}@{index}"
        graph = Graph(name, module_path, class_path(type(module)) if module is not None else "")
        self.graphs[name] = graph
        return graph

    def leaf_spec(self, module: nn.Module, path: str) -> LeafModule:
        spec = self.leaves.get(id(module))
        if spec is None:
            spec = self.leaves[id(module)] = leaf_module_spec(module, path)
        return spec

    def run(self) -> Graph:
        tracer = _Tracer(self)
        flags = _watch_training_flags(self.root)
        try:
            tracer.trace(self.root)
        finally:
            tracer.frames.clear()
            for module, value in flags:
                module.__dict__["training"] = value
        root = self.graphs[self.root_name]
        remove_unused_getitems(root.fx)
        return root


class _TrainingFlag:
    """Stands for ``module.training`` while tracing: reading it is an error (fx would bake one branch in)."""

    def __init__(self, module: nn.Module, path: str, value: bool) -> None:
        self.module = module
        self.path = path
        self.value = value

    def read(self) -> bool:
        stack = traceback.StackSummary.extract(traceback.walk_stack(None))
        frame = next((f for f in stack if not str(Path(f.filename).resolve()).startswith(_INTERNAL)), None)
        where = f"\n  at {frame.filename}:{frame.lineno}, in {frame.name}: {(frame.line or '').strip()}" if frame else ""
        name = type(self.module).__name__
        what = f"module {self.path!r} ({class_path(type(self.module))})" if self.path else f"the model space {class_path(type(self.module))}"
        raise GraphConversionError(
            f"the forward of {what} reads self.training{where}\n"
            "torch.fx records forward once, so the generated model would always behave as it did while tracing (in "
            "training mode, or not). Use layers that handle train/eval themselves (nn.Dropout, nn.BatchNorm2d: they stay "
            f"leaves of the graph), or mark {name} as a basic unit (@nascore.nn.basic_unit)",
            module_path=self.path,
            filename=frame.filename if frame else None,
            lineno=frame.lineno if frame else None,
        )

    def __bool__(self) -> bool:
        return self.read()


def _watch_training_flags(root: nn.Module) -> list[tuple[nn.Module, Any]]:
    """Replace ``training`` of every module whose forward may be traced; returns what to restore."""
    replaced: list[tuple[nn.Module, Any]] = []
    seen: set[int] = set()

    def visit(module: nn.Module, path: str) -> None:
        if is_leaf_module(module) or id(module) in seen:
            return
        seen.add(id(module))
        if not isinstance(module, PRIMITIVES):
            value = module.__dict__.get("training", True)
            replaced.append((module, value))
            module.__dict__["training"] = _TrainingFlag(module, path, value)
        for name, child in module.named_children():
            visit(child, join_path(path, name))

    visit(root, "")
    return replaced


def _walk_proxies(obj: Any) -> list[Proxy]:
    return [item for item in walk(obj) if isinstance(item, Proxy)]


def _map_proxies(obj: Any, fn: Callable[[Proxy], Any]) -> Any:
    if isinstance(obj, Proxy):
        return fn(obj)
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        return type(obj)(*(_map_proxies(item, fn) for item in obj))
    if isinstance(obj, tuple):
        return tuple(_map_proxies(item, fn) for item in obj)
    if isinstance(obj, list):
        return [_map_proxies(item, fn) for item in obj]
    if isinstance(obj, dict):
        return {key: _map_proxies(value, fn) for key, value in obj.items()}
    if isinstance(obj, slice):
        return slice(_map_proxies(obj.start, fn), _map_proxies(obj.stop, fn), _map_proxies(obj.step, fn))
    return obj


def _call_key(obj: Any) -> Any:
    """A hashable key of a call's arguments: tensors by position, other values by value (or identity)."""
    if isinstance(obj, Proxy):
        return "<tensor>"
    if isinstance(obj, (list, tuple)):
        return (type(obj).__name__, tuple(_call_key(item) for item in obj))
    if isinstance(obj, dict):
        return ("dict", tuple((key, _call_key(value)) for key, value in obj.items()))
    if isinstance(obj, (torch.Tensor, nn.Module)):
        return ("id", id(obj))
    try:
        hash(obj)
    except TypeError:
        return ("id", id(obj))
    return (type(obj).__name__, obj)


def _argument_names(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[str]:
    """A placeholder name for every tensor in the arguments, in :func:`walk` order."""
    try:
        parameters = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        parameters = []
    positional = [
        p.name for p in parameters if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    ]
    rest = next((p.name for p in parameters if p.kind is inspect.Parameter.VAR_POSITIONAL), "input")
    names: list[str] = []

    def add(base: str, value: Any) -> None:
        count = len(_walk_proxies(value))
        names.extend([base] if isinstance(value, Proxy) else [f"{base}_{i}" for i in range(count)])

    for index, value in enumerate(args):
        add(positional[index] if index < len(positional) else f"{rest}_{index - len(positional)}", value)
    for key, value in kwargs.items():
        add(key, value)
    return names


def _user_frame(exc: BaseException) -> traceback.FrameSummary | None:
    """The innermost frame of the traceback that is user code (not torch, nascore or this plugin)."""
    frames = traceback.extract_tb(exc.__traceback__)
    for frame in reversed(frames):
        filename = str(Path(frame.filename).resolve()) if not frame.filename.startswith("<") else frame.filename
        if not filename.startswith(_INTERNAL) and not frame.filename.startswith("<"):
            return frame
    return None


def _hint(exc: BaseException) -> str:
    text = str(exc)
    if "control flow" in text:
        return "Python control flow (if, while, and, or) on a tensor value"
    if "cannot be iterated" in text:
        return "iterating over a tensor, or unpacking it into *args"
    if "'len' is not supported" in text:
        return "len() of a tensor"
    if "Proxy" in text:
        return "calls that need a concrete value (int(), range(), numpy, other libraries) on a tensor"
    return "this construct"


class _Tracer(torch.fx.Tracer):
    """A torch.fx tracer that records one graph per module call and intercepts search primitives."""

    def __init__(self, converter: _Converter) -> None:
        super().__init__(autowrap_modules=(math,))
        self.converter = converter
        self.frames: list[_Frame] = []
        self._inline_next: nn.Module | None = None
        self._scratch = torch.fx.Graph()
        self._constants: dict[str, torch.Tensor] = {}

    @property
    def frame(self) -> _Frame:
        return self.frames[-1]

    # --- the root ------------------------------------------------------------------------------------

    def create_args_for_root(
        self, root_fn: Callable[..., Any], is_module: bool, concrete_args: Any = None
    ) -> tuple[Callable[..., Any], list[Any]]:
        converter = self.converter
        root = self.root
        graph = converter.new_graph(converter.root_name, "", root)
        graph.fx = self.graph
        self.frames.append(_Frame(graph, "", root))
        if converter.call_template is None:
            args, kwargs = self._signature_inputs(root_fn, root)
        else:
            args, kwargs = self._placeholders(root.forward, self._dummies(converter.call_template), {})

        def forward() -> Any:
            if isinstance(root, PRIMITIVES):
                return self._primitive(root, "", "", args, kwargs)
            result = self._run(root, "", lambda: root_fn(root, *args, **kwargs))
            self._cover(root, "")
            return result

        return forward, []

    def _signature_inputs(self, root_fn: Callable[..., Any], root: nn.Module) -> tuple[list[Any], dict[str, Any]]:
        args: list[Any] = []
        kwargs: dict[str, Any] = {}
        for parameter in list(inspect.signature(root_fn).parameters.values())[1:]:
            if parameter.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
                raise GraphConversionError(
                    f"the forward of the model space {type(root).__name__} takes *{parameter.name}; the graph format needs "
                    "the inputs of a model as named parameters (forward(self, x, y)), so that the generated model has "
                    "the same signature",
                    module_path="",
                )
            if parameter.default is inspect.Parameter.empty:
                value: Any = self.create_proxy("placeholder", parameter.name, (), {})
            else:
                value = parameter.default  # traced at its default: the generated forward has no such parameter
            if parameter.kind is inspect.Parameter.KEYWORD_ONLY:
                kwargs[parameter.name] = value
            else:
                args.append(value)
        return args, kwargs

    # --- graphs ---------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _in_graph(self, graph: Graph, path: str, module: nn.Module | None) -> Iterator[None]:
        saved = self.graph
        self.graph = graph.fx
        self.frames.append(_Frame(graph, path, module))
        try:
            yield
        finally:
            self.frames.pop()
            self.graph = saved

    def _placeholders(
        self, fn: Callable[..., Any], args: Any, kwargs: dict[str, Any]
    ) -> tuple[Any, dict[str, Any]]:
        """The call's arguments with every tensor replaced by a new placeholder of the current graph."""
        names = iter(_argument_names(fn, tuple(args), kwargs))
        replace = lambda proxy: self.create_proxy("placeholder", next(names, "input"), (), {})  # noqa: E731
        return _map_proxies(tuple(args), replace), _map_proxies(dict(kwargs), replace)

    def _dummies(self, template: Any) -> Any:
        """A structure like ``template`` with stand-in tensors (used to trace callees on their own)."""
        if template is VALUE:
            return Proxy(self._scratch.placeholder("x"), self)
        if isinstance(template, (list, tuple)):
            return type(template)(self._dummies(t) for t in template)
        if isinstance(template, dict):
            return {key: self._dummies(t) for key, t in template.items()}
        return template

    def _materialize(self, proxy: Proxy, template: Any) -> Any:
        if template is VALUE:
            return proxy
        if isinstance(template, (list, tuple)):
            return type(template)(
                self._materialize(proxy[i], t) if any(x is VALUE for x in walk(t)) else t for i, t in enumerate(template)
            )
        if isinstance(template, dict):
            return {
                key: self._materialize(proxy[key], t) if any(x is VALUE for x in walk(t)) else t
                for key, t in template.items()
            }
        return template

    def _module_graph(
        self, module: nn.Module, path: str, args: Any, kwargs: dict[str, Any], *, primitive: bool = False
    ) -> Callee:
        """The graph of ``module`` called with these arguments (traced once per kind of call)."""
        key = (path, _call_key(tuple(args)), _call_key(kwargs))
        cached = self.converter.callees.get(key)
        if cached is not None:
            return cached
        graph = self.converter.new_graph(path or self.converter.root_name, path, module)
        with self._in_graph(graph, path, module):
            new_args, new_kwargs = self._placeholders(module.forward, args, kwargs)
            if primitive:
                result = self._primitive(module, path, "", new_args, new_kwargs)
            else:
                self._inline_next = module
                try:
                    result = self._run(module, path, lambda: module(*new_args, **new_kwargs))
                finally:
                    self._inline_next = None
                self._cover(module, path)
            output = self.create_arg(result)
            self.create_node("output", "output", (output,), {})
        remove_unused_getitems(graph.fx)
        callee = Callee(graph=graph.name, template=template_of(output))
        self.converter.callees[key] = callee
        return callee

    def _function_graph(self, fn: Callable[..., Any], name: str, module_path: str, args: Any, kwargs: dict[str, Any]) -> Callee:
        """The graph of a plain function (a cell's pre/postprocessor), inlined where it is used."""
        graph = self.converter.new_graph(name, module_path, None)
        with self._in_graph(graph, module_path, None):
            new_args, new_kwargs = self._placeholders(fn, args, kwargs)
            result = self._run(None, name, lambda: fn(*new_args, **new_kwargs))
            output = self.create_arg(result)
            self.create_node("output", "output", (output,), {})
        remove_unused_getitems(graph.fx)
        return Callee(graph=graph.name, template=template_of(output), inline=True)

    def _callee(self, module: nn.Module, path: str, args: Any, kwargs: dict[str, Any]) -> Callee:
        if isinstance(module, PRIMITIVES):
            return self._module_graph(module, path, args, kwargs, primitive=True)
        if is_leaf_module(module):
            return Callee(leaf=self.converter.leaf_spec(module, path))
        self._check_not_unknown_mutable(module, path)
        return self._module_graph(module, path, args, kwargs)

    def _cover(self, module: nn.Module, path: str) -> None:
        """Add the submodules and tensors of ``module`` that forward did not use (they are in its state_dict too)."""
        graph = self.frame.graph
        covered = {str(n.target) for n in graph.fx.nodes if n.op in ("call_module", "get_attr")} | set(graph.modules)
        covered |= set(graph.tensors)

        def partially(local: str) -> bool:
            return any(c.startswith(local + ".") for c in covered)

        def visit(owner: nn.Module, prefix: str) -> None:
            for name, tensor in list(owner._parameters.items()) + list(owner._buffers.items()):
                local = join_path(prefix, name)
                if tensor is not None and local not in covered:
                    graph.tensors[local] = self._tensor_value(owner, name, tensor)
            for name, child in owner.named_children():
                local = join_path(prefix, name)
                if local in covered:
                    continue
                if partially(local):
                    visit(child, local)
                elif isinstance(child, PRIMITIVES) or (isinstance(child, MutableModule) and not isinstance(child, ModelSpace) and not is_leaf_module(child)):
                    _log.warning(
                        "%s at %r is never called in forward; the graph format leaves it out of the model",
                        type(child).__name__, join_path(path, local),
                    )
                elif is_leaf_module(child):
                    graph.modules[local] = self.converter.leaf_spec(child, join_path(path, local))
                else:
                    visit(child, local)

        visit(module, "")

    # --- errors -------------------------------------------------------------------------------------------

    def _run(self, module: nn.Module | None, path: str, thunk: Callable[[], Any]) -> Any:
        try:
            return thunk()
        except GraphConversionError:
            raise
        except Exception as exc:
            raise self._error(exc, module, path) from exc

    def _error(self, exc: Exception, module: nn.Module | None, path: str) -> GraphConversionError:
        frame = _user_frame(exc)
        where = ""
        if frame is not None:
            where = f"\n  at {frame.filename}:{frame.lineno}, in {frame.name}: {(frame.line or '').strip()}"
        if module is None:
            what, fix = f"the function {path!r}", "make it an nn.Module marked as a basic unit"
        elif path == "":
            what = f"the model space {class_path(type(module))}"
            fix = "move that code into a submodule and mark its class as a basic unit (@nascore.nn.basic_unit)"
        else:
            what = f"module {path!r} ({class_path(type(module))})"
            fix = (
                f"mark {type(module).__name__} as a basic unit (decorate the class with @nascore.nn.basic_unit, or derive "
                "it from nascore.nn.ParametrizedModule) so that it is one opaque node of the graph"
            )
        return GraphConversionError(
            f"cannot trace {what} into a graph: {type(exc).__name__}: {exc}{where}\n"
            f"The graph format records forward with torch.fx, which runs it on symbolic tensors, so {_hint(exc)} "
            f"cannot be recorded. Fix: {fix}, or rewrite forward without that construct.",
            module_path=path,
            filename=frame.filename if frame else None,
            lineno=frame.lineno if frame else None,
        )

    def _check_not_unknown_mutable(self, module: nn.Module, path: str) -> None:
        if isinstance(module, MutableModule) and not isinstance(module, (ModelSpace, *PRIMITIVES)) and not is_leaf_module(module):
            raise GraphConversionError(
                f"module {path!r} is a {class_path(type(module))}, a MutableModule the graph format does not know how to "
                "turn into graph mutations (it knows LayerChoice, InputChoice, Repeat, Cell and basic units); "
                "use the simplified format for this space, or express the module with those primitives",
                module_path=path,
            )

    # --- module calls -----------------------------------------------------------------------------------------

    def _path_of(self, module: nn.Module) -> str:
        try:
            return self.path_of_module(module)
        except NameError:
            raise GraphConversionError(
                f"a {class_path(type(module))} is called in the forward of {self.frame.path or 'the model space'!r} but is not "
                "a submodule of the space; assign it to an attribute of a module (self.name = ...) in __init__",
                module_path=self.frame.path,
            ) from None

    def _local(self, path: str) -> str:
        prefix = self.frame.path
        if not prefix:
            return path
        if path == prefix:
            return ""
        if path.startswith(prefix + "."):
            return path[len(prefix) + 1 :]
        owner = type(self.frame.module).__name__ if self.frame.module is not None else "it"
        raise GraphConversionError(
            f"the forward of {prefix!r} uses {path!r}, which is not inside it; the graph format gives every module call "
            f"its own graph, so a module may only use its own submodules and tensors. Move {path!r} into {prefix!r}, "
            f"or mark {owner} as a basic unit",
            module_path=prefix,
        )

    def call_module(
        self, m: nn.Module, forward: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        if self._inline_next is m:
            self._inline_next = None
            return forward(*args, **kwargs)
        path = self._path_of(m)
        local = self._local(path)
        if isinstance(m, PRIMITIVES):
            return self._primitive(m, path, local, args, kwargs)
        if is_leaf_module(m):
            self.frame.graph.modules[local] = self.converter.leaf_spec(m, path)
            return self.create_proxy("call_module", local, args, kwargs)
        self._check_not_unknown_mutable(m, path)
        callee = self._module_graph(m, path, args, kwargs)
        proxy = self.create_proxy("call_module", local, tuple(_walk_proxies((args, kwargs))), {})
        proxy.node.meta["subgraph"] = callee.graph
        return self._materialize(proxy, callee.template)

    # --- primitives ------------------------------------------------------------------------------------------------

    def _primitive(self, m: nn.Module, path: str, local: str, args: Any, kwargs: dict[str, Any]) -> Any:
        if isinstance(m, LayerChoice):
            op: Any = self._layer_choice(m, path, args, kwargs)
            call_args, call_kwargs = tuple(args), dict(kwargs)
        elif isinstance(m, InputChoice):
            candidates = args[0] if args else kwargs.get("candidate_inputs")
            op = self._input_choice(m, path)
            call_args, call_kwargs = (candidates,), {}
        elif isinstance(m, Repeat):
            x = args[0] if args else kwargs.get("x")
            if len(args) + len(kwargs) != 1:
                raise GraphConversionError(f"Repeat {m.label!r} at {path!r} takes one argument", module_path=path)
            op = self._repeat(m, path, x)
            call_args, call_kwargs = (x,), {}
        else:
            if kwargs:
                raise GraphConversionError(f"Cell {m.label!r} at {path!r} takes its inputs positionally", module_path=path)
            op = self._cell(m, path, tuple(args))
            call_args, call_kwargs = tuple(args), {}
        self.frame.graph.modules[local] = op
        proxy = self.create_proxy("call_module", local, call_args, call_kwargs)
        return self._materialize(proxy, op.template)

    def _layer_choice(self, m: LayerChoice, path: str, args: Any, kwargs: dict[str, Any]) -> LayerChoiceOp:
        candidates = {name: self._callee(m[name], join_path(path, str(name)), args, kwargs) for name in m.names}
        graph_templates = {template_key(c.template): c.template for c in candidates.values() if c.leaf is None}
        if len(graph_templates) > 1:
            shapes = ", ".join(f"{name!r} returns {template_key(c.template)}" for name, c in candidates.items() if c.leaf is None)
            raise GraphConversionError(
                f"LayerChoice {m.label!r} at {path!r}: the candidates return different kinds of values ({shapes}); "
                "every candidate must return the same structure (e.g. one tensor)",
                module_path=path,
            )
        leaves = any(c.leaf is not None for c in candidates.values())
        template = VALUE if leaves or not graph_templates else next(iter(graph_templates.values()))
        return LayerChoiceOp(m.label, path, m.choice, candidates, template)

    def _input_choice(self, m: InputChoice, path: str) -> InputChoiceOp:
        if m.n_chosen == 1 or m.reduction != "none":
            template: Any = VALUE
        elif m.n_chosen is None:
            raise GraphConversionError(
                f"InputChoice {m.label!r} at {path!r} has n_chosen=None and reduction='none': it returns a list whose "
                "length depends on the sample, which a graph cannot express. Give n_chosen, or a reduction "
                "('sum', 'mean', 'concat')",
                module_path=path,
            )
        else:
            template = [VALUE] * m.n_chosen
        return InputChoiceOp(m.label, path, m.choice, m.n_candidates, m.n_chosen, m.reduction, template)

    def _repeat(self, m: Repeat, path: str, x: Any) -> RepeatOp:
        in_template = template_of(x, lambda v: isinstance(v, Proxy))
        blocks = []
        current = x
        for index, block in enumerate(m.blocks):
            callee = self._callee(block, join_path(path, f"blocks.{index}"), (current,), {})
            if template_key(callee.template) != template_key(in_template):
                raise GraphConversionError(
                    f"Repeat {m.label!r} at {path!r}: block {index} takes {template_key(in_template)} but returns "
                    f"{template_key(callee.template)}; a repeated block must return what it takes",
                    module_path=path,
                )
            blocks.append(callee)
            current = self._dummies(callee.template)
        return RepeatOp(m.label, path, m.depth_choice, blocks, in_template)

    def _cell(self, m: Cell, path: str, inputs: tuple[Any, ...]) -> CellOp:
        predecessors = list(inputs[0]) if len(inputs) == 1 and isinstance(inputs[0], (list, tuple)) else list(inputs)
        if len(predecessors) != m.num_predecessors or not all(isinstance(p, Proxy) for p in predecessors):
            raise GraphConversionError(
                f"Cell {m.label!r} at {path!r} takes {m.num_predecessors} input tensor(s) (num_predecessors), "
                f"got {len(predecessors)}",
                module_path=path,
            )
        dummies = [self._dummies(VALUE) for _ in predecessors]

        def processor(fn: Any, name: str, args: tuple[Any, ...]) -> Callee | None:
            if fn is None:
                return None
            if isinstance(fn, nn.Module):
                return self._callee(fn, join_path(path, name), args, {})
            return self._function_graph(fn, join_path(path, name) + "()", path, args, {})

        preprocessor = processor(m.preprocessor, "preprocessor", (list(dummies),))
        slots = []
        for n, (node_ops, node_inputs) in enumerate(zip(m.ops, m.inputs)):
            for k, (layer_choice, input_choice) in enumerate(zip(node_ops, node_inputs)):
                candidates = {}
                for name in layer_choice.names:
                    candidate_path = join_path(path, f"ops.{n}.{k}.{name}")
                    callee = self._callee(layer_choice[name], candidate_path, (self._dummies(VALUE),), {})
                    if callee.template is not VALUE:
                        raise GraphConversionError(
                            f"Cell {m.label!r}: operator candidate {name!r} at {candidate_path!r} returns "
                            f"{template_key(callee.template)}; cell operators must return one tensor",
                            module_path=candidate_path,
                        )
                    candidates[name] = callee
                slots.append(
                    CellSlot(m.num_predecessors + n, k, input_choice.choice, layer_choice.choice, candidates)
                )
        postprocessor = processor(m.postprocessor, "postprocessor", (self._dummies(VALUE), list(dummies)))
        return CellOp(
            label=m.label,
            path=path,
            num_predecessors=m.num_predecessors,
            num_nodes=m.num_nodes,
            merge_op=m.merge_op,
            concat_dim=m.concat_dim,
            slots=slots,
            preprocessor=preprocessor,
            postprocessor=postprocessor,
            template=postprocessor.template if postprocessor is not None else VALUE,
            cell=m,
            input_factories=dict(m.input_factories),
            trace_standalone=convert_module_call,
        )

    # --- nodes, attributes and constants ---------------------------------------------------------------------------

    def getattr(self, attr: str, attr_val: Any, parameter_proxy_cache: dict[str, Proxy]) -> Any:
        cache = self.frame.param_cache if self.frames else parameter_proxy_cache
        return super().getattr(attr, attr_val, cache)

    def create_arg(self, a: Any) -> Any:
        if isinstance(a, _TrainingFlag):
            a.read()
        if isinstance(a, torch.Tensor) and not isinstance(a, nn.Parameter) and self.frames:
            known = any(a is b for b in self.root.buffers()) or self.tensor_attrs.get(a) is not None
            if not known:
                name, index = "_tensor_constant", 0
                while join_path(self.frame.path, f"{name}{index}") in self._constants:
                    index += 1
                path = join_path(self.frame.path, f"{name}{index}")
                self._constants[path] = a
                return self.create_node("get_attr", path, (), {})
        return super().create_arg(a)

    def create_node(
        self,
        kind: str,
        target: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        name: str | None = None,
        type_expr: Any | None = None,
    ) -> Node:
        if self.frames:
            for value in walk((args, kwargs)):
                if isinstance(value, Node) and value.graph is not self.graph:
                    self._foreign_value(value)
            if kind == "get_attr":
                target = self._attribute(str(target))
        return super().create_node(kind, target, args, kwargs, name, type_expr)

    def _foreign_value(self, value: Node) -> None:
        frame = self.frame
        owner = type(frame.module).__name__ if frame.module is not None else "it"
        raise GraphConversionError(
            f"in the forward of {frame.path or 'the model space'!r}: the tensor {value.name!r} was computed outside this "
            "module and reaches it without being an argument of its forward (stored on self, or in a global, by "
            "another module); the graph format needs the inputs of every module to be arguments of its forward. Pass "
            f"it as an argument, or mark {owner} as a basic unit",
            module_path=frame.path,
        )

    def _attribute(self, path: str) -> str:
        """Localize a ``get_attr`` target and record the tensor (or the leaf that owns it)."""
        frame = self.frame
        local = self._local(path)
        owner_path, _, name = path.rpartition(".")
        if path in self._constants:
            frame.graph.tensors[local] = TensorValue("constant", self._constants[path].detach(), False, False)
            return local
        owner = self.root.get_submodule(owner_path) if owner_path else self.root
        # Tensors inside a primitive are not where they will be in the frozen model.
        walk_path = frame.path
        for part in self._local(owner_path).split(".") if self._local(owner_path) else []:
            walk_path = join_path(walk_path, part)
            if isinstance(self.root.get_submodule(walk_path), PRIMITIVES):
                raise GraphConversionError(
                    f"the forward of {frame.path or 'the model space'!r} reads {path!r}, a tensor inside the search "
                    f"primitive at {walk_path!r}; after freezing it is somewhere else. Call the primitive instead of "
                    "reading its insides",
                    module_path=frame.path,
                )
        if owner is not frame.module and is_leaf_module(owner):
            owner_local = self._local(owner_path)
            frame.graph.modules.setdefault(owner_local, self.converter.leaf_spec(owner, owner_path))
            return local
        tensor = owner._parameters.get(name)
        if tensor is None:
            tensor = owner._buffers.get(name)
        if tensor is None:
            tensor = vars(owner).get(name)
        if not isinstance(tensor, torch.Tensor):
            raise GraphConversionError(f"{path!r} is read in forward but is not a tensor of the space", module_path=frame.path)
        frame.graph.tensors[local] = self._tensor_value(owner, name, tensor)
        return local

    @staticmethod
    def _tensor_value(owner: nn.Module, name: str, tensor: torch.Tensor) -> TensorValue:
        if name in owner._parameters:
            return TensorValue("parameter", tensor.detach(), bool(tensor.requires_grad), True)
        if name in owner._buffers:
            return TensorValue("buffer", tensor.detach(), False, name not in owner._non_persistent_buffers_set)
        return TensorValue("constant", tensor.detach(), False, False)
