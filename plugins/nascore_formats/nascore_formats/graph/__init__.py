"""The ``graph`` model format: a model space as torch.fx graphs, mutated per sample, generated back into PyTorch code.

Use it with ``ExperimentConfig(format="graph")``. The space is traced once with ``torch.fx``
into a :class:`GraphIR`: one graph per module call, leaves (``torch.nn`` layers and basic units)
as single nodes built from their class and init arguments, and every search primitive
(``LayerChoice``, ``InputChoice``, ``Repeat``, ``Cell``, choices in basic-unit arguments) as a
mutation of the graph. User :class:`Mutator` subclasses edit the graph too; a dry run turns their
``choice`` calls into ordinary decisions, so every strategy works unchanged.

A frozen :class:`GraphModel` is built from generated source (:meth:`GraphModel.to_code`, one
module defining one ``nn.Module``), ships to trial workers as JSON (:meth:`GraphModel.to_payload`),
and its modules have the paths, hence the ``state_dict`` keys, of the same architecture built by
the simplified format.

What the graph format needs from a space:

* ``forward`` must be traceable by ``torch.fx``: no Python control flow on tensor values, no
  ``len()`` of tensors, no calls into other libraries on tensors. Loops over fixed ranges and
  over module lists are fine. Otherwise mark the module a basic unit
  (:func:`nascore.nn.basic_unit`); conversion fails with an error naming the module and line.
* Leaves are rebuilt from their init arguments in every trial: initialization code in the
  space's ``__init__`` that changes a layer's weights afterwards does not carry over (put it in
  a basic unit's ``__init__``, or in the evaluator).
* ``forward`` arguments with defaults are traced at their default value (the generated
  ``forward`` takes only the others).
* A traced ``forward`` must not read ``self.training`` (torch.fx would record one branch): that is
  an error naming the line. ``nn.Dropout``, ``nn.BatchNorm2d`` and other layers are leaves and keep
  their train/eval behaviour; custom train/eval logic belongs in a basic unit.
"""

from nascore_formats.graph.errors import GraphConversionError
from nascore_formats.graph.format import GraphFormat, GraphModel, GraphSpace
from nascore_formats.graph.ir import Graph, GraphIR, LeafModule, TensorValue
from nascore_formats.graph.merge import merge_models
from nascore_formats.graph.mutator import Mutator, apply_mutators, attached_mutators

__all__ = [
    "Graph",
    "GraphConversionError",
    "GraphFormat",
    "GraphIR",
    "GraphModel",
    "GraphSpace",
    "LeafModule",
    "Mutator",
    "TensorValue",
    "apply_mutators",
    "attached_mutators",
    "merge_models",
]
