"""Entry point of the ``nascore-cgo`` distribution: engine ``cgo`` and optimizer ``dedup-input``."""

from __future__ import annotations

from nascore.plugin import hookimpl
from nascore.plugin.spec import RegisterFn


@hookimpl
def nascore_register_engines(register: RegisterFn) -> None:
    from nascore_cgo.engine import CGOEngine

    register(
        "cgo",
        CGOEngine,
        description="cross-graph optimization: merges graph-format models into one training-service trial",
    )


@hookimpl
def nascore_register_optimizers(register: RegisterFn) -> None:
    from nascore_cgo.optimizers import DedupInputOptimizer

    register("dedup-input", DedupInputOptimizer, description="trains models sharing one data pipeline together, loading each batch once")
