"""Code generation: a frozen graph model as readable PyTorch source defining one ``nn.Module``.

The source imports torch (and the user classes and functions the model needs, by their import
paths), builds every leaf module in ``__init__`` at its path (``self.cells[0].ops[1][0]``, so the
``state_dict`` keys are those of the same architecture built by the simplified format), and
``forward`` is every graph inlined into one function: one statement per node, operators written
as operators, each module's part introduced by a comment with its path. It runs on its own.

With ``strict=False`` (building a model in the current process) values that have no import path
or no literal form (a class defined inside a function, a large tensor) are passed in as globals
of the generated module instead; with ``strict=True`` (:meth:`GraphModel.to_code`) they raise
:class:`~nascore.errors.ShippingError` saying which value and where.
"""

from __future__ import annotations

import builtins
import enum
import json
import keyword
import math
import operator
import re
from typing import Any

import torch
import torch.nn as nn
from torch.fx import Node

from nascore.errors import ShippingError
from nascore.space import Sample
from nascore_formats.graph.ir import Graph, GraphIR, LeafModule, TensorValue, join_path, map_nodes
from nascore_formats.graph.references import reference_of

__all__ = ["generate_code", "GeneratedCode", "LITERAL_TENSOR_LIMIT"]

LITERAL_TENSOR_LIMIT = 256
"""Tensors with more elements (and not all equal) have no literal form in generated code."""

_BINARY = {
    operator.add: "+", operator.sub: "-", operator.mul: "*", operator.truediv: "/", operator.floordiv: "//",
    operator.mod: "%", operator.pow: "**", operator.matmul: "@", operator.and_: "&", operator.or_: "|",
    operator.xor: "^", operator.lshift: "<<", operator.rshift: ">>", operator.lt: "<", operator.le: "<=",
    operator.gt: ">", operator.ge: ">=", operator.eq: "==", operator.ne: "!=",
}
_UNARY = {operator.neg: "-", operator.pos: "+", operator.invert: "~"}
_RESERVED = {"self", "torch", "nn", "F", "math", "operator"} | set(dir(builtins)) | set(keyword.kwlist)
_ATOM = re.compile(r"^([A-Za-z_][\w.]*(\[[^\[\]]*\])*|\d[\w.]*|'[^']*'|\"[^\"]*\")$")


class GeneratedCode:
    """Source text and the globals it needs besides its imports (empty when generated strictly)."""

    def __init__(self, source: str, class_name: str, injected: dict[str, Any]) -> None:
        self.source = source
        self.class_name = class_name
        self.injected = injected


def generate_code(ir: GraphIR, sample: Sample | None = None, *, strict: bool = True) -> GeneratedCode:
    """The source of a frozen model (see the module docstring)."""
    return _Generator(ir, sample, strict).generate()


