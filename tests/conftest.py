"""Shared by every test: one intra-op torch thread.

The models under test are tiny; one thread is faster than several fighting over the machine's cores,
and steady on a busy machine. Worker processes started by the tests set their own threads.
"""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
