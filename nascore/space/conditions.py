"""Conditional decisions and constraints: which decisions a sample needs, and which samples are allowed.

In a space with branches, a decision may matter only for some values of others: the decisions
inside a :class:`~nascore.nn.LayerChoice` candidate count only when that candidate is chosen, those
of the blocks of a :class:`~nascore.nn.Repeat` only up to the chosen depth, the branches of
``MutableExpression.switch_case`` / ``condition`` only when selected. Such a decision is *active*
for a sample when the conditions on the way to it hold. A sample is *canonical* when it holds the
active decisions and no others: two canonical samples are equal exactly when they are the same
architecture, so deduplication, the store, grid search and the size of a space count
architectures, not samples.

:class:`Decisions` is the view every space gives of itself (``Mutable.decisions()``): its
decisions, when each is active, its constraints, and the operations built on them (active labels,
canonical samples, validation, random samples, grid, size).

A *constraint* (:class:`Constraint`, NNI's ``ExpressionConstraint``) is a condition over decisions
that every sample must satisfy; it joins a space with ``module.add_mutable(constraint)`` (or inside
any container of mutables). A constraint that reads a decision which is inactive for a sample does
not apply to that sample.
"""

from __future__ import annotations

import logging
import random as _random
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from nascore.errors import (
    ConstraintViolationError,
    LabelConflictError,
    SampleMissingError,
    SampleValidationError,
    SearchSpaceError,
    UnknownLabelError,
)
from nascore.space.mutable import LabelledMutable, Mutable, Sample, dedup_mutables

__all__ = ["Condition", "Constraint", "ExpressionConstraint", "Decisions", "conditional_leaves"]

_log = logging.getLogger(__name__)

#: At most this many samples are enumerated to count a space that has no tree structure (or has constraints).
COUNT_LIMIT = 200_000
#: Random samples drawn before giving up on satisfying the constraints.
RANDOM_TRIES = 1000
#: Values of a decision looked at to tell whether a condition on it always holds.
_ALWAYS_LIMIT = 1024


class Condition:
    """A decision is active only when ``test(subject's value)`` holds.

    ``subject`` is one decision or an expression of decisions; ``text`` says the condition for
    messages (``"op == 1"``, ``"depth > 2"``).
    """

    __slots__ = ("subject", "test", "text", "labels", "key")

    def __init__(self, subject: Mutable, test: Callable[[Any], bool], text: str) -> None:
        self.subject = subject
        self.test = test
        self.text = text
        self.labels = tuple(dict.fromkeys(m.label for m in subject.leaf_mutables()))
        #: Two conditions with the same key are the same condition (the same decisions, the same test).
        self.key = (self.labels, text)

    @classmethod
    def equals(cls, subject: Mutable, value: Any) -> Condition:
        return cls(subject, lambda v: v == value, f"{_name(subject)} == {value!r}")

    @classmethod
    def greater(cls, subject: Mutable, bound: int) -> Condition:
        return cls(subject, lambda v: v > bound, f"{_name(subject)} > {bound}")

    def holds(self, sample: Sample) -> bool:
        """Whether the condition holds (every label it reads must be in ``sample``)."""
        subject = self.subject
        if isinstance(subject, LabelledMutable):
            return bool(self.test(subject.canonical_value(sample[subject.label])))
        return bool(self.test(subject.freeze(sample)))

    def __repr__(self) -> str:
        return f"Condition({self.text})"


Path = tuple[Condition, ...]


def _name(subject: Mutable) -> str:
    return subject.label if isinstance(subject, LabelledMutable) else str(subject)


class Constraint(Mutable):
    """A condition every sample of the space must satisfy (base class; see :class:`ExpressionConstraint`)."""

    label: str

    def satisfied(self, sample: Sample) -> bool:
        raise NotImplementedError

    def freeze(self, sample: Sample) -> None:
        """Raise :class:`~nascore.errors.ConstraintViolationError` if ``sample`` violates the constraint."""
        if not self.satisfied(sample):
            raise ConstraintViolationError(
                f"the sample violates the constraint {self.label!r}: {self.describe()}", label=self.label
            )

    def describe(self) -> str:
        raise NotImplementedError


