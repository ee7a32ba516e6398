"""Connecting to a Ray cluster (or starting a local one), and checking that it can host a trial at all.

A local cluster started by the engine listens on 127.0.0.1 only and has Ray's usage statistics off:
nothing leaves the machine. Ray is imported here, when the engine starts, never when the plugin loads.

By default (``RayOptions.lean_local_cluster``) that local cluster is a head node without the three
Python services a search does not use: the dashboard's API server (``ray list``, job submission), the
autoscaler's monitor and the log monitor (this engine sets ``log_to_driver=False``; trial output goes to
the trial folders). Each imports Ray in a process of its own while the first trial actor imports
torch: on two cores, ``ray.init`` plus the first actor took 4.5-6.0 s with them and 3.4-4.0 s without
(``benchmarks/overhead.py --ray``). Starting the node this way uses Ray's own ``Node`` class, as
``ray.init`` does; where this Ray's version does not take it, the engine falls back to ``ray.init``.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

import attrs

from nascore.errors import EngineError
from nascore_ray.options import RayOptions

__all__ = ["Connection", "check_fits", "check_runtime_env", "connect", "disconnect", "quiet_ray"]

_log = logging.getLogger(__name__)


def quiet_ray(loopback: bool = False) -> None:
    """Environment for a Ray started from this process: no usage statistics; with ``loopback``, 127.0.0.1 only.

    Ray reads the loopback switch when it is imported (and its processes inherit it): call this before
    ``import ray``. Values the user set already are kept.
    """
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_DISABLE_USAGE_STATS", "1")
    if loopback:
        # Ray's switch for "single-machine cluster": its node address becomes 127.0.0.1 and nothing binds elsewhere.
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")


@attrs.define
class Connection:
    """This process's connection to Ray, as the engine found or made it.

    :ivar owned: the engine called ``ray.init`` (and calls ``ray.shutdown`` at the end: :func:`disconnect`).
    :ivar where: the cluster, in messages.
    :ivar runtime_env_in_job: ``runtime_env`` went to ``ray.init`` (job-wide); else it goes to each actor.
    :ivar head: the lean local head node the engine started (its processes are stopped by :func:`disconnect`).
    """

    owned: bool
    where: str
    runtime_env_in_job: bool
    head: Any = None


def connect(options: RayOptions) -> Connection:
    """Use this process's Ray connection, or connect to ``options.address``, or start a local cluster."""
    local = options.address is None
    if "ray" not in sys.modules:
        quiet_ray(loopback=local)
    elif local:
        quiet_ray()
    import ray

    if ray.is_initialized():
        where = _describe_connected(ray)
        _log.info("Using this process's Ray connection (%s); engine_options.address is not used", where)
        return Connection(owned=False, where=where, runtime_env_in_job=False)
    common: dict[str, Any] = {"log_to_driver": False, "runtime_env": options.runtime_env}
    head = None
    try:
        head = _lean_head(options.local_num_cpus) if local and options.lean_local_cluster else None
        if head is not None:  # our own head node, by its address: never a cluster `ray start` left here
            try:
                ray.init(address=head.address, **common)
            except BaseException:
                _stop(head)
                raise
        elif local:  # "local": a new cluster of our own, never one that `ray start` (or a test's Cluster) left here
            ray.init(address="local", num_cpus=options.local_num_cpus, include_dashboard=False,
                     _node_ip_address="127.0.0.1", **common)
        else:
            _init_remote(ray, options.address, common)
    except (ConnectionError, RuntimeError, ValueError, TimeoutError) as exc:
        if local:
            raise EngineError(f"cannot start a local Ray cluster: {type(exc).__name__}: {exc}") from exc
        hint = (f" Ray Client's server for this driver died as it started, {CLIENT_SERVER_ATTEMPTS} times: "
                f"{CLIENT_SERVER_CRASH_HINT}." if _client_server_crashed(exc, options.address) else "")
        raise EngineError(
            f"cannot connect to the Ray cluster at engine_options.address = {options.address!r}: "
            f"{type(exc).__name__}: {exc}.{hint} Give 'auto' (this machine joined a cluster with `ray start`), "
            "'ray://<head>:10001' (Ray Client) or '<head>:6379' (the GCS), or leave it out to start a local cluster"
        ) from exc
    where = "a local Ray cluster (127.0.0.1)" if local else f"{options.address!r} ({_describe_connected(ray)})"
    return Connection(owned=True, where=where, runtime_env_in_job=options.runtime_env is not None, head=head)


