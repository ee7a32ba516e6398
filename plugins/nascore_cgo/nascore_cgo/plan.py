"""The logical plan of the CGO middleware: models waiting to run, and how they are grouped into trials.

Optimizers (:class:`nascore.optimizer.LogicalOptimizer`, registered through
``nascore_register_optimizers``) receive a :class:`LogicalPlan` and return one whose
:attr:`LogicalPlan.groups` say which models share a trial. A group of one runs as an ordinary
trial; a larger group becomes one :class:`MergedModel` trained by a multi-model evaluator.
"""

from __future__ import annotations

from typing import Any

import attrs
import torch.nn as nn

from nascore.engine import TrialSubmission
from nascore.errors import ConfigError, ShippingError
from nascore.format import ExecutableModel, ExecutableSpace, ModelFormat

__all__ = ["LogicalPlan", "MergedFormat", "MergedModel"]


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
    members' shipments, the trial ids and the placement.

    :meth:`build` gives an ``nn.ModuleList`` of the members; multi-model evaluators build members one
    by one with :meth:`members` (to seed each the same way a separate trial would).

    :ivar placement: the engine's ``engine_options.placement`` for this trial (``"pack"``,
        ``"spread"``, or ``None``: the evaluator decides, ``"pack"`` by default).
    """

    format_name = "cgo-merged"

    def __init__(self, shipments: list[dict[str, Any]], trial_ids: list[int], placement: str | None = None) -> None:
        super().__init__({"cgo_trials": list(trial_ids)})
        self.shipments = list(shipments)
        self.trial_ids = list(trial_ids)
        self.placement = placement

    def members(self) -> list[ExecutableModel]:
        """The member models, in the order of :attr:`trial_ids`."""
        from nascore.serialization import load_shipped_model

        return [load_shipped_model(shipment) for shipment in self.shipments]

    def build(self) -> nn.Module:
        return nn.ModuleList([member.build() for member in self.members()])

    def to_payload(self) -> dict[str, Any]:
        """The members' shipments (format payloads) and the trial ids: loaded back by format ``cgo-merged``."""
        return {"format": self.format_name, "members": list(self.shipments), "trial_ids": list(self.trial_ids),
                "placement": self.placement}

    def __repr__(self) -> str:
        where = "" if self.placement is None else f", placement={self.placement!r}"
        return f"MergedModel(trials={self.trial_ids}{where})"


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
        return MergedModel(members, [int(t) for t in trial_ids], placement=payload.get("placement"))