class ExpressionConstraint(Constraint):
    """The constraint that ``expression`` (a boolean expression of decisions) is true, as NNI's.

    >>> a, b = nascore.choice("a", [1, 2, 3]), nascore.choice("b", [1, 2, 3])
    >>> space.add_mutable(ExpressionConstraint(a + b <= 4, label="small"))

    Sampling, grid, deduplication and every multi-trial strategy only ever produce samples that
    satisfy it; a sample that does not is refused with a
    :class:`~nascore.errors.ConstraintViolationError`.
    """

    def __init__(self, expression: Any, *, label: str | None = None) -> None:
        from nascore.space.label import auto_label, check_label

        if not isinstance(expression, Mutable):
            raise SearchSpaceError(
                f"ExpressionConstraint needs an expression of decisions (e.g. a + b <= 4), got {expression!r}: "
                "a plain value would be the same for every sample"
            )
        self.expression = expression
        self.label = check_label(label) if label is not None else auto_label("constraint")

    def leaf_mutables(self) -> Iterator[LabelledMutable]:
        yield from self.expression.leaf_mutables()

    def conditional_leaves(self) -> Iterator[tuple[Any, Path]]:
        yield from self.expression.conditional_leaves()
        yield self, ()

    def satisfied(self, sample: Sample) -> bool:
        return bool(self.expression.freeze(sample))

    def describe(self) -> str:
        return str(self.expression)

    def __repr__(self) -> str:
        return f"ExpressionConstraint({self.expression}, label={self.label!r})"


def conditional_leaves(obj: Any) -> Iterator[tuple[Any, Path]]:
    """Every decision (and constraint) in ``obj`` with the conditions under which it is active."""
    if isinstance(obj, Mutable):
        yield from obj.conditional_leaves()
    elif isinstance(obj, (list, tuple)):
        for item in obj:
            yield from conditional_leaves(item)
    elif isinstance(obj, dict):
        for item in obj.values():
            yield from conditional_leaves(item)


def under(condition: Condition, entries: Iterable[tuple[Any, Path]]) -> Iterator[tuple[Any, Path]]:
    """``entries`` with ``condition`` put in front of each path."""
    for leaf, path in entries:
        yield leaf, (condition, *path)


