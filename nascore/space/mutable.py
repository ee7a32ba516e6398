"""The abstract search space: mutables, samples and the operations every space supports.

A :class:`Mutable` is anything that holds decisions. Its leaves are :class:`LabelledMutable`
objects, each one decision with a label. A *sample* is a plain ``{label: value}`` dict; freezing a
mutable with a sample gives the concrete object it stands for. Every mutable supports
:meth:`~Mutable.simplify`, :meth:`~Mutable.random`, :meth:`~Mutable.grid`,
:meth:`~Mutable.freeze` and :meth:`~Mutable.contains`.
"""

from __future__ import annotations

import contextlib
import contextvars
import itertools
import random as _random
from collections.abc import Callable, ItemsView, Iterable, Iterator, KeysView, Mapping, ValuesView
from typing import TYPE_CHECKING, Any, overload

from nascore.errors import (
    LabelConflictError,
    SampleMissingError,
    SampleValidationError,
    SearchSpaceError,
)

if TYPE_CHECKING:
    from nascore.space.conditions import Decisions

__all__ = [
    "Sample",
    "Mutable",
    "LabelledMutable",
    "MutableDict",
    "MutableList",
    "collect_mutables",
    "dedup_mutables",
    "sample_key",
]

Sample = dict[str, Any]


def _make_random(seed: int | None, random_state: _random.Random | None) -> _random.Random:
    if random_state is not None:
        return random_state
    return _random.Random(seed)


class Mutable:
    """Base class of everything that holds decisions."""

    def leaf_mutables(self) -> Iterator[LabelledMutable]:
        """Every decision inside, possibly with repeats (the same label reached twice)."""
        raise NotImplementedError

    def freeze(self, sample: Sample) -> Any:
        """The concrete object this mutable stands for under ``sample``."""
        raise NotImplementedError

    # --- derived operations ---------------------------------------------------------------------

    def simplify(self) -> dict[str, LabelledMutable]:
        """The decisions of this space as ``{label: mutable}``, each label once.

        Raises :class:`~nascore.errors.LabelConflictError` when one label names two different
        decisions.
        """
        return dedup_mutables(self.leaf_mutables())

    def conditional_leaves(self) -> Iterator[tuple[Any, tuple[Any, ...]]]:
        """Every decision (and constraint) inside with the conditions under which it is active.

        Each item is ``(decision, path)``, ``path`` a tuple of
        :class:`~nascore.space.conditions.Condition`; an empty path means always. The default: every
        leaf, always. Mutables with branches (``LayerChoice``, ``Repeat``, ``switch_case``) override it.
        """
        for mutable in self.leaf_mutables():
            yield mutable, ()

    def decisions(self) -> Decisions:
        """The decisions of this space, when each is active, and its constraints (see :mod:`nascore.space.conditions`)."""
        from nascore.space.conditions import Decisions

        return Decisions(self.conditional_leaves())

    def active_labels(self, sample: Sample) -> list[str]:
        """The labels whose decisions matter for ``sample`` (the others belong to branches it does not take)."""
        return self.decisions().active_labels(sample)

    def canonical_sample(self, sample: Sample, *, fill: _random.Random | None = None) -> Sample:
        """``sample`` with only the decisions that matter for it: one spelling per architecture.

        With ``fill`` (a ``random.Random``), an active decision the sample lacks gets a random value.
        """
        return self.decisions().canonical(sample, fill=fill)

    def space_size(self) -> float:
        """The number of distinct architectures: canonical samples that satisfy the constraints
        (``math.inf`` with continuous decisions)."""
        return self.decisions().size()

    def check_contains(self, sample: Sample) -> SampleValidationError | None:
        """Return why ``sample`` is not in this space, or ``None`` if it is.

        Every *active* decision needs a valid value; a decision of a branch the sample does not take
        may be left out. A label the space does not have (a typo) makes the sample invalid: the error
        is an :class:`~nascore.errors.UnknownLabelError` naming it, the closest label of the space and
        the labels of the space. A violated constraint is a
        :class:`~nascore.errors.ConstraintViolationError`.
        """
        return self.decisions().check(sample)

    def contains(self, sample: Sample) -> bool:
        """Whether ``sample`` holds a valid value for every active decision of this space, no unknown
        label, and satisfies its constraints."""
        return self.check_contains(sample) is None

    def validate(self, sample: Sample) -> None:
        """Raise the :class:`~nascore.errors.SampleValidationError` that says why ``sample`` is invalid."""
        error = self.check_contains(sample)
        if error is not None:
            raise error

    def default_sample(self) -> Sample:
        """Every active decision at its default value."""
        return self.decisions().default()

    def default(self) -> Any:
        """Freeze with the default value of every decision."""
        return self.freeze(self.default_sample())

    def random_sample(
        self, memo: Sample | None = None, *, seed: int | None = None, random_state: _random.Random | None = None
    ) -> Sample:
        """A random canonical sample (each decision from its prior) that satisfies the constraints;
        labels already in ``memo`` keep their value."""
        return self.decisions().random(_make_random(seed, random_state), memo)

    def random(
        self, memo: Sample | None = None, *, seed: int | None = None, random_state: _random.Random | None = None
    ) -> Any:
        """Freeze with a random sample. When ``memo`` is a dict it receives the sample."""
        sample = self.random_sample(memo, seed=seed, random_state=random_state)
        if memo is not None:
            memo.update(sample)
        return self.freeze(sample)

    def grid_samples(self, memo: Sample | None = None, granularity: int | None = None) -> Iterator[Sample]:
        """Every distinct architecture of the space as a canonical sample, each once, in order (the first
        decision varies slowest); samples that violate a constraint are left out."""
        return self.decisions().grid(memo, granularity)

    def grid(self, memo: Sample | None = None, granularity: int | None = None) -> Iterator[Any]:
        """Freeze every sample of the space in turn."""
        for sample in self.grid_samples(memo, granularity):
            yield self.freeze(sample)


