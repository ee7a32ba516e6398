"""Entry point of the ``nascore-cgo`` distribution: engine ``cgo``, optimizer ``dedup-input``, format ``cgo-merged``."""

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


@hookimpl
def nascore_register_formats(register: RegisterFn) -> None:
    from nascore_cgo.plan import MergedFormat

    register("cgo-merged", MergedFormat, description="merged CGO trials on their way to a worker (engine cgo; not for spaces)")