class Decisions:
    """The decisions of a space, when each is active, and its constraints.

    Built from ``(decision, path)`` entries (``Mutable.conditional_leaves()``), where a path is the
    conditions on the way to the decision; a label reached on several paths is active when any of
    them holds. ``mutables`` lists each decision once, in the order first met.
    """

    def __init__(self, entries: Iterable[tuple[Any, Path]]) -> None:
        decisions: list[tuple[LabelledMutable, Path]] = []
        constraints: dict[str, tuple[Constraint, list[Path]]] = {}
        for leaf, path in entries:
            if isinstance(leaf, Constraint):
                kept = constraints.setdefault(leaf.label, (leaf, []))
                if kept[0] is not leaf:
                    raise LabelConflictError(f"label {leaf.label!r} is used for two constraints: {kept[0]!r} and {leaf!r}")
                kept[1].append(path)
            else:
                decisions.append((leaf, path))
        mutables = dedup_mutables(leaf for leaf, _ in decisions)  # one decision per label
        paths: dict[str, list[Path]] = {}
        for leaf, path in decisions:
            paths.setdefault(leaf.label, []).append(path)
        self.mutables = mutables
        self.paths: dict[str, list[Path]] = {label: _simplify(found) for label, found in paths.items()}
        self.constraints: list[tuple[Constraint, list[Path]]] = [
            (constraint, _simplify(found)) for constraint, found in constraints.values()
        ]
        self.conditional = any(found != [()] for found in self.paths.values())
        self.order = self._topological_order() if self.conditional else list(mutables)
        self._unconditional = not self.conditional and not self.constraints

    @classmethod
    def unconditional(cls, mutables: dict[str, LabelledMutable]) -> Decisions:
        return cls((m, ()) for m in mutables.values())

    def restricted(self, mutables: dict[str, LabelledMutable]) -> Decisions:
        """These decisions' conditions for the decisions ``mutables`` (others unconditional), same constraints."""
        entries: list[tuple[Any, Path]] = []
        for label, mutable in mutables.items():
            entries.extend((mutable, path) for path in self.paths.get(label, [()]))
        for constraint, found in self.constraints:
            entries.extend((constraint, path) for path in found)
        return Decisions(entries)

    def _topological_order(self) -> list[str]:
        order: list[str] = []
        state: dict[str, int] = {}

        def visit(label: str, trail: tuple[str, ...]) -> None:
            if state.get(label) == 2:
                return
            if state.get(label) == 1:
                raise SearchSpaceError(
                    f"decision {label!r} is active only under a condition that depends on itself "
                    f"({' -> '.join((*trail, label))}): give the nested decision another label"
                )
            state[label] = 1
            for path in self.paths.get(label, ()):
                for condition in path:
                    for other in condition.labels:
                        if other in self.mutables:
                            visit(other, (*trail, label))
            state[label] = 2
            order.append(label)

        for label in self.mutables:
            visit(label, ())
        return order

    # --- activity -------------------------------------------------------------------------------

    def _active(self, label: str, values: Sample, active: set[str] | None) -> bool:
        found = self.paths[label]
        if not found[0]:  # simplified: an empty path comes alone, and means always
            return True
        for path in found:
            if all(_condition_holds(c, values, active) for c in path):
                return True
        return False

    def active_labels(self, sample: Sample) -> list[str]:
        """The labels that matter for ``sample``, in order (a condition on a missing label does not hold)."""
        if not self.conditional:
            return list(self.mutables)
        active: set[str] = set()
        for label in self.order:
            if self._active(label, sample, active):
                active.add(label)
        return [label for label in self.mutables if label in active]

    def why_active(self, label: str) -> str:
        """The conditions under which ``label`` is active, for messages (empty when always)."""
        found = self.paths.get(label, [()])
        if found == [()]:
            return ""
        return " or ".join(" and ".join(c.text for c in path) for path in found)

    def canonical(self, sample: Sample, *, fill: _random.Random | None = None) -> Sample:
        """``sample`` with only its active decisions (the architecture it stands for, written one way).

        Labels the space does not have are kept (validation names them). With ``fill``, an active
        decision the sample lacks gets a random value drawn with it.
        """
        if not self.conditional and fill is None:
            return dict(sample)
        out: Sample = {}
        active: set[str] = set()
        for label in self.order:
            if not self._active(label, out, active):
                continue
            if label in sample:
                out[label] = sample[label]
            elif fill is not None:
                out[label] = self.mutables[label].random_value(fill)
            else:
                continue
            active.add(label)
        ordered = {label: out[label] for label in self.mutables if label in out}
        ordered.update((label, value) for label, value in sample.items() if label not in self.mutables)
        return ordered

    # --- validation -----------------------------------------------------------------------------

    def check(self, sample: Sample) -> SampleValidationError | None:
        """Why ``sample`` is not in the space (an unknown label, an active decision missing or invalid, a
        violated constraint), or ``None``. Inactive decisions may be present or absent."""
        unknown = [label for label in sample if label not in self.mutables]
        if unknown:
            return UnknownLabelError.for_labels(unknown, list(self.mutables))
        active: set[str] = set()
        for label in self.order:
            if not self._active(label, sample, active):
                continue
            mutable = self.mutables[label]
            if label not in sample:
                why = self.why_active(label)
                return SampleMissingError(
                    f"sample has no value for label {label!r} (expected one of {mutable.describe()})"
                    + (f", which is active because {why}" if why else ""),
                    label=label,
                )
            error = mutable.check_value(sample[label])
            if error is not None:
                return error
            active.add(label)
        violated = self.violated(sample, active if self.conditional else None)
        if violated is not None:
            return ConstraintViolationError(
                f"the sample violates the constraint {violated.label!r}: {violated.describe()}", label=violated.label
            )
        return None

    def violated(self, sample: Sample, active: set[str] | None = None) -> Constraint | None:
        """The first constraint ``sample`` violates (one reading an inactive decision does not apply), or ``None``."""
        if not self.constraints:
            return None
        if active is None:
            active = set(self.active_labels(sample)) if self.conditional else set(self.mutables)
        for constraint, found in self.constraints:
            if not any(all(_condition_holds(c, sample, active) for c in path) for path in found):
                continue
            labels = {m.label for m in constraint.leaf_mutables()}
            if not labels <= active or not labels <= sample.keys():
                continue
            if not constraint.satisfied(sample):
                return constraint
        return None

    # --- sampling -------------------------------------------------------------------------------

    def default(self) -> Sample:
        """Every active decision at its default (constraints are not looked at)."""
        out: Sample = {}
        active: set[str] = set()
        for label in self.order:
            if self._active(label, out, active):
                out[label] = self.mutables[label].default_value()
                active.add(label)
        return {label: out[label] for label in self.mutables if label in out}

    def random(self, rng: _random.Random, memo: Sample | None = None) -> Sample:
        """A random canonical sample (each active decision drawn from its prior) satisfying the constraints.

        Labels in ``memo`` keep their value. Raises :class:`~nascore.errors.ConstraintViolationError`
        when :data:`RANDOM_TRIES` draws satisfy no constraint.
        """
        for _ in range(RANDOM_TRIES if self.constraints else 1):
            sample = self._draw(rng, memo or {})
            if self.violated(sample) is None:
                return sample
        raise self.unsatisfiable(f"{RANDOM_TRIES} random samples")

    def _draw(self, rng: _random.Random, memo: Sample) -> Sample:
        if not self.conditional:
            sample = dict(memo)
            for label, mutable in self.mutables.items():
                if label not in sample:
                    sample[label] = mutable.random_value(rng)
            return sample
        out: Sample = {}
        active: set[str] = set()
        for label in self.order:
            if self._active(label, out, active):
                out[label] = memo[label] if label in memo else self.mutables[label].random_value(rng)
                active.add(label)
        ordered = {label: out[label] for label in self.mutables if label in out}
        ordered.update((label, value) for label, value in memo.items() if label not in self.mutables)
        return ordered

    def unsatisfiable(self, tried: str) -> ConstraintViolationError:
        names = ", ".join(f"{c.label!r}: {c.describe()}" for c, _ in self.constraints)
        return ConstraintViolationError(
            f"no sample of the space satisfies its constraints ({names}; tried {tried}): loosen a constraint or widen "
            "the decisions it reads",
            label=self.constraints[0][0].label if self.constraints else None,
        )

    def grid(self, memo: Sample | None = None, granularity: int | None = None) -> Iterator[Sample]:
        """Every canonical sample satisfying the constraints, each once (the first decision varies slowest)."""
        fixed = dict(memo) if memo else {}
        labels = self.order
        count = len(labels)
        value_lists: dict[str, list[Any]] = {}

        def options(index: int, current: Sample, active: set[str]) -> list[Any]:
            label = labels[index]
            if self.conditional and not self._active(label, current, active):
                return [_SKIP]
            if label in fixed:
                return [fixed[label]]
            values = value_lists.get(label)
            if values is None:
                values = value_lists[label] = list(self.mutables[label].grid_values(granularity))
            return values

        extra = {label: value for label, value in fixed.items() if label not in self.mutables}
        if count == 0:
            if self.violated(extra) is None:
                yield dict(extra)
            return
        current: Sample = {}
        active: set[str] = set()
        iterators: list[Iterator[Any]] = [iter(())] * count
        iterators[0] = iter(options(0, current, active))
        index = 0
        while index >= 0:
            label = labels[index]
            try:
                value = next(iterators[index])
            except StopIteration:
                current.pop(label, None)
                active.discard(label)
                index -= 1
                continue
            if value is _SKIP:
                current.pop(label, None)
                active.discard(label)
            else:
                current[label] = value
                active.add(label)
            if index == count - 1:
                sample = {key: current[key] for key in self.mutables if key in current}
                sample.update(extra)
                if self.violated(sample, active) is None:
                    yield sample
            else:
                index += 1
                iterators[index] = iter(options(index, current, active))

    def size(self) -> float:
        """The number of distinct architectures (canonical samples satisfying the constraints)."""
        flat = 1.0
        for mutable in self.mutables.values():
            flat *= mutable.size
        if self._unconditional or flat == float("inf"):
            return flat
        if not self.constraints:
            counted = self._tree_count()
            if counted is not None:
                return counted
        total = 0
        for _ in self.grid():
            total += 1
            if total > COUNT_LIMIT:
                _log.debug("space size: more than %d samples to enumerate; using the upper bound %g", COUNT_LIMIT, flat)
                return flat
        return float(total)

    def _tree_count(self) -> float | None:
        """Count when every conditional decision hangs under one decision (LayerChoice / Repeat nesting)."""
        children: dict[str, list[tuple[Condition, str]]] = {}
        roots: list[str] = []
        for label in self.order:
            found = self.paths[label]
            if len(found) != 1:
                return None
            path = found[0]
            if not path:
                roots.append(label)
                continue
            last = path[-1]
            if len(last.labels) != 1 or not isinstance(last.subject, LabelledMutable):
                return None
            parent = last.labels[0]
            if parent not in self.paths or [_keys(p) for p in self.paths[parent]] != [_keys(path[:-1])]:
                return None
            children.setdefault(parent, []).append((last, label))

        def count(label: str) -> float:
            mutable = self.mutables[label]
            below = children.get(label)
            if not below:
                return mutable.size
            if mutable.size == float("inf"):
                return float("inf")
            total = 0.0
            for value in mutable.grid_values():
                product = 1.0
                for condition, child in below:
                    if condition.test(mutable.canonical_value(value)):
                        product *= count(child)
                total += product
            return total

        result = 1.0
        for label in roots:
            result *= count(label)
        return result


