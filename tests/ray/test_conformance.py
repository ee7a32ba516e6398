"""The ``ray`` engine passes nascore's engine conformance suite, on a real local Ray cluster (2 CPUs)."""

from __future__ import annotations

import pytest

from nascore.testing.engines import EngineConformance


@pytest.fixture(autouse=True)
def _cluster(ray_local):
    """Every check runs on this module's local cluster (the engine uses this process's Ray connection)."""


class TestRayEngine(EngineConformance):
    engine_name = "ray"
