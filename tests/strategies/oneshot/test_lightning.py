"""The one-shot Lightning module and loop: batches kept where they are, the search's callback (budget, history)."""

from __future__ import annotations

import torch

from nascore_strategies.oneshot import DARTS, RandomOneShot
from nascore_strategies.oneshot.lightning import on_device, train_supernet

CPU = torch.device("cpu")


class Movable:
    """Not a tensor, but Lightning moves anything with a ``to`` method."""

    def __init__(self) -> None:
        self.moved_to: list[torch.device] = []

    def to(self, device: torch.device) -> Movable:
        self.moved_to.append(device)
        return self


def test_batches_whose_tensors_are_on_the_device_are_recognised() -> None:
    x, y = torch.zeros(2, 3), torch.zeros(2, dtype=torch.long)
    assert on_device(x, CPU)
    assert on_device({"train": [x, y], "val": (x, y, None, 3, 0.5, "name")}, CPU)
    assert on_device([], CPU) and on_device({}, CPU)
    assert not on_device(x, torch.device("meta"))
    assert not on_device({"train": [x, x.to("meta")]}, CPU)
    assert not on_device([x, Movable()], CPU)  # left to Lightning, which knows how to move it


def test_the_module_keeps_a_batch_on_its_device_and_lets_lightning_move_the_rest(evaluator, mlp_space) -> None:
    strategy = DARTS()
    strategy.create_supernet(mlp_space())
    train_supernet(strategy, evaluator(max_epochs=1, limit_train_batches=2), None)
    module = strategy.oneshot_module
    batch = {"train": [torch.zeros(2, 64), torch.zeros(2, dtype=torch.long)], "val": [torch.zeros(2, 64)]}
    assert module.transfer_batch_to_device(batch, CPU, 0) is batch

    movable = Movable()
    moved = module.transfer_batch_to_device([torch.zeros(1), movable], CPU, 0)
    assert movable.moved_to == [CPU] and moved[1] is movable
    meta = module.transfer_batch_to_device([torch.zeros(1)], torch.device("meta"), 0)
    assert meta[0].device.type == "meta"


def test_a_spent_budget_stops_supernet_training_after_the_step(evaluator, mlp_space) -> None:
    strategy = RandomOneShot()
    strategy.create_supernet(mlp_space())
    asked: list[int] = []

    def should_stop() -> bool:
        asked.append(1)
        return len(asked) >= 3

    train_supernet(strategy, evaluator(max_epochs=2), should_stop)
    assert strategy.oneshot_module.trainer.global_step == 3
    assert len(asked) == 3


def test_the_architecture_weights_are_recorded_ten_times_an_epoch_and_saved(evaluator, mlp_space, tmp_path) -> None:
    strategy = DARTS()
    strategy.create_supernet(mlp_space())
    strategy.artifact_dir = tmp_path
    train_supernet(strategy, evaluator(max_epochs=2), None)
    steps = [point["step"] for point in strategy.architecture_history]
    batches = strategy.oneshot_module.trainer.num_training_batches  # 23 batches of 64 digits
    every = batches // 10
    expected = [0] + [s for s in range(1, 2 * batches + 1) if (s - 1) % batches + 1 in range(every, batches + 1, every)]
    expected += [s for s in (batches, 2 * batches) if s not in expected]
    assert steps == sorted(set(expected))
    assert {point["epoch"] for point in strategy.architecture_history} == {0, 1}
    assert (tmp_path / "architecture_weights.json").is_file()
