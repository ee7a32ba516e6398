"""The ``graph`` format: :class:`GraphFormat`, :class:`GraphSpace` and :class:`GraphModel`.

Building the format traces the space into the graph IR once, runs the space's mutators dry, and
keeps the space's decisions (the same as the simplified format's, plus the mutators' ones). A
decision of the space that no traced node applies (one read in ``__init__``, a parameter shape
set from it, a primitive ``forward`` never calls) is refused, since every value of it would build
the same model (:func:`~nascore_formats.graph.tracer.check_decisions_applied`). Freezing a
sample applies the mutators and the primitives' mutations to the graphs. A frozen
:class:`GraphModel` is built from its generated code, ships as JSON (``to_payload``) and exports
its code (``to_code``, ``export_top_models(formatter="code")``).
"""

from __future__ import annotations

import hashlib
import linecache
import logging
import sys
import types
from typing import Any

import torch.nn as nn

from nascore.errors import ShippingError
from nascore.format import ExecutableModel, ExecutableSpace, ModelFormat
from nascore.nn import ModelSpace
from nascore.space import LabelledMutable, Sample, dedup_mutables
from nascore_formats.common import check_model_space, normalized_sample
from nascore_formats.graph.codegen import GeneratedCode, generate_code
from nascore_formats.graph.freeze import freeze_ir
from nascore_formats.graph.ir import GraphIR
from nascore_formats.graph.mutator import MutatorDecisions, attached_mutators
from nascore_formats.graph.serialize import sample_from_json, sample_to_json
from nascore_formats.graph.tracer import check_decisions_applied, convert_space

__all__ = ["GraphFormat", "GraphSpace", "GraphModel"]

_log = logging.getLogger(__name__)


class GraphModel(ExecutableModel):
    """One architecture as a frozen graph IR; built by running its generated code."""

    format_name = "graph"

    def __init__(self, ir: GraphIR, sample: Sample) -> None:
        super().__init__(sample)
        self.ir = ir
        self._generated: GeneratedCode | None = None
        self._compiled: tuple[types.CodeType, str] | None = None

    def _code(self) -> GeneratedCode:
        if self._generated is None:
            self._generated = generate_code(self.ir, self.sample, strict=False)
        return self._generated

    def build(self) -> nn.Module:
        """A new ``nn.Module`` of this architecture, an instance of the class its generated code defines."""
        generated = self._code()
        if self._compiled is None:
            digest = hashlib.sha1(generated.source.encode()).hexdigest()[:12]
            filename = f"<nascore graph model {generated.class_name} {digest}>"
            # Registered with linecache so that tracebacks through the model show its source lines.
            lines = generated.source.splitlines(keepends=True)
            linecache.cache[filename] = (len(generated.source), None, lines, filename)
            self._compiled = (compile(generated.source, filename, "exec"), digest)
        code, digest = self._compiled
        name = f"nascore_graph_{digest}"
        module = sys.modules.get(name)
        if module is None or generated.injected:
            module = types.ModuleType(name)
            module.__dict__.update(generated.injected)
            exec(code, module.__dict__)
            if not generated.injected:
                # Registered so that built models pickle by reference in this process (same code, same module).
                sys.modules[name] = module
        return module.__dict__[generated.class_name]()

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_generated"] = state["_compiled"] = None  # caches, rebuilt on demand
        return state

    def to_code(self) -> str:
        """Python source defining this architecture as one ``nn.Module`` class; it runs on its own."""
        return generate_code(self.ir, self.sample, strict=True).source

    def to_payload(self) -> dict[str, Any]:
        """``{"format": "graph", "sample": ..., "ir": ...}``; raises ShippingError if the IR has no JSON form.

        The sample's values are written as the IR's values are (a tuple as ``{"$tuple": [...]}``, see
        :func:`~nascore_formats.graph.serialize.sample_to_json`), so that they come back as they were:
        the payload holds no space whose decisions could map JSON values back to candidates.
        """
        return {"format": "graph", "sample": sample_to_json(self.sample), "ir": self.ir.to_json()}


class GraphSpace(ExecutableSpace):
    """A model space as a graph IR with mutations; its decisions are what strategies sample."""

    def __init__(self, space: ModelSpace) -> None:
        self.ir = convert_space(space)
        check_decisions_applied(space, self.ir)  # a decision no node uses would give the same model for every value
        self.mutators = MutatorDecisions(attached_mutators(space))
        if self.mutators.mutators:
            self.mutators.dry_run(self.ir.copy())
            self.mutators.check_stationary(self.ir)
        mutables: dict[str, LabelledMutable] = dict(space.simplify())
        mutables = dedup_mutables([*mutables.values(), *self.mutators.mutables()])
        super().__init__(space, mutables)
        _log.debug("Graph space of %s: %d graphs, %d decisions", type(space).__name__, len(self.ir.graphs), len(mutables))

    def freeze(self, sample: Sample) -> GraphModel:
        self.validate(sample)
        sample = normalized_sample(self._mutables, sample)
        ir = self.ir
        if self.mutators.mutators:
            ir = ir.copy()
            self.mutators.replay(ir, sample)
        return GraphModel(freeze_ir(ir, sample), sample)


class GraphFormat(ModelFormat):
    """Registered as ``graph``: the space traced with torch.fx into a graph IR."""

    name = "graph"

    def build(self, space: nn.Module) -> GraphSpace:
        return GraphSpace(check_model_space(space, self.name))

    def load_model(self, payload: dict[str, Any]) -> GraphModel:
        if payload.get("format") != self.name or "ir" not in payload:
            raise ShippingError(f"not a graph model payload: keys {sorted(payload)}, format {payload.get('format')!r}")
        return GraphModel(GraphIR.from_json(payload["ir"]), sample_from_json(payload.get("sample", {})))
