"""Whole-batch reads of a ``TensorDataset``: the same batches and the same random numbers as the user's loader."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from nascore_strategies.oneshot.batching import WholeBatches, batched, consecutive
from nascore_strategies.oneshot.lightning import ConcatTrainVal, InterleavedTrainVal


def dataset(size: int = 37) -> TensorDataset:
    generator = torch.Generator().manual_seed(0)
    return TensorDataset(torch.randn(size, 3, 4, 4, generator=generator), torch.randint(0, 10, (size,), generator=generator))


def epochs(loader: DataLoader, count: int = 2) -> list[list[torch.Tensor]]:
    return [batch for _ in range(count) for batch in loader]


def assert_same(a: list[list[torch.Tensor]], b: list[list[torch.Tensor]]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert type(x) is type(y)
        assert len(x) == len(y)
        for s, t in zip(x, y):
            assert s.dtype == t.dtype and s.shape == t.shape
            assert torch.equal(s, t)


@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("drop_last", [False, True])
def test_same_batches_and_random_numbers_with_a_generator(shuffle: bool, drop_last: bool) -> None:
    data = dataset()
    plain = DataLoader(data, batch_size=5, shuffle=shuffle, drop_last=drop_last, generator=torch.Generator().manual_seed(3))
    fast = batched(DataLoader(data, batch_size=5, shuffle=shuffle, drop_last=drop_last, generator=torch.Generator().manual_seed(3)))
    assert isinstance(fast, WholeBatches)
    assert len(fast) == len(plain)
    assert_same(epochs(fast), epochs(plain))


def test_same_batches_and_global_random_numbers_without_a_generator() -> None:
    data = dataset()
    loader = DataLoader(data, batch_size=4, shuffle=True)
    torch.manual_seed(11)
    expected = epochs(loader)
    after_plain = torch.random.get_rng_state()
    torch.manual_seed(11)
    got = epochs(batched(loader))
    assert_same(got, expected)
    assert torch.equal(torch.random.get_rng_state(), after_plain)  # the fast loader drew what the loader draws


def test_a_batch_sampler_of_the_users_gives_the_same_batches() -> None:
    import numpy as np

    data = dataset()
    batches = [[5, 1, 9], np.array([0, 36]), range(10, 14)]  # lists, arrays, ranges: any sequence of indices
    plain = DataLoader(data, batch_sampler=batches)
    fast = batched(DataLoader(data, batch_sampler=batches))
    assert isinstance(fast, WholeBatches)
    assert_same(epochs(fast), epochs(plain))


def test_runs_of_indices_are_read_as_slices() -> None:
    assert consecutive([3, 4, 5], 10) == 3
    assert consecutive(range(2, 6), 10) == 2
    assert consecutive([0], 1) == 0
    assert consecutive([3, 5, 6], 10) is None  # a gap
    assert consecutive([5, 4], 10) is None  # descending
    assert consecutive(range(0, 6, 2), 10) is None
    assert consecutive([], 10) is None and consecutive(range(0), 10) is None
    assert consecutive([8, 9, 10], 10) is None  # past the end: indexing raises, a slice would cut the batch short
    assert consecutive([-2, -1, 0], 10) is None  # negative indices count from the end; a slice would not
    assert consecutive([True, False], 10) is None and consecutive([1.0, 2.0], 10) is None
    import numpy as np

    assert consecutive(np.arange(3), 10) is None  # other sequences take the indexing path


def test_a_run_past_the_end_fails_as_the_loader_does() -> None:
    data = dataset(6)
    batches = [[4, 5, 6]]
    with pytest.raises(IndexError):
        list(DataLoader(data, batch_sampler=batches))
    with pytest.raises(IndexError):
        list(batched(DataLoader(data, batch_sampler=batches)))


def test_sliced_batches_are_contiguous_copies() -> None:
    data = dataset()
    data.tensors = (data.tensors[0].contiguous(memory_format=torch.channels_last), data.tensors[1])
    fast = next(iter(batched(DataLoader(data, batch_size=4))))
    plain = next(iter(DataLoader(data, batch_size=4)))
    assert fast[0].is_contiguous() and plain[0].is_contiguous()  # stacking samples gives the default layout too
    assert fast[0].untyped_storage().data_ptr() != data.tensors[0].untyped_storage().data_ptr()
    assert_same([fast], [plain])


def test_batches_are_fresh_tensors() -> None:
    data = dataset()
    batch = next(iter(batched(DataLoader(data, batch_size=4))))
    batch[0].zero_()
    assert data.tensors[0][:4].abs().sum() > 0  # writing into a batch leaves the dataset alone


def test_other_loaders_are_left_as_they_are() -> None:
    data = dataset()

    class MyDataset(TensorDataset):
        pass

    class MyLoader(DataLoader):
        pass

    others = [
        DataLoader(data, batch_size=4, collate_fn=lambda samples: samples),
        DataLoader(data, batch_size=4, num_workers=2),  # never iterated here: no worker starts
        DataLoader(data, batch_size=4, pin_memory=True),
        DataLoader(data, batch_size=None),
        DataLoader(MyDataset(*data.tensors), batch_size=4),
        MyLoader(data, batch_size=4),
        [(torch.zeros(2), torch.zeros(2))],
    ]
    for loader in others:
        assert batched(loader) is loader


def test_the_one_shot_iterables_read_whole_batches() -> None:
    data = dataset(20)
    train = DataLoader(data, batch_size=6, shuffle=True, generator=torch.Generator().manual_seed(1))
    val = DataLoader(TensorDataset(*(t[:8] for t in data.tensors)), batch_size=6)
    reference_train = epochs(DataLoader(data, batch_size=6, shuffle=True, generator=torch.Generator().manual_seed(1)), 1)
    reference_val = epochs(DataLoader(TensorDataset(*(t[:8] for t in data.tensors)), batch_size=6), 2)

    interleaved = list(InterleavedTrainVal(train, val))
    assert len(interleaved) == len(reference_train) == 4
    assert_same([pair["train"] for pair in interleaved], reference_train)
    assert_same([pair["val"] for pair in interleaved], reference_val)  # cycled: two validation epochs

    concat = list(ConcatTrainVal(train, val))
    assert [kind for kind, _ in concat] == ["train"] * 4 + ["val"] * 2
    assert_same([batch for kind, batch in concat if kind == "val"], reference_val[:2])


def test_single_device_training_reads_the_users_loader_whole_batches(evaluator, mlp_space, monkeypatch):
    from nascore_strategies.oneshot import RandomOneShot, batching

    read: list[DataLoader] = []
    iterate = batching.WholeBatches.__iter__

    def recording(self):  # a generator, as the original: runs when the first batch is asked for
        read.append(self.loader)
        yield from iterate(self)

    monkeypatch.setattr(batching.WholeBatches, "__iter__", recording)
    for settings, expected in (({}, 2), ({"overfit_batches": 2}, 0)):  # Lightning re-creates it to overfit
        read.clear()
        recipe = evaluator(max_epochs=2, limit_val_batches=1, **settings)
        strategy = RandomOneShot(seed=0)
        strategy.create_supernet(mlp_space())
        assert strategy.search(recipe)
        assert read == [recipe.train_dataloaders] * expected  # the user's loader, read whole batches, every epoch