class LabelledMutable(Mutable):
    """One decision, identified by its label."""

    label: str

    def leaf_mutables(self) -> Iterator[LabelledMutable]:
        yield self

    def freeze(self, sample: Sample) -> Any:
        if self.label not in sample:
            taken = _defaults_taken.get()
            if taken is not None:  # a frozen build: this decision may sit in a branch the sample does not take
                taken.add(self.label)
                return self.default_value()
            raise SampleMissingError(
                f"sample has no value for label {self.label!r} (expected one of {self.describe()})",
                label=self.label,
            )
        value = self.canonical_value(sample[self.label])
        error = self.check_value(value)
        if error is not None:
            raise error
        return value

    # --- what each kind of decision defines ------------------------------------------------------

    def check_value(self, value: Any) -> SampleValidationError | None:
        raise NotImplementedError

    def canonical_value(self, value: Any) -> Any:
        """Map a value that came back from JSON (a list for a tuple, ...) to the candidate itself."""
        return value

    def default_value(self) -> Any:
        raise NotImplementedError

    def random_value(self, rng: _random.Random) -> Any:
        raise NotImplementedError

    def grid_values(self, granularity: int | None = None) -> Iterable[Any]:
        raise NotImplementedError

    def equals(self, other: LabelledMutable) -> bool:
        """Whether ``other`` is the same decision (used to check reuse of a label)."""
        raise NotImplementedError

    def describe(self) -> str:
        """A short description of the valid values, for messages."""
        raise NotImplementedError

    @property
    def size(self) -> float:
        """Number of possible values (``math.inf`` for continuous decisions)."""
        raise NotImplementedError


_defaults_taken: contextvars.ContextVar[set[str] | None] = contextvars.ContextVar("nascore_defaults_taken", default=None)


@contextlib.contextmanager
def default_missing(taken: set[str]) -> Iterator[set[str]]:
    """Inside, freezing a decision the sample lacks gives its default and adds its label to ``taken``.

    A frozen build (``fixed_arch``, the formats) builds the candidates of every ``LayerChoice`` before
    the choice keeps one: the decisions of the others need a value although they do not matter. The
    caller checks afterwards that every label in ``taken`` was inactive for the sample.
    """
    token = _defaults_taken.set(taken)
    try:
        yield taken
    finally:
        _defaults_taken.reset(token)


