"""Entry point of the ``nascore-strategies`` distribution: registers its strategies."""

from __future__ import annotations

from nascore.plugin import hookimpl
from nascore.plugin.spec import RegisterFn
from nascore_strategies.evolution import RegularizedEvolution
from nascore_strategies.grid import GridSearch
from nascore_strategies.oneshot.plugin import register_oneshot
from nascore_strategies.random import Random
from nascore_strategies.rl import PolicyBasedRL
from nascore_strategies.tpe import TPE


@hookimpl
def nascore_register_strategies(register: RegisterFn) -> None:
    register("random", Random, description="uniform random sampling")
    register("grid", GridSearch, description="every combination, in (shuffled) order")
    register("evolution", RegularizedEvolution, description="regularized (aging) evolution, asynchronous")
    register("tpe", TPE, description="tree-structured Parzen estimator (hyperopt; extra [tpe])")
    register("rl", PolicyBasedRL, description="policy-based reinforcement learning, PPO by default (tianshou; extra [rl])")
    register_oneshot(register)
