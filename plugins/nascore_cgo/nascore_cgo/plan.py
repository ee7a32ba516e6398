"""The logical plan of the CGO middleware: models waiting to run, and how they are grouped into trials.

Optimizers (:class:`nascore.optimizer.LogicalOptimizer`, registered through
``nascore_register_optimizers``) receive a :class:`LogicalPlan` and return one whose
:attr:`LogicalPlan.groups` say which models share a trial. A group of one runs as an ordinary
trial; a larger group becomes one :class:`MergedModel` trained by a multi-model evaluator.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from typing import Any, overload

import attrs
import torch
import torch.nn as nn

from nascore.engine import TrialSubmission
from nascore.errors import ConfigError, ShippingError
from nascore.format import ExecutableModel, ExecutableSpace, ModelFormat

__all__ = ["LogicalPlan", "MemberModels", "MergedFormat", "MergedModel"]


@attrs.define
class LogicalPlan:
    """Models collected by the middleware within one batching window.

    :ivar submissions: the trials, in submission order.
    :ivar groups: indices into ``submissions``; each inner list runs as one trial. Starts as one
        group per model (nothing merged).
    :ivar max_group_size: the most models an optimizer may put in one group (``max_concurrency_cgo``).
    """

    submissions: list[TrialSubmission]
    max_group_size: int
    groups: list[list[int]] = attrs.field(default=None)

    def __attrs_post_init__(self) -> None:
        if self.groups is None:
            self.groups = [[i] for i in range(len(self.submissions))]

    def check(self) -> None:
        """Raise ``ValueError`` unless every model is in exactly one group within the size limit."""
        seen = sorted(i for group in self.groups for i in group)
        if seen != list(range(len(self.submissions))):
            raise ValueError(f"the plan's groups {self.groups} do not cover models 0..{len(self.submissions) - 1} exactly once")
        if any(not group or len(group) > self.max_group_size for group in self.groups):
            raise ValueError(f"a group of the plan {self.groups} is empty or larger than max_concurrency_cgo={self.max_group_size}")


class MergedModel(ExecutableModel):
    """Several models trained in one trial: each member travels as its own format payload.

    It crosses to the trial's worker as data, in format ``cgo-merged`` (:class:`MergedFormat`): the
    members' shipments, the trial ids, their seeds and the placement.

    :meth:`build` gives an ``nn.ModuleList`` of the members; multi-model evaluators build members one
    by one as they iterate :meth:`members`. Either way every member is built from its own trial's
    seed, so a sample's model starts identical whichever engine runs it, merged or alone (see
    :class:`MemberModels`).

    :ivar seeds: each member trial's :attr:`~nascore.engine.TrialSubmission.seed` (``None``: not seeded).
    :ivar placement: the engine's ``engine_options.placement`` for this trial (``"pack"``,
        ``"spread"``, or ``None``: the evaluator decides, ``"pack"`` by default).
    """

    format_name = "cgo-merged"

    def __init__(
        self,
        shipments: list[dict[str, Any]],
        trial_ids: list[int],
        placement: str | None = None,
        seeds: list[int | None] | None = None,
    ) -> None:
        super().__init__({"cgo_trials": list(trial_ids)})
        self.shipments = list(shipments)
        self.trial_ids = list(trial_ids)
        self.placement = placement
        self.seeds: list[int | None] = [None] * len(self.trial_ids) if seeds is None else list(seeds)
        if len(self.seeds) != len(self.trial_ids):
            raise ValueError(f"a merged model of trials {self.trial_ids} needs one seed per trial, got {self.seeds}")

    def members(self) -> MemberModels:
        """The member models, in the order of :attr:`trial_ids`; iterating them seeds each one (see :class:`MemberModels`)."""
        from nascore.serialization import load_shipped_model

        return MemberModels([load_shipped_model(shipment) for shipment in self.shipments], self.seeds)

    def build(self) -> nn.Module:
        return nn.ModuleList([member.build() for member in self.members()])

    def to_payload(self) -> dict[str, Any]:
        """The members' shipments (format payloads), trial ids and seeds: loaded back by format ``cgo-merged``."""
        return {"format": self.format_name, "members": list(self.shipments), "trial_ids": list(self.trial_ids),
                "seeds": list(self.seeds), "placement": self.placement}

    def __repr__(self) -> str:
        where = "" if self.placement is None else f", placement={self.placement!r}"
        return f"MergedModel(trials={self.trial_ids}{where})"


class MemberModels(Sequence[ExecutableModel]):
    """The member models of a merged trial; iterating them seeds each member right before it is handed out.

    Iteration calls :func:`nascore.trial.seed_everything` with member ``i``'s trial seed just before
    yielding member ``i``, so code that builds each member as it iterates (``for m in members:
    modules.append(m.build())``) builds it from the same random state as its own trial would, also
    when the evaluator seeds torch with a seed of its own right before building, as a separate trial
    does. When iteration ends, the random state is put back as it was right after the first member
    was built: the merged training runs from the random state the first member's own trial trains
    from. Indexing (``members[i]``) seeds nothing. Without seeds (an experiment without ``seed``)
    iteration touches no random state.
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
        elif first_seed is not None:
            # CUDA was never used: its generators only hold the seed queued for their first use, and a
            # separate trial of the first member would have queued that member's seed.
            torch.cuda.manual_seed_all(first_seed)


class MergedFormat(ModelFormat):
    """Format ``cgo-merged``: how a merged trial's :class:`MergedModel` reaches its worker, as data.

    It only loads shipped merged models; it is not a format for model spaces (``config.format``):
    spaces searched with engine ``cgo`` use format ``graph``.
    """

    name = "cgo-merged"

    def build(self, space: nn.Module) -> ExecutableSpace:
        raise ConfigError(
            "format 'cgo-merged' carries the merged trials of engine 'cgo' to their workers; it is not a format for "
            "model spaces: set format = \"graph\" (with engine = \"cgo\")"
        )

    def load_model(self, payload: dict[str, Any]) -> MergedModel:
        members, trial_ids = payload.get("members"), payload.get("trial_ids")
        if (not isinstance(members, list) or not isinstance(trial_ids, list) or len(members) != len(trial_ids)
                or not all(isinstance(m, dict) for m in members)):
            raise ShippingError(
                f"a 'cgo-merged' payload needs 'members' (a list of model shipments) and 'trial_ids' of the same "
                f"length; got members={type(members).__name__}, trial_ids={trial_ids!r}"
            )
        seeds = payload.get("seeds")
        if seeds is None:
            seeds = [None] * len(members)
        if (not isinstance(seeds, list) or len(seeds) != len(members)
                or not all(s is None or (isinstance(s, int) and not isinstance(s, bool)) for s in seeds)):
            raise ShippingError(
                f"a 'cgo-merged' payload's 'seeds' must be one whole number (or null) per member; got {seeds!r}"
            )
        return MergedModel(members, [int(t) for t in trial_ids], placement=payload.get("placement"), seeds=seeds)
