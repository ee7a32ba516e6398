"""The ``ray`` engine's options: which Ray cluster, what reaches its workers, and what one trial asks of it.

:class:`RayOptions` is the engine's ``options_class``: ``ExperimentConfig.engine_options`` is structured
into it (``config.engine_options.<field>`` in messages). In TOML::

    engine = "ray"
    trial_concurrency = 8

    [engine_options]
    address = "auto"                 # or "ray://head:10001", "head:6379"; leave out to start a local cluster
    num_cpus = 2
    num_gpus = 0.5                   # two trials share a GPU
    runtime_env = { working_dir = ".", pip = ["timm==1.0.9"] }

In Python: ``ExperimentConfig(engine="ray", engine_options=RayOptions(address="auto", num_gpus=0.5))``.
"""

from __future__ import annotations

import math
from typing import Any

import attrs

from nascore.options import OptionError
from nascore.units import parse_duration
from nascore_engines.training_service.options import non_negative, positive

__all__ = ["RayOptions"]


def _address(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise OptionError(
            attribute.name, f"must be 'auto', a 'ray://host:port' or 'host:port' address, or left out, got {value!r}"
        )


def _amount(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise OptionError(attribute.name, f"must be a number >= 0, got {value!r}")
    if value > 1 and value != int(value):
        raise OptionError(
            attribute.name, f"must be a fraction of one device (at most 1) or a whole number, got {value!r} (as Ray asks)"
        )




def _runtime_env(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if value is not None and not (isinstance(value, dict) and all(isinstance(k, str) for k in value)):
        raise OptionError(
            attribute.name,
            f"must be a table of Ray runtime-environment fields (working_dir, py_modules, pip, env_vars, ...), got {value!r}",
        )


@attrs.define(kw_only=True)
class RayOptions:
    """Where the ``ray`` engine runs trials and what each trial asks of the cluster.

    :param address: the Ray cluster: ``"auto"`` (the cluster this machine belongs to, as ``ray start``
        left it), a Ray Client address ``"ray://head:10001"``, or a GCS address ``"head:6379"``.
        ``None`` (the default): start a local cluster for the experiment (on 127.0.0.1 only) and stop
        it at the end. When this process is already connected to Ray (the user called ``ray.init``),
        that connection is used whatever ``address`` says, and left open at the end.
    :param runtime_env: a Ray runtime environment (a dict: ``working_dir``, ``py_modules``, ``pip``,
        ``env_vars``, ...) through which the user's code and requirements reach the workers; nothing is
        copied over SSH. Given to ``ray.init`` when the engine connects, else to each trial actor.
    :param num_cpus: CPUs one trial (one actor) reserves.
    :param num_gpus: GPUs one trial reserves; a fraction shares a GPU between trials (``0.5``: two per
        GPU). ``None`` (the default): the experiment's ``trial_gpu_number``.
    :param max_concurrency: most trials at once (default: ``trial_concurrency``); one warm actor per seat.
    :param local_num_cpus: CPUs of the local cluster the engine starts (``address = None``; default: all).
    :param lean_local_cluster: start that local cluster without Ray's dashboard API server, autoscaler monitor
        and log monitor, which a search does not use (a faster start: about 1.5 s less on two cores); ``False``
        starts it as ``ray.init`` does, so that ``ray list`` / ``ray status`` and job submission work on it.
    :param ship_sys_path: append this process's ``sys.path`` entries that exist on a node to its actors'
        ``sys.path`` (so that a local or shared-file-system cluster imports the user's modules as this
        process does); turn off when ``runtime_env`` brings the code.
    :param max_requeues: how many times a trial is re-queued after its actor or node died under it before
        it is recorded FAILED.
    :param ready_timeout: how long start() waits for the first actor to be ready (placed, started, torch
        imported; a runtime environment with ``pip`` packages takes longer the first time).
    :param heartbeat: every this many seconds the engine asks the cluster's head whether it is there; when it
        does not answer within ``2 x heartbeat`` (at least 10 s), the cluster counts as lost and the engine stops
        with an error (Ray itself ends a driver whose head stays unreachable for its
        ``gcs_rpc_server_reconnect_timeout_s``, 60 s by default: the engine reports first).
    :param all_down_timeout: when no actor has been able to start for this long (no node can host one,
        nodes lost), the engine stops with an error; the experiment resumes from its store later.
    """

    address: str | None = attrs.field(default=None, validator=_address)
    runtime_env: dict[str, Any] | None = attrs.field(default=None, validator=_runtime_env)
    num_cpus: float = attrs.field(default=1.0, validator=_amount)
    num_gpus: float | None = attrs.field(default=None, validator=_amount)
    max_concurrency: int | None = attrs.field(default=None, validator=positive)
    local_num_cpus: int | None = attrs.field(default=None, validator=positive)
    lean_local_cluster: bool = True
    ship_sys_path: bool = True
    max_requeues: int = attrs.field(default=3, validator=non_negative)
    ready_timeout: float | str = attrs.field(default=300.0, converter=parse_duration, validator=positive)
    heartbeat: float | str = attrs.field(default=5.0, converter=parse_duration, validator=positive)
    all_down_timeout: float | str = attrs.field(default=600.0, converter=parse_duration, validator=positive)

    def gpus_per_trial(self, trial_gpu_number: int) -> float:
        """GPUs one trial reserves: ``num_gpus``, else the experiment's ``trial_gpu_number``."""
        return float(trial_gpu_number if self.num_gpus is None else self.num_gpus)
