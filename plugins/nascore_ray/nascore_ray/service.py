"""Trials on warm Ray actors: one actor per seat, trial after trial; events and output stream back as they come.

:class:`RayService` is the :class:`~nascore_engines.training_service.engine.TrialService` of the ``ray``
engine. Each seat has a :class:`~nascore_ray.actor.TrialActor` (``max_restarts=0``) reserving the
trial's ``num_cpus`` / ``num_gpus``, and a thread of this process that hands it one trial at a time and
follows it with long-polling actor calls (see :mod:`nascore_ray.actor`): events go to the engine as
they arrive, the trial's output is appended to ``trial.log`` in the experiment's trial folder. An
evaluator's shipment (its datasets included) is put into Ray's object store once per experiment; an
actor fetches it once.

Faults:

* a trial that raises ends FAILED with the traceback from the node (``run_trial`` in the actor);
* an actor that dies under a trial (its process killed, out of memory, its node lost) is replaced by a
  new actor, which Ray places on the nodes that remain, and the trial is re-queued (a ``retry`` event;
  FAILED after ``max_requeues`` re-queues);
* a trial that outruns ``trial_timeout`` has its actor killed: it ends FAILED and the seat is replaced;
* when the cluster itself is gone (head node lost, connection dropped), or no actor could start for
  ``all_down_timeout``, :meth:`RayService.unavailable` says so: the engine stops with that error and the
  trials still unfinished run again when the experiment is resumed from its store.
"""

from __future__ import annotations

import collections
import logging
import os
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import IO, Any

import attrs

from nascore.engine import TrialEvent, TrialResources, TrialStatus
from nascore.errors import EngineError
from nascore_engines.folders import cannot_write
from nascore_engines.training_service import protocol
from nascore_engines.training_service.engine import ServiceLink
from nascore_engines.training_service.pool import PoolTrial, tail
from nascore_ray.actor import TrialActor, pack, store_shipment, unpack
from nascore_ray.cluster import Connection, check_fits, check_runtime_env, connect, disconnect
from nascore_ray.options import RayOptions

__all__ = ["RayService"]

_log = logging.getLogger(__name__)

#: Actors that die before they are ready this many times in a row break the service (no endless respawning).
MAX_START_FAILURES = 3
#: Seconds a probe of the cluster (is the head still there?) may take.
PROBE_TIMEOUT = 10.0


@attrs.define(eq=False)
class _Seat:
    index: int
    generation: int
    actor: Any
    started: float
    ready: bool = False
    dead: bool = False
    evaluators: set[str] = attrs.field(factory=set)  # keys of the evaluator shipments its actor was handed
    info: dict[str, Any] = attrs.field(factory=dict)
    trial: PoolTrial | None = None
    call: Any = None  # the reference to the trial's first batch, when the call went out from run()
    deadline: float | None = None
    timed_out: float | None = None
    thread: threading.Thread | None = None
    wake: threading.Condition | None = None  # on the service's lock: a trial for this seat, its death, the end

    @property
    def name(self) -> str:
        where = f"pid {self.info.get('pid')} on {self.info.get('host')}" if self.info else "not started"
        node = self.info.get("node_id") or ""
        return f"actor {self.index}.{self.generation} ({where}{', node ' + node[:12] if node else ''})"


