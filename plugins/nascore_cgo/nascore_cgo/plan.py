"""The logical plan of the CGO middleware: models waiting to run, and how they are grouped into trials.

Optimizers (:class:`nascore.optimizer.LogicalOptimizer`, registered through
``nascore_register_optimizers``) receive a :class:`LogicalPlan` and return one whose
:attr:`LogicalPlan.groups` say which models share a trial. A group of one runs as an ordinary
trial; a larger group becomes one trial of a :class:`nascore.group.ModelGroup`, which the
evaluator trains in one pass (``Evaluator.evaluate_group``).
"""

from __future__ import annotations

import attrs

from nascore.engine import TrialSubmission

__all__ = ["LogicalPlan"]


@attrs.define
class LogicalPlan:
    """Models collected by the middleware within one batching window.

    :ivar submissions: the trials, in submission order.
    :ivar groups: indices into ``submissions``; each inner list runs as one trial. Starts as one
        group per model (nothing merged).
    :ivar max_group_size: the most models an optimizer may put in one group (``max_concurrency_cgo``).
    :ivar shared_inputs: for each group, whether its models read the same inputs (an optimizer such as
        ``dedup-input`` says so): their graphs are then merged into one with the input nodes merged,
        so the trial reads each batch once; other groups' models train side by side.
    """

    submissions: list[TrialSubmission]
    max_group_size: int
    groups: list[list[int]] = attrs.field(default=None)
    shared_inputs: list[bool] = attrs.field(default=None)

    def __attrs_post_init__(self) -> None:
        if self.groups is None:
            self.groups = [[i] for i in range(len(self.submissions))]
        if self.shared_inputs is None:
            self.shared_inputs = [False] * len(self.groups)

    def check(self) -> None:
        """Raise ``ValueError`` unless every model is in exactly one group within the size limit."""
        seen = sorted(i for group in self.groups for i in group)
        if seen != list(range(len(self.submissions))):
            raise ValueError(f"the plan's groups {self.groups} do not cover models 0..{len(self.submissions) - 1} exactly once")
        if any(not group or len(group) > self.max_group_size for group in self.groups):
            raise ValueError(f"a group of the plan {self.groups} is empty or larger than max_concurrency_cgo={self.max_group_size}")
        if len(self.shared_inputs) != len(self.groups):
            raise ValueError(f"the plan has {len(self.groups)} groups but {len(self.shared_inputs)} shared_inputs flags")