def dedup_mutables(mutables: Iterable[LabelledMutable]) -> dict[str, LabelledMutable]:
    """Group decisions by label, checking that each label is used for one decision only."""
    result: dict[str, LabelledMutable] = {}
    for mutable in mutables:
        seen = result.get(mutable.label)
        if seen is None:
            result[mutable.label] = mutable
        elif seen is not mutable and not seen.equals(mutable):
            raise LabelConflictError(
                f"label {mutable.label!r} is used for two different decisions: {seen!r} and {mutable!r}. "
                "The same label means the same decision: use the same candidates, or give one of them "
                "another label."
            )
    return result


def collect_mutables(obj: Any) -> Iterator[LabelledMutable]:
    """Every decision found in ``obj``: a mutable, or lists / tuples / dicts holding mutables."""
    if isinstance(obj, Mutable):
        yield from obj.leaf_mutables()
    elif isinstance(obj, (list, tuple)):
        for item in obj:
            yield from collect_mutables(item)
    elif isinstance(obj, dict):
        for item in obj.values():
            yield from collect_mutables(item)


def freeze_structure(obj: Any, sample: Sample) -> Any:
    """Freeze every mutable inside ``obj`` (lists, tuples and dicts are walked)."""
    if isinstance(obj, Mutable):
        return obj.freeze(sample)
    if isinstance(obj, list):
        return [freeze_structure(item, sample) for item in obj]
    if isinstance(obj, tuple):
        return tuple(freeze_structure(item, sample) for item in obj)
    if isinstance(obj, dict):
        return {key: freeze_structure(value, sample) for key, value in obj.items()}
    return obj


def default_structure(obj: Any, defaults: Callable[[LabelledMutable], Any] | None = None) -> Any:
    """``obj`` with every mutable replaced by its default value."""
    if not contains_mutable(obj):
        return obj
    sample = {m.label: (defaults(m) if defaults else m.default_value()) for m in collect_mutables(obj)}
    return freeze_structure(obj, sample)


def contains_mutable(obj: Any) -> bool:
    if isinstance(obj, Mutable):
        return True
    if isinstance(obj, (list, tuple)):
        return any(contains_mutable(item) for item in obj)
    if isinstance(obj, dict):
        return any(contains_mutable(item) for item in obj.values())
    return False


def _check_labels_agree(kept: Iterable[Any], added: Iterable[Any]) -> None:
    """Raise :class:`LabelConflictError` when ``added`` reuses a label of ``kept`` for another decision."""
    dedup_mutables(itertools.chain(collect_mutables(list(kept)), collect_mutables(list(added))))


class MutableDict(Mutable):
    """A dict whose values may be mutables; freezes to a plain dict (in insertion order).

    Built from a dict, from ``(key, value)`` pairs or from keywords (``MutableDict(a=..., b=...)``),
    and edited like a dict (NNI's ``MutableDict``): ``d[key] = value``, ``del d[key]``,
    ``update``, ``pop``, ``clear``, ``keys`` / ``values`` / ``items``. The space is always what
    the dict holds now; a value whose decisions reuse a label of another value for a different
    decision is refused when it is set.
    """

    def __init__(self, mutables: Mapping[str, Any] | Iterable[tuple[str, Any]] | None = None, **kwargs: Any) -> None:
        self.mutables: dict[str, Any] = dict(mutables) if mutables is not None else {}
        for key, value in kwargs.items():
            if key in self.mutables:
                raise SearchSpaceError(f"MutableDict: key {key!r} is given twice (in the dict and as a keyword)")
            self.mutables[key] = value

    def leaf_mutables(self) -> Iterator[LabelledMutable]:
        yield from collect_mutables(self.mutables)

    def conditional_leaves(self) -> Iterator[tuple[Any, tuple[Any, ...]]]:
        from nascore.space.conditions import conditional_leaves

        yield from conditional_leaves(self.mutables)

    def freeze(self, sample: Sample) -> dict[str, Any]:
        return freeze_structure(self.mutables, sample)

    def __getitem__(self, key: str) -> Any:
        return self.mutables[key]

    def __setitem__(self, key: str, value: Any) -> None:
        _check_labels_agree((v for k, v in self.mutables.items() if k != key), [value])
        self.mutables[key] = value

    def __delitem__(self, key: str) -> None:
        del self.mutables[key]

    def __contains__(self, key: object) -> bool:
        return key in self.mutables

    def __iter__(self) -> Iterator[str]:
        return iter(self.mutables)

    def __len__(self) -> int:
        return len(self.mutables)

    def keys(self) -> KeysView[str]:
        return self.mutables.keys()

    def values(self) -> ValuesView[Any]:
        return self.mutables.values()

    def items(self) -> ItemsView[str, Any]:
        return self.mutables.items()

    def get(self, key: str, default: Any = None) -> Any:
        return self.mutables.get(key, default)

    def pop(self, key: str, *default: Any) -> Any:
        """Remove ``key`` and return its value (``default`` if given and the key is absent)."""
        return self.mutables.pop(key, *default)

    def clear(self) -> None:
        self.mutables.clear()

    def update(self, other: Mapping[str, Any] | Iterable[tuple[str, Any]] = (), **kwargs: Any) -> None:
        """Set every ``key: value`` of ``other`` and of the keywords, as ``dict.update``."""
        new = {**dict(other), **kwargs}
        _check_labels_agree((v for k, v in self.mutables.items() if k not in new), new.values())
        self.mutables.update(new)

    def __repr__(self) -> str:
        return f"MutableDict({self.mutables!r})"


