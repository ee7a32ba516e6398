"""Freed memory stays in the process while a supernet trains (glibc only)."""

from __future__ import annotations

import platform
import resource

import pytest
import torch

from nascore.errors import StrategyError
from nascore_strategies.oneshot import DARTS, RandomOneShot
from nascore_strategies.oneshot.allocator import reused_memory

glibc = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc tuning is for glibc")


def _faults_of_steps(steps: int) -> int:
    """Minor page faults of ``steps`` 'training steps' that each allocate and free 24 MiB in 3 tensors."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(steps):
        tensors = [torch.ones(2**21) for _ in range(3)]  # 8 MiB each, written
        del tensors
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


@glibc
def test_inside_steps_reuse_the_memory_of_the_step_before(monkeypatch):
    for name in [n for n in __import__("os").environ if n.startswith("MALLOC_") or n == "GLIBC_TUNABLES"]:
        monkeypatch.delenv(name)
    with reused_memory() as applied:
        assert applied
        _faults_of_steps(2)  # the heap grows once
        steady = _faults_of_steps(20)
    # Without it (glibc's defaults), the 20 steps fault about 80,000 pages of 4 KiB in: each step takes
    # fresh pages from the kernel. With it, at most one growth of the heap (about 2,000).
    assert steady < 10_000


def test_turned_off_or_tuned_by_the_user_it_does_nothing(monkeypatch):
    with reused_memory(False) as applied:
        assert not applied
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "1000000")
    with reused_memory() as applied:
        assert not applied


def test_strategies_take_the_option():
    assert DARTS().reuse_memory and not RandomOneShot(reuse_memory=False).reuse_memory
    with pytest.raises(StrategyError, match="reuse_memory must be True or False"):
        DARTS(reuse_memory="yes")  # type: ignore[arg-type]
