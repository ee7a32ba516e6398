"""Entry point of the ``nascore-strategies`` distribution: registers its strategies."""

from __future__ import annotations

from nascore.plugin import hookimpl
from nascore.plugin.spec import RegisterFn
from nascore_strategies.grid import GridSearch
from nascore_strategies.random import Random


@hookimpl
def nascore_register_strategies(register: RegisterFn) -> None:
    register("random", Random, description="uniform random sampling")
    register("grid", GridSearch, description="every combination, in (shuffled) order")
