"""What the built-in formats share: checking the space, normalizing samples, samples as JSON."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import torch.nn as nn

from nascore.errors import SearchSpaceError, ShippingError
from nascore.nn import ModelSpace
from nascore.space import LabelledMutable, Sample


def check_model_space(space: nn.Module, format_name: str) -> ModelSpace:
    if not isinstance(space, ModelSpace):
        raise SearchSpaceError(
            f"the {format_name!r} format needs a nascore.nn.ModelSpace instance, got {type(space).__name__}; "
            "derive your model class from ModelSpace"
        )
    return space


GRAPH_MUTATORS_ATTRIBUTE = "_nascore_graph_mutators"
"""Where :func:`nascore_formats.graph.apply_mutators` keeps a space's mutators (in its ``__dict__``)."""


def check_no_graph_mutators(space: nn.Module, format_name: str) -> None:
    """Mutators edit the graph IR, which only the graph format has: anywhere else they would be ignored."""
    mutators = space.__dict__.get(GRAPH_MUTATORS_ATTRIBUTE)
    if mutators:
        raise SearchSpaceError(
            f"the space {type(space).__name__} has {len(mutators)} mutator(s) attached with apply_mutators(); only the "
            f"'graph' format can apply mutators, the {format_name!r} format would ignore them: use format='graph'"
        )


def normalized_sample(mutables: dict[str, LabelledMutable], sample: Sample) -> Sample:
    """The sample (validated: a label the space does not have was refused), each value mapped to its candidate.

    Decisions the sample leaves out (those of branches it does not take) stay out.
    """
    return {label: mutable.canonical_value(sample[label]) for label, mutable in mutables.items() if label in sample}


def _is_plain_json(value: Any) -> bool:
    """Whether JSON gives ``value`` back as it is, types included (a tuple comes back as a list)."""
    if value is None or type(value) in (str, bool, int, float):
        return True
    if type(value) is list:
        return all(_is_plain_json(item) for item in value)
    if type(value) is dict:
        return all(type(key) is str and _is_plain_json(item) for key, item in value.items())
    return False


def sample_to_json(sample: Sample, format_name: str) -> tuple[dict[str, Any], list[str]]:
    """``sample`` as JSON data for a payload, and the labels whose values JSON changed.

    A tuple becomes a list, a dict's keys strings, an ``IntEnum`` an int...: :func:`sample_from_json`
    maps such values back to the candidates of the space (as the experiment store's samples are mapped
    back when they are frozen again). A value with no JSON form raises :class:`ShippingError` naming its
    label, so that :func:`~nascore.serialization.ship_model` says why it pickles the model instead.
    """
    data: dict[str, Any] = {}
    changed: list[str] = []
    for label, value in sample.items():
        try:
            data[label] = json.loads(json.dumps(value, allow_nan=False))
        except (TypeError, ValueError, RecursionError) as exc:
            raise ShippingError(
                f"the {format_name!r} payload cannot hold the value {value!r:.80} of the label {label!r}: it has no JSON "
                f"form ({exc}); use candidates that are numbers, strings, lists, tuples or dicts of them"
            ) from None
        if not _is_plain_json(value):
            changed.append(label)
    return data, changed


def sample_from_json(mutables: dict[str, LabelledMutable], data: Sample, labels: Iterable[str] | None = None) -> Sample:
    """A sample read back from JSON, each value of ``labels`` (default: all) mapped to the space's candidate.

    The values come back as the candidates themselves (a tuple for the list JSON made of it), through
    each decision's ``canonical_value``. Raises :class:`ShippingError` when a value matches no candidate
    (the payload does not belong to this space).
    """
    sample = dict(data)
    for label in sample if labels is None else labels:
        if label not in sample:
            raise ShippingError(f"the shipped sample has no value for the label {label!r}: the payload is malformed")
        mutable = mutables.get(label)
        if mutable is None:
            raise ShippingError(f"the shipped sample has a value for {label!r} but the space has no such decision")
        value = mutable.canonical_value(sample[label])
        error = mutable.check_value(value)
        if error is not None:
            raise ShippingError(f"the shipped sample does not fit the space: {error}")
        sample[label] = value
    return sample
