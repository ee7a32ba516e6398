"""FLOPs and parameters of a sample counted over the space, without building the sample's model.

Where every decision of a space is a :class:`~nascore.nn.LayerChoice` (NAS-Bench-101 and -201, the
cell spaces of a fixed width), the count of a sample is a sum: what the space computes outside its
choices, plus, for each place a ``LayerChoice`` runs, its chosen candidate's count. The profilers
here measure each candidate once, at each place it runs, on the input it gets there (one forward of
the space), then answer any sample with that sum: exact, the same numbers as
:class:`~nascore_hub.profiler.FlopsProfiler` / :class:`~nascore_hub.profiler.ParamsProfiler` give by
building the model, in microseconds instead of a build and a forward per sample.

The sum is exact only when no decision changes the shapes around it, so a space is refused up front,
naming the decision, when a decision is not a ``LayerChoice`` (choices in layer arguments, ``Repeat``,
``Cell``, ``InputChoice`` ...), when a ``LayerChoice`` holds another, or when a candidate's output
shape differs from the default candidate's: use the building profilers there.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode

from nascore.errors import SearchSpaceError
from nascore.nn import LayerChoice
from nascore.space import Sample
from nascore_hub.profiler.flops import ModelProfiler, _as_inputs, _check_unit, _convert, _count, _eval_mode

__all__ = ["SymbolicFlopsProfiler", "SymbolicParamsProfiler", "NotSymbolicError"]


class NotSymbolicError(SearchSpaceError):
    """The space has a decision whose effect on the count is not a sum over its choices."""


def _layer_choices(space: nn.Module, profiler: str) -> list[LayerChoice]:
    """The space's ``LayerChoice`` modules, after checking that they carry all of its decisions."""
    if not isinstance(space, nn.Module):
        raise NotSymbolicError(
            f"{profiler} counts over a model space written as an nn.Module (a ModelSpace); got "
            f"{type(space).__name__}: pass the space itself, not a format's build of it"
        )
    choices = [m for m in space.modules() if isinstance(m, LayerChoice)]
    for choice in choices:
        for name in choice.names:
            inner = [m for m in choice[name].modules() if isinstance(m, LayerChoice)]
            if inner:
                raise NotSymbolicError(
                    f"{profiler}: LayerChoice {choice.label!r} has a candidate {name!r} holding LayerChoice "
                    f"{inner[0].label!r}; nested choices are not counted symbolically: use the building profiler"
                )
    covered = {choice.label for choice in choices}
    others = [label for label in space.simplify() if label not in covered]
    if others:
        kinds = {label: type(mutable).__name__ for label, mutable in space.simplify().items()}
        listed = ", ".join(f"{label!r} ({kinds[label]})" for label in others[:5])
        raise NotSymbolicError(
            f"{profiler} counts spaces whose decisions are all LayerChoice; the decisions {listed} are not "
            "(a choice in a layer's arguments, Repeat, Cell or InputChoice may change shapes elsewhere): use "
            "FlopsProfiler / ParamsProfiler, which build each sample"
        )
    return choices


def _chosen(sample: Mapping[str, Any], label: str, default: Any) -> Any:
    return sample.get(label, default)


