"""Choosing modules and inputs: :class:`LayerChoice`, :class:`InputChoice` and its frozen form :class:`ChosenInputs`."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch
import torch.nn as nn

from nascore.errors import SearchSpaceError
from nascore.nn.base import MutableModule, freeze_tree, module_conditional_leaves
from nascore.space import Categorical, CategoricalMultiple, Sample, auto_label, current_frozen_sample
from nascore.space.conditions import Condition, conditional_leaves, under
from nascore.space.label import check_label

__all__ = ["LayerChoice", "InputChoice", "ChosenInputs", "CandidateNotFoundError"]


class CandidateNotFoundError(SearchSpaceError, KeyError):
    """A :class:`LayerChoice` has no candidate of that name (a ``KeyError`` too, as in NNI)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def _candidate_names(candidates: Any, label: str) -> tuple[list[Any], list[nn.Module]]:
    if isinstance(candidates, dict):
        names, modules = list(candidates.keys()), list(candidates.values())
        bad = [n for n in names if not isinstance(n, str)]
        if bad:
            raise SearchSpaceError(f"LayerChoice {label!r}: candidate names must be strings, got {bad!r}")
    elif isinstance(candidates, (list, tuple, nn.ModuleList)):
        modules = list(candidates)
        names = list(range(len(modules)))
    else:
        raise SearchSpaceError(
            f"LayerChoice {label!r}: candidates must be a list or a dict of modules, got {type(candidates).__name__}"
        )
    if not modules:
        raise SearchSpaceError(f"LayerChoice {label!r} has no candidates: give at least one module")
    for name, module in zip(names, modules):
        if not isinstance(module, nn.Module):
            raise SearchSpaceError(
                f"LayerChoice {label!r}: candidate {name!r} is a {type(module).__name__}, not an nn.Module"
            )
    return names, modules


class LayerChoice(MutableModule):
    """Choose one module from a list or a dict of candidates.

    The decision's values are the candidate indices (for a list) or names (for a dict). As a space,
    calling the module runs the default (first) candidate; built frozen, it *is* the chosen candidate.

    Public structure: ``names`` (the decision's values, in order), ``choice`` (the
    :class:`~nascore.space.Categorical` decision), ``label``, ``candidates`` (the modules, in the
    order of ``names``) and ``layer_choice[name]`` (one candidate, registered as the submodule
    ``str(name)``).

    A candidate can be replaced, as in NNI: ``layer_choice[name] = module`` (``name`` is the index
    for a list of candidates, the key for a dict). The decision keeps its label and values; the
    decisions inside the new module join the space and those of the old one leave it. Adding a
    candidate under a new name or deleting one is refused (the decision's values would change).
    Replace candidates on a space that is built, not in a space's ``__init__``: built frozen
    (``fixed_arch``, the ``simplified`` format) a LayerChoice already *is* its chosen candidate, as
    in NNI. The ``simplified`` format rebuilds a space from its class and init arguments, so it does
    not see a replacement made after construction: use the ``raw`` or ``graph`` format for such a space.

    >>> conv = LayerChoice([nn.Conv2d(3, 16, 3), nn.Conv2d(3, 16, 5, padding=1)], label="conv")
    >>> conv[1] = nn.Conv2d(3, 16, 7, padding=2)
    """

    def __new__(cls, candidates: Any = None, *, label: str | None = None, **kwargs: Any) -> Any:
        sample = current_frozen_sample()
        if sample is None or candidates is None:
            return super().__new__(cls)
        label = check_label(label) if label is not None else auto_label("layerchoice")
        names, modules = _candidate_names(candidates, label)
        chosen = Categorical(names, label=label).freeze(sample)
        return modules[names.index(chosen)]

    def __init__(self, candidates: Any, *, label: str | None = None) -> None:
        super().__init__()
        label = check_label(label) if label is not None else auto_label("layerchoice")
        names, modules = _candidate_names(candidates, label)
        self.names = names
        self.choice = self.add_mutable(Categorical(names, label=label))
        for name, module in zip(names, modules):
            self.add_module(str(name), module)

    @property
    def label(self) -> str:
        """The label of the decision."""
        return self.choice.label

    @property
    def candidates(self) -> list[nn.Module]:
        """The candidate modules, in the order of ``names``."""
        return [self[name] for name in self.names]

    def _key(self, name: Any) -> str:
        key = str(name)
        if key not in self._modules or all(str(n) != key for n in self.names):
            raise CandidateNotFoundError(
                f"LayerChoice {self.label!r} has no candidate {name!r}; its candidates are {self.names!r}"
            )
        return key

    def __getitem__(self, name: Any) -> nn.Module:
        """The candidate called ``name`` (an index for a list of candidates, a key for a dict)."""
        return self._modules[self._key(name)]  # type: ignore[return-value]

    def __setitem__(self, name: Any, module: nn.Module) -> None:
        """Replace the candidate called ``name`` with ``module`` (NNI's ``layer_choice[name] = module``)."""
        try:
            key = self._key(name)
        except CandidateNotFoundError as exc:
            raise CandidateNotFoundError(
                f"{exc.args[0]}. A candidate can be replaced, not added: build the LayerChoice with every "
                "candidate it needs"
            ) from None
        if not isinstance(module, nn.Module):
            raise SearchSpaceError(
                f"LayerChoice {self.label!r}: candidate {name!r} must be an nn.Module, got {type(module).__name__}"
            )
        old = self._modules[key]
        self._modules[key] = module
        try:
            self.simplify()  # the new candidate's decisions must agree with the other candidates'
        except SearchSpaceError:
            self._modules[key] = old
            raise

    def __delitem__(self, name: Any) -> None:
        raise SearchSpaceError(
            f"LayerChoice {self.label!r}: deleting a candidate is not supported (as in NNI); build the "
            "LayerChoice with the candidates you want, or replace one with layer_choice[name] = module"
        )

    def __len__(self) -> int:
        return len(self.names)

    def __iter__(self) -> Iterator[Any]:
        return iter(self.names)

    def conditional_leaves(self) -> Iterator[tuple[Any, tuple[Any, ...]]]:
        """The choice itself, then the decisions of each candidate, active only when it is chosen."""
        yield from conditional_leaves(self.mutables)
        for name in self.names:
            yield from under(Condition.equals(self.choice, name), module_conditional_leaves(self[name]))

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self[self.choice.default_value()](*args, **kwargs)

    def frozen(self, sample: Sample) -> nn.Module:
        return freeze_tree(self[self.choice.freeze(sample)], sample)

    def extra_repr(self) -> str:
        return f"label={self.label!r}"


