"""Stacking a block a chosen number of times: :class:`Repeat`."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Union

import torch.nn as nn

from nascore.errors import SearchSpaceError
from nascore.nn.base import MutableModule, freeze_tree, module_conditional_leaves
from nascore.space import (
    Categorical,
    Mutable,
    MutableDict,
    Sample,
    auto_label,
    current_frozen_sample,
    label_scope,
)
from nascore.space.conditions import Condition, conditional_leaves, under
from nascore.space.label import check_label

__all__ = ["Repeat"]

BlockSpec = Union[nn.Module, Sequence[nn.Module], Callable[[int], nn.Module]]


def _depth_of(depth: Any, label: str) -> tuple[Any, int, int]:
    """(depth decision or int, smallest depth, largest depth)."""
    if isinstance(depth, bool):
        raise SearchSpaceError(f"Repeat {label!r}: depth must be an int, a (min, max) tuple or a choice")
    if isinstance(depth, int):
        if depth < 0:
            raise SearchSpaceError(f"Repeat {label!r}: depth {depth} is negative")
        return depth, depth, depth
    if isinstance(depth, tuple):
        if len(depth) != 2 or not all(isinstance(d, int) for d in depth) or not 0 <= depth[0] <= depth[1]:
            raise SearchSpaceError(f"Repeat {label!r}: a depth range must be (min, max) with 0 <= min <= max")
        return Categorical(list(range(depth[0], depth[1] + 1)), label=label), depth[0], depth[1]
    if isinstance(depth, range):
        return Categorical(list(depth), label=label), min(depth), max(depth)
    if isinstance(depth, Mutable):
        values = [v["d"] for v in MutableDict({"d": depth}).grid()]
        if not values or not all(isinstance(v, int) and v >= 0 for v in values):
            raise SearchSpaceError(f"Repeat {label!r}: every value of the depth choice must be a non-negative int")
        return depth, min(values), max(values)
    raise SearchSpaceError(
        f"Repeat {label!r}: depth must be an int, a (min, max) tuple, a range or a choice, got {depth!r}"
    )


def _make_blocks(blocks: BlockSpec, count: int, label: str) -> list[nn.Module]:
    if isinstance(blocks, nn.Module):
        return [blocks] + [copy.deepcopy(blocks) for _ in range(count - 1)] if count else []
    if isinstance(blocks, (list, tuple, nn.ModuleList)):
        if len(blocks) < count:
            raise SearchSpaceError(f"Repeat {label!r}: {len(blocks)} blocks given but depth goes up to {count}")
        return list(blocks)[:count]
    if callable(blocks):
        result = []
        for index in range(count):
            # Each block gets its own label scope, so automatic labels inside do not depend on depth.
            with label_scope(f"{label}/{index}", root=True):
                block = blocks(index)
            if not isinstance(block, nn.Module):
                raise SearchSpaceError(f"Repeat {label!r}: the block factory returned {type(block).__name__}")
            result.append(block)
        return result
    raise SearchSpaceError(f"Repeat {label!r}: blocks must be a module, a list of modules or a factory f(index)")


class Repeat(MutableModule):
    """Repeat a block ``depth`` times in sequence.

    ``blocks`` is a module (deep-copied; copies share their decisions), a list of modules, or a
    factory ``f(index) -> module`` (each block its own decisions, labelled ``"<label>/<index>/..."``).
    ``depth`` is an int, a ``(min, max)`` tuple, a range, or a choice. Built frozen, it is an
    ``nn.Sequential`` of the chosen number of blocks.

    Its public structure, which tools that convert or supernet it read:

    * ``label``: the label of the depth decision (when ``depth`` is a tuple or a range) and the
      prefix of the labels made inside a block factory;
    * ``depth_choice``: the depth, an int when fixed, else the decision (or expression) itself;
    * ``min_depth`` and ``max_depth``: the smallest and largest depth it can take;
    * ``blocks``: an ``nn.ModuleList`` of ``max_depth`` blocks; a depth ``d`` runs the first ``d``.
    """

    def __new__(cls, blocks: Any = None, depth: Any = None, *, label: str | None = None, **kwargs: Any) -> Any:
        sample = current_frozen_sample()
        if sample is None or blocks is None:
            return super().__new__(cls)
        label = check_label(label) if label is not None else auto_label("repeat")
        decision, _, _ = _depth_of(depth, label)
        count = decision if isinstance(decision, int) else decision.freeze(sample)
        return nn.Sequential(*_make_blocks(blocks, count, label))

    def __init__(self, blocks: BlockSpec, depth: Any, *, label: str | None = None) -> None:
        super().__init__()
        label = check_label(label) if label is not None else auto_label("repeat")
        self._label = label
        self.depth_choice, self.min_depth, self.max_depth = _depth_of(depth, label)
        if isinstance(self.depth_choice, Mutable):
            self.add_mutable(self.depth_choice)
        self.blocks = nn.ModuleList(_make_blocks(blocks, self.max_depth, label))

    @property
    def label(self) -> str:
        """The repeat's label (given, or automatic ``"repeat_<n>"``)."""
        return self._label

    def _current_depth(self) -> int:
        if isinstance(self.depth_choice, int):
            return self.depth_choice
        return self.depth_choice.default()

    def conditional_leaves(self) -> Iterator[tuple[Any, tuple[Any, ...]]]:
        """The depth, then the decisions of each block, active only when the depth reaches it."""
        yield from conditional_leaves(self.mutables)
        for index, block in enumerate(self.blocks):
            entries = module_conditional_leaves(block)
            if index < self.min_depth or not isinstance(self.depth_choice, Mutable):
                yield from entries
            else:
                yield from under(Condition.greater(self.depth_choice, index), entries)

    def forward(self, x: Any) -> Any:
        for block in self.blocks[: self._current_depth()]:
            x = block(x)
        return x

    def frozen(self, sample: Sample) -> nn.Module:
        depth = self.depth_choice if isinstance(self.depth_choice, int) else self.depth_choice.freeze(sample)
        return nn.Sequential(*(freeze_tree(block, sample) for block in list(self.blocks)[:depth]))

    def extra_repr(self) -> str:
        return f"depth={self.depth_choice!r}, label={self.label!r}"