_SKIP = object()


def _condition_holds(condition: Condition, values: Sample, active: set[str] | None) -> bool:
    for label in condition.labels:
        if label not in values or (active is not None and label not in active):
            return False
    try:
        return condition.holds(values)
    except SearchSpaceError:
        return False


def _always(condition: Condition) -> bool:
    """Whether ``condition`` holds for every value of its decision (then it can be left out)."""
    subject = condition.subject
    if not isinstance(subject, LabelledMutable) or subject.size > _ALWAYS_LIMIT:
        return False
    try:
        return all(condition.test(v) for v in subject.grid_values())
    except Exception:  # noqa: BLE001 - a test that cannot say is not "always"
        return False


def _simplify(paths: list[Path]) -> list[Path]:
    """Equivalent, shorter alternatives: conditions that always hold dropped, ``A or (A and B)`` is ``A``,
    ``(P and x == 1) or (P and x == 2)`` is one condition on ``x``."""
    for _ in range(8):
        before = [_keys(path) for path in paths]
        paths = [tuple(c for c in path if not _always(c)) for path in paths]
        if any(not path for path in paths):
            return [()]
        merged: dict[tuple[Any, ...], list[Path]] = {}
        for path in paths:
            key = (*_keys(path[:-1]), path[-1].labels, str(path[-1].subject))
            merged.setdefault(key, []).append(path)
        paths = []
        for group in merged.values():
            lasts = _unique_conditions(p[-1] for p in group)
            if len(lasts) == 1:
                paths.append(group[0])
                continue
            tests = [c.test for c in lasts]
            combined = Condition(lasts[0].subject, lambda v, tests=tests: any(t(v) for t in tests), " or ".join(c.text for c in lasts))
            paths.append((*group[0][:-1], combined))
        kept: list[Path] = []
        for path in paths:
            keys = set(_keys(path))
            if any(other is not path and set(_keys(other)) < keys for other in paths):
                continue
            if any(set(_keys(other)) == keys for other in kept):
                continue
            kept.append(path)
        paths = kept
        if [_keys(path) for path in paths] == before:
            break
    return paths


def _unique_conditions(conditions: Iterable[Condition]) -> list[Condition]:
    seen: dict[Any, Condition] = {}
    for condition in conditions:
        seen.setdefault(condition.key, condition)
    return list(seen.values())


def _keys(path: Path) -> list[Any]:
    return [condition.key for condition in path]
