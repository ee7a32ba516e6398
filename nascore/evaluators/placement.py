"""Where the models of a group trial (several models in one trial) run: all on the trial's device (``pack``) or over its devices (``spread``).

A group trial (the cgo engine's merged trials) is one trial of the training service, so it gets that trial's devices: with
``trial_gpu_number = n`` its worker sees ``n`` GPUs (``CUDA_VISIBLE_DEVICES``), ``cuda:0`` to
``cuda:n-1`` inside the trial; without GPUs it runs on the CPU.

* ``pack`` (the default): every model on the trial's main device, the one Lightning trains on.
* ``spread``: model ``i`` on device ``i % n`` of the trial (model 0 stays on the main device). Each
  batch is still loaded and preprocessed once, then copied once to every other device in use. On
  a trial without CUDA devices there is one device, so ``spread`` packs (logged once, at INFO).

The functions here are pure (no Lightning, no CUDA initialisation beyond
``torch.cuda.device_count()`` for a CUDA main device), so the engine can validate its settings
with them and tests can check the mapping without GPUs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

__all__ = ["PLACEMENTS", "check_placement", "distinct_devices", "assign_devices", "trial_devices"]

#: The placements a merged trial accepts, with what they do (used in error messages).
PLACEMENTS: dict[str, str] = {
    "pack": "every model on the trial's device",
    "spread": "model i on device i % n of the trial's n devices",
}

DeviceLike = torch.device | str | int


def check_placement(value: Any, where: str, error: type[Exception] = ValueError) -> str:
    """``value`` if it names a placement, else ``error`` naming ``where`` (the setting) and the allowed values."""
    if isinstance(value, str) and value in PLACEMENTS:
        return value
    allowed = ", ".join(f"{name!r} ({what})" for name, what in PLACEMENTS.items())
    raise error(f"{where} must be one of {allowed}; got {value!r}")


def assign_devices(count: int, devices: Sequence[DeviceLike], placement: str) -> list[torch.device]:
    """The device of each of ``count`` models: ``devices[0]`` for all (pack) or ``devices[i % n]`` (spread).

    :param devices: the trial's devices, main device first.
    :raises ValueError: no device, a negative count, or an unknown placement.
    """
    check_placement(placement, "placement")
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    if not devices:
        raise ValueError("a trial needs at least one device to place its models on")
    resolved = [torch.device(d) for d in devices]
    if placement == "pack":
        return [resolved[0]] * count
    return [resolved[i % len(resolved)] for i in range(count)]


def trial_devices(main: DeviceLike) -> list[torch.device]:
    """The devices of the running trial, ``main`` (the device Lightning trains on) first.

    For a CUDA main device: every CUDA device the trial sees (``torch.cuda.device_count()``, i.e.
    its seat's ``CUDA_VISIBLE_DEVICES``), the others in index order. Otherwise only ``main``.
    """
    main = torch.device(main)
    if main.type != "cuda":
        return [main]
    if main.index is None:
        main = torch.device("cuda", torch.cuda.current_device())
    others = [torch.device("cuda", i) for i in range(torch.cuda.device_count()) if i != main.index]
    return [main, *others]


def distinct_devices(devices: Sequence[DeviceLike]) -> list[torch.device]:
    """``devices`` without repeats, in first-seen order: where a batch must be copied to."""
    seen: list[torch.device] = []
    for device in devices:
        device = torch.device(device)
        if device not in seen:
            seen.append(device)
    return seen
