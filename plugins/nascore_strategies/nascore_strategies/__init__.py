"""nascore's built-in strategies: ``random`` and ``grid``."""

from nascore_strategies.grid import GridSearch
from nascore_strategies.random import Random

__all__ = ["GridSearch", "Random"]
