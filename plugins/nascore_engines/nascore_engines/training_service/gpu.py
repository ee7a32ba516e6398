"""GPU placement: which devices each trial sees.

Trials run in warm worker processes, and a process must see its devices before CUDA starts, so
placement is decided per worker: the machine's usable GPUs are cut into *seats*, each a fixed set
of ``trial_gpu_number`` distinct GPUs, with every GPU in at most ``max_trials_per_gpu`` seats. One
worker sits on each seat and its trials see exactly those devices through ``CUDA_VISIBLE_DEVICES``
(empty for trials that ask for no GPU, so they run on CPU). Asking for GPUs a machine does not have
is an :class:`~nascore.errors.EngineError` before the first trial, never trials waiting forever.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from collections.abc import Sequence

import attrs

from nascore.errors import EngineError

__all__ = ["Seat", "detect_gpus", "plan_seats"]

_log = logging.getLogger(__name__)


@attrs.frozen
class Seat:
    """A place for one running trial: its index on the machine and the GPUs its trials see."""

    index: int
    gpus: tuple[int, ...] = ()

    @property
    def cuda_visible_devices(self) -> str:
        return ",".join(str(g) for g in self.gpus)

    def describe(self) -> str:
        return f"GPU {self.cuda_visible_devices}" if self.gpus else "CPU"


def detect_gpus(environ: dict[str, str] | None = None) -> list[int]:
    """The GPU indices of this machine, without starting CUDA in this process.

    ``CUDA_VISIBLE_DEVICES`` wins when it is set (the experiment was given those devices);
    otherwise ``nvidia-smi`` lists them; no ``nvidia-smi`` means no GPU.
    """
    environ = os.environ if environ is None else environ  # type: ignore[assignment]
    visible = environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        found = [int(part) for part in visible.split(",") if part.strip().isdigit()]
        if visible.strip() and not found:
            _log.warning("CUDA_VISIBLE_DEVICES=%r names no GPU by index; trials will use no GPU", visible)
        return found
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return []
    try:
        out = subprocess.run(
            [smi, "--query-gpu=index", "--format=csv,noheader"], capture_output=True, text=True, timeout=30, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        _log.warning("nvidia-smi failed (%s); assuming this machine has no GPU", exc)
        return []
    return parse_nvidia_smi(out)


def parse_nvidia_smi(text: str) -> list[int]:
    """GPU indices from ``nvidia-smi --query-gpu=index --format=csv,noheader`` output."""
    return [int(line.strip()) for line in text.splitlines() if line.strip().isdigit()]


def plan_seats(
    *,
    available: Sequence[int],
    trial_gpu_number: int,
    concurrency: int,
    gpu_indices: Sequence[int] | None = None,
    max_trials_per_gpu: int = 1,
    where: str = "this machine",
    field: str = "training_service",
) -> list[Seat]:
    """Cut a machine's GPUs into at most ``concurrency`` seats of ``trial_gpu_number`` GPUs each.

    :param available: the GPU indices the machine has (:func:`detect_gpus`, or a fake list in tests).
    :param gpu_indices: the GPUs trials may use (default: all available).
    :param where: the machine, for messages; ``field``: the config table that holds ``gpu_indices``.
    :raises EngineError: the request cannot be met on this machine.
    """
    if trial_gpu_number == 0:
        return [Seat(i) for i in range(concurrency)]
    have = list(dict.fromkeys(available))
    usable = list(have if gpu_indices is None else gpu_indices)
    missing = [g for g in usable if g not in have]
    if missing:
        raise EngineError(
            f"{field}.gpu_indices lists GPU {', '.join(map(str, missing))}, which {where} does not have "
            f"(it has {_gpu_list(have)}); list only existing GPUs"
        )
    if len(usable) < trial_gpu_number:
        raise EngineError(
            f"trial_gpu_number = {trial_gpu_number}, but {where} has {_gpu_list(usable)} that trials may use "
            f"(gpu_indices: {'all' if gpu_indices is None else list(gpu_indices)}). Lower trial_gpu_number, "
            "set trial_gpu_number = 0 to train on CPU, or run on a machine with more GPUs"
        )
    # Round-robin over the GPUs, max_trials_per_gpu times, cut into runs of trial_gpu_number: any
    # run of that length in a cyclic sequence of distinct GPUs holds distinct GPUs, and each GPU
    # appears max_trials_per_gpu times overall.
    tokens = usable * max_trials_per_gpu
    count = min(len(tokens) // trial_gpu_number, concurrency)
    return [
        Seat(i, tuple(sorted(tokens[i * trial_gpu_number : (i + 1) * trial_gpu_number]))) for i in range(count)
    ]


def _gpu_list(gpus: Sequence[int]) -> str:
    if not gpus:
        return "no GPU"
    return f"{len(gpus)} GPU{'s' if len(gpus) > 1 else ''} ({', '.join(map(str, gpus))})"
