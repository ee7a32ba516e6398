"""GPU placement: seats from a (fake) device list, and errors before the first trial."""

from __future__ import annotations

import pytest

from nascore.errors import EngineError
from nascore_engines.training_service.gpu import Seat, detect_gpus, parse_nvidia_smi, plan_seats


def plan(**kwargs):
    return [seat.gpus for seat in plan_seats(**{"trial_gpu_number": 1, "concurrency": 8, **kwargs})]


def test_cpu_trials_get_empty_seats():
    seats = plan_seats(available=[0, 1], trial_gpu_number=0, concurrency=3)
    assert seats == [Seat(0), Seat(1), Seat(2)] and seats[0].cuda_visible_devices == ""


def test_one_gpu_per_trial():
    assert plan(available=[0, 1, 2]) == [(0,), (1,), (2,)]


def test_small_trials_share_gpus():
    assert plan(available=[0, 1], max_trials_per_gpu=3) == [(0,), (1,), (0,), (1,), (0,), (1,)]


def test_concurrency_caps_the_seats():
    assert plan(available=[0, 1, 2, 3], concurrency=2) == [(0,), (1,)]


def test_multi_gpu_trials_get_distinct_gpus_and_each_gpu_is_used_at_most_per_gpu_times():
    seats = plan(available=[0, 1, 2], trial_gpu_number=2, max_trials_per_gpu=2)
    assert seats == [(0, 1), (0, 2), (1, 2)]
    assert all(len(set(s)) == 2 for s in seats)
    assert plan(available=[0, 1, 2], trial_gpu_number=2) == [(0, 1)]  # GPU 2 alone cannot hold a trial


def test_gpu_indices_restrict_the_devices():
    seats = plan_seats(available=[0, 1, 2, 3], gpu_indices=[3, 1], trial_gpu_number=1, concurrency=4)
    assert [s.cuda_visible_devices for s in seats] == ["3", "1"]
    assert seats[0].describe() == "GPU 3"


def test_asking_for_gpus_a_machine_lacks_is_an_error():
    with pytest.raises(EngineError, match="trial_gpu_number = 1, but this machine has no GPU"):
        plan(available=[])
    with pytest.raises(EngineError, match=r"trial_gpu_number = 3, but machine gpu1 has 2 GPUs \(0, 1\)"):
        plan(available=[0, 1], trial_gpu_number=3, where="machine gpu1")
    with pytest.raises(EngineError, match=r"machines\[1\]\.gpu_indices lists GPU 5, which machine x does not have"):
        plan(available=[0, 1], gpu_indices=[0, 5], where="machine x", field="engine_options.machines[1]")


def test_detect_gpus_respects_cuda_visible_devices():
    assert detect_gpus({"CUDA_VISIBLE_DEVICES": "2,3"}) == [2, 3]
    assert detect_gpus({"CUDA_VISIBLE_DEVICES": ""}) == []


def test_parse_nvidia_smi():
    assert parse_nvidia_smi("0\n1\n\n3\n") == [0, 1, 3]
    assert parse_nvidia_smi("") == []
