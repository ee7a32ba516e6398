"""The ``training-service`` engine: trials in isolated worker processes, locally or on remote machines over SSH.

Modules, one job each:

- :mod:`.engine` — :class:`TrainingServiceEngine`, the :class:`~nascore.engine.ExecutionEngine`, and
  the contract of its services (:class:`~.engine.TrialService`, :class:`ServiceLink`): a plugin with a
  service of its own (``nascore-ray``) subclasses the engine and overrides ``check_service`` and
  ``make_service``.
- :mod:`.local` — the ``local`` service: a pool of warm workers on this machine.
- :mod:`.remote` — the ``remote`` service: one SSH connection and agent per machine (needs
  ``pip install 'nascore-engines[remote]'``, i.e. paramiko).
- :mod:`.pool` — warm worker processes: dispatch, crashes, timeouts.
- :mod:`.worker` — the worker process itself; :mod:`.agent` — the process started on a remote machine.
- :mod:`.gpu` — GPU placement (seats and ``CUDA_VISIBLE_DEVICES``).
- :mod:`.protocol` — the JSON-lines messages between them; :mod:`.codesync` — copying the code directory.
- :mod:`.selection` — which files of the code directory travel (size and count limits, secrets left
  home); :mod:`.ignore` — the ``.gitignore`` / ``.nascoreignore`` patterns it honours.

Configured by :class:`~.options.TrainingServiceOptions` (``ExperimentConfig.engine_options``; the
older ``[training_service]`` table is read too) and by what each trial may use
(:class:`nascore.engine.TrialResources`: ``trial_concurrency``, ``trial_gpu_number``, ``trial_timeout``
and ``trial_memory_limit``).
"""

from nascore_engines.training_service.engine import ServiceLink, TrainingServiceEngine, TrialService
from nascore_engines.training_service.options import (
    RemoteMachine,
    TrainingServiceConfig,
    TrainingServiceOptions,
)

__all__ = [
    "RemoteMachine", "ServiceLink", "TrainingServiceConfig", "TrainingServiceEngine", "TrainingServiceOptions", "TrialService",
]
