"""Path-sampling supernet modules (RandomOneShot, ENAS): one path runs, the sampled one.

The strategy samples a whole architecture (uniformly, from a controller, ...) and hands it to
every module with :meth:`~BaseSuperNetModule.resample`; a module uses the values of its labels and
samples uniformly any it was not given. The forward pass is then exactly the forward pass of the
sampled architecture, with the supernet's (shared) weights.
"""

from __future__ import annotations

import random
from typing import Any

from nascore.nn import Cell, ChosenInputs, InputChoice, LayerChoice, Repeat
from nascore.space import Categorical, Sample
from nascore_strategies.oneshot.supermodule._primitives import (
    MixedCellBase,
    MixedInputBase,
    MixedLayerBase,
    MixedRepeatBase,
    loose_ends,
)

__all__ = ["PathSamplingCell", "PathSamplingInput", "PathSamplingLayer", "PathSamplingRepeat", "SamplingMixin"]

_rng = random.Random()


class SamplingMixin:
    """A module that runs the path of its current sample (``self._sampled``: ``{label: value}``)."""

    _sampled: Sample

    def _init_sample(self) -> None:
        self.__dict__["_sampled"] = {label: d.default_value() for label, d in self.search_space_spec().items()}  # type: ignore[attr-defined]

    def resample(self, memo: Sample) -> Sample:
        sampled: Sample = {}
        for label, decision in self.search_space_spec().items():  # type: ignore[attr-defined]
            if label not in memo:
                memo[label] = decision.random_value(_rng)
            sampled[label] = memo[label]
        self.__dict__["_sampled"] = sampled
        return dict(sampled)

    def export(self, memo: Sample) -> Sample:
        """The current sample (one-shot sampling strategies rank architectures themselves)."""
        return {label: value for label, value in self._sampled.items() if label not in memo}


class PathSamplingLayer(SamplingMixin, MixedLayerBase):
    """``LayerChoice``: runs the sampled candidate."""

    mode = "sampling"

    def __init__(self, layer_choice: LayerChoice, where: str) -> None:
        super().__init__(layer_choice, where)
        self._init_sample()

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.candidate(self._sampled[self.label])(*args, **kwargs)


class PathSamplingInput(SamplingMixin, MixedInputBase):
    """``InputChoice``: selects and reduces the sampled inputs."""

    mode = "sampling"

    def __init__(self, input_choice: InputChoice, where: str) -> None:
        super().__init__(input_choice, where)
        self._init_sample()

    def forward(self, candidate_inputs: list[Any]) -> Any:
        return ChosenInputs.select(candidate_inputs, self._sampled[self.label], self.reduction, self.label)


class PathSamplingRepeat(SamplingMixin, MixedRepeatBase):
    """``Repeat``: runs the sampled number of blocks."""

    mode = "sampling"

    def __init__(self, repeat: Repeat, where: str) -> None:
        super().__init__(repeat, where)
        self._init_sample()

    def forward(self, x: Any) -> Any:
        for block in self.blocks[: self.depth.value(self._sampled)]:
            x = block(x)
        return x


class PathSamplingCell(SamplingMixin, MixedCellBase):
    """``Cell``: each operator slot applies its sampled operator to its sampled input.

    ``merge_op="loose_end"`` concatenates the nodes the sampled inputs leave unread.
    """

    mode = "sampling"

    def __init__(self, cell: Cell, where: str) -> None:
        super().__init__(cell, where)
        self._init_sample()

    def slot_forward(self, state: int, k: int, input_decision: Categorical, op_decision: Categorical, states: list[Any]) -> Any:
        j = self._sampled[input_decision.label]
        return self.slot_ops(state, k).get(self._sampled[op_decision.label], j)(states[j])

    def output_indices(self) -> list[int]:
        if self.merge_op == "all":
            return super().output_indices()
        chosen = [self._sampled[input_decision.label] for _, _, input_decision, _ in self.slots]
        return loose_ends(self.num_predecessors, self.num_nodes, chosen)