_REDUCTIONS = ("sum", "mean", "concat", "none")


def _input_choice_mutable(n_candidates: int, n_chosen: int | None, label: str) -> Categorical | CategoricalMultiple:
    if not isinstance(n_candidates, int) or n_candidates < 1:
        raise SearchSpaceError(f"InputChoice {label!r}: n_candidates must be a positive int, got {n_candidates!r}")
    if n_chosen == 1:
        return Categorical(list(range(n_candidates)), label=label)
    return CategoricalMultiple(list(range(n_candidates)), n_chosen=n_chosen, label=label)


def _check_reduction(reduction: str, label: str) -> None:
    if reduction not in _REDUCTIONS:
        raise SearchSpaceError(f"InputChoice {label!r}: reduction must be one of {_REDUCTIONS}, got {reduction!r}")


class InputChoice(MutableModule):
    """Choose ``n_chosen`` of ``n_candidates`` input tensors and reduce them.

    The value of the decision is an index when ``n_chosen == 1``, else a sorted list of indices
    (``n_chosen=None``: any number). ``reduction`` is ``"sum"``, ``"mean"``, ``"concat"`` (along
    dim 1) or ``"none"`` (a list). Call it with the list of candidate tensors.

    Public structure: ``n_candidates``, ``n_chosen``, ``reduction``, ``choice`` (the decision: a
    :class:`~nascore.space.Categorical` when ``n_chosen == 1``, else a
    :class:`~nascore.space.CategoricalMultiple`) and ``label``.
    """

    def __new__(
        cls,
        n_candidates: int | None = None,
        n_chosen: int | None = 1,
        reduction: str = "sum",
        *,
        label: str | None = None,
        **kwargs: Any,
    ) -> Any:
        sample = current_frozen_sample()
        if sample is None or n_candidates is None:
            return super().__new__(cls)
        label = check_label(label) if label is not None else auto_label("inputchoice")
        _check_reduction(reduction, label)
        chosen = _input_choice_mutable(n_candidates, n_chosen, label).freeze(sample)
        return ChosenInputs(chosen, reduction)

    def __init__(
        self, n_candidates: int, n_chosen: int | None = 1, reduction: str = "sum", *, label: str | None = None
    ) -> None:
        super().__init__()
        label = check_label(label) if label is not None else auto_label("inputchoice")
        _check_reduction(reduction, label)
        self.n_candidates = n_candidates
        self.n_chosen = n_chosen
        self.reduction = reduction
        self.choice = self.add_mutable(_input_choice_mutable(n_candidates, n_chosen, label))

    @property
    def label(self) -> str:
        """The label of the decision."""
        return self.choice.label

    def forward(self, candidate_inputs: Sequence[torch.Tensor]) -> Any:
        return ChosenInputs.select(candidate_inputs, self.choice.default_value(), self.reduction, self.label)

    def frozen(self, sample: Sample) -> nn.Module:
        return ChosenInputs(self.choice.freeze(sample), self.reduction)

    def extra_repr(self) -> str:
        return (
            f"n_candidates={self.n_candidates}, n_chosen={self.n_chosen}, "
            f"reduction={self.reduction!r}, label={self.label!r}"
        )


class ChosenInputs(nn.Module):
    """The frozen form of :class:`InputChoice`: selects fixed inputs and reduces them."""

    def __init__(self, chosen: int | list[int], reduction: str) -> None:
        super().__init__()
        self.chosen = chosen
        self.reduction = reduction

    def forward(self, candidate_inputs: Sequence[torch.Tensor]) -> Any:
        return self.select(candidate_inputs, self.chosen, self.reduction)

    @staticmethod
    def select(inputs: Sequence[torch.Tensor], chosen: int | list[int], reduction: str, label: str = "") -> Any:
        if isinstance(chosen, int):
            return inputs[chosen]
        tensors = [inputs[i] for i in chosen]
        if reduction == "none":
            return tensors
        if not tensors:
            raise SearchSpaceError(f"InputChoice {label!r} chose no input, so there is nothing to {reduction}")
        if reduction == "sum":
            return sum(tensors[1:], tensors[0])
        if reduction == "mean":
            return sum(tensors[1:], tensors[0]) / len(tensors)
        return torch.cat(tensors, dim=1)

    def extra_repr(self) -> str:
        return f"chosen={self.chosen!r}, reduction={self.reduction!r}"
