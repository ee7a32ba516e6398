"""Differentiable supernet modules (DARTS, GumbelDARTS): every path runs, outputs are mixed.

The mixing weights of a decision are ``softmax(alpha)`` (or a Gumbel-softmax sample) of its
architecture parameters, shared by every module with the same label (:class:`ArchParameters`).
The exported value of a decision is the one with the largest ``alpha``.
"""

from __future__ import annotations

from typing import Any

import torch

from nascore.errors import StrategyError
from nascore.nn import Cell, InputChoice, LayerChoice, Repeat
from nascore.space import Categorical, CategoricalMultiple
from nascore_strategies.oneshot.supermodule._primitives import (
    MixedCellBase,
    MixedInputBase,
    MixedLayerBase,
    MixedRepeatBase,
)
from nascore_strategies.oneshot.supermodule.base import ArchModuleMixin, ArchParameters, weighted_sum

__all__ = [
    "DifferentiableMixedCell",
    "DifferentiableMixedInput",
    "DifferentiableMixedLayer",
    "DifferentiableMixedRepeat",
]



class DifferentiableMixedLayer(ArchModuleMixin, MixedLayerBase):
    """``LayerChoice``: the weighted sum of every candidate's output (the candidates must agree in shape)."""

    mode = "differentiable"

    def __init__(self, layer_choice: LayerChoice, arch: ArchParameters, where: str) -> None:
        super().__init__(layer_choice, where)
        self.bind_arch(arch, where)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        outputs = [candidate(*args, **kwargs) for candidate in self.candidates]
        return weighted_sum(outputs, self.arch.weights(self.label), self.where)


class DifferentiableMixedInput(ArchModuleMixin, MixedInputBase):
    """``InputChoice``: the weighted sum of the candidate inputs.

    With ``n_chosen > 1`` the inputs are mixed the same way (scaled by ``n_chosen`` for ``"sum"``: with
    equal weight on the chosen inputs the result is their sum, or mean) and the ``n_chosen`` strongest
    are exported; that needs a reduction that adds inputs (``"sum"`` or ``"mean"``).
    """

    mode = "differentiable"

    def __init__(self, input_choice: InputChoice, arch: ArchParameters, where: str) -> None:
        super().__init__(input_choice, where)
        if isinstance(self.decision, CategoricalMultiple):
            if self.n_chosen is None:
                raise StrategyError(
                    f"{where}: n_chosen=None (any number of inputs) cannot be relaxed by a differentiable strategy; "
                    "give a fixed n_chosen, or use a sampling strategy (random-oneshot, enas)"
                )
            if self.reduction not in ("sum", "mean"):
                raise StrategyError(
                    f"{where}: with n_chosen={self.n_chosen} and reduction={self.reduction!r} the chosen inputs are "
                    "not added up, so a differentiable strategy cannot mix them; use reduction 'sum' or 'mean', "
                    "or a sampling strategy (random-oneshot, enas)"
                )
        self.bind_arch(arch, where)

    def forward(self, candidate_inputs: list[Any]) -> Any:
        if len(candidate_inputs) != self.n_candidates:
            raise StrategyError(f"{self.where}: expected {self.n_candidates} inputs, got {len(candidate_inputs)}")
        mixed = weighted_sum(list(candidate_inputs), self.arch.weights(self.label), self.where)
        if self.reduction == "sum" and self.n_chosen is not None and self.n_chosen > 1:
            # The weights sum to one; a sum of n_chosen inputs is n_chosen times their mean.
            mixed = mixed * self.n_chosen
        return mixed


class DifferentiableMixedRepeat(ArchModuleMixin, MixedRepeatBase):
    """``Repeat``: the weighted sum of the outputs after each possible depth (they must agree in shape)."""

    mode = "differentiable"

    def __init__(self, repeat: Repeat, arch: ArchParameters, where: str) -> None:
        super().__init__(repeat, where)
        self.bind_arch(arch, where)

    def forward(self, x: Any) -> Any:
        weights = self.depth.weights({label: self.arch.weights(label) for label in self.depth.labels})
        outputs = self.prefix_outputs(x, self.depth.values)
        return weighted_sum([outputs[d] for d in self.depth.values], weights, self.where)


class DifferentiableMixedCell(ArchModuleMixin, MixedCellBase):
    """``Cell``: each operator slot mixes every (input, operator) pair.

    A slot's output is ``sum_j sum_o w_input[j] * w_op[o] * op_o(state_j)``, with one weight vector per
    decision of the space (``<cell>/input_<i>_<k>`` and ``<cell>/op_<i>_<k>``); exported, each slot
    takes its strongest input and operator.

    ``merge_op="loose_end"`` (the output concatenates the nodes no operator reads) is relaxed: the
    supernet concatenates every node, node ``i`` scaled by the probability that no slot reads it,
    ``prod_slots (1 - w_input[i])``. With the weights on one architecture, those are its loose ends at
    full strength and zeros. The exported sub-net concatenates only its loose ends, as the frozen space
    does (NNI's supernet merges every node unscaled).
    """

    mode = "differentiable"

    def __init__(self, cell: Cell, arch: ArchParameters, where: str) -> None:
        super().__init__(cell, where)
        self.bind_arch(arch, where)

    def output_states(self, states: list[Any]) -> list[Any]:
        if self.merge_op == "all":
            return super().output_states(states)
        nodes = range(self.num_predecessors, self.num_predecessors + self.num_nodes)
        unread = {i: None for i in nodes}
        for _, _, input_decision, _ in self.slots:
            weights = self.arch.weights(input_decision.label)
            for position, j in enumerate(input_decision.values):
                if j in unread:
                    factor = 1 - weights[position]
                    unread[j] = factor if unread[j] is None else unread[j] * factor
        return [states[i] if unread[i] is None else states[i] * unread[i].to(states[i].dtype) for i in nodes]

    def slot_forward(self, state: int, k: int, input_decision: Categorical, op_decision: Categorical, states: list[Any]) -> Any:
        ops = self.slot_ops(state, k)
        w_input = self.arch.weights(input_decision.label)
        w_op = self.arch.weights(op_decision.label)
        outputs: list[Any] = []
        weights: list[torch.Tensor] = []
        for o, name in enumerate(op_decision.values):
            for j in input_decision.values:
                outputs.append(ops.get(name, j)(states[j]))
                weights.append(w_op[o] * w_input[j])
        return weighted_sum(outputs, torch.stack(weights), self.where)
