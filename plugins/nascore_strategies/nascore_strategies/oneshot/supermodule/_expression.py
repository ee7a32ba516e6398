"""Arguments that depend on decisions: their leaf decisions and their value for every combination.

An init argument of a mixed operation, or the depth of a :class:`~nascore.nn.Repeat`, is a decision
or an expression over decisions (``width * 2``, ``(k, k)``). :class:`ArgumentChoice` enumerates the
combinations of its leaf decisions once, so that at run time

* a sampling strategy gets the concrete value for the sampled leaves (:meth:`ArgumentChoice.value`),
* a differentiable strategy gets a weight per possible value from the weights of the leaves
  (:meth:`ArgumentChoice.weights`: the product of the leaf weights, summed over the combinations
  giving the same value).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from nascore.errors import StrategyError
from nascore.space import Categorical, LabelledMutable, Sample, collect_mutables
from nascore.space.mutable import contains_mutable, freeze_structure

__all__ = ["ArgumentChoice", "leaf_decisions", "one_hot"]

#: More combinations than this in one argument is almost surely a mistake (and slow to mix).
MAX_COMBINATIONS = 4096


def leaf_decisions(obj: Any, where: str) -> list[Categorical]:
    """The distinct categorical decisions inside ``obj``, in order of appearance.

    :raises StrategyError: a decision is not categorical (one-shot strategies search categorical
        decisions only); the message names ``where``.
    """
    seen: dict[str, LabelledMutable] = {}
    for mutable in collect_mutables(obj):
        if mutable.label in seen:
            continue
        if not isinstance(mutable, Categorical):
            raise StrategyError(
                f"{where}: decision {mutable.label!r} is a {type(mutable).__name__}; one-shot strategies search "
                "categorical decisions only (nascore.choice(label, [values])). Replace it with a choice over a "
                "few values, or use a multi-trial strategy"
            )
        seen[mutable.label] = mutable
    return list(seen.values())  # type: ignore[arg-type]


def one_hot(size: int, index: int, like: torch.Tensor | None = None) -> torch.Tensor:
    """A vector of ``size`` zeros with a one at ``index`` (on the device and dtype of ``like``)."""
    if like is not None:
        vector = torch.zeros(size, dtype=like.dtype, device=like.device)
    else:
        vector = torch.zeros(size)
    vector[index] = 1.0
    return vector


class ArgumentChoice:
    """An argument (``name``) whose value ``expression`` depends on categorical decisions."""

    def __init__(self, name: str, expression: Any, where: str) -> None:
        if not contains_mutable(expression):
            raise StrategyError(f"{where}: argument {name!r} holds no decision")
        self.name = name
        self.expression = expression
        self.leaves = leaf_decisions(expression, where)
        self.labels = [leaf.label for leaf in self.leaves]
        sizes = [len(leaf.values) for leaf in self.leaves]
        count = 1
        for size in sizes:
            count *= size
        if count > MAX_COMBINATIONS:
            raise StrategyError(
                f"{where}: argument {name!r} depends on {count} combinations of {self.labels}; "
                f"at most {MAX_COMBINATIONS} are supported. Use fewer decisions in one argument"
            )
        self.values: list[Any] = []
        index: list[int] = []
        for combination in itertools.product(*(leaf.values for leaf in self.leaves)):
            value = freeze_structure(expression, dict(zip(self.labels, combination)))
            try:
                position = self.values.index(value)
            except ValueError:
                position = len(self.values)
                self.values.append(value)
            index.append(position)
        self._combination_value = torch.tensor(index, dtype=torch.long)
        self._identity = index == list(range(len(index)))
        self._cache_key: tuple[Any, ...] | None = None
        self._cache_value: Any = None

    def __repr__(self) -> str:
        return f"ArgumentChoice({self.name!r}, values={self.values!r}, labels={self.labels!r})"

    def value(self, sample: Sample) -> Any:
        """The concrete value under ``sample`` (which holds every leaf label)."""
        key = tuple(sample[label] for label in self.labels)
        if key != self._cache_key:
            self._cache_value = freeze_structure(self.expression, sample)
            self._cache_key = key
        return self._cache_value

    def index_of(self, value: Any) -> int:
        return self.values.index(value)

    def weights(self, leaf_weights: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """A weight for each of :attr:`values`, from a weight vector per leaf label.

        With probability vectors the result is the distribution of the argument; with a one-hot
        vector for a leaf, the distribution conditioned on that leaf's value.
        """
        vectors: Sequence[torch.Tensor] = [leaf_weights[label] for label in self.labels]
        joint = vectors[0]
        for vector in vectors[1:]:
            joint = (joint[:, None] * vector[None, :]).reshape(-1)
        if self._identity:
            return joint
        mapping = self._combination_value.to(joint.device)
        return torch.zeros(len(self.values), dtype=joint.dtype, device=joint.device).index_add(0, mapping, joint)

