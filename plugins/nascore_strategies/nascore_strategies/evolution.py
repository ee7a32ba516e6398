"""Regularized (aging) evolution, as "Algorithm 1" of Real et al., 2019, run asynchronously.

Real, Aggarwal, Huang, Le. "Regularized Evolution for Image Classifier Architecture Search", AAAI 2019.
"""

from __future__ import annotations

import collections
import logging
from typing import Any

import attrs

from nascore.errors import StrategyError
from nascore.format import ExecutableSpace
from nascore.record import TrialRecord
from nascore.space import LabelledMutable, Sample
from nascore.strategy import OPTIMIZE_MODES, ModelFilter, MultiTrialStrategy

__all__ = ["RegularizedEvolution", "Individual"]

_log = logging.getLogger(__name__)

#: After this many proposals in a row are refused (all their mutations already seen, say, in a small
#: space where the fittest parents' neighbours are used up), proposals are random until one is accepted,
#: so that the search goes on to the architectures mutation cannot reach from the population.
STUCK_LIMIT = 50


@attrs.frozen
class Individual:
    """A member of the population: a sample and the value learned for it (higher is better)."""

    sample: Sample
    fitness: float


class RegularizedEvolution(MultiTrialStrategy):
    """Aging evolution (registered as ``evolution``).

    The first ``population_size`` samples are random. After that, each new sample is a *child*: a
    tournament picks ``sample_size`` members of the population at random and the fittest is the
    parent (with ``crossover``, two tournaments give two parents and each decision comes from one
    of them at random); each decision of the parent is then resampled with probability
    ``mutation_prob``, and at least one decision always changes, so a child differs from its parent.
    Every finished evaluation joins the population and the oldest member leaves it ("aging").

    Asynchronous: with several trials running at once, a child is proposed whenever a worker is
    free, from the population as it is then (the random phase ends after ``population_size``
    proposals, even if their results are still coming).

    :param optimize_mode: ``"maximize"`` or ``"minimize"``; by default the experiment's. Given
        explicitly, it must agree with the experiment's ``optimize_mode``.
    :param population_size: the number of individuals kept in the population. Default: 100.
    :param sample_size: the number of individuals in each tournament. Default: 25.
    :param cycles: the number of samples the algorithm proposes in all; then the search ends.
        Default: 20000.
    :param mutation_prob: probability that each decision mutates. Default: 0.05.
    :param crossover: breed each child from the winners of two tournaments. Default: false.
    :param on_failure: ``"ignore"`` gives up a model whose trial failed; ``"worst"`` puts it in the
        population with the worst fitness (-inf when maximizing), so that the search learns to
        avoid such models.
    :param model_filter: ``f(model) -> bool``; models it rejects are never submitted.
    :param dedup: never propose the same sample twice. Default: true.
    :param seed: seed of the random generator (defaults to the experiment's ``seed``).
    :param retries: run a failed trial again up to this many times before ``on_failure`` applies.
    :param repeats: evaluate every sample this many times; the mean is its fitness.
    """

    name = "evolution"

    def __init__(
        self,
        *,
        optimize_mode: str | None = None,
        population_size: int = 100,
        sample_size: int = 25,
        cycles: int = 20000,
        mutation_prob: float = 0.05,
        crossover: bool = False,
        on_failure: str = "ignore",
        model_filter: ModelFilter | None = None,
        dedup: bool = True,
        seed: int | None = None,
        retries: int = 0,
        repeats: int = 1,
    ) -> None:
        super().__init__(
            seed=seed, dedup=dedup, model_filter=model_filter, on_failure=on_failure, retries=retries, repeats=repeats
        )
        if optimize_mode is not None and optimize_mode not in OPTIMIZE_MODES:
            raise StrategyError(f"optimize_mode must be 'maximize' or 'minimize', got {optimize_mode!r}")
        if not isinstance(population_size, int) or population_size < 1:
            raise StrategyError(f"population_size must be a positive int, got {population_size!r}")
        if not isinstance(sample_size, int) or not 1 <= sample_size <= population_size:
            raise StrategyError(
                f"sample_size must be an int between 1 and population_size ({population_size}), got {sample_size!r}"
            )
        if not isinstance(cycles, int) or cycles < 1:
            raise StrategyError(f"cycles must be a positive int, got {cycles!r}")
        if not 0.0 <= mutation_prob <= 1.0:
            raise StrategyError(f"mutation_prob must be a probability in [0, 1], got {mutation_prob!r}")
        self.requested_optimize_mode = optimize_mode
        self.population_size = population_size
        self.sample_size = sample_size
        self.cycles = cycles
        self.mutation_prob = float(mutation_prob)
        self.crossover = crossover
        self.population: collections.deque[Individual] = collections.deque(maxlen=population_size)
        self._decisions: list[tuple[str, LabelledMutable]] = []
        self._stuck = 0  # proposals refused in a row (duplicates, constraint, model_filter)

    def setup(self, space: ExecutableSpace, *, optimize_mode: str = "maximize", seed: int | None = None) -> None:
        if self.requested_optimize_mode is not None and self.requested_optimize_mode != optimize_mode:
            raise StrategyError(
                f"RegularizedEvolution(optimize_mode={self.requested_optimize_mode!r}) disagrees with the "
                f"experiment, which is set to {optimize_mode!r}: leave out the strategy's optimize_mode "
                f"or set ExperimentConfig(optimize_mode={self.requested_optimize_mode!r})"
            )
        super().setup(space, optimize_mode=optimize_mode, seed=seed)
        self._decisions = list(space.simplify().items())
        self.population.clear()

    # --- proposing ------------------------------------------------------------------------------

    def propose(self) -> Sample | None:
        if self.proposals >= self.cycles:
            _log.info("RegularizedEvolution: all %d cycles proposed", self.cycles)
            return None
        if self.proposals < self.population_size or not self.population or self._stuck >= STUCK_LIMIT:
            return self._random()
        if self.crossover:
            first, second = self._tournament(), self._tournament()
            parent = {}
            for label, _ in self._decisions:
                if label in first or label in second:
                    chosen = second if self.rng.random() < 0.5 else first
                    parent[label] = chosen[label] if label in chosen else (first if chosen is second else second)[label]
        else:
            parent = self._tournament()
        # A mutation that switches a branch on gives the decisions inside random values; those of a
        # branch switched off are dropped.
        return self.space.canonical_sample(self._mutate(parent), fill=self.rng)

    def rejected(self, sample: Sample, reason: str) -> None:
        """Count the proposals in a row that were refused: past :data:`STUCK_LIMIT`, propose at random."""
        self._stuck += 1

    def next_sample(self) -> Sample | None:
        """As the base class; an accepted proposal ends a run of refused ones."""
        sample = super().next_sample()
        self._stuck = 0
        return sample

    def _random(self) -> Sample:
        return self.space.decisions().random(self.rng)

    def _tournament(self) -> Sample:
        """The fittest of ``sample_size`` members drawn at random (ties: the youngest)."""
        members = self.population
        size = min(self.sample_size, len(members))
        picks = self.rng.sample(range(len(members)), size)
        winner = max(picks, key=lambda index: (members[index].fitness, index))
        return members[winner].sample

    def _mutate(self, parent: Sample) -> Sample:
        child = dict(parent)
        changed = False
        for label, mutable in self._decisions:
            if label not in parent:  # inactive in the parent
                continue
            if self.rng.random() < self.mutation_prob:
                value = self._other_value(mutable, parent[label])
                changed = changed or value != parent[label]
                child[label] = value
        if not changed:
            mutable_labels = [(label, m) for label, m in self._decisions if m.size > 1 and label in parent]
            if mutable_labels:
                label, mutable = mutable_labels[self.rng.randrange(len(mutable_labels))]
                child[label] = self._other_value(mutable, parent[label])
        return child

    def _other_value(self, mutable: LabelledMutable, current: Any) -> Any:
        """A random value of ``mutable`` different from ``current`` (when the decision has another one)."""
        if mutable.size <= 1:
            return current
        for _ in range(100):
            value = mutable.random_value(self.rng)
            if value != current:
                return value
        return current

    # --- learning -------------------------------------------------------------------------------

    def learn(self, trial: TrialRecord) -> None:
        fitness = self.objective(trial)
        if fitness is None:
            _log.debug("RegularizedEvolution: trial %d failed; not added to the population", trial.id)
            return
        self.population.append(Individual(dict(trial.sample), fitness))
