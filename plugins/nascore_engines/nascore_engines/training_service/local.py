"""The ``local`` training service: a pool of warm worker processes on this machine."""

from __future__ import annotations

import logging
import os
import tempfile
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path

from nascore.engine import TrialEvent, TrialResources
from nascore_engines.training_service.gpu import Seat, detect_gpus, plan_seats
from nascore_engines.training_service.options import TrainingServiceOptions
from nascore_engines.training_service.pool import PoolTrial, WorkerPool
from nascore_engines.training_service.template import Template

__all__ = ["LocalService", "local_seats"]

_log = logging.getLogger(__name__)

#: How long start() waits for the first worker to import torch and say it is ready.
READY_TIMEOUT = 300.0
#: Overrides how local workers start (``auto``, the default: forked from a template; ``spawn``: new processes).
WORKER_START_VARIABLE = "NASCORE_WORKER_START"


def local_seats(resources: TrialResources, settings: TrainingServiceOptions, gpus: Sequence[int] | None = None) -> list[Seat]:
    """The seats of this machine for ``resources`` (``gpus``: the GPU indices, detected when ``None``)."""
    available = detect_gpus() if gpus is None else list(gpus)
    seats = plan_seats(
        available=available,
        trial_gpu_number=resources.trial_gpu_number,
        concurrency=resources.trial_concurrency,
        gpu_indices=settings.gpu_indices,
        max_trials_per_gpu=settings.max_trials_per_gpu,
        where="this machine",
    )
    if len(seats) < resources.trial_concurrency:
        _log.warning(
            "trial_concurrency = %d, but the GPUs allow only %d trial(s) of %d GPU(s) at once "
            "(raise engine_options.max_trials_per_gpu to share GPUs)",
            resources.trial_concurrency, len(seats), resources.trial_gpu_number,
        )
    return seats


def early_template(settings: TrainingServiceOptions, owner: object) -> Template | None:
    """A ``fork`` worker template made now, while the experiment has no store open (``None`` where the
    settings or the process rule it out).

    Forked later, when the experiment's SQLite store is open, a worker would inherit SQLite's
    per-process record of that file's locks, which is wrong in a child: a trial opening the store (no
    trial should) could then write without the lock. So the engine forks its template in ``check()``,
    before the store opens; the template is closed with ``owner`` if no pool ever takes it.
    """
    worker_start = os.environ.get(WORKER_START_VARIABLE) or settings.worker_start
    if worker_start not in ("auto", "fork"):
        return None
    with tempfile.NamedTemporaryFile(prefix="nascore-template-", suffix=".log", delete=False) as log:
        log_path = Path(log.name)
    template = Template.start(log_path, kind="fork", python=settings.python)  # another interpreter: no fork
    if template is None:
        log_path.unlink(missing_ok=True)
        return None
    weakref.finalize(owner, template.close)
    return template


class LocalService:
    """Runs trials in worker processes on this machine (``engine_options.platform = "local"``).

    Workers fork from a template process that has torch and nascore imported (see
    :mod:`~nascore_engines.training_service.template`), milliseconds each instead of a second; where no
    template can run they start as new processes. ``worker_start`` (default: ``$NASCORE_WORKER_START``,
    else ``engine_options.worker_start``) picks one of :data:`~nascore_engines.training_service.pool.WORKER_STARTS`.
    """

    name = "local"

    def __init__(
        self,
        resources: TrialResources,
        settings: TrainingServiceOptions,
        experiment_dir: Path,
        on_event: Callable[[TrialEvent], None],
        gpus: Sequence[int] | None = None,
        worker_start: str | None = None,
        template: Template | None = None,
    ) -> None:
        self.seats = local_seats(resources, settings, gpus)
        worker_start = worker_start or os.environ.get(WORKER_START_VARIABLE) or settings.worker_start
        self.pool = WorkerPool(
            self.seats,
            on_event=on_event,
            log_dir=Path(experiment_dir) / "workers",
            python=settings.python,
            trial_timeout=resources.trial_timeout,  # type: ignore[arg-type]
            memory_limit=resources.trial_memory_limit,  # type: ignore[arg-type]
            name="local",
            worker_start=worker_start,
            template=template,
        )

    def start(self) -> None:
        try:
            self.pool.start(wait_ready=READY_TIMEOUT)
        except BaseException:
            self.pool.shutdown()
            raise
        template = self.pool.template
        how = f"forked from a {template.kind} template" if template is not None else "new processes"
        _log.info("Local training service: %d worker(s) on %s (%s)", len(self.seats),
                  ", ".join(s.describe() for s in self.seats), how)

    def capacity(self) -> int:
        return len(self.seats)

    def free_seats(self) -> int:
        return self.pool.free_seats()

    def running(self) -> int:
        return self.pool.running()

    def run(self, trial: PoolTrial) -> None:
        self.pool.run(trial)

    def unavailable(self) -> str | None:
        """Why no trial can run any more (``None`` while trials can run)."""
        return self.pool.broken

    def shutdown(self) -> None:
        self.pool.shutdown()