#: How many times :func:`connect` asks a Ray Client proxy for a server when that server dies as it starts.
CLIENT_SERVER_ATTEMPTS = 3

#: What the head node's operator can do about it (in the warning and in the error).
CLIENT_SERVER_CRASH_HINT = (
    "a known Ray bug (ray-project/ray#63202: the proxy forks it while gRPC threads run); start the head node "
    "with GRPC_ENABLE_FORK_SUPPORT=0 in its environment to avoid it"
)

#: The marks of that crash in the error Ray Client hands back: the proxy saw the server exit, or saw it a zombie.
_CLIENT_SERVER_CRASH = ("Starting Ray client server failed", "ZombieProcess")


def _client_server_crashed(exc: BaseException, address: str) -> bool:
    """Whether ``exc`` is Ray Client's "your server died as it started" (a new connection may well work)."""
    return (address.startswith("ray://") and isinstance(exc, ConnectionError)
            and any(mark in str(exc) for mark in _CLIENT_SERVER_CRASH))


def _init_remote(ray: Any, address: str, common: dict[str, Any]) -> None:
    """``ray.init(address)``; for a ``ray://`` address, again when the proxy's server for this driver crashed.

    A Ray Client proxy starts one server process per driver. That process now and then dies as the proxy
    forks it (:data:`CLIENT_SERVER_CRASH_HINT`; about one connection in three on a busy two-core head
    node), before any of the search runs: a new connection gets a new server, so the engine asks up to
    :data:`CLIENT_SERVER_ATTEMPTS` times before it gives up. Any other failure is raised at once. Each
    failed try takes Ray Client about 40 s (its log stream waits out the proxy's timeouts before
    ``ray.init`` raises); nothing of nascore's waits.
    """
    for attempt in range(1, CLIENT_SERVER_ATTEMPTS + 1):
        try:
            ray.init(address=address, **common)
            return
        except ConnectionError as exc:
            if attempt == CLIENT_SERVER_ATTEMPTS or not _client_server_crashed(exc, address):
                raise
            _log.warning("Ray Client's server at %s died as it started (attempt %d of %d; %s); connecting again",
                         address, attempt, CLIENT_SERVER_ATTEMPTS, CLIENT_SERVER_CRASH_HINT)
            if ray.is_initialized():
                ray.shutdown()


def disconnect(connection: Connection) -> None:
    """End a connection the engine made: ``ray.shutdown``, then stop the lean head node it started, if any."""
    if not connection.owned:
        return
    import ray

    try:
        ray.shutdown()
    finally:
        head, connection.head = connection.head, None
        if head is not None:
            _stop(head)


def _lean_head(num_cpus: int | None) -> Any:
    """Start a head node on 127.0.0.1 without the dashboard API server, autoscaler monitor and log monitor.

    ``None`` when this version of Ray's ``Node`` / ``RayParams`` does not take these settings (the caller then
    uses ``ray.init``). The node's reaper process stops it if this process dies before :func:`disconnect`.
    """
    try:
        from ray._private.node import Node
        from ray._private.parameter import RayParams
    except ImportError:
        return None

    class LeanNode(Node):  # type: ignore[misc, valid-type]
        def start_api_server(self, *args: Any, **kwargs: Any) -> None:
            self._webui_url = None  # no dashboard / job / state API server: a search uses none of them

    try:
        params = RayParams(node_ip_address="127.0.0.1", num_cpus=num_cpus, include_dashboard=False,
                           include_log_monitor=False, no_monitor=True)
        return LeanNode(ray_params=params, head=True, shutdown_at_exit=False, spawn_reaper=True)
    except (TypeError, AttributeError) as exc:  # another Ray version's private API
        _log.debug("Ray: cannot start a lean head node (%s: %s); using ray.init", type(exc).__name__, exc)
        return None


