"""Cross-graph optimizers of the CGO middleware.

:class:`DedupInputOptimizer` (``dedup-input``) groups models whose evaluators read the same
dataset through the same data pipeline and training recipe, so that one trial loads and
preprocesses each batch once and feeds it to all of them: it marks those groups ``shared_inputs``,
and the engine merges their graphs with their input nodes merged into one.
"""

from __future__ import annotations

import logging
from typing import Any

from nascore.optimizer import LogicalOptimizer
from nascore_cgo.plan import LogicalPlan

__all__ = ["DedupInputOptimizer"]

_log = logging.getLogger(__name__)


class DedupInputOptimizer(LogicalOptimizer):
    """Merge models that share their input pipeline (same dataloaders, same recipe) into groups."""

    name = "dedup-input"

    def convert(self, plan: LogicalPlan) -> LogicalPlan:
        buckets: dict[Any, list[int]] = {}
        alone: list[list[int]] = []
        for group in plan.groups:
            for index in group:
                key = plan.submissions[index].evaluator.merge_key()  # Evaluator contract; None: never merged
                if key is None:
                    alone.append([index])
                else:
                    buckets.setdefault(key, []).append(index)
        groups = [(group, False) for group in alone]
        for indices in buckets.values():
            for start in range(0, len(indices), plan.max_group_size):
                groups.append((indices[start:start + plan.max_group_size], True))  # one data pipeline: one input
        groups.sort(key=lambda entry: min(entry[0]))
        _log.debug("dedup-input: %d models into groups %s", len(plan.submissions), [g for g, _ in groups])
        return LogicalPlan(plan.submissions, plan.max_group_size, [g for g, _ in groups], [shared for _, shared in groups])
