"""Keep freed memory in the process while a supernet trains on CPU (glibc's ``malloc`` only).

glibc hands memory back to the kernel when the free space at the top of its heap passes a
threshold, and serves large blocks with ``mmap`` (returned on ``free``). A training step frees most
of what the step before it allocated (activations, gradients), so with the defaults every step
takes its activation-sized tensors from the kernel again, and each fresh page costs a page fault
and zeroing. In the medium DARTS benchmark (``benchmarks/oneshot.py``) that is about 6,000 page
faults a step, 5-10% of its time; with the thresholds raised it is about 100. Allocators such as
jemalloc or tcmalloc, which PyTorch's performance guide recommends, avoid it the same way.

:func:`reused_memory` raises the thresholds while the supernet trains (``M_MMAP_THRESHOLD`` to
its maximum of 32 MiB, ``M_TRIM_THRESHOLD`` to 1 GiB), and afterwards sets the trim threshold to
64 MiB (what glibc's own adaptive rule reaches once it has seen 32 MiB blocks) and returns the
free memory with ``malloc_trim(0)``. It does nothing on other C libraries (musl, macOS), under a
process that tunes malloc itself (``MALLOC_*_`` variables, ``GLIBC_TUNABLES``), or with ``OneShotStrategy(reuse_memory=False)``.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import os
import platform
from collections.abc import Iterator

__all__ = ["reused_memory"]

_log = logging.getLogger(__name__)

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
#: glibc's largest ``M_MMAP_THRESHOLD`` on 64-bit platforms (``DEFAULT_MMAP_THRESHOLD_MAX``).
MMAP_THRESHOLD = 32 * 2**20
#: Free space kept at the top of the heap while training.
TRAINING_TRIM_THRESHOLD = 2**30
#: Free space kept after training: twice the mmap threshold, as glibc's adaptive rule sets it.
IDLE_TRIM_THRESHOLD = 2 * MMAP_THRESHOLD


def _glibc() -> ctypes.CDLL | None:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    tunables = os.environ.get("GLIBC_TUNABLES", "")
    if "glibc.malloc." in tunables or any(name.startswith("MALLOC_") and name.endswith("_") for name in os.environ):
        return None  # the user tuned malloc: leave it alone
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
        return libc
    except (OSError, AttributeError):
        return None


@contextlib.contextmanager
def reused_memory(enabled: bool = True) -> Iterator[bool]:
    """Inside, freed memory stays in the process for the next step; yields whether it could be set."""
    libc = _glibc() if enabled else None
    if libc is None:
        yield False
        return
    applied = bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        libc.mallopt(_M_TRIM_THRESHOLD, TRAINING_TRIM_THRESHOLD)
    )
    _log.debug("malloc thresholds raised for supernet training: %s", applied)
    try:
        yield applied
    finally:
        libc.mallopt(_M_TRIM_THRESHOLD, IDLE_TRIM_THRESHOLD)
        libc.malloc_trim(0)