def _stop(head: Any) -> None:
    try:
        head.kill_all_processes(check_alive=False, allow_graceful=True)
    except Exception as exc:  # noqa: BLE001 - its reaper stops what is left when this process ends
        _log.warning("Ray: stopping the local head node failed: %s: %s", type(exc).__name__, exc)


def _describe_connected(ray: Any) -> str:
    try:
        context = ray.get_runtime_context()
        address = getattr(context, "gcs_address", None)
        nodes = [n for n in ray.nodes() if n.get("Alive")]
    except Exception:  # noqa: BLE001 - only for messages
        return "the Ray cluster this process is connected to"
    return f"the Ray cluster at {address or '?'} ({len(nodes)} node(s))"


def check_fits(ray: Any, where: str, num_cpus: float, num_gpus: float, memory: int | None = None) -> None:
    """Raise :class:`EngineError` unless some alive node of the cluster can host one trial's actor.

    A GPU request on a cluster without GPUs is named as such; it is an error before the first trial.
    """
    need = {"CPU": num_cpus, "GPU": num_gpus, "memory": float(memory or 0)}
    need = {key: value for key, value in need.items() if value > 0}
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    if any(all(node.get("Resources", {}).get(key, 0.0) >= value for key, value in need.items()) for node in nodes):
        return
    totals = ray.cluster_resources()
    if num_gpus > 0 and totals.get("GPU", 0) <= 0:
        raise EngineError(
            f"each trial asks for {num_gpus:g} GPU (engine_options.num_gpus, else trial_gpu_number), but {where} has "
            f"no GPU ({len(nodes)} node(s), {totals.get('CPU', 0):g} CPU(s)); set engine_options.num_gpus = 0 (and "
            "trial_gpu_number = 0) to train on CPUs, or connect to a cluster with GPU nodes"
        )
    largest = ", ".join(
        "{" + ", ".join(f"{k}: {node.get('Resources', {}).get(k, 0):g}" for k in need) + "}" for node in nodes[:8]
    )
    asked = ", ".join(f"{key}: {value:g}" for key, value in need.items())
    raise EngineError(
        f"no node of {where} can host one trial: each asks for {{{asked}}} (engine_options.num_cpus / num_gpus, "
        f"trial_memory_limit), and its nodes have {largest or 'nothing'}; ask for less per trial or add nodes"
    )


def _local_paths(runtime_env: dict[str, Any]) -> list[str]:
    """The ``working_dir`` / ``py_modules`` entries of ``runtime_env`` that are local paths, not URIs."""
    found = []
    working_dir = runtime_env.get("working_dir")
    if working_dir is not None and "://" not in str(working_dir):
        found.append(f"working_dir = {str(working_dir)!r}")
    for module in runtime_env.get("py_modules") or []:
        if not isinstance(module, (str, os.PathLike)) or "://" not in str(module):
            found.append(f"py_modules entry {module!r}")
    return found


def check_runtime_env(options: RayOptions, connection: Connection) -> None:
    """Raise :class:`EngineError` for a ``runtime_env`` that Ray would refuse at the first actor.

    Ray uploads local directories (``working_dir``, ``py_modules``) only for a whole job, given to
    ``ray.init``; when this process was connected to Ray before the engine started, the engine can
    only give ``runtime_env`` to each actor, where those must be URIs.
    """
    if options.runtime_env is None or connection.runtime_env_in_job:
        return
    local = _local_paths(options.runtime_env)
    if local:
        raise EngineError(
            f"engine_options.runtime_env has local {' and '.join(local)}, but this process was already connected to "
            f"{connection.where} before the experiment started, and Ray uploads local directories only for a whole "
            "job (ray.init). Give that runtime_env to your own ray.init(runtime_env=...) and leave it out of "
            "engine_options, or give remote URIs ('s3://.../code.zip'), or do not call ray.init first (the engine "
            "then connects to engine_options.address itself and uploads the directories)"
        )
