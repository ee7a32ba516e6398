"""Registration of the one-shot strategies; the package's plugin hook calls :func:`register_oneshot`.

Importing the strategies does not import Lightning (it is imported when training starts), so they
are listed by ``nascore plugins`` with or without the ``oneshot`` extra.
"""

from __future__ import annotations

from nascore.plugin.spec import RegisterFn
from nascore_strategies.oneshot.darts import DARTS, GumbelDARTS
from nascore_strategies.oneshot.enas import ENAS
from nascore_strategies.oneshot.proxyless import Proxyless
from nascore_strategies.oneshot.random_oneshot import RandomOneShot

__all__ = ["register_oneshot"]


def register_oneshot(register: RegisterFn) -> None:
    """Register ``darts``, ``gumbel-darts``, ``enas``, ``random-oneshot`` and ``proxyless``."""
    register("darts", DARTS, description="one-shot: differentiable architecture search (softmax relaxation)")
    register("gumbel-darts", GumbelDARTS, description="one-shot: DARTS with Gumbel-softmax and temperature annealing")
    register("enas", ENAS, description="one-shot: REINFORCE controller sampling paths of a shared supernet")
    register("random-oneshot", RandomOneShot, description="one-shot: uniform path sampling, then ranking with the supernet")
    register("proxyless", Proxyless, description="one-shot: ProxylessNAS binary gates on one sampled path")
