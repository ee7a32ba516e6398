"""The evaluator contract: how one candidate model is trained and scored.

An evaluator receives an :class:`~nascore.format.ExecutableModel`, builds the module, trains and
scores it, and reports through :func:`nascore.report_intermediate_result` and
:func:`nascore.report_final_result` (or returns the final metric). Evaluators that must cross a
process boundary describe themselves as data with :meth:`Evaluator.to_spec`.

An evaluator's arguments may hold decisions (``FunctionalEvaluator(train, lr=nascore.choice("lr",
[0.1, 0.01]))``, ``Classification(learning_rate=nascore.choice(...), max_epochs=...)``): they are
listed by :meth:`Evaluator.mutables`, join the search space of an experiment, are searched with the
architecture, and every trial gets the evaluator :meth:`Evaluator.freeze` makes from its sample,
holding plain values. :class:`MutableEvaluator` gives that to any evaluator class: it records the
constructor's arguments and freezing calls the constructor again with the chosen values.
"""

from __future__ import annotations

from abc import ABC, ABCMeta, abstractmethod
from collections.abc import Hashable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from nascore.errors import EvaluatorError
from nascore.space.mutable import (
    LabelledMutable,
    Sample,
    collect_mutables,
    contains_mutable,
    dedup_mutables,
    freeze_structure,
)

if TYPE_CHECKING:
    import torch.nn as nn

    from nascore.format import ExecutableModel
    from nascore.group import ModelGroup

__all__ = ["Evaluator", "MutableEvaluator"]


class Evaluator(ABC):
    """Base class of evaluators. Subclasses implement :meth:`evaluate_module`.

    An evaluator that knows which way its final metric is better (an accuracy is maximized, an error
    minimized) says so in :attr:`optimize_mode`; the experiment follows it unless the user sets
    ``ExperimentConfig.optimize_mode``, and a contradiction is an error before the first trial.
    :meth:`check` finds setup mistakes (misspelled arguments) before the first trial instead of in
    every trial.
    """

    @property
    def optimize_mode(self) -> str | None:
        """``"maximize"`` or ``"minimize"`` if this evaluator knows its metric's direction, else ``None``."""
        return None

    def check(self) -> None:
        """Raise :class:`~nascore.errors.EvaluatorError` for a mistake found without running a trial.

        Called once before the first trial. The default checks nothing.
        """

    def evaluate(self, model: ExecutableModel) -> Any:
        """Build ``model`` and evaluate it; returns what :meth:`evaluate_module` returns.

        A :class:`~nascore.group.ModelGroup` goes to :meth:`evaluate_group` instead.
        """
        from nascore.group import ModelGroup

        self.check_frozen()
        if isinstance(model, ModelGroup):
            return self.evaluate_group(model)
        return self.evaluate_module(model.build())

    # --- decisions in the arguments (searched with the architecture) ------------------------------

    def mutables(self) -> dict[str, LabelledMutable]:
        """The decisions in this evaluator's arguments, ``{label: decision}``; the default: none.

        An experiment adds them to the space it searches; each trial's evaluator is
        :meth:`freeze` of the trial's sample. A label that the model space uses too is one decision
        (the model and the evaluator get the same value).

        :raises ~nascore.errors.LabelConflictError: one label names two different decisions.
        """
        return {}

    def freeze(self, sample: Sample) -> Evaluator:
        """This evaluator with the value ``sample`` gives each of its decisions (an evaluator without any).

        ``sample`` may hold other labels (the architecture's): they are ignored. The default (an
        evaluator without decisions) returns the evaluator itself.

        :raises ~nascore.errors.SampleValidationError: a decision's value is missing or not valid.
        """
        mutables = self.mutables()
        if mutables:
            raise NotImplementedError(
                f"{type(self).__name__} lists decisions ({', '.join(map(repr, mutables))}) but does not implement freeze()"
            )
        return self

    def check_frozen(self) -> None:
        """Raise :class:`~nascore.errors.EvaluatorError` if this evaluator still holds decisions (it cannot train yet)."""
        mutables = self.mutables()
        if mutables:
            raise EvaluatorError(
                f"{type(self).__name__} holds decisions in its arguments ({', '.join(map(repr, mutables))}), so it "
                "cannot evaluate a model until they have values: an experiment gives every trial the evaluator "
                "frozen with the trial's sample; outside one, call evaluator.freeze({label: value, ...}) first"
            )

    # --- several models in one trial (engines that group models, such as cgo) ------------------

    def merge_key(self) -> Hashable | None:
        """Models whose evaluators have equal keys may train together in one trial; ``None``: never.

        An evaluator that implements :meth:`evaluate_group` returns what two evaluations must share to
        be done as one (the same data read the same way, the same recipe). The default is ``None``.
        """
        return None

    def check_group(self, settings: Mapping[str, Any]) -> None:
        """Raise :class:`~nascore.errors.EvaluatorError` if this evaluator cannot train groups with ``settings``.

        ``settings`` are what the grouping engine will put in every :attr:`ModelGroup.settings
        <nascore.group.ModelGroup.settings>` (e.g. ``{"placement": "spread"}``); called before the
        first trial. The default accepts anything.
        """

    def evaluate_group(self, group: ModelGroup) -> Any:
        """Train and score the members of ``group`` in one pass; report each with ``report_*_result(metric, member=i)``.

        Iterate ``group.members`` to build the members (each is then built from its own trial's seed).
        Evaluators whose :meth:`merge_key` is ``None`` are never given a group.
        """
        raise EvaluatorError(
            f"{type(self).__name__} cannot train several models in one trial (its merge_key() is None); "
            "use an evaluator that can, such as nascore.evaluators.Classification / Regression"
        )

    @abstractmethod
    def evaluate_module(self, module: nn.Module) -> Any:
        """Train and score one built model; report metrics or return the final one."""

    def to_spec(self) -> dict[str, Any] | None:
        """This evaluator as data (import path and arguments), or ``None`` if it cannot be."""
        return None