class _Code:
    """A piece of code standing for a value (a variable, ``self.conv.weight``)."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


class _Tree:
    """The module tree of the generated model: leaves, containers and tensors by path."""

    def __init__(self) -> None:
        self.leaf: LeafModule | None = None
        self.children: dict[str, _Tree] = {}
        self.tensors: dict[str, TensorValue] = {}

    def node(self, path: str) -> _Tree:
        tree = self
        for part in path.split(".") if path else []:
            tree = tree.children.setdefault(part, _Tree())
        return tree

    @property
    def kind(self) -> str:
        """``"list"`` (children 0..n-1), ``"dict"``, or ``"module"`` (names a ModuleDict cannot hold)."""
        names = list(self.children)
        if names and sorted(names) == sorted(str(i) for i in range(len(names))):
            return "list"
        if any(hasattr(nn.ModuleDict, name) or "." in name or not name for name in names):
            return "module"
        return "dict"


class _Generator:
    def __init__(self, ir: GraphIR, sample: Sample | None, strict: bool) -> None:
        if not ir.frozen:
            raise ShippingError(f"graph model {ir.name!r} still holds search decisions; freeze it with a sample first")
        self.ir = ir
        self.sample = sample
        self.strict = strict
        self.used: set[str] = set(_RESERVED)
        self.imports: list[str] = ["import torch", "import torch.nn as nn"]
        self.import_alias: dict[int, str] = {}
        self.injected: dict[str, Any] = {}
        self.tree = _Tree()
        self.lines: list[str] = []
        self.helper_needed = False
        self.pending_comment: str | None = None
        self._collected: set[tuple[str, str]] = set()

    # --- names and imports --------------------------------------------------------------------------------

    def _name(self, base: str) -> str:
        base = re.sub(r"\W", "_", base) or "v"
        if base[0].isdigit():
            base = "_" + base
        name, index = base, 0
        while name in self.used:
            index += 1
            name = f"{base}_{index}"
        self.used.add(name)
        return name

    def _add_import(self, line: str) -> None:
        if line not in self.imports:
            self.imports.append(line)

    def _import(self, obj: Any, what: str) -> str:
        """A name in the generated module that refers to ``obj`` (a class or a function)."""
        if id(obj) in self.import_alias:
            return self.import_alias[id(obj)]
        if isinstance(obj, type) and issubclass(obj, nn.Module) and getattr(nn, obj.__name__, None) is obj:
            return f"nn.{obj.__name__}"
        reference = reference_of(obj)
        if reference is None:
            return self._inject(obj, getattr(obj, "__name__", "value"), f"{what} has no import path (it is defined in __main__, in a function, or is a lambda); move it to an importable module")
        module, qualname = reference
        if module == "builtins":
            return qualname
        if module == "torch.nn.functional":
            self._add_import("import torch.nn.functional as F")
            return f"F.{qualname}"
        if module in ("torch", "math", "operator") or module.startswith("torch."):
            self._add_import(f"import {module}" if "." not in module else "import torch")
            return f"{module}.{qualname}"
        first, _, rest = qualname.partition(".")
        alias = self._name(first)
        self._add_import(f"from {module} import {first}" + (f" as {alias}" if alias != first else ""))
        self.import_alias[id(obj)] = alias + (f".{rest}" if rest else "")
        return self.import_alias[id(obj)]

    def _inject(self, value: Any, base: str, why: str) -> str:
        if self.strict:
            raise ShippingError(f"cannot write the model {self.ir.name!r} as source code: {why}")
        name = self._name("_" + base.strip("_<>") if base else "_value")
        self.injected[name] = value
        return name

    # --- literals ---------------------------------------------------------------------------------------------

    def literal(self, value: Any, where: str) -> str:
        if isinstance(value, _Code):
            return value.text
        if value is None or isinstance(value, (bool, int, str)):
            return repr(value)
        if isinstance(value, float):
            if math.isnan(value):
                return 'float("nan")'
            if math.isinf(value):
                return 'float("inf")' if value > 0 else '-float("inf")'
            return repr(value)
        if value is Ellipsis:
            return "..."
        if isinstance(value, slice):
            return f"slice({self.literal(value.start, where)}, {self.literal(value.stop, where)}, {self.literal(value.step, where)})"
        if isinstance(value, torch.Size):
            return f"torch.Size({self.literal(list(value), where)})"
        if isinstance(value, tuple) and hasattr(value, "_fields"):
            return f"{self._import(type(value), where)}({', '.join(self.literal(v, where) for v in value)})"
        if isinstance(value, tuple):
            items = [self.literal(v, where) for v in value]
            return f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"
        if isinstance(value, list):
            return f"[{', '.join(self.literal(v, where) for v in value)}]"
        if isinstance(value, dict):
            return "{" + ", ".join(f"{self.literal(k, where)}: {self.literal(v, where)}" for k, v in value.items()) + "}"
        if isinstance(value, (torch.dtype, torch.memory_format, torch.layout)):
            return str(value)
        if isinstance(value, torch.device):
            return f"torch.device({str(value)!r})"
        if isinstance(value, LeafModule):
            return self.constructor(value, where)
        if isinstance(value, torch.Tensor):
            return self.tensor(value, where)
        if isinstance(value, enum.Enum):
            return f"{self._import(type(value), where)}.{value.name}"
        if isinstance(value, type) or callable(value):
            return self._import(value, where)
        return self._inject(value, type(value).__name__, f"{where}: a {type(value).__name__} value has no literal form")

    def tensor(self, value: torch.Tensor, where: str) -> str:
        value = value.detach().cpu()
        shape = tuple(value.shape)
        dtype = str(value.dtype)
        if value.numel() == 0:
            return f"torch.empty({shape!r}, dtype={dtype})"
        flat = value.flatten()
        dtype_arg = "" if value.dtype == torch.get_default_dtype() else f", dtype={dtype}"
        if bool((flat == flat[0]).all()) or bool(flat.isnan().all()):
            first = flat[0].item()
            sizes = ", ".join(str(n) for n in shape)
            if first == 0 and not isinstance(first, bool):
                return f"torch.zeros({sizes}{dtype_arg})"
            if first == 1 and not isinstance(first, bool):
                return f"torch.ones({sizes}{dtype_arg})"
            return f"torch.full({shape!r}, {self.literal(first, where)}{dtype_arg})"
        if value.numel() <= LITERAL_TENSOR_LIMIT:
            return f"torch.tensor({value.tolist()!r}{dtype_arg})"
        return self._inject(
            value.clone(), "tensor",
            f"{where} is a tensor of {value.numel()} different values (more than {LITERAL_TENSOR_LIMIT}); mark the module "
            "that owns it as a basic unit (@nascore.nn.basic_unit) so that its constructor creates it",
        )

    def constructor(self, leaf: LeafModule, where: str) -> str:
        name = self._import(leaf.factory, f"the class of {where}")
        parts = [self.literal(a, where) for a in leaf.args]
        parts += [f"{k}={self.literal(v, where)}" for k, v in leaf.kwargs.items()]
        return f"{name}({', '.join(parts)})"

    # --- the module tree ------------------------------------------------------------------------------------

    def _collect(self, graph: Graph, path: str) -> None:
        if (graph.name, path) in self._collected:
            return
        self._collected.add((graph.name, path))
        # Modules in the order forward first uses them, so that __init__ reads like forward.
        for node in graph.fx.nodes:
            if node.op != "call_module":
                continue
            subgraph = node.meta.get("subgraph")
            if subgraph is not None:
                self.tree.node(join_path(path, str(node.target)))
                self._collect(self.ir.graphs[subgraph], join_path(path, str(node.target)))
            elif node.target in graph.modules:
                self._add_leaf(join_path(path, str(node.target)), graph.modules[node.target])  # type: ignore[index]
        for target, entry in graph.modules.items():
            self._add_leaf(join_path(path, target), entry)
        for target, tensor in graph.tensors.items():
            owner, _, name = join_path(path, target).rpartition(".")
            self.tree.node(owner).tensors.setdefault(name, tensor)

    def _add_leaf(self, path: str, leaf: LeafModule) -> None:
        node = self.tree.node(path)
        if node.leaf is None:
            node.leaf = leaf

    def _module_expression(self, tree: _Tree, path: str, indent: str) -> str:
        if tree.leaf is not None:
            if tree.children:
                raise ShippingError(f"module {path!r} is a leaf ({tree.leaf!r}) and also has submodules in the graph")
            return self.constructor(tree.leaf, f"the module at {path!r}")
        inner = indent + "    "
        kind = tree.kind
        children = sorted(tree.children.items(), key=lambda kv: int(kv[0])) if kind == "list" else tree.children.items()
        items = [(name, self._module_expression(child, join_path(path, name), inner)) for name, child in children]
        if kind == "list":
            body = "".join(f"{inner}{text},\n" for _, text in items)
            return f"nn.ModuleList([\n{body}{indent}])"
        body = "".join(f"{inner}{name!r}: {text},\n" for name, text in items)
        if kind == "dict":
            return f"nn.ModuleDict({{\n{body}{indent}}})"
        self.helper_needed = True
        return f"_container({{\n{body}{indent}}})"

    def _access(self, path: str) -> str:
        """The expression for the module (or tensor) at ``path``: ``self.cells[0].ops["conv"]``."""
        text, tree = "self", self.tree
        for part in path.split(".") if path else []:
            kind = "root" if tree is self.tree else tree.kind
            if kind == "list" and part.isdigit():
                text += f"[{part}]"
            elif part.isidentifier() and not keyword.iskeyword(part) and not hasattr(nn.Module, part):
                text += f".{part}"
            elif kind == "dict":
                text += f"[{part!r}]"
            elif part in tree.children:
                text += f".get_submodule({part!r})"
            else:
                text = f"getattr({text}, {part!r})"
            tree = tree.children.get(part, _Tree())
        return text

    def _init_lines(self) -> list[str]:
        lines = []
        for name, child in self.tree.children.items():
            expression = self._module_expression(child, name, "        ")
            if name.isidentifier() and not keyword.iskeyword(name) and not hasattr(nn.Module, name):
                lines.append(f"self.{name} = {expression}")
            else:
                lines.append(f"self.add_module({name!r}, {expression})")

        def tensors(tree: _Tree, path: str) -> None:
            owner = self._access(path)
            for name, tensor in tree.tensors.items():
                where = f"the tensor {join_path(path, name)!r}"
                value = self.tensor(tensor.value, where)
                if tensor.kind == "parameter":
                    grad = "" if tensor.requires_grad else ", requires_grad=False"
                    if name.isidentifier() and not keyword.iskeyword(name) and not hasattr(nn.Module, name):
                        lines.append(f"{owner}.{name} = nn.Parameter({value}{grad})")
                    else:
                        lines.append(f"{owner}.register_parameter({name!r}, nn.Parameter({value}{grad}))")
                else:
                    persistent = "" if tensor.persistent else ", persistent=False"
                    lines.append(f"{owner}.register_buffer({name!r}, {value}{persistent})")
            for name, child in tree.children.items():
                tensors(child, join_path(path, name))

        tensors(self.tree, "")
        return lines

    # --- forward ----------------------------------------------------------------------------------------------

    def _value(self, env: dict[Node, Any], arg: Any) -> Any:
        return map_nodes(arg, lambda n: env[n])

    def _expression(self, value: Any, where: str) -> str:
        return self.literal(value, where)

    def _operand(self, value: Any, where: str) -> str:
        text = self._expression(value, where)
        return text if _ATOM.match(text) else f"({text})"

    def _index(self, index: Any, where: str) -> str:
        def part(item: Any) -> str:
            if isinstance(item, slice):
                start = "" if item.start is None else self._expression(item.start, where)
                stop = "" if item.stop is None else self._expression(item.stop, where)
                step = "" if item.step is None else ":" + self._expression(item.step, where)
                return f"{start}:{stop}{step}"
            return self._expression(item, where)

        if isinstance(index, tuple) and not hasattr(index, "_fields") and index:
            return ", ".join(part(item) for item in index)
        return part(index)

    def _call_args(self, args: Any, kwargs: Any, where: str) -> str:
        parts = [self._expression(a, where) for a in args]
        parts += [f"{k}={self._expression(v, where)}" for k, v in kwargs.items()]
        return ", ".join(parts)

    def _emit_graph(self, graph: Graph, path: str, inputs: list[Any] | None) -> Any:
        env: dict[Node, Any] = {}
        placeholders = graph.inputs
        if inputs is not None and len(inputs) != len(placeholders):
            raise ShippingError(f"graph {graph.name!r} takes {len(placeholders)} inputs but is called with {len(inputs)}")
        prefix = path.replace(".", "_")
        for node in graph.fx.nodes:
            where = f"node {node.name!r} of graph {graph.name!r}"
            if node.op == "placeholder":
                env[node] = inputs[placeholders.index(node)] if inputs is not None else _Code(node.name)
                continue
            if node.op == "output":
                return self._value(env, node.args[0])
            if node.op == "get_attr":
                env[node] = _Code(self._access(join_path(path, str(node.target))))
                continue
            args = self._value(env, node.args)
            kwargs = self._value(env, node.kwargs)
            if node.op == "call_module":
                module_path = join_path(path, str(node.target))
                subgraph = node.meta.get("subgraph")
                if subgraph is not None:
                    sub = self.ir.graphs[subgraph]
                    kind = sub.module_type.rpartition(":")[2] or "function"
                    self.pending_comment = f"# {module_path}: {kind}"
                    env[node] = self._emit_graph(sub, module_path, list(args))
                    self.pending_comment = f"# {path} (continued)" if path else None
                    continue
                expression = f"{self._access(module_path)}({self._call_args(args, kwargs, where)})"
            elif node.op == "call_method":
                expression = f"{self._operand(args[0], where)}.{node.target}({self._call_args(args[1:], kwargs, where)})"
            else:
                target = node.target
                if target is operator.getitem and not kwargs and len(args) == 2:
                    container, index = args
                    if isinstance(container, (list, tuple, dict)) and not isinstance(index, _Code):
                        try:
                            env[node] = container[index]
                            continue
                        except (IndexError, KeyError, TypeError):
                            pass
                    expression = f"{self._operand(container, where)}[{self._index(index, where)}]"
                elif target in _BINARY and len(args) == 2 and not kwargs:
                    expression = f"{self._operand(args[0], where)} {_BINARY[target]} {self._operand(args[1], where)}"
                elif target in _UNARY and len(args) == 1 and not kwargs:
                    expression = f"{_UNARY[target]}{self._operand(args[0], where)}"
                elif target is builtins.getattr and len(args) == 2 and isinstance(args[1], str) and args[1].isidentifier():
                    expression = f"{self._operand(args[0], where)}.{args[1]}"
                else:
                    function = self._import(target, f"the function of {where}")
                    expression = f"{function}({self._call_args(args, kwargs, where)})"
            if node.op == "call_module":
                base = join_path(path, str(node.target)).replace(".", "_")
            else:
                base = f"{prefix}_{node.name.lstrip('_')}" if prefix else node.name
            variable = self._name(base)
            if self.pending_comment is not None:
                self.lines.append(self.pending_comment)
                self.pending_comment = None
            self.lines.append(f"{variable} = {expression}")
            env[node] = _Code(variable)
        raise ShippingError(f"graph {graph.name!r} has no output node")

    def generate(self) -> GeneratedCode:
        root = self.ir.root_graph
        self._collect(root, "")
        parameters = [node.name for node in root.inputs]
        taken = {"self", "torch", "nn", "F", "math", "operator", *self.import_alias.values()}
        for name in parameters:
            if name in taken:
                raise ShippingError(
                    f"the model's input {name!r} clashes with a name the generated code needs; rename that forward parameter"
                )
            self.used.add(name)  # may shadow a builtin, as in the user's own forward
        class_name = self._name(self.ir.name if self.ir.name.isidentifier() else "Model")
        init_lines = self._init_lines()
        output = self._emit_graph(root, "", None)
        self.lines.append(f"return {self._expression(output, 'the output of the model')}")
        header = f'"""The {self.ir.name} architecture, generated by nascore\'s graph format.'
        if self.sample is not None:
            header += "\n\nSample:\n" + "\n".join(f"    {label}: {json.dumps(value)}" for label, value in self.sample.items())
        header += '\n"""'
        parts = [header, "", *sorted(self.imports, key=_import_order), ""]
        if self.helper_needed:
            parts += [
                "",
                "def _container(children: dict[str, nn.Module]) -> nn.Module:",
                '    """A plain module holding ``children`` under names a ModuleDict cannot take."""',
                "    module = nn.Module()",
                "    for name, child in children.items():",
                "        module.add_module(name, child)",
                "    return module",
                "",
            ]
        parts += [
            "",
            f"class {class_name}(nn.Module):",
            "    def __init__(self) -> None:",
            "        super().__init__()",
            *(f"        {line}" for line in init_lines),
            "",
            f"    def forward(self{''.join(', ' + p for p in parameters)}):",
            *(f"        {line}" for line in self.lines),
            "",
        ]
        return GeneratedCode("\n".join(parts), class_name, self.injected)


def _import_order(line: str) -> tuple[int, str]:
    return (0 if line.startswith("import ") else 1, line)
