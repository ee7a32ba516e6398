"""Entry point of the ``nascore-engines`` distribution: registers its engines."""

from __future__ import annotations

from nascore.plugin import hookimpl
from nascore.plugin.spec import RegisterFn
from nascore_engines.sequential import SequentialEngine
from nascore_engines.training_service import TrainingServiceEngine


@hookimpl
def nascore_register_engines(register: RegisterFn) -> None:
    register("sequential", SequentialEngine, description="runs trials one by one in the experiment process")
    register(
        "training-service",
        TrainingServiceEngine,
        description="runs trials in isolated worker processes, locally or on remote machines over SSH",
    )
