"""The cross-graph optimizer contract, registered through ``nascore_register_optimizers``.

An optimizer rewrites a *logical plan* (several models that a middleware such as CGO will train
in one trial) into a cheaper one, e.g. by feeding all models from one data pipeline.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

__all__ = ["LogicalOptimizer"]


class LogicalOptimizer(ABC):
    """Base class of cross-graph optimizers."""

    name: ClassVar[str] = ""

    @abstractmethod
    def convert(self, plan: Any) -> Any:
        """Return an optimized version of ``plan`` (the plan type is defined by the middleware)."""
