"""The structure shared by the three kinds of supernet module for each structural primitive.

:class:`MixedLayerBase` (``LayerChoice``), :class:`MixedInputBase` (``InputChoice``),
:class:`MixedRepeatBase` (``Repeat``) and :class:`MixedCellBase` (``Cell``) take over the candidates,
blocks and operators of the space's primitive, under the same submodule names (so state-dict keys
match the space's). The differentiable, sampling and proxyless modules derive from them and
decide how a forward pass chooses or mixes.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch
import torch.nn as nn

from nascore.nn import Cell, ChosenInputs, InputChoice, LayerChoice, Repeat
from nascore.nn.base import freeze_tree, module_conditional_leaves
from nascore.nn.cell import FrozenCell, build_op
from nascore.space import Categorical, CategoricalMultiple, LabelledMutable, Sample
from nascore.space.conditions import Condition, under
from nascore_strategies.oneshot.supermodule._expression import ArgumentChoice
from nascore_strategies.oneshot.supermodule.base import BaseSuperNetModule

__all__ = ["MixedLayerBase", "MixedInputBase", "MixedRepeatBase", "MixedCellBase", "SlotOps"]


def describe(module: nn.Module, name: str, label: str) -> str:
    """``"module 'body.0' (LayerChoice 'act')"``: where a supernet module comes from, for messages."""
    return f"module {name!r} ({type(module).__name__} {label!r})"


class MixedPrimitiveBase(BaseSuperNetModule):
    """Base of the supernet versions of ``LayerChoice``, ``InputChoice``, ``Repeat`` and ``Cell``.

    Its mutation hook replaces the primitive that :meth:`replaces` accepts with ``cls.create(...)``;
    modules that hold architecture parameters override :meth:`create` (see ``ArchModuleMixin``).
    """

    @classmethod
    def replaces(cls, module: nn.Module) -> bool:
        """Whether this supernet module stands in for ``module``."""
        raise NotImplementedError

    def arch_decisions(self) -> list[Any]:
        """The decisions of the primitive, for strategies that give each one architecture parameters."""
        raise NotImplementedError

    @classmethod
    def create(cls, module: nn.Module, where: str, mutate_kwargs: dict[str, Any]) -> BaseSuperNetModule:
        return cls(module, where)

    @classmethod
    def mutate(cls, module: nn.Module, name: str, memo: dict[str, Any], mutate_kwargs: dict[str, Any]) -> Any:
        if cls.replaces(module):
            return cls.create(module, describe(module, name, module.label), mutate_kwargs)  # type: ignore[arg-type]
        return None


class MixedLayerBase(MixedPrimitiveBase):
    """A ``LayerChoice``: the candidates (submodules named as in the space) and the decision."""

    space_type = LayerChoice

    @classmethod
    def replaces(cls, module: nn.Module) -> bool:
        return isinstance(module, LayerChoice)

    def arch_decisions(self) -> list[Any]:
        return [self.decision]

    def __init__(self, layer_choice: LayerChoice, where: str) -> None:
        super().__init__()
        self.names = list(layer_choice.names)
        self._candidate_keys = [str(name) for name in self.names]
        self.decision: Categorical = layer_choice.choice
        self.where = where
        for name in self.names:
            self.add_module(str(name), layer_choice[name])

    @property
    def label(self) -> str:
        return self.decision.label

    def candidate(self, name: Any) -> nn.Module:
        return self._modules[str(name)]  # type: ignore[return-value]

    @property
    def candidates(self) -> list[nn.Module]:
        modules = self._modules  # read on every forward pass of a differentiable supernet: no call per candidate
        return [modules[key] for key in self._candidate_keys]  # type: ignore[misc]

    def search_space_spec(self) -> dict[str, LabelledMutable]:
        return {self.label: self.decision}

    def conditional_leaves(self) -> Iterator[tuple[Any, tuple[Any, ...]]]:
        yield self.decision, ()
        for name in self.names:
            yield from under(Condition.equals(self.decision, name), module_conditional_leaves(self.candidate(name)))

    def frozen(self, sample: Sample) -> nn.Module:
        return freeze_tree(self.candidate(self.decision.freeze(sample)), sample)

    def extra_repr(self) -> str:
        return f"label={self.label!r}"


class MixedInputBase(MixedPrimitiveBase):
    """An ``InputChoice``: how many candidates, how many chosen, the reduction and the decision."""

    space_type = InputChoice

    @classmethod
    def replaces(cls, module: nn.Module) -> bool:
        return isinstance(module, InputChoice)

    def arch_decisions(self) -> list[Any]:
        return [self.decision]

    def __init__(self, input_choice: InputChoice, where: str) -> None:
        super().__init__()
        self.n_candidates = input_choice.n_candidates
        self.n_chosen = input_choice.n_chosen
        self.reduction = input_choice.reduction
        self.decision: Categorical | CategoricalMultiple = input_choice.choice
        self.where = where

    @property
    def label(self) -> str:
        return self.decision.label

    def search_space_spec(self) -> dict[str, LabelledMutable]:
        return {self.label: self.decision}

    def frozen(self, sample: Sample) -> nn.Module:
        return ChosenInputs(self.decision.freeze(sample), self.reduction)

    def extra_repr(self) -> str:
        return f"n_candidates={self.n_candidates}, n_chosen={self.n_chosen}, label={self.label!r}"


class MixedRepeatBase(MixedPrimitiveBase):
    """A ``Repeat`` with a chosen depth: the blocks (``blocks.<i>`` as in the space) and the depth's decisions."""

    space_type = Repeat

    @classmethod
    def replaces(cls, module: nn.Module) -> bool:
        return isinstance(module, Repeat) and not isinstance(module.depth_choice, int)

    def arch_decisions(self) -> list[Any]:
        return list(self.depth.leaves)

    def __init__(self, repeat: Repeat, where: str) -> None:
        super().__init__()
        self._label = repeat.label
        self.where = where
        self.blocks = repeat.blocks
        self.depth = ArgumentChoice("depth", repeat.depth_choice, where)
        self.depth_values: list[int] = sorted(self.depth.values)

    @property
    def label(self) -> str:
        return self._label

    def search_space_spec(self) -> dict[str, LabelledMutable]:
        return {leaf.label: leaf for leaf in self.depth.leaves}

    def conditional_leaves(self) -> Iterator[tuple[Any, tuple[Any, ...]]]:
        for leaf in self.depth.leaves:
            yield leaf, ()
        for index, block in enumerate(self.blocks):
            entries = module_conditional_leaves(block)
            if index < self.depth_values[0]:
                yield from entries
            else:
                yield from under(Condition.greater(self.depth.expression, index), entries)

    def frozen(self, sample: Sample) -> nn.Module:
        depth = self.depth.value(sample)
        return nn.Sequential(*(freeze_tree(block, sample) for block in list(self.blocks)[:depth]))

    def prefix_outputs(self, x: Any, depths: Sequence[int]) -> dict[int, Any]:
        """The output after each depth in ``depths`` (running the blocks once, up to the largest)."""
        wanted = set(depths)
        outputs: dict[int, Any] = {}
        if 0 in wanted:
            outputs[0] = x
        for index, block in enumerate(self.blocks[: max(depths)]):
            x = block(x)
            if index + 1 in wanted:
                outputs[index + 1] = x
        return outputs

    def extra_repr(self) -> str:
        return f"depth={self.depth_values}, label={self.label!r}"