class MutableList(Mutable):
    """A list whose items may be mutables; freezes to a plain list.

    Indexed, sliced (a slice is a ``MutableList``) and edited like a list (NNI's ``MutableList``):
    ``append`` / ``extend`` (both return the list, as NNI's do), ``insert``, ``+=``,
    ``lst[i] = value``, ``del lst[i]``. The space is always what the list holds now; an item whose
    decisions reuse a label of another item for a different decision is refused when it is added.
    """

    def __init__(self, mutables: Iterable[Any] | None = None) -> None:
        self.mutables = list(mutables) if mutables is not None else []

    def leaf_mutables(self) -> Iterator[LabelledMutable]:
        yield from collect_mutables(self.mutables)

    def conditional_leaves(self) -> Iterator[tuple[Any, tuple[Any, ...]]]:
        from nascore.space.conditions import conditional_leaves

        yield from conditional_leaves(self.mutables)

    def freeze(self, sample: Sample) -> list[Any]:
        return freeze_structure(self.mutables, sample)

    @overload
    def __getitem__(self, index: int) -> Any: ...

    @overload
    def __getitem__(self, index: slice) -> MutableList: ...

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return type(self)(self.mutables[index])
        return self.mutables[index]

    def __setitem__(self, index: int | slice, value: Any) -> None:
        kept = list(self.mutables)
        del kept[index]
        added = list(value) if isinstance(index, slice) else [value]
        _check_labels_agree(kept, added)
        self.mutables[index] = added if isinstance(index, slice) else value

    def __delitem__(self, index: int | slice) -> None:
        del self.mutables[index]

    def __contains__(self, item: object) -> bool:
        return item in self.mutables

    def __iter__(self) -> Iterator[Any]:
        return iter(self.mutables)

    def __len__(self) -> int:
        return len(self.mutables)

    def append(self, item: Any) -> MutableList:
        """Add ``item`` at the end; returns the list (as NNI's ``MutableList.append``)."""
        _check_labels_agree(self.mutables, [item])
        self.mutables.append(item)
        return self

    def extend(self, items: Iterable[Any]) -> MutableList:
        """Add every item of ``items`` at the end; returns the list."""
        items = list(items)
        _check_labels_agree(self.mutables, items)
        self.mutables.extend(items)
        return self

    def insert(self, index: int, item: Any) -> None:
        """Insert ``item`` before ``index``."""
        _check_labels_agree(self.mutables, [item])
        self.mutables.insert(index, item)

    def __iadd__(self, items: Iterable[Any]) -> MutableList:
        return self.extend(items)

    def __repr__(self) -> str:
        return f"MutableList({self.mutables!r})"


def sample_key(sample: Sample) -> str:
    """A canonical string for a sample, for deduplication and lookup."""
    import json

    return json.dumps(sample, sort_keys=True, default=repr)
