"""User-written mutations of the graph: :class:`Mutator`, and how they become ordinary decisions.

A mutator edits the graph IR of a space in :meth:`Mutator.mutate` and asks for a decision with
``self.choice(candidates)``::

    class KernelSize(Mutator):
        def mutate(self, model):
            [(graph, node)] = model.find("conv")
            size = self.choice([1, 3, 5])
            graph.set_leaf(node, graph.leaf(node).replace(kernel_size=size, padding=size // 2))

    space = apply_mutators(MySpace(), [KernelSize(label="kernel")])

When the graph format builds the space, every mutator runs once on a copy of the graph (a *dry
run*) and each ``choice`` call becomes a :class:`~nascore.space.Categorical` labelled
``"<mutator label>/<call index>"``, so strategies see plain decisions. Freezing a sample runs the
mutators again and each ``choice`` returns the sampled value. A mutator must ask for the same
candidates in every run. A *non-stationary* mutator, whose choices depend on earlier answers (how
many choices, or which candidates), is refused when the graph format builds the space: after the dry
run every mutator is replayed with each value of each of its decisions (:meth:`MutatorDecisions.check_stationary`),
and a replay that asks for other choices is an error that names the mutator, the choice and the
value that changed it, and says what to do instead: offer the same candidates every time, or put
the dependency into the model space, where ``LayerChoice``, ``Repeat`` and
``MutableExpression.switch_case`` make decisions conditional.
"""

from __future__ import annotations

import abc
import itertools
from collections.abc import Callable, Iterable
from typing import Any

import torch.nn as nn

from nascore.errors import SearchSpaceError
from nascore.space import Categorical, Sample
from nascore.space.label import check_label
from nascore_formats.common import GRAPH_MUTATORS_ATTRIBUTE
from nascore_formats.graph.ir import GraphIR

__all__ = ["Mutator", "apply_mutators", "attached_mutators", "MutatorDecisions"]



class Mutator(abc.ABC):
    """Base class of mutators: subclass it and implement :meth:`mutate`.

    ``label`` names the mutator's decisions (``"<label>/0"``, ``"<label>/1"``, ...); without one,
    the mutator is labelled by its position among the space's mutators (``"mutator_0"``).
    """

    def __init__(self, *, label: str | None = None) -> None:
        self.label = check_label(label) if label is not None else None
        self._sampler: Callable[[list[Any]], Any] | None = None

    @abc.abstractmethod
    def mutate(self, model: GraphIR) -> None:
        """Edit ``model`` in place, calling :meth:`choice` for every decision."""

    def choice(self, candidates: Iterable[Any]) -> Any:
        """A decision among ``candidates``: the sampled value when freezing, the first one in the dry run."""
        if self._sampler is None:
            raise SearchSpaceError(
                f"{type(self).__name__}.choice() was called outside mutate(); nascore calls mutate() when it builds "
                "the graph space and when it freezes a sample"
            )
        return self._sampler(list(candidates))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(label={self.label!r})"


def apply_mutators(space: nn.Module, mutators: Mutator | Iterable[Mutator]) -> nn.Module:
    """Attach mutators to a model space (the graph format applies them in order); returns ``space``.

    Call it after building the space, or inside the space's ``__init__`` (``apply_mutators(self, ...)``)
    so that a space rebuilt from its class, on resume, has them too.
    """
    new = [mutators] if isinstance(mutators, Mutator) else list(mutators)
    for mutator in new:
        if not isinstance(mutator, Mutator):
            raise SearchSpaceError(f"apply_mutators expects Mutator objects, got {type(mutator).__name__}")
    space.__dict__[GRAPH_MUTATORS_ATTRIBUTE] = [*attached_mutators(space), *new]
    return space


def attached_mutators(space: nn.Module) -> list[Mutator]:
    """The mutators attached to ``space`` with :func:`apply_mutators`."""
    return list(space.__dict__.get(GRAPH_MUTATORS_ATTRIBUTE, ()))


