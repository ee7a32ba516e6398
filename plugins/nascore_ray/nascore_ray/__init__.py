"""nascore on a Ray cluster: the ``ray`` engine runs trials on warm Ray actors; nascore keeps its loop and store.

Modules, one job each:

- :mod:`.engine` — :class:`RayEngine`, the training-service engine with Ray as its service.
- :mod:`.options` — :class:`RayOptions` (``engine_options``): the cluster, the runtime environment,
  what one trial reserves.
- :mod:`.service` — the warm actors (one per seat), streaming events and output back, faults.
- :mod:`.actor` — the actor itself, run in Ray's worker processes.
- :mod:`.cluster` — connecting, or starting a local cluster on 127.0.0.1; does a trial fit anywhere.

Ray is imported when the engine starts, not when the plugin loads.
"""

from nascore_ray.engine import RayEngine
from nascore_ray.options import RayOptions

__all__ = ["RayEngine", "RayOptions"]