class RayService:
    """Runs trials on warm actors of a Ray cluster (see the module documentation).

    :param resources: what each trial may use (concurrency, GPUs, timeout, memory).
    :param options: the engine's :class:`~nascore_ray.options.RayOptions`.
    :param link: the engine's callbacks, called from this service's threads: every trial event, trials to
        re-queue (their actor died), seats that became free outside a trial's end (a new actor is ready).
    :param experiment_dir: the experiment's folder. An actor that sees it (same machine, or a file system the
        nodes share) writes each trial's output straight into the trial's ``trial.log``, as a local worker does;
        the others send it back with their batches and this process writes it.
    """

    name = "ray"

    def __init__(self, resources: TrialResources, options: RayOptions, link: ServiceLink,
                 experiment_dir: Path | None = None) -> None:
        self.resources = resources
        self.experiment_dir = experiment_dir
        self.options = options
        self.seat_count = min(resources.trial_concurrency, options.max_concurrency or resources.trial_concurrency)
        self.num_gpus = options.gpus_per_trial(resources.trial_gpu_number)
        self._link = link
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._seats: dict[int, _Seat] = {}
        self._generation: collections.Counter[int] = collections.Counter()
        self._attempts: dict[int, int] = {}
        self._refs: dict[str, Any] = {}
        self._put_lock = threading.Lock()
        self._start_failures = 0
        self._unspawned: list[int] = []  # seats whose first actor waits for the first actor of all
        self._closing = False
        self._monitor: threading.Thread | None = None
        self._actor_class: Any = None
        self._sys_path: list[str] = []
        self._probe: tuple[str, str] | None = None  # a file only this experiment's folder has: (path, its text)
        self.connection: Connection | None = None
        self.broken: str | None = None
        self.ever_ready = False
        #: How many times an evaluator shipment was put into the object store (once per evaluator).
        self.object_store_puts = 0

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        """Connect (or start a local cluster), check that a trial fits, start the actors, wait for the first."""
        self.connection = connect(self.options)
        import ray

        try:
            check_runtime_env(self.options, self.connection)
            check_fits(ray, self.connection.where, self.options.num_cpus, self.num_gpus, self.resources.trial_memory_limit)
            self._actor_class = ray.remote(TrialActor)
            if self.options.ship_sys_path:
                self._sys_path = [entry or os.getcwd() for entry in sys.path]
            self._probe = _write_probe(self.experiment_dir)
            with self._lock:  # the first actor alone: the others start once it runs a trial (see _spawn_rest)
                self._spawn(0)
                self._unspawned = list(range(1, self.seat_count))
            self._monitor = threading.Thread(target=self._watch, name="nascore-ray-monitor", daemon=True)
            self._monitor.start()
            threading.Thread(target=self._heartbeat, name="nascore-ray-heartbeat", daemon=True).start()
            with self._changed:
                self._changed.wait_for(lambda: self.ever_ready or self.broken is not None, timeout=self.options.ready_timeout)
                if self.broken is not None:
                    raise EngineError(self.broken)
                if not self.ever_ready:
                    raise EngineError(
                        f"no trial actor was ready on {self.connection.where} after {self.options.ready_timeout:g} s "
                        f"(engine_options.ready_timeout): no node could place one ({self._asks()}), or its runtime "
                        "environment is still being built; raise ready_timeout for pip environments"
                    )
        except BaseException:
            self.shutdown()
            raise
        _log.info("Ray service: %d warm actor(s) on %s, each with %s", self.seat_count, self.connection.where, self._asks())

    def shutdown(self) -> None:
        """Kill every actor (trials still running get no event: they end as INTERRUPTED upstream)."""
        with self._changed:
            if self._closing:
                return
            self._closing = True
            seats = list(self._seats.values())
            self._wake_all()
        if "ray" in sys.modules:
            import ray

            for seat in seats:
                try:
                    ray.kill(seat.actor, no_restart=True)
                except Exception:  # noqa: BLE001 - already dead, or the cluster is gone
                    pass
        limit = time.monotonic() + 3.0
        for seat in seats:
            if seat.thread is not None and seat.thread is not threading.current_thread():
                seat.thread.join(timeout=max(0.0, limit - time.monotonic()))
        if self._monitor is not None and self._monitor is not threading.current_thread():
            self._monitor.join(timeout=1.0)
        if self.connection is not None:
            disconnect(self.connection)

    # --- the TrialService protocol --------------------------------------------------------------

    def capacity(self) -> int:
        return self.seat_count

    def free_seats(self) -> int:
        with self._lock:
            if self.broken is not None or self._closing:
                return 0
            return sum(1 for s in self._seats.values() if s.ready and not s.dead and s.trial is None)

    def running(self) -> int:
        with self._lock:
            return sum(1 for s in self._seats.values() if s.trial is not None)

    def run(self, trial: PoolTrial) -> None:
        """Hand ``trial`` to a free warm actor. :raises EngineError: none is free."""
        with self._changed:
            if self.broken is not None:
                raise EngineError(self.broken)
            seat = next((s for s in self._seats.values() if s.ready and not s.dead and s.trial is None), None)
            if seat is None or self._closing:
                raise EngineError(f"no free Ray actor for trial {trial.trial_id}")
            seat.trial = trial
            seat.deadline = seat.timed_out = None
            try:  # the call goes out now; the seat's thread collects it (and meets its failure, if any)
                seat.call = self._start_call(seat, trial)
            except Exception:  # noqa: BLE001 - Ray raises whatever its connection raises
                seat.call = None
            seat.wake.notify()  # its thread only: the other seats, the monitor and the heartbeat sleep on

    def unavailable(self) -> str | None:
        """Why no trial can run any more (``None`` while trials can run)."""
        return self.broken

    def seats(self) -> list[dict[str, Any]]:
        """The current actors: index, generation, whether ready, where they run, the trial they run."""
        with self._lock:
            return [
                {"index": s.index, "generation": s.generation, "ready": s.ready, "dead": s.dead, **s.info,
                 "trial_id": s.trial.trial_id if s.trial is not None else None, "actor": s.actor}
                for s in self._seats.values()
            ]

    # --- seats ----------------------------------------------------------------------------------

    def _wake_all(self) -> None:
        """Wake every thread waiting on the service (called with the lock held: closing, or broken)."""
        self._changed.notify_all()
        for seat in self._seats.values():
            if seat.wake is not None:
                seat.wake.notify()

    def _asks(self) -> str:
        gpus = f", {self.num_gpus:g} GPU" if self.num_gpus else ""
        return f"{self.options.num_cpus:g} CPU{gpus}"

    def _spawn(self, index: int) -> None:
        """Start a new actor for seat ``index`` (called with the lock held)."""
        self._generation[index] += 1
        generation = self._generation[index]
        actor_options: dict[str, Any] = {
            "num_cpus": self.options.num_cpus, "num_gpus": self.num_gpus, "max_restarts": 0, "max_task_retries": 0,
        }
        if self.resources.trial_memory_limit:
            actor_options["memory"] = int(self.resources.trial_memory_limit)
        if self.options.runtime_env is not None and not (self.connection and self.connection.runtime_env_in_job):
            actor_options["runtime_env"] = self.options.runtime_env
        actor = self._actor_class.options(**actor_options).remote(f"{index}.{generation}")
        seat = _Seat(index, generation, actor, time.monotonic(), wake=threading.Condition(self._lock))
        self._seats[index] = seat
        seat.thread = threading.Thread(target=self._seat_main, args=(seat,), name=f"nascore-ray-{index}.{generation}",
                                       daemon=True)
        seat.thread.start()

    def _spawn_rest(self) -> None:
        """Start the other seats' actors (called with the lock held, once the first trial runs or no actor started).

        The first actor starts alone, and the others once it has a trial running, so that the first trial starts
        as soon as one worker process has imported torch and nascore (on a small machine, a few actors importing
        at once each take as long as all of them), and so that a runtime environment is built once, not by every
        actor at the same time.
        """
        unspawned, self._unspawned = self._unspawned, []
        for index in unspawned:
            self._spawn(index)

    def _replace(self, seat: _Seat) -> None:
        """Start a new actor in the place of ``seat``, which died (the cluster may be gone: then we are broken)."""
        with self._changed:
            if self._closing or self.broken is not None or self._seats.get(seat.index) is not seat:
                return
            try:
                self._spawn(seat.index)
                return
            except Exception as exc:  # noqa: BLE001 - Ray raises whatever its connection raises
                failure = exc
        self._break(self._lost_cluster(failure))

    def _seat_main(self, seat: _Seat) -> None:
        import ray

        try:
            info = ray.get(seat.actor.ready.remote(self._sys_path, self._probe))
        except Exception as exc:  # noqa: BLE001 - the actor could not start (placement, runtime env, import)
            self._start_failed(seat, exc)
            return
        with self._changed:
            if seat.dead or self._closing:
                return
            seat.info, seat.ready = info, True
            self.ever_ready = True
            self._start_failures = 0
            self._changed.notify_all()
        _log.debug("Ray service: %s ready", seat.name)
        self._link.kick()
        while True:
            with self._lock:
                seat.wake.wait_for(lambda: seat.trial is not None or seat.dead or self._closing)
                if seat.dead or self._closing:
                    return
                trial = seat.trial
            assert trial is not None
            if not self._run_trial(seat, trial):
                return

    def _start_failed(self, seat: _Seat, exc: BaseException) -> None:
        with self._changed:
            if self._closing or seat.dead:
                return
            seat.dead = True
            self._start_failures += 1
            if not self.ever_ready and self._unspawned:  # the others start anyway: one of them may fit elsewhere
                try:
                    self._spawn_rest()
                except Exception:  # noqa: BLE001 - the cluster is gone: the failure below says so
                    pass
            text = _ray_reason(exc)
            give_up = self._start_failures >= MAX_START_FAILURES or "RuntimeEnv" in type(exc).__name__
        if give_up:
            self._break(
                f"Ray trial actors cannot start on {self.connection.where if self.connection else 'Ray'} "
                f"({self._start_failures} failure(s) in a row): {text}"
            )
            return
        _log.warning("Ray service: %s could not start (%s); starting another", seat.name, text)
        self._replace(seat)

    # --- one trial ------------------------------------------------------------------------------

    def _run_trial(self, seat: _Seat, trial: PoolTrial) -> bool:
        """Run ``trial`` on ``seat``'s actor; returns whether the actor is still there for the next trial."""
        import ray

        log = _DriverLog(trial.log_path)
        try:
            call, seat.call = seat.call, None
            batch = unpack(ray.get(call if call is not None else self._start_call(seat, trial)))
            if self._unspawned:  # the first trial runs: now the other seats' actors start
                with self._lock:
                    self._spawn_rest()
            while True:
                if batch["log"]:  # the actor does not share this process's files: it sent what the trial printed
                    log.write(batch["log"])
                for item in batch["events"]:
                    event = protocol.event_from_dict(item)
                    if event.trial_id not in trial.reporting_ids:
                        continue
                    if event.ends_trial:
                        if log.error is not None:  # its end cannot be recorded faithfully: it reruns on resume
                            event = TrialEvent.abort(trial.trial_id, cannot_write(trial.trial_id, trial.log_path.parent,
                                                                                  log.error))
                        with self._lock:
                            seat.trial = None
                            seat.deadline = None
                        self._emit(event)
                        return True
                    if event.kind == "status" and event.status is TrialStatus.RUNNING and self.resources.trial_timeout:
                        with self._changed:
                            seat.deadline = time.monotonic() + self.resources.trial_timeout
                            self._changed.notify_all()
                    self._emit(event)
                if batch["done"]:
                    break
                batch = unpack(ray.get(seat.actor.poll.remote(trial.trial_id)))
            raise EngineError(f"the Ray actor reported trial {trial.trial_id} done without the trial's end")
        except Exception as exc:  # noqa: BLE001 - the actor, its node or the cluster is gone
            log.close()
            self._seat_died(seat, trial, exc)
            return False
        finally:
            log.close()

    def _seat_died(self, seat: _Seat, trial: PoolTrial, exc: BaseException) -> None:
        with self._changed:
            if self._closing:
                return
            seat.dead = True
            seat.trial = None
            timed_out = seat.timed_out
            self._changed.notify_all()
        if self.broken is not None:
            return
        if not _actor_error(exc) and not self._cluster_alive():
            self._break(self._lost_cluster(exc))
            return
        if timed_out is not None:
            reason = (
                f"trial {trial.trial_id} failed: it timed out after {timed_out:g} s (trial_timeout); its Ray "
                f"{seat.name} was killed and replaced."
            )
            output = tail(trial.log_path)
            if output:
                reason += f"\nLast lines of its output ({trial.log_path}):\n{output}"
            self._replace(seat)
            self._emit(TrialEvent.failed(trial.trial_id, reason))
            return
        reason = f"its Ray {seat.name} died: {_ray_reason(exc)}"
        self._attempts[trial.trial_id] = self._attempts.get(trial.trial_id, 0) + 1
        _log.warning("Ray service: trial %d: %s; re-queued (attempt %d), the seat gets a new actor", trial.trial_id,
                     reason, self._attempts[trial.trial_id])
        try:
            with open(trial.log_path, "a", encoding="utf-8") as log:
                log.write(f"\n--- nascore: this attempt was lost: {reason} ---\n")
        except OSError:
            pass
        self._replace(seat)
        if not self._closing:
            self._link.requeue([trial], reason, self._attempts)

    def _start_call(self, seat: _Seat, trial: PoolTrial) -> Any:
        """Hand ``trial`` to ``seat``'s actor; the reference to its first batch."""
        message = trial.message(False, self.resources.trial_timeout, self.resources.trial_memory_limit)
        message["log_in_place"] = bool(seat.info.get("shares_files"))
        packed = pack(message)
        if trial.evaluator_key in seat.evaluators:  # the actor keeps it: no reference to pass (and borrow) again
            return seat.actor.start.remote(packed, [])
        call = seat.actor.start.remote(packed, [self._evaluator_ref(trial)])
        seat.evaluators.add(trial.evaluator_key)
        return call

    def _evaluator_ref(self, trial: PoolTrial) -> Any:
        """The object-store reference of the trial's evaluator shipment: put once per evaluator, per experiment."""
        with self._put_lock:
            ref = self._refs.get(trial.evaluator_key)
            if ref is None:
                import ray

                ref = self._refs[trial.evaluator_key] = ray.put(store_shipment(trial.evaluator))
                self.object_store_puts += 1
            return ref

    def _emit(self, event: TrialEvent) -> None:
        if self._closing:
            return
        self._link.emit(event)

    # --- the cluster ----------------------------------------------------------------------------

    def _heartbeat(self) -> None:
        """Ask the head now and then whether it is there; report a lost cluster before Ray ends this process."""
        interval = float(self.options.heartbeat)
        while True:
            with self._changed:
                self._changed.wait_for(lambda: self._closing or self.broken is not None, timeout=interval)
                if self._closing or self.broken is not None:
                    return
            if self._cluster_alive(max(PROBE_TIMEOUT, 2 * interval)):
                continue
            self._break(self._lost_cluster(TimeoutError(
                f"the head node did not answer within {max(PROBE_TIMEOUT, 2 * interval):g} s")))
            return

    def _break(self, reason: str) -> None:
        """No trial can run any more: say why; trials still running get no event (they rerun on resume)."""
        with self._changed:
            if self._closing or self.broken is not None:
                return
            self.broken = reason
            for seat in self._seats.values():
                seat.dead, seat.trial, seat.deadline = True, None, None
            self._wake_all()
        _log.error("%s", reason)
        self._link.kick()  # the engine's wait() notices and stops the experiment

    def _cluster_alive(self, timeout: float = PROBE_TIMEOUT) -> bool:
        """Whether the cluster's head still answers (asked on a thread of its own, ``timeout`` seconds at most)."""
        import ray

        answer: list[bool] = []

        def probe() -> None:
            try:
                answer.append(ray.is_initialized() and any(n.get("Alive") for n in ray.nodes()))
            except Exception:  # noqa: BLE001 - any failure to reach the GCS
                answer.append(False)

        thread = threading.Thread(target=probe, name="nascore-ray-probe", daemon=True)
        thread.start()
        thread.join(timeout)
        return bool(answer and answer[0])

    def _lost_cluster(self, exc: BaseException) -> str:
        where = self.connection.where if self.connection else "the Ray cluster"
        return (
            f"lost {where}: {type(exc).__name__}: {_ray_reason(exc)}. The head node or the connection to it is gone; "
            "finished trials are in the experiment's store: resume the experiment once the cluster is back "
            "(unfinished trials run again)"
        )

    def _watch(self) -> None:
        """Kill actors whose trial outran ``trial_timeout``; notice when no actor can start any more."""
        import ray

        with self._changed:
            while not self._closing:
                now = time.monotonic()
                for seat in self._seats.values():
                    if seat.deadline is not None and seat.timed_out is None and seat.deadline <= now and not seat.dead:
                        seat.timed_out = self.resources.trial_timeout
                        _log.info("Ray service: trial %s ran past trial_timeout=%gs; killing %s",
                                  seat.trial.trial_id if seat.trial else None, seat.timed_out or 0, seat.name)
                        try:
                            ray.kill(seat.actor, no_restart=True)
                        except Exception as exc:  # noqa: BLE001
                            _log.debug("killing %s failed: %s", seat.name, exc)
                alive = [s for s in self._seats.values() if s.ready and not s.dead]
                starting = [s.started for s in self._seats.values() if not s.ready and not s.dead]
                if self.ever_ready and not alive and starting and self.broken is None:
                    waited = now - min(starting)
                    if waited > self.options.all_down_timeout:
                        reason = (
                            f"no Ray trial actor could start on {self.connection.where if self.connection else 'Ray'} "
                            f"for {waited:.0f} s (engine_options.all_down_timeout; each asks for {self._asks()}): nodes "
                            "were lost and those left cannot host a trial; resume the experiment when the cluster is back"
                        )
                        threading.Thread(target=self._break, args=(reason,), daemon=True).start()
                deadlines = [s.deadline - now for s in self._seats.values()
                             if s.deadline is not None and s.timed_out is None and s.deadline > now]
                self._changed.wait(timeout=min([1.0, *deadlines]))


