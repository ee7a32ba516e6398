"""Several models trained in one trial: :class:`ModelGroup`, the multi-model part of the evaluator contract.

An engine that trains models together (``cgo``) submits one trial whose model is a
:class:`ModelGroup`: the member models, the trials they belong to and each trial's seed. The
evaluator trains them in one pass over the data (:meth:`nascore.evaluator.Evaluator.evaluate_group`)
and reports each member's metrics with ``report_*_result(metric, member=i)``; every report becomes
an event of the member's own trial, so strategies and the store see ordinary trials.

A group crosses to a worker as data, each member as its own format payload
(:func:`nascore.serialization.ship_model`), with no format entry of its own.

Seeds: iterating :attr:`ModelGroup.members` seeds each member right before it is handed out, with
its own trial's seed, so a member built as it is iterated starts from the state its own trial
would build it from, whichever engine runs it. When iteration ends, the random state is put back as
it was right after the first member was built: training then runs from the state the first
member's own trial trains from.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, overload

import attrs
import torch
import torch.nn as nn

from nascore.format import ExecutableModel

__all__ = ["GROUP_LABEL", "MemberModels", "ModelGroup", "combined_member"]

#: The label of a group's own sample: the trial ids of its members.
GROUP_LABEL = "group"


class ModelGroup(ExecutableModel):
    """Member models trained together in one trial.

    :param members: the member models, in order (each from a format, shipped as its own payload).
    :param trial_ids: the trial of each member.
    :param seeds: each member trial's seed (``None``: not seeded).
    :param settings: what the engine asks of the evaluator for this group, e.g. ``{"placement": "spread"}``
        (JSON data; see :meth:`nascore.evaluator.Evaluator.check_group`).
    :param combined: optionally, one model computing every member from the same inputs: its
        ``build()`` gives a module whose submodule ``model_<i>`` (:func:`combined_member`) is member
        ``i``'s module (same parameter names) and whose ``forward`` returns the tuple of the members'
        outputs. The graph format merges the members' graphs into such a model (one generated module,
        the input read once); evaluators may train it instead of the separate members.
    """

    def __init__(
        self,
        members: Sequence[ExecutableModel],
        trial_ids: Sequence[int],
        seeds: Sequence[int | None] | None = None,
        settings: Mapping[str, Any] | None = None,
        combined: ExecutableModel | None = None,
    ) -> None:
        super().__init__({GROUP_LABEL: list(trial_ids)})
        self.combined = combined
        self._models = list(members)
        self.trial_ids = [int(t) for t in trial_ids]
        self.seeds: list[int | None] = [None] * len(self.trial_ids) if seeds is None else list(seeds)
        self.settings: dict[str, Any] = dict(settings or {})
        if not (len(self._models) == len(self.trial_ids) == len(self.seeds)) or not self._models:
            raise ValueError(
                f"a model group needs one trial id and one seed per member, got {len(self._models)} members, "
                f"trial ids {self.trial_ids} and seeds {self.seeds}"
            )

    @property
    def members(self) -> MemberModels:
        """The member models; iterating them seeds each one with its trial's seed (see :class:`MemberModels`)."""
        return MemberModels(self._models, self.seeds)

    def build(self) -> nn.Module:
        """An ``nn.ModuleList`` of the members, each built from its own trial's seed."""
        return nn.ModuleList([member.build() for member in self.members])

    def __len__(self) -> int:
        return len(self._models)

    def __repr__(self) -> str:
        return f"ModelGroup(trials={self.trial_ids})"


def combined_member(index: int) -> str:
    """The submodule path of member ``index`` in a group's combined module: ``model_<index>``."""
    return f"model_{index}"


class MemberModels(Sequence[ExecutableModel]):
    """The members of a group; iterating them seeds each member right before it is handed out.

    Iteration calls :func:`nascore.trial.seed_everything` with member ``i``'s trial seed just before
    yielding member ``i``, so code that builds each member as it iterates builds it from the state
    its own trial would. When iteration ends, the random state is put back as it was right after the
    first member was built. Indexing (``members[i]``) seeds nothing; without seeds iteration touches
    no random state.
    """

    def __init__(self, models: list[ExecutableModel], seeds: list[int | None]) -> None:
        self._models = list(models)
        self._seeds = list(seeds)

    def __len__(self) -> int:
        return len(self._models)

    @overload
    def __getitem__(self, index: int) -> ExecutableModel: ...
    @overload
    def __getitem__(self, index: slice) -> list[ExecutableModel]: ...

    def __getitem__(self, index: int | slice) -> ExecutableModel | list[ExecutableModel]:
        return self._models[index]

    def __iter__(self) -> Iterator[ExecutableModel]:
        from nascore.trial import seed_everything

        after_first: _RandomState | None = None
        for index, (model, seed) in enumerate(zip(self._models, self._seeds)):
            if index == 1 and self._seeds[0] is not None:
                after_first = _RandomState.capture()  # the first member is built now
            if seed is not None:
                seed_everything(seed)
            yield model
        if after_first is not None:
            after_first.restore(self._seeds[0])


@attrs.define
class _RandomState:
    """Python's, NumPy's and torch's random state at one moment (CUDA's only once CUDA is initialised)."""

    python: Any
    numpy: Any
    torch_cpu: torch.Tensor
    cuda: list[torch.Tensor] | None

    @classmethod
    def capture(cls) -> _RandomState:
        import numpy

        cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
        return cls(random.getstate(), numpy.random.get_state(), torch.get_rng_state(), cuda)

    def restore(self, first_seed: int | None) -> None:
        import numpy

        random.setstate(self.python)
        numpy.random.set_state(self.numpy)
        torch.set_rng_state(self.torch_cpu)
        if self.cuda is not None:
            torch.cuda.set_rng_state_all(self.cuda)
        elif first_seed is not None and torch.cuda.is_available():
            # CUDA was never used: its generators only hold the seed queued for their first use, and a
            # separate trial of the first member would have queued that member's seed.
            torch.cuda.manual_seed_all(first_seed)