# --- evaluators whose constructor arguments may hold decisions ------------------------------------


class _RecordsArguments(ABCMeta):
    """Records the arguments a :class:`MutableEvaluator` is constructed with.

    Arguments that hold decisions are replaced by the decisions' defaults for the constructor itself,
    so that it sees plain values (a loss class it calls, a learning rate it checks); the arguments as
    given are kept for :meth:`MutableEvaluator.mutables` and :meth:`MutableEvaluator.freeze`.
    """

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        found = [m for value in (*args, *kwargs.values()) for m in cls.argument_mutables(value)]  # type: ignore[attr-defined]
        if found:
            decisions = dedup_mutables(found)
            defaults = {label: mutable.default_value() for label, mutable in decisions.items()}
            plain_args = [cls.freeze_argument(value, defaults) for value in args]  # type: ignore[attr-defined]
            plain_kwargs = {key: cls.freeze_argument(value, defaults) for key, value in kwargs.items()}  # type: ignore[attr-defined]
            instance = super().__call__(*plain_args, **plain_kwargs)
        else:
            instance = super().__call__(*args, **kwargs)
        instance._nascore_arguments = (tuple(args), dict(kwargs))
        return instance


class MutableEvaluator(Evaluator, metaclass=_RecordsArguments):
    """An evaluator whose constructor arguments may hold decisions (``nascore.choice``, expressions, ...).

    The constructor's arguments are recorded as given. When they hold decisions, the instance itself
    is built from the decisions' defaults (so its properties, such as :attr:`~Evaluator.optimize_mode`,
    and :meth:`~Evaluator.check` work), but it refuses to evaluate: :meth:`freeze` builds the
    evaluator a trial uses by calling the constructor again with the chosen values. Decisions are
    found in the arguments and in lists, tuples and dicts inside them (NNI: a ``nni.trace``d
    ``MutableEvaluator``); subclasses look further by overriding :meth:`argument_mutables` and
    :meth:`freeze_argument` (the Lightning evaluators also look in the recipe's attributes).

    >>> class Train(MutableEvaluator):
    ...     def __init__(self, lr, epochs=1): ...
    >>> evaluator = Train(lr=nascore.choice("lr", [0.1, 0.01]))
    >>> evaluator.freeze({"lr": 0.01}).init_arguments
    ((), {'lr': 0.01})
    """

    _nascore_arguments: tuple[tuple[Any, ...], dict[str, Any]] = ((), {})
    _nascore_decisions: Sample | None = None

    @property
    def init_arguments(self) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """``(args, kwargs)`` as the constructor was called (with the decisions in them)."""
        return self._nascore_arguments

    @property
    def decisions(self) -> Sample | None:
        """``{label: value}`` this evaluator was frozen with by :meth:`freeze`; ``None`` when it was not."""
        return self._nascore_decisions

    @classmethod
    def argument_mutables(cls, value: Any) -> Iterator[LabelledMutable]:
        """The decisions in one constructor argument (a decision, or lists, tuples and dicts holding some)."""
        yield from collect_mutables(value)

    @classmethod
    def freeze_argument(cls, value: Any, sample: Sample) -> Any:
        """One constructor argument with its decisions replaced by their values in ``sample`` (itself when it has none)."""
        return freeze_structure(value, sample) if contains_mutable(value) else value

    def mutables(self) -> dict[str, LabelledMutable]:
        args, kwargs = self._nascore_arguments
        return dedup_mutables(m for value in (*args, *kwargs.values()) for m in self.argument_mutables(value))

    def freeze(self, sample: Sample) -> Evaluator:
        """A new evaluator of this class, constructed with the arguments' decisions set from ``sample``."""
        mutables = self.mutables()
        if not mutables:
            return self
        decisions = {label: mutable.freeze(sample) for label, mutable in mutables.items()}  # validates each value
        args, kwargs = self._nascore_arguments
        try:
            frozen = type(self)(
                *(self.freeze_argument(value, decisions) for value in args),
                **{key: self.freeze_argument(value, decisions) for key, value in kwargs.items()},
            )
        except Exception as exc:  # the constructor's own checks, or what it raises for a value it cannot take
            raise EvaluatorError(f"{type(self).__name__} with {_describe(decisions)}: {exc}") from exc
        frozen._nascore_decisions = decisions
        return frozen


def _describe(decisions: Sample) -> str:
    return ", ".join(f"{label}={value!r}" for label, value in decisions.items())