class _DriverLog:
    """A trial's ``trial.log`` in the experiment's folder, for output an actor sent back: opened at the first text.

    Where it cannot be written is kept in :attr:`error` (the trial then ends aborted: it reruns on resume).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.error: OSError | None = None
        self._file: IO[bytes] | None = None

    def write(self, text: str) -> None:
        if self.error is not None:
            return
        try:
            if self._file is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._file = open(self.path, "ab")  # noqa: SIM115 - closed by close()
            self._file.write(text.encode("utf-8"))
            self._file.flush()
        except OSError as exc:
            self.error = exc

    def close(self) -> None:
        file, self._file = self._file, None
        if file is not None:
            file.close()


def _write_probe(experiment_dir: Path | None) -> tuple[str, str] | None:
    """A file with a random text in the experiment's folder: an actor that reads the same text there shares its files."""
    if experiment_dir is None:
        return None
    token = uuid.uuid4().hex
    path = experiment_dir / ".ray-files-probe"
    try:
        experiment_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(token, encoding="utf-8")
    except OSError as exc:  # the trials' own writes meet this again and say so; output then comes back with batches
        _log.debug("Ray service: cannot write %s (%s): trial output comes back with the batches", path, exc)
        return None
    return str(path), token


def _actor_error(exc: BaseException) -> bool:
    """Whether ``exc`` says that one actor (its process or its node) died, not that the cluster is gone."""
    try:
        from ray import exceptions
    except ImportError:  # pragma: no cover
        return False
    kinds = tuple(getattr(exceptions, name) for name in ("RayActorError", "ActorUnavailableError", "WorkerCrashedError",
                                                          "NodeDiedError", "OwnerDiedError") if hasattr(exceptions, name))
    return isinstance(exc, kinds)


def _ray_reason(exc: BaseException) -> str:
    """The line of a Ray error that says what happened (they run to many lines)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    for line in lines:
        if line.startswith(("The actor is dead because", "The actor died because")):
            return line if len(line) <= 400 else line[:397] + "..."
    text = lines[0] if lines else type(exc).__name__
    return text if len(text) <= 400 else text[:397] + "..."