class SlotOps(nn.Module):
    """The candidate operators of one operator slot of a cell.

    A candidate given as a module is the space's own module. A factory that receives the chosen input
    index (``(node_index, op_index, input_index) -> nn.Module``) is built once per possible input, as
    the frozen model builds it for that input (``<name>.<input_index>``).
    """

    def __init__(self, layer_choice: LayerChoice, input_factories: dict[Any, Any], cell_label: str, state: int, k: int) -> None:
        super().__init__()
        self.names = list(layer_choice.names)
        self.per_input: set[str] = set()
        for name in self.names:
            if name in input_factories:
                built = [build_op(cell_label, name, input_factories[name], state, k, j) for j in range(state)]
                self.add_module(str(name), nn.ModuleList(built))
                self.per_input.add(str(name))
            else:
                self.add_module(str(name), layer_choice[name])

    def get(self, name: Any, input_index: int) -> nn.Module:
        module = self._modules[str(name)]
        if str(name) in self.per_input:
            return module[input_index]  # type: ignore[index]
        return module  # type: ignore[return-value]


class MixedCellBase(MixedPrimitiveBase):
    """A ``Cell``: its operators per slot, its input and operator decisions, and the cell's data flow."""

    space_type = Cell

    @classmethod
    def replaces(cls, module: nn.Module) -> bool:
        return isinstance(module, Cell)

    def arch_decisions(self) -> list[Any]:
        return [decision for _, _, input_decision, op_decision in self.slots for decision in (input_decision, op_decision)]

    def __init__(self, cell: Cell, where: str) -> None:
        super().__init__()
        self._label = cell.label
        self.where = where
        self.num_nodes = cell.num_nodes
        self.num_ops_per_node = cell.num_ops_per_node
        self.num_predecessors = cell.num_predecessors
        self.merge_op = cell.merge_op
        self.concat_dim = cell.concat_dim
        self.preprocessor = cell.preprocessor
        self.ops = nn.ModuleList()
        self.postprocessor = cell.postprocessor
        input_factories = dict(cell.input_factories)
        #: (state, k, input decision, op decision) of every operator slot, in order.
        self.slots: list[tuple[int, int, Categorical, Categorical]] = []
        for node, (node_ops, node_inputs) in enumerate(zip(cell.ops, cell.inputs)):
            state = self.num_predecessors + node
            slots = nn.ModuleList()
            for k, (layer_choice, input_choice) in enumerate(zip(node_ops, node_inputs)):
                slots.append(SlotOps(layer_choice, input_factories, cell.label, state, k))
                self.slots.append((state, k, input_choice.choice, layer_choice.choice))
            self.ops.append(slots)

    @property
    def label(self) -> str:
        return self._label

    def search_space_spec(self) -> dict[str, LabelledMutable]:
        spec: dict[str, LabelledMutable] = {}
        for _, _, input_decision, op_decision in self.slots:
            spec[input_decision.label] = input_decision
            spec[op_decision.label] = op_decision
        return spec

    def conditional_leaves(self) -> Iterator[tuple[Any, tuple[Any, ...]]]:
        for state, k, input_decision, op_decision in self.slots:
            yield input_decision, ()
            yield op_decision, ()
            ops = self.slot_ops(state, k)
            for name in ops.names:
                chosen = Condition.equals(op_decision, name)
                if str(name) in ops.per_input:
                    for j in range(state):
                        entries = module_conditional_leaves(ops.get(name, j))
                        yield from under(chosen, under(Condition.equals(input_decision, j), entries))
                else:
                    yield from under(chosen, module_conditional_leaves(ops.get(name, 0)))
        for processor in (self.preprocessor, self.postprocessor):
            if isinstance(processor, nn.Module):
                yield from module_conditional_leaves(processor)

    def frozen(self, sample: Sample) -> nn.Module:
        ops: list[list[nn.Module]] = [[] for _ in range(self.num_nodes)]
        inputs: list[list[ChosenInputs]] = [[] for _ in range(self.num_nodes)]
        for state, k, input_decision, op_decision in self.slots:
            chosen_input = input_decision.freeze(sample)
            op = self.slot_ops(state, k).get(op_decision.freeze(sample), chosen_input)
            ops[state - self.num_predecessors].append(freeze_tree(op, sample))
            inputs[state - self.num_predecessors].append(ChosenInputs(chosen_input, "none"))
        processors = [
            freeze_tree(fn, sample) if isinstance(fn, nn.Module) else fn for fn in (self.preprocessor, self.postprocessor)
        ]
        return FrozenCell(
            ops, inputs, num_predecessors=self.num_predecessors, merge_op=self.merge_op, preprocessor=processors[0],
            postprocessor=processors[1], concat_dim=self.concat_dim, label=self.label,
        )

    def slot_ops(self, state: int, k: int) -> SlotOps:
        return self.ops[state - self.num_predecessors][k]  # type: ignore[index,return-value]

    def slot_forward(self, state: int, k: int, input_decision: Categorical, op_decision: Categorical, states: list[Any]) -> Any:
        raise NotImplementedError

    def output_indices(self) -> list[int]:
        return list(range(self.num_predecessors, self.num_predecessors + self.num_nodes))

    def output_states(self, states: list[Any]) -> list[Any]:
        """The states the cell concatenates into its output (by default those of :meth:`output_indices`)."""
        return [states[i] for i in self.output_indices()]

    def forward(self, *inputs: Any) -> Any:
        if len(inputs) == 1 and isinstance(inputs[0], (list, tuple)):
            predecessors = list(inputs[0])
        else:
            predecessors = list(inputs)
        if len(predecessors) != self.num_predecessors:
            from nascore.errors import SearchSpaceError

            raise SearchSpaceError(
                f"Cell {self.label!r} takes {self.num_predecessors} input(s) (num_predecessors), got {len(predecessors)}"
            )
        states = list(self.preprocessor(list(predecessors))) if self.preprocessor is not None else list(predecessors)
        slot_iter = iter(self.slots)
        for _ in range(self.num_nodes):
            outputs = []
            for _ in range(self.num_ops_per_node):
                state, k, input_decision, op_decision = next(slot_iter)
                outputs.append(self.slot_forward(state, k, input_decision, op_decision, states))
            states.append(sum(outputs[1:], outputs[0]))
        this_cell = torch.cat(self.output_states(states), self.concat_dim)
        if self.postprocessor is None:
            return this_cell
        return self.postprocessor(this_cell, predecessors)

    def extra_repr(self) -> str:
        return f"label={self.label!r}, num_nodes={self.num_nodes}, merge_op={self.merge_op!r}"


def loose_ends(num_predecessors: int, num_nodes: int, chosen_inputs: Sample | list[int]) -> list[int]:
    """The nodes no operator reads (``merge_op="loose_end"``)."""
    used = set(chosen_inputs)
    return [i for i in range(num_predecessors, num_predecessors + num_nodes) if i not in used]
