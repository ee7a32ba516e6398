"""Grid search: every combination of the decisions, one by one."""

from __future__ import annotations

import random as _random
from typing import Any

from nascore.errors import StrategyError
from nascore.format import ExecutableSpace
from nascore.space import Numerical, Sample
from nascore.strategy import ModelFilter, MultiTrialStrategy

__all__ = ["GridSearch"]


class GridSearch(MultiTrialStrategy):
    """Traverse the search space and try all combinations (registered as ``grid``).

    :param shuffle: shuffle the order of each decision's candidates, so that they are tried in a
        random (seeded) order. Default: true.
    :param seed: seed for the shuffle (defaults to the experiment's ``seed``).
    :param granularity: number of grid points of a bounded numerical decision (default 5).
    :param model_filter: ``f(model) -> bool``; models it rejects are skipped.
    :param on_failure: ``"ignore"`` or ``"worst"`` (grid search learns nothing either way).
    :param retries: run a failed trial again up to this many times.
    :param repeats: evaluate every sample this many times and record the mean.

    Every sample is tried once (grid search always deduplicates). In a conditional space (or one
    with constraints) the grid is the space's own: each distinct architecture once, as a canonical
    sample (no decision of a branch it does not take), in a shuffled order when ``shuffle``. An unbounded numerical decision
    has no grid: such a space is refused before the first trial.
    """

    name = "grid"

    def __init__(
        self,
        *,
        shuffle: bool = True,
        seed: int | None = None,
        granularity: int | None = None,
        model_filter: ModelFilter | None = None,
        on_failure: str = "ignore",
        retries: int = 0,
        repeats: int = 1,
    ) -> None:
        super().__init__(
            seed=seed, dedup=True, model_filter=model_filter, on_failure=on_failure, retries=retries, repeats=repeats
        )
        self.shuffle = shuffle
        self.granularity = granularity
        self._labels: list[str] = []
        self._values: list[list[Any]] = []
        self._orders: list[list[int]] = []
        self._index = 0
        self._total = 0
        self._samples: list[Sample] | None = None
        self._order_seed = 0

    def check_space(self, space: ExecutableSpace) -> None:
        for label, mutable in space.simplify().items():
            if isinstance(mutable, Numerical) and not mutable.bounded:
                raise StrategyError(
                    f"grid search cannot search the unbounded numerical decision {label!r} "
                    f"({mutable.describe()}): give it low and high bounds, or use the 'random', "
                    "'evolution' or 'tpe' strategy"
                )

    def setup(self, space: ExecutableSpace, *, optimize_mode: str = "maximize", seed: int | None = None) -> None:
        super().setup(space, optimize_mode=optimize_mode, seed=seed)
        decisions = space.decisions()
        self._samples = None
        if decisions.conditional or decisions.constraints:
            # Each distinct architecture once: the space's own grid of canonical samples.
            self._samples = list(space.grid_samples(granularity=self.granularity))
            self._order_seed = self.rng.getrandbits(32)
            self._shuffle_samples()
            self._index = 0
            self._total = len(self._samples)
            return
        mutables = space.simplify()
        self._labels = list(mutables)
        self._values = [list(m.grid_values(self.granularity)) for m in mutables.values()]
        self._orders = [list(range(len(values))) for values in self._values]
        if self.shuffle:
            for order in self._orders:
                self.rng.shuffle(order)
        self._index = 0
        self._total = 1
        for values in self._values:
            self._total *= len(values)

    def _shuffle_samples(self) -> None:
        if self.shuffle and self._samples is not None:
            _random.Random(self._order_seed).shuffle(self._samples)

    def propose(self) -> Sample | None:
        if self._index >= self._total:
            return None
        index = self._index
        self._index += 1
        if self._samples is not None:
            return dict(self._samples[index])
        sample: Sample = {}
        # Mixed-radix decomposition: the last decision varies fastest.
        for label, values, order in zip(reversed(self._labels), reversed(self._values), reversed(self._orders)):
            index, digit = divmod(index, len(values))
            sample[label] = values[order[digit]]
        return {label: sample[label] for label in self._labels}

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "index": self._index, "orders": self._orders, "order_seed": self._order_seed}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self._index = state.get("index", self._index)
        self._orders = state.get("orders", self._orders)
        if self._samples is not None and state.get("order_seed", self._order_seed) != self._order_seed:
            self._order_seed = state["order_seed"]
            self._samples = list(self.space.grid_samples(granularity=self.granularity)) if self.space is not None else []
            self._shuffle_samples()
