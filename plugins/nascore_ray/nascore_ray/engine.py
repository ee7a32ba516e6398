"""The ``ray`` engine: the training-service engine's queue, re-queues and events, with trials on Ray actors.

nascore keeps its strategy loop, its store and resume (one source of truth); Ray does the placement,
scheduling and node-failure detection. :class:`RayEngine` is the
:class:`~nascore_engines.training_service.TrainingServiceEngine` (ship every trial as data, queue it,
hand it to a free seat, record events as they come, put back the trials whose machine dropped) with a
:class:`~nascore_ray.service.RayService` as its service, configured by :class:`~nascore_ray.options.RayOptions`.
"""

from __future__ import annotations

import logging

from nascore.engine import EngineContext, TrialResources
from nascore.evaluator import Evaluator
from nascore.format import ExecutableSpace
from nascore_engines.training_service.engine import TrainingServiceEngine, TrialService
from nascore_ray.options import RayOptions

__all__ = ["RayEngine"]

_log = logging.getLogger(__name__)


class RayEngine(TrainingServiceEngine):
    """Registered as ``ray``; its settings are :class:`~nascore_ray.options.RayOptions` (``engine_options``).

    The training-service engine with :meth:`make_service` giving a
    :class:`~nascore_ray.service.RayService`, which calls back through the engine's
    :class:`~nascore_engines.training_service.engine.ServiceLink`.

    :param settings: the Ray settings (default: a local cluster, one CPU per trial).
    :param resources: what each trial may use (``trial_concurrency``, ``trial_gpu_number`` when
        ``num_gpus`` is not given, ``trial_timeout``, ``trial_memory_limit``).
    """

    name = "ray"
    options_class = RayOptions
    config_aliases = ()

    def __init__(self, settings: RayOptions | None = None, resources: TrialResources | None = None) -> None:
        super().__init__(settings if settings is not None else RayOptions(), resources)  # type: ignore[arg-type]
        self.settings: RayOptions  # type: ignore[assignment]

    @classmethod
    def create(cls, options: RayOptions | None, resources: TrialResources) -> RayEngine:  # type: ignore[override]
        return cls(options, resources)

    def check_service(self, evaluator: Evaluator, space: ExecutableSpace | None = None) -> None:
        """Nothing to check before the cluster is reached: the options were checked when they were made."""

    def make_service(self, context: EngineContext) -> TrialService:
        from nascore_ray.service import RayService

        return RayService(context.resources, self.settings, self.link, context.experiment_dir)
