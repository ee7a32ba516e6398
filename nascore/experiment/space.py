"""The space an experiment searches: the model space's decisions and those of the evaluator's arguments.

An evaluator whose arguments hold decisions (``FunctionalEvaluator(train, lr=nascore.choice("lr",
[0.1, 0.01]))``, ``Classification(learning_rate=nascore.choice(...))``) adds them to the search:
:class:`SearchSpace` is the format's executable space with the evaluator's decisions beside the
architecture's. Strategies see one space and propose one sample; each trial gets the model frozen
with the sample's architecture labels and the evaluator frozen with its evaluator labels
(:func:`freeze_trial`). A label used by both the model and the evaluator is one decision: both get
the same value (as in NNI). The same label with different candidates is a
:class:`~nascore.errors.LabelConflictError`.

Without decisions in the evaluator, the experiment searches the format's space itself.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from nascore.errors import EvaluatorError, LabelConflictError, SampleMissingError, SampleValidationError
from nascore.format import ExecutableModel, ExecutableSpace
from nascore.space import Categorical, LabelledMutable, Sample, sample_key

if TYPE_CHECKING:
    from nascore.evaluator import Evaluator

__all__ = ["SearchSpace", "check_evaluator", "freeze_trial", "model_sample", "search_space"]

#: At most this many values of one evaluator decision are checked before the first trial.
_CHECKED_VALUES = 32
#: Frozen evaluators kept for reuse (trials with the same values share one, and engines ship it once).
_KEPT_EVALUATORS = 256


class SearchSpace(ExecutableSpace):
    """A format's executable space joined with the decisions of an evaluator's arguments.

    It is an :class:`~nascore.format.ExecutableSpace`: :meth:`simplify` lists both kinds of decision,
    a sample holds both, and :meth:`freeze` gives the executable model of the sample's architecture
    (the evaluator's labels left out); :meth:`freeze_evaluator` gives the evaluator for the sample.

    :param model_space: the format's executable space.
    :param evaluator: an evaluator with decisions in its arguments (:meth:`~nascore.evaluator.Evaluator.mutables`).
    :raises ~nascore.errors.LabelConflictError: a label names different decisions in the model and the evaluator.
    """

    def __init__(self, model_space: ExecutableSpace, evaluator: Evaluator) -> None:
        model_mutables = model_space.simplify()
        evaluator_mutables = evaluator.mutables()
        for label, mutable in evaluator_mutables.items():
            seen = model_mutables.get(label)
            if seen is not None and seen is not mutable and not seen.equals(mutable):
                raise LabelConflictError(
                    f"label {label!r} is used by the model space for {seen!r} and by the evaluator's arguments for "
                    f"{mutable!r}. The same label means the same decision (the model and the evaluator then get the "
                    "same value): use the same candidates, or give one of them another label."
                )
        mutables = {**model_mutables, **evaluator_mutables}
        super().__init__(model_space.space, mutables, model_space.decisions().restricted(mutables))
        self.model_space = model_space
        self.evaluator = evaluator
        #: The evaluator's decisions, ``{label: decision}`` (labels shared with the model included).
        self.evaluator_mutables = evaluator_mutables
        self._own_labels = [label for label in evaluator_mutables if label not in model_mutables]
        self._frozen: dict[str, Evaluator] = {}

    # --- splitting a sample ---------------------------------------------------------------------

    def model_part(self, sample: Sample) -> Sample:
        """``sample`` less the labels only the evaluator has: what the model space is frozen with."""
        own = set(self._own_labels)
        return {label: value for label, value in sample.items() if label not in own}

    def evaluator_part(self, sample: Sample) -> Sample:
        """The evaluator's decisions in ``sample``, as candidates (values that came back from the store mapped back)."""
        values = {}
        for label, mutable in self.evaluator_mutables.items():
            if label not in sample:
                raise SampleMissingError(
                    f"sample has no value for label {label!r} of the evaluator's arguments (expected one of "
                    f"{mutable.describe()})",
                    label=label,
                )
            values[label] = stored_value(mutable, sample[label])
        return values

    # --- the space ------------------------------------------------------------------------------

    def leaf_mutables(self) -> Iterator[LabelledMutable]:
        yield from self.simplify().values()

    def check_contains(self, sample: Sample) -> SampleValidationError | None:
        error = self.model_space.check_contains(self.model_part(sample))
        if error is not None:
            return error
        for label, mutable in self.evaluator_mutables.items():
            if label not in sample:
                return SampleMissingError(
                    f"sample has no value for label {label!r} of the evaluator's arguments (expected one of "
                    f"{mutable.describe()})",
                    label=label,
                )
            error = mutable.check_value(stored_value(mutable, sample[label]))
            if error is not None:
                return error
        return None

    def freeze(self, sample: Sample) -> ExecutableModel:
        """The executable model of ``sample``'s architecture (validated, the evaluator's values too)."""
        error = self.check_contains(sample)
        if error is not None:
            raise error
        return self.model_space.freeze(self.model_part(sample))

    def freeze_evaluator(self, sample: Sample) -> Evaluator:
        """The evaluator frozen with ``sample``'s values of its decisions (one object per distinct set of values)."""
        values = self.evaluator_part(sample)
        key = sample_key(values)
        frozen = self._frozen.get(key)
        if frozen is None:
            if len(self._frozen) >= _KEPT_EVALUATORS:  # continuous decisions: a new evaluator for every trial
                del self._frozen[next(iter(self._frozen))]
            frozen = self._frozen[key] = self.evaluator.freeze(values)
        return frozen

    def default_evaluator(self) -> Evaluator:
        """The evaluator with every decision at its default: what trials look like, for checks before the first."""
        return self.freeze_evaluator({label: m.default_value() for label, m in self.evaluator_mutables.items()})

    def __repr__(self) -> str:
        return f"SearchSpace({self.model_space!r}, evaluator decisions {sorted(self.evaluator_mutables)})"


def search_space(model_space: ExecutableSpace, evaluator: Evaluator | None) -> ExecutableSpace:
    """The space an experiment searches: ``model_space``, joined by the evaluator's decisions if it has any."""
    if evaluator is None or not evaluator.mutables():
        return model_space
    return SearchSpace(model_space, evaluator)


def freeze_trial(space: ExecutableSpace, evaluator: Evaluator, sample: Sample) -> tuple[ExecutableModel, Evaluator, Sample]:
    """A trial of ``sample``: its executable model, its evaluator (plain values) and its sample as recorded.

    The recorded sample is the model's (as its format validated it) plus the evaluator's decisions.
    On a space without evaluator decisions the evaluator is ``evaluator`` itself.
    """
    sample = space.canonical_sample(sample)  # decisions of branches the architecture does not take left out
    model = space.freeze(sample)  # validates: a bad sample is an error of the strategy
    if not isinstance(space, SearchSpace):
        return model, evaluator, dict(model.sample)
    trial_evaluator = space.freeze_evaluator(sample)
    return model, trial_evaluator, {**model.sample, **space.evaluator_part(sample)}


def model_sample(space: ExecutableSpace, sample: Sample) -> Sample:
    """The part of a recorded ``sample`` that the model space is frozen with (labels it does not know dropped)."""
    if isinstance(space, SearchSpace):
        return space.model_part(sample)
    labels = space.simplify()
    return {label: value for label, value in sample.items() if label in labels}


def stored_value(mutable: LabelledMutable, value: Any) -> Any:
    """``value`` as a candidate of ``mutable``, also when the store kept a candidate it cannot write as JSON.

    The store writes a value that is not JSON (an optimizer class, a loss class) as its ``repr``: a
    string equal to a candidate's ``repr`` stands for that candidate.
    """
    if mutable.check_value(value) is None:
        return mutable.canonical_value(value)
    if isinstance(value, str) and isinstance(mutable, Categorical):
        for candidate in mutable.values:
            if not isinstance(candidate, str) and repr(candidate) == value:
                return candidate
    return value


def check_evaluator(evaluator: Evaluator) -> None:
    """:meth:`~nascore.evaluator.Evaluator.check` ``evaluator``; with decisions, the evaluators trials would get.

    Each decision's values (up to a few dozen of each) are checked with the other decisions at their
    defaults, so that a candidate no trial could train with (a learning rate of 0, a misspelled
    Trainer argument in a choice of dicts) is found before the first trial.

    :raises ~nascore.errors.EvaluatorError: naming the label and value that would fail.
    """
    evaluator.check()
    mutables = evaluator.mutables()
    if not mutables:
        return
    defaults = {label: mutable.default_value() for label, mutable in mutables.items()}
    samples: list[Sample] = [defaults]
    for label, mutable in mutables.items():
        try:
            values = list(itertools.islice(iter(mutable.grid_values()), _CHECKED_VALUES))
        except Exception:  # noqa: BLE001 - a decision without a grid (unbounded): its default is checked
            values = []
        samples.extend({**defaults, label: value} for value in values if not _same(value, defaults[label]))
    for sample in samples:
        frozen = evaluator.freeze(sample)  # raises an EvaluatorError naming the values it cannot take
        try:
            frozen.check()
        except EvaluatorError as exc:
            where = ", ".join(f"{label}={value!r}" for label, value in sample.items())
            raise EvaluatorError(f"{type(evaluator).__name__} with {where}: {exc}") from exc


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001 - values that cannot be compared (tensors): checked again
        return False
