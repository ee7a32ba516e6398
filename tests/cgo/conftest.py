"""Fixtures for the CGO tests: the importable search job and graph-format models of its space."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest


@pytest.fixture
def job(monkeypatch):
    """The :mod:`cgo_job` module, importable by this process and by local workers (its folder is on sys.path)."""
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    return importlib.import_module("cgo_job")




@pytest.fixture
def graph_models(job):
    """``models(Space(), [sample, ...])``: frozen graph-format models of the job's space."""
    from nascore.plugin import get_plugins

    def models(space, samples):
        executable = get_plugins().formats.get("graph")().build(space)
        return [executable.freeze(sample) for sample in samples]

    return models
