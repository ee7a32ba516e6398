"""Merging frozen graph models into one logical graph: several architectures trained as one module.

:func:`merge_models` copies every graph of each member model into one :class:`GraphIR` and adds a
new root graph that calls each member's root graph as a subgraph at the module path ``model_<i>``
and returns the tuple of the members' outputs, in order. The result is an ordinary frozen
:class:`GraphModel`: built from generated code, shipped as JSON with the ``graph`` format entry
(``to_payload`` / ``GraphFormat().load_model``), and exported with ``to_code``.

With ``shared_inputs=True`` (the cgo engine's *dedup-input*) the merged ``forward`` has one set of
inputs that feeds every member; with ``shared_inputs=False`` it takes each member's inputs in turn
(member 0's, then member 1's, ...). Member ``i``'s modules sit under ``model_<i>``, so its
``state_dict`` keys are the member's own keys with the prefix ``"model_<i>."``: weights of a member
built on its own load into ``merged.model_<i>``, and the other way round.

The merged model's sample is ``{"merged": [<member 0's sample>, <member 1's sample>, ...]}``
(:data:`MERGED_LABEL`); :func:`member_samples` reads it back.
"""

from __future__ import annotations

from collections.abc import Container, Sequence

import attrs

from nascore.errors import NascoreError
from nascore.space import Sample
from nascore_formats.graph.format import GraphModel
from nascore_formats.graph.ir import Graph, GraphIR, join_path
from nascore_formats.graph.tracer import ROOT_GRAPH

__all__ = ["MERGED_LABEL", "MergeError", "member_path", "member_samples", "merge_models"]

MERGED_LABEL = "merged"
"""The label of a merged model's sample: the list of the members' samples, in order."""


class MergeError(NascoreError, ValueError):
    """Graph models that cannot be merged (not graph models, not frozen, different input counts)."""


def member_path(index: int) -> str:
    """The module path of member ``index`` in a merged model: ``"model_<index>"``."""
    return f"model_{index}"


def member_samples(model: GraphModel) -> list[Sample]:
    """The samples of the members of a model made by :func:`merge_models`, in order."""
    if MERGED_LABEL not in model.sample:
        raise MergeError(f"{model!r} is not a merged graph model: its sample has no {MERGED_LABEL!r} label")
    return [dict(sample) for sample in model.sample[MERGED_LABEL]]


def merge_models(
    models: Sequence[GraphModel], *, shared_inputs: bool = True, name: str = "Merged"
) -> GraphModel:
    """One frozen graph model computing every model of ``models`` (see the module docstring).

    :param models: frozen graph models (at least one); they are left unchanged, and may share graph
        names or be the same model several times.
    :param shared_inputs: one set of inputs for every member (which must then take the same number
        of inputs), else one set per member, in order.
    :param name: the class name of the merged module (a Python identifier).
    :raises MergeError: a model is not a frozen graph model, or the members take different numbers
        of inputs under ``shared_inputs=True``; the message names the member.
    """
    models = list(models)
    if not models:
        raise MergeError("merge_models needs at least one model")
    if not name.isidentifier():
        raise MergeError(
            f"the merged model's name must be a Python identifier (it names the generated class), got {name!r}"
        )
    for index, model in enumerate(models):
        if not isinstance(model, GraphModel):
            raise MergeError(
                f"member {index} ({model!r}) is a {type(model).__name__}, not a graph-format model (GraphModel)"
            )
        if not model.ir.frozen:
            raise MergeError(
                f"member {index} ({model.ir.name}) still holds search decisions; freeze it with a sample first"
            )
    if shared_inputs:
        expected = len(models[0].ir.root_graph.inputs)
        for index, model in enumerate(models[1:], start=1):
            count = len(model.ir.root_graph.inputs)
            if count != expected:
                raise MergeError(
                    f"member {index} ({model.ir.name}) takes {count} input(s) but member 0 ({models[0].ir.name}) takes "
                    f"{expected}: members with shared inputs must take the same number of inputs (merge them with "
                    "shared_inputs=False instead)"
                )

    graphs: dict[str, Graph] = {}
    roots: list[str] = []
    for index, model in enumerate(models):
        roots.append(_copy_member(model.ir, member_path(index), graphs))

    root_name = _unique(ROOT_GRAPH, graphs)
    root = Graph(root_name, "", "")
    if shared_inputs:
        inputs = [root.fx.placeholder(str(node.target)) for node in models[0].ir.root_graph.inputs]
        member_inputs = [inputs] * len(models)
    else:
        member_inputs = [
            [root.fx.placeholder(f"{node.target}_{index}") for node in model.ir.root_graph.inputs]
            for index, model in enumerate(models)
        ]
    outputs = []
    for index, (member_root, args) in enumerate(zip(roots, member_inputs)):
        call = root.fx.call_module(member_path(index), tuple(args))
        call.meta["subgraph"] = member_root
        outputs.append(call)
    root.fx.output(tuple(outputs))
    graphs[root_name] = root

    sample = {MERGED_LABEL: [dict(model.sample) for model in models]}
    return GraphModel(GraphIR(graphs, root_name, name), sample)


def _unique(base: str, taken: Container[str]) -> str:
    name, index = base, 0
    while name in taken:
        index += 1
        name = f"{base}@{index}"
    return name


def _copy_member(ir: GraphIR, prefix: str, graphs: dict[str, Graph]) -> str:
    """Copy every graph of ``ir`` into ``graphs`` under names starting with ``prefix``; the root's new name.

    The copies share nothing mutable with ``ir``: nodes are copied, the ``modules`` and ``tensors``
    dicts are new, tensors are cloned (leaf modules are immutable and shared). Module paths of the
    graphs that sit at a path in the member (the root, and any graph with a non-empty path) are
    moved under ``prefix``, so that :meth:`GraphIR.find` finds ``"model_0.stem"``.
    """
    names: dict[str, str] = {}
    for old in ir.graphs:
        names[old] = _unique(prefix if old == ir.root else join_path(prefix, old), {*graphs, *names.values()})
    for old_name, old in ir.graphs.items():
        new = old.copy(names[old_name])
        if old_name == ir.root or old.module_path:
            new.module_path = join_path(prefix, old.module_path)
        for old_node, new_node in zip(old.fx.nodes, new.fx.nodes):
            subgraph = old_node.meta.get("subgraph")
            if subgraph is not None:
                if subgraph not in names:
                    raise MergeError(
                        f"graph {old_name!r} of {ir.name} calls graph {subgraph!r}, which the model does not have"
                    )
                new_node.meta["subgraph"] = names[subgraph]
        new.tensors = {key: attrs.evolve(t, value=t.value.detach().clone()) for key, t in old.tensors.items()}
        graphs[new.name] = new
    return names[ir.root]
