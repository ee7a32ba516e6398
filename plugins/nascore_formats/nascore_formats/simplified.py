"""The ``simplified`` format: a space is its class, its init arguments and its decisions.

A trial rebuilds the model from scratch with ``cls(*args, **kwargs)`` inside
:func:`nascore.model_context`, so nothing but the sample has to be stored or shipped. It is the
default for multi-trial search and the most memory-efficient; weights of the space are not kept.
"""

from __future__ import annotations

import contextvars
from typing import Any

import torch.nn as nn

from nascore.errors import SearchSpaceError
from nascore.format import ExecutableModel, ExecutableSpace, ModelFormat
from nascore.nn import ModelSpace, model_context
from nascore.serialization import object_spec, resolve
from nascore.space import Sample
from nascore_formats.common import (
    check_model_space,
    check_no_graph_mutators,
    normalized_sample,
    sample_from_json,
    sample_to_json,
)

__all__ = ["SimplifiedFormat", "SimplifiedSpace", "SimplifiedModel"]

class SimplifiedModel(ExecutableModel):
    """An architecture as (space class, init arguments, sample)."""

    format_name = "simplified"

    def __init__(self, space_class: type[ModelSpace], args: tuple[Any, ...], kwargs: dict[str, Any], sample: Sample) -> None:
        super().__init__(sample)
        self.space_class = space_class
        self.args = args
        self.kwargs = kwargs

    def build(self) -> nn.Module:
        with model_context(self.sample):
            return self.space_class(*self.args, **self.kwargs)

    def to_payload(self) -> dict[str, Any]:
        """``{"format", "space", "sample"}``, plus ``"json_changed"``: the labels whose values JSON changes.

        Those values (tuples, ...) are mapped back to the space's candidates by ``load_model``.
        """
        sample, changed = sample_to_json(self.sample, self.format_name)
        payload: dict[str, Any] = {"format": "simplified", "space": object_spec(self.space_class, self.args, self.kwargs), "sample": sample}
        if changed:
            payload["json_changed"] = changed
        return payload

class SimplifiedSpace(ExecutableSpace):
    """A model space reduced to its class, init arguments and ``{label: decision}``."""

    def __init__(self, space: ModelSpace) -> None:
        super().__init__(space, space.simplify())
        self.space_class = type(space)
        self.args, self.kwargs = space.init_arguments

    def freeze(self, sample: Sample) -> SimplifiedModel:
        self.validate(sample)
        return SimplifiedModel(self.space_class, self.args, self.kwargs, normalized_sample(self._mutables, sample))

class SimplifiedFormat(ModelFormat):
    """Registered as ``simplified``."""

    name = "simplified"

    def build(self, space: nn.Module) -> SimplifiedSpace:
        space = check_model_space(space, self.name)
        check_no_graph_mutators(space, self.name)
        check_rebuilds_the_same(space, self.name)
        return SimplifiedSpace(space)

    def load_model(self, payload: dict[str, Any]) -> SimplifiedModel:
        spec = payload["space"]
        space_class, args, kwargs = resolve(spec["factory"]), tuple(spec["args"]), dict(spec["kwargs"])
        sample = dict(payload["sample"])
        changed = payload.get("json_changed") or []
        if changed:
            # Only then is the space built (it may be large): its decisions map the values back to candidates.
            # A new context: as a search space with its own labels, even if loaded inside model_context.
            space = check_model_space(contextvars.Context().run(space_class, *args, **kwargs), self.name)
            sample = sample_from_json(space.simplify(), sample, changed)
        return SimplifiedModel(space_class, args, kwargs, sample)


def _structure(space: nn.Module) -> list[tuple[str, str, tuple[int, ...]]]:
    modules = [(name, type(module).__qualname__, ()) for name, module in space.named_modules()]
    return modules + [(name, "parameter", tuple(p.shape)) for name, p in space.named_parameters()]


def _rebuild_difference(space: ModelSpace) -> str | None:
    """What differs between ``space`` and what its class builds from its init arguments (``None``: nothing)."""
    import random

    import torch

    args, kwargs = space.init_arguments
    state = random.getstate()
    try:
        with torch.random.fork_rng(devices=[]):  # building initialises weights: leave the caller's random state
            rebuilt = contextvars.Context().run(type(space), *args, **kwargs)  # a fresh label scope, not frozen
    finally:
        random.setstate(state)
    mine, theirs = _structure(space), _structure(rebuilt)
    if mine == theirs:
        return None
    first = next((a for a, b in zip(mine, theirs) if a != b), None) or (mine[len(theirs):] or theirs[len(mine):])[0]
    return f"{first[0] or '(the space)'} ({first[1]}{' ' + str(first[2]) if first[2] else ''})"


def check_rebuilds_the_same(space: ModelSpace, format_name: str) -> None:
    """Refuse a space its class does not rebuild as it is (edited after construction): trials would not see the edit."""
    difference = _rebuild_difference(space)
    if difference is not None:
        raise SearchSpaceError(
            f"format {format_name!r} rebuilds the space in every trial from its class {type(space).__qualname__} and "
            f"init arguments, but this space differs from what they build (first difference: {difference}): it was "
            "edited after construction (a LayerChoice candidate replaced, a module added). Make the change in the "
            "space's __init__, or use format 'raw' or 'graph', which take the space object as it is"
        )
