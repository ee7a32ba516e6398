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
from nascore.errors import ShippingError
from nascore.format import ExecutableModel

__all__ = ["LogicalPlan", "MergedModel"]


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

    :meth:`build` gives an ``nn.ModuleList`` of the members; multi-model evaluators build members one
    by one with :meth:`members` (to seed each the same way a separate trial would).

    :ivar placement: the engine's ``engine_options.placement`` for this trial (``"pack"``,
        ``"spread"``, or ``None``: the evaluator decides, ``"pack"`` by default).
    """

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
        # No format plugin owns merged models; they travel pickled, holding only JSON member payloads.
        raise ShippingError("a merged CGO model has no format payload")

    def __repr__(self) -> str:
        where = "" if self.placement is None else f", placement={self.placement!r}"
        return f"MergedModel(trials={self.trial_ids}{where})"