class SymbolicFlopsProfiler(ModelProfiler):
    """``profiler(sample) -> float``: the multiply-adds (or FLOPs) of one forward of ``sample``'s model
    on ``example_inputs``, summed over the space instead of built (see the module docstring).

    :param space: a model space (an ``nn.Module``) whose decisions are all ``LayerChoice``.
    :param example_inputs: the input of the forward (a tensor, or a tuple of the positional inputs).
    :param unit: ``"mac"`` (default; 1 per multiply-add) or ``"flop"`` (2 per multiply-add).
    :raises NotSymbolicError: the space is not a sum over its choices (the message names why).

    >>> profiler = SymbolicFlopsProfiler(NasBench201(), torch.randn(1, 3, 32, 32))
    >>> profiler(NasBench201.preset("resnet"))  # the MACs of that network, no model built
    """

    def __init__(self, space: nn.Module, example_inputs: Any, *, unit: str = "mac") -> None:
        super().__init__(space, cache=False)
        self.unit = _check_unit(unit)
        self.example_inputs = _as_inputs(example_inputs)
        choices = _layer_choices(space, type(self).__name__)
        #: ``[(label, {candidate: flops})]``, one entry each time a LayerChoice runs in a forward.
        self.sites: list[tuple[str, dict[Any, int]]] = []
        self.defaults = {choice.label: choice.choice.default_value() for choice in choices}
        handles = [choice.register_forward_hook(self._measure_candidates, with_kwargs=True) for choice in choices]
        try:
            with _eval_mode(space), torch.no_grad():
                space(*self.example_inputs)
        finally:
            for handle in handles:
                handle.remove()
        # "flop" throughout, converted at the end so that no rounding accumulates
        total = _count(lambda: _eval_forward(space, self.example_inputs), "flop")
        self.base = total - sum(flops[self.defaults[label]] for label, flops in self.sites)

    def _measure_candidates(self, module: LayerChoice, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> None:
        flops: dict[Any, int] = {}
        for name in module.names:
            with FlopCounterMode(display=False) as counter:
                result = module[name](*args, **kwargs)
            if _shape(result) != _shape(out):
                raise NotSymbolicError(
                    f"{type(self).__name__}: candidate {name!r} of LayerChoice {module.label!r} outputs "
                    f"{_shape(result)}, the default candidate {_shape(out)}: the layers after it would count "
                    "differently per choice. Use FlopsProfiler, which builds each sample"
                )
            flops[name] = counter.get_total_flops()
        self.sites.append((module.label, flops))

    def profile(self, sample: Sample) -> float:
        """The count of ``sample`` (validated by the space): the base plus each site's chosen candidate."""
        with self.asking_space():
            self.space.validate(sample)
        total = self.base + sum(flops[_chosen(sample, label, self.defaults[label])] for label, flops in self.sites)
        return float(_convert(total, self.unit))

    def __repr__(self) -> str:
        return f"SymbolicFlopsProfiler(sites={len(self.sites)}, unit={self.unit!r})"


def _eval_forward(space: nn.Module, inputs: tuple[Any, ...]) -> Any:
    with _eval_mode(space):
        return space(*inputs)


def _shape(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return tuple(value.shape)
    if isinstance(value, (tuple, list)):
        return [_shape(v) for v in value]
    return type(value).__name__


class SymbolicParamsProfiler(ModelProfiler):
    """``profiler(sample) -> float``: the parameters of ``sample``'s model, summed over the space:
    the parameters outside every ``LayerChoice`` plus each ``LayerChoice``'s chosen candidate's.

    :param space: a model space (an ``nn.Module``) whose decisions are all ``LayerChoice``.
    :param trainable_only: count only the parameters with ``requires_grad``.
    :raises NotSymbolicError: the space has another kind of decision, or nested choices.
    """

    def __init__(self, space: nn.Module, *, trainable_only: bool = False) -> None:
        super().__init__(space, cache=False)
        self.trainable_only = trainable_only
        choices = _layer_choices(space, type(self).__name__)
        inside: set[int] = set()
        #: ``[(label, {candidate: parameters})]``, one entry per LayerChoice module.
        self.choices: list[tuple[str, dict[Any, int]]] = []
        self.defaults = {choice.label: choice.choice.default_value() for choice in choices}
        for choice in choices:
            counts = {}
            for name in choice.names:
                params = [p for p in choice[name].parameters() if p.requires_grad or not trainable_only]
                inside.update(id(p) for p in params)
                counts[name] = sum(p.numel() for p in params)
            self.choices.append((choice.label, counts))
        self.base = sum(
            p.numel() for p in space.parameters() if id(p) not in inside and (p.requires_grad or not trainable_only)
        )

    def profile(self, sample: Sample) -> float:
        """The parameters of ``sample`` (validated by the space)."""
        with self.asking_space():
            self.space.validate(sample)
        return float(self.base + sum(counts[_chosen(sample, label, self.defaults[label])]
                                     for label, counts in self.choices))

    def __repr__(self) -> str:
        return f"SymbolicParamsProfiler(choices={len(self.choices)})"
