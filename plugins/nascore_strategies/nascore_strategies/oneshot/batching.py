"""Whole-batch reads of in-memory datasets: a ``DataLoader`` over a ``TensorDataset`` without per-sample work.

A ``DataLoader(TensorDataset(x, y), batch_size=b)`` reads a batch as ``b`` single samples (two
tensor indexings each) and stacks them (``default_collate``): for the small batches a supernet
often trains on, about 60 us of Python a batch, more than an elementwise kernel of the step. A
``TensorDataset`` can index a whole batch at once (``x[indices]``).

:func:`batched` reads that way, for exactly the loaders where it gives the same batches: a plain
``DataLoader`` over a plain ``TensorDataset`` with the default collate function, no worker
processes and no pinned memory. It iterates the user's batch sampler (so its shuffling, its
generator and ``drop_last``) and draws the seed a ``DataLoader`` iterator draws, from the same
generator and at the same point, so the random numbers drawn are the same too: batches are equal
tensor for tensor (fresh tensors, as stacking makes, never views of the dataset) and lists, as
``default_collate`` gives. Any other loader is returned as it is.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.data._utils.collate import default_collate

__all__ = ["WholeBatches", "batched", "consecutive"]


class WholeBatches:
    """The batches of a ``DataLoader`` over a ``TensorDataset``, each read with one indexing per tensor.

    Reads the loader's batch sampler directly: no per-batch profiler range, fetcher or collate
    call of the ``DataLoader`` iterator (about 17 us a batch, about half of what the loader takes).
    ``sampler`` and ``batch_sampler`` are the loader's, so Lightning calls their ``set_epoch`` (if
    any) every epoch, as it does for the loader.
    """

    def __init__(self, loader: DataLoader) -> None:
        self.loader = loader
        self.sampler = loader.sampler
        self.batch_sampler = loader.batch_sampler

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[list[torch.Tensor]]:
        loader = self.loader
        indices = iter(loader.batch_sampler)  # type: ignore[arg-type]
        # The base seed every DataLoader iterator draws on creation (for worker processes; unused here).
        torch.empty((), dtype=torch.int64).random_(generator=loader.generator)
        tensors = loader.dataset.tensors  # type: ignore[attr-defined]
        size = len(tensors[0]) if tensors else 0
        for batch in indices:
            start = consecutive(batch, size)
            if start is not None:  # a run of indices (no shuffling): copies of one slice, no index tensor
                stop = start + len(batch)
                yield [tensor[start:stop].clone(memory_format=torch.contiguous_format) for tensor in tensors]
                continue
            index = torch.as_tensor(batch, dtype=torch.long)  # one conversion of the indices for all the tensors
            yield [tensor[index] for tensor in tensors]


def consecutive(batch: Any, size: int) -> int | None:
    """The first index when ``batch`` is a non-empty list or range of consecutive integers ``i, i+1, ...``
    inside ``range(size)`` (where slicing gives what indexing gives), else ``None``."""
    if isinstance(batch, range):
        if batch.step != 1 or not len(batch):
            return None
        start = batch.start
    elif type(batch) is list and batch and type(batch[0]) is int:
        start = batch[0]
        if batch != list(range(start, start + len(batch))):
            return None
    else:
        return None
    return start if 0 <= start and start + len(batch) <= size else None


def batched(loader: Any) -> Any:
    """``loader``, or an equivalent iterable that reads each batch of its ``TensorDataset`` in one indexing."""
    if (
        type(loader) is not DataLoader
        or type(loader.dataset) is not TensorDataset
        or loader.batch_sampler is None
        or loader.collate_fn is not default_collate
        or loader.num_workers != 0
        or loader.pin_memory
    ):
        return loader
    return WholeBatches(loader)