class MutatorDecisions:
    """The mutators of a space with their labels, and the decisions their dry run found."""

    def __init__(self, mutators: list[Mutator]) -> None:
        self.mutators = list(mutators)
        self.labels = [m.label or f"mutator_{i}" for i, m in enumerate(self.mutators)]
        if len(set(self.labels)) != len(self.labels):
            raise SearchSpaceError(f"two mutators have the same label: {self.labels}; give each its own label=")
        self.decisions: list[list[Categorical]] = []

    def dry_run(self, model: GraphIR) -> None:
        """Run every mutator on ``model`` (a copy) recording its choices as decisions."""
        self.decisions = []
        for mutator, label in zip(self.mutators, self.labels):
            recorded: list[Categorical] = []

            def record(candidates: list[Any], label: str = label, recorded: list[Categorical] = recorded) -> Any:
                decision = Categorical(candidates, label=f"{label}/{len(recorded)}")
                recorded.append(decision)
                return decision.default_value()

            self._run(mutator, label, model, record)
            self.decisions.append(recorded)

    def replay(self, model: GraphIR, sample: Sample) -> None:
        """Run every mutator on ``model`` (a copy) with the values ``sample`` gives its decisions."""
        for mutator, label, recorded in zip(self.mutators, self.labels, self.decisions):
            calls = [0]

            def replay(
                candidates: list[Any], label: str = label, recorded: list[Categorical] = recorded, calls: list[int] = calls
            ) -> Any:
                index = calls[0]
                calls[0] += 1
                if index >= len(recorded):
                    raise SearchSpaceError(
                        f"mutator {label!r} called choice() more often than in its dry run ({len(recorded)} times){_given(sample, recorded)}; "
                        f"{_NON_STATIONARY}"
                    )
                decision = recorded[index]
                if not decision.equals(Categorical(candidates, label=decision.label)):
                    raise SearchSpaceError(
                        f"mutator {label!r}: choice number {index} offers {candidates!r} but offered {decision.values!r} "
                        f"in the dry run{_given(sample, recorded[:index])}; {_NON_STATIONARY}"
                    )
                return decision.freeze(sample)

            self._run(mutator, label, model, replay)
            if calls[0] != len(recorded):
                raise SearchSpaceError(
                    f"mutator {label!r} called choice() {calls[0]} times, but {len(recorded)} times in its dry run"
                    f"{_given(sample, recorded)}; {_NON_STATIONARY}"
                )

    def check_stationary(self, model: GraphIR, limit: int = 64) -> None:
        """Refuse a non-stationary mutator now, not at the trial that meets it: replay each mutator with
        every value of each of its decisions (the others at their defaults), on copies of ``model``,
        at most ``limit`` replays per mutator."""
        defaults = {d.label: d.default_value() for recorded in self.decisions for d in recorded}
        for recorded in self.decisions:
            probes = itertools.islice(
                ({**defaults, d.label: value} for d in recorded for value in d.values if value != defaults[d.label]), limit
            )
            for sample in probes:
                self.replay(model.copy(), sample)

    @staticmethod
    def _run(mutator: Mutator, label: str, model: GraphIR, sampler: Callable[[list[Any]], Any]) -> None:
        mutator._sampler = sampler
        try:
            mutator.mutate(model)
        except SearchSpaceError:
            raise
        except Exception as exc:
            raise SearchSpaceError(f"mutator {label!r} ({type(mutator).__name__}) failed: {type(exc).__name__}: {exc}") from exc
        finally:
            mutator._sampler = None

    def mutables(self) -> list[Categorical]:
        return [decision for recorded in self.decisions for decision in recorded]


_NON_STATIONARY = (
    "this mutator is non-stationary (its choices depend on the values of earlier ones), which nascore does not "
    "support: strategies search a fixed set of decisions. Make it ask for the same choices with the same candidates "
    "every time (ask for the most it may need and ignore what a value does not use), or put the dependency into the "
    "model space, where LayerChoice, Repeat and MutableExpression.switch_case make decisions conditional"
)


def _given(sample: Sample, recorded: list[Categorical]) -> str:
    values = ", ".join(f"{d.label}={sample[d.label]!r}" for d in recorded if d.label in sample)
    return f" (given {values})" if values else ""
