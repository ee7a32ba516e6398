"""nascore's built-in strategies: multi-trial ``random``, ``grid``, ``evolution``, ``tpe`` and ``rl``;
one-shot ``darts``, ``gumbel-darts``, ``enas``, ``random-oneshot`` and ``proxyless`` (extra ``[oneshot]``).

``tpe`` needs hyperopt and ``rl`` needs tianshou 2.x, installed with the extras
``pip install "nascore-strategies[tpe]"``, ``"nascore-strategies[rl]"`` or ``"nascore-strategies[all]"``.
The classes import without them; using one without its extra raises
:class:`~nascore.errors.MissingDependencyError` with the line to run.
"""

from nascore_strategies.evolution import RegularizedEvolution
from nascore_strategies.grid import GridSearch
from nascore_strategies.oneshot import DARTS, ENAS, GumbelDARTS, Proxyless, RandomOneShot
from nascore_strategies.random import Random
from nascore_strategies.rl import PolicyBasedRL
from nascore_strategies.tpe import TPE

__all__ = [
    "DARTS",
    "ENAS",
    "GridSearch",
    "GumbelDARTS",
    "PolicyBasedRL",
    "Proxyless",
    "Random",
    "RandomOneShot",
    "RegularizedEvolution",
    "TPE",
]
