"""Whole-batch reads of in-memory datasets: a ``DataLoader`` over a ``TensorDataset`` without per-sample work.

A ``DataLoader(TensorDataset(x, y), batch_size=b)`` reads a batch as ``b`` single samples (two
tensor indexings each) and stacks them (``default_collate``): for the small batches a supernet
often trains on, about 60 us of Python a batch, more than an elementwise kernel of the step. A
``TensorDataset`` can index a whole batch at once (``x[indices]``); PyTorch does that when the
loader's sampler hands out lists of indices and ``batch_size=None``.

:func:`batched` builds that loader from the user's, for exactly the loaders where it gives the
same batches: a plain ``DataLoader`` over a plain ``TensorDataset`` with the default collate
function, no worker processes and no pinned memory. The new loader shares the user's batch
sampler (so its shuffling, its generator and ``drop_last``) and generator, so it draws the same
random numbers in the same order: batches are equal tensor for tensor (fresh tensors, as stacking
makes, never views of the dataset). Any other loader is returned as it is.
"""

from __future__ import annotations

from typing import Any

from torch.utils.data import DataLoader, TensorDataset
from torch.utils.data._utils.collate import default_collate

__all__ = ["batched"]


def batched(loader: Any) -> Any:
    """``loader``, or an equivalent loader that reads each batch of its ``TensorDataset`` in one indexing."""
    if (
        type(loader) is not DataLoader
        or type(loader.dataset) is not TensorDataset
        or loader.batch_sampler is None
        or loader.collate_fn is not default_collate
        or loader.num_workers != 0
        or loader.pin_memory
    ):
        return loader
    return DataLoader(loader.dataset, batch_size=None, sampler=loader.batch_sampler, generator=loader.generator)
