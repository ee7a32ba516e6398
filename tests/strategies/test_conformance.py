"""Every built-in strategy passes nascore's strategy conformance suite (nascore.testing.strategies)."""

from __future__ import annotations

import pytest

from nascore.testing.strategies import StrategyConformance
from nascore_strategies import TPE, GridSearch, PolicyBasedRL, Random, RegularizedEvolution


class TestRandom(StrategyConformance):
    @pytest.fixture
    def make_strategy(self):
        return lambda **kwargs: Random(**kwargs)


class TestGridSearch(StrategyConformance):
    @pytest.fixture
    def make_strategy(self):
        return lambda **kwargs: GridSearch(**kwargs)


class TestRegularizedEvolution(StrategyConformance):
    @pytest.fixture
    def make_strategy(self):
        # A small population so that the tests reach the evolution phase within the budget.
        return lambda **kwargs: RegularizedEvolution(population_size=8, sample_size=3, **kwargs)


class TestTPE(StrategyConformance):
    @pytest.fixture
    def make_strategy(self):
        return lambda **kwargs: TPE(n_startup_jobs=6, **kwargs)


class TestPolicyBasedRL(StrategyConformance):
    @pytest.fixture
    def make_strategy(self):
        # Updates every 5 episodes, so the resume test crosses several policy updates.
        return lambda **kwargs: PolicyBasedRL(trial_per_collect=5, **kwargs)
