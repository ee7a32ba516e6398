"""Random search: every decision drawn independently from its prior.

Only the decisions that matter for the sample are drawn (in a conditional space, not those of the
``LayerChoice`` candidates not chosen or the ``Repeat`` blocks beyond the depth), and samples that
violate a constraint of the space are drawn again.

The prior is uniform unless the decision has one: ``Categorical(..., weights=...)``,
``CategoricalMultiple(..., weights=...)``, or the distribution of a ``Numerical`` (normal,
log-normal, scipy, ...). Each decision's ``random_value`` draws from it.
"""

from __future__ import annotations

import logging

from nascore.space import Sample
from nascore.strategy import ModelFilter, MultiTrialStrategy

__all__ = ["Random"]

_log = logging.getLogger(__name__)


class Random(MultiTrialStrategy):
    """Random search on the search space (registered as ``random``).

    :param variational: do not take the space's decisions once at the start ("dry run"): ask the
        space for its decisions at every proposal, for spaces whose decisions vary. Deduplication is
        not supported then (``dedup`` is ignored) and the search runs until the budget is spent.
    :param dedup: never try the same sample twice (the search ends when the space is exhausted).
    :param model_filter: ``f(model) -> bool``; models it rejects are never submitted.
    :param seed: seed of the random generator (defaults to the experiment's ``seed``).
    :param on_failure: ``"ignore"`` or ``"worst"`` (random search learns nothing either way).
    :param retries: run a failed trial again up to this many times.
    :param repeats: evaluate every sample this many times and record the mean.
    """

    name = "random"

    def __init__(
        self,
        *,
        variational: bool = False,
        dedup: bool = True,
        model_filter: ModelFilter | None = None,
        seed: int | None = None,
        on_failure: str = "ignore",
        retries: int = 0,
        repeats: int = 1,
    ) -> None:
        if variational and dedup:
            _log.debug("Random(variational=True): deduplication is not supported and is turned off")
        super().__init__(
            seed=seed, dedup=dedup and not variational, model_filter=model_filter,
            on_failure=on_failure, retries=retries, repeats=repeats,
        )
        self.variational = variational

    def propose(self) -> Sample | None:
        assert self.space is not None
        # A decision of a branch the sample does not take is not drawn (conditional spaces), and the
        # sample satisfies the space's constraints.
        decisions = self.space.decisions()
        if self.variational:  # the space's decisions now (they may have changed), with their conditions
            decisions = decisions.restricted(self.space.simplify())
        return decisions.random(self.rng)
