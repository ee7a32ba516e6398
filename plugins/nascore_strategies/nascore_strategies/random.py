"""Random search: every decision drawn uniformly and independently."""

from __future__ import annotations

from nascore.space import Sample
from nascore.strategy import ModelFilter, MultiTrialStrategy

__all__ = ["Random"]


class Random(MultiTrialStrategy):
    """Random search on the search space (registered as ``random``).

    :param seed: seed of the random generator (defaults to the experiment's ``seed``).
    :param dedup: never try the same sample twice (the search ends when the space is exhausted).
    :param model_filter: ``f(model) -> bool``; models it rejects are never submitted.
    """

    name = "random"

    def __init__(self, *, seed: int | None = None, dedup: bool = True, model_filter: ModelFilter | None = None) -> None:
        super().__init__(seed=seed, dedup=dedup, model_filter=model_filter)

    def propose(self) -> Sample | None:
        assert self.space is not None
        rng = self.rng
        return {label: mutable.random_value(rng) for label, mutable in self.space.simplify().items()}
