"""Per-trial overhead of the ``ray`` engine on a local Ray cluster (for ``overhead.py --ray``).

The same experiment as ``overhead.py``'s training-service section: the ``random`` strategy
(``dedup=False``), the ``simplified`` format, ``overhead.OverheadSpace`` (65,536 tiny architectures) and
``overhead.evaluate`` (no work: the model is built, a constant reported), now on the ``ray`` engine with
a local cluster it starts itself (127.0.0.1 only, usage statistics off) and stops at the end::

    wall per trial   = wall time of exp.run() / trials         (cluster start, actors, every trial, shutdown)
    steady per trial = interval between trial ends over the second half of the run (overhead.steady_state)
    start-up         = first trial started - exp.run() called  (cluster start, first actor ready)

    python benchmarks/_ray_overhead.py                     # 200 trials at concurrency 1 and 4
    python benchmarks/_ray_overhead.py --trials 50 --concurrency 1,4 --pool   # the local pool beside it
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # `overhead` by its module name, also in the actors

import overhead  # noqa: E402 - after the path entry above

__all__ = ["measure_in_process_of_its_own", "measure_ray", "ray_floor", "wait_for_ray_to_exit"]


def measure_ray(trials: int, concurrency: int, seed: int = 0) -> dict:
    """Run ``trials`` no-op trials on the ``ray`` engine at ``concurrency``; returns the figures.

    Keys: ``trials``, ``succeeded``, ``concurrency``, ``total_s``, ``ms_per_trial`` (wall), ``steady_ms_per_trial``, ``span_ms_per_trial``,
    ``startup_s``. The local cluster gets at least ``concurrency`` CPUs (one per trial actor), as the local pool
    starts ``concurrency`` workers whatever the cores.
    """
    from nascore.evaluators import FunctionalEvaluator
    from nascore.experiment import Experiment, ExperimentConfig
    from nascore_strategies import Random

    loggers = [logging.getLogger(name) for name in ("nascore", "nascore_engines", "nascore_ray")]
    levels = [logger.level for logger in loggers]
    experiment_dir = Path(tempfile.mkdtemp(prefix="nascore-overhead-ray-"))
    try:
        config = ExperimentConfig(
            engine="ray", format="simplified", max_trials=trials, seed=seed, trial_concurrency=concurrency,
            experiment_dir=experiment_dir,
            engine_options={"num_cpus": 1, "local_num_cpus": max(concurrency, os.cpu_count() or 1)},
        )
        exp = Experiment(overhead.OverheadSpace(), FunctionalEvaluator(overhead.evaluate), Random(dedup=False), config)
        for logger in loggers:
            logger.setLevel(logging.WARNING)
        called = time.time()
        start = time.perf_counter()
        exp.run()
        total = time.perf_counter() - start
        records = exp.trials()
        exp.close()
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)
        shutil.rmtree(experiment_dir, ignore_errors=True)
    started = min(t.started for t in records if t.started is not None)
    return {
        "concurrency": concurrency,
        "trials": len(records),
        "succeeded": sum(t.succeeded for t in records),
        "total_s": total,
        "ms_per_trial": total / len(records) * 1e3,
        **overhead.steady_state(records),
        "startup_s": started - called,
    }


_FLOOR = """
import os, sys, time
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
from nascore_ray.cluster import connect, disconnect  # torch and nascore: imported before a search starts
from nascore_ray.options import RayOptions
t0 = time.perf_counter()
import ray
if sys.argv[1] == "lean":  # the local cluster the engine starts (nascore_ray.cluster.connect, lean by default)
    connection = connect(RayOptions(local_num_cpus=1))
else:  # a plain ray.init, as a user would call it
    connection = None
    ray.init(address="local", num_cpus=1, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False)
t1 = time.perf_counter()

@ray.remote
class Ready:
    def ready(self):
        import torch, nascore  # what a trial actor imports before its first trial
        return 1

ray.get(Ready.remote().ready.remote())
t2 = time.perf_counter()
print(t1 - t0, t2 - t1)
disconnect(connection) if connection is not None else ray.shutdown()
"""


def ray_floor(kind: str = "plain") -> dict:
    """Ray's own start-up here, in a fresh process: ``import ray`` and a local cluster (``init_s``), then one actor
    that imports torch and nascore (``actor_s``): what any search on a new local cluster waits for.

    ``kind="plain"``: the cluster of a plain ``ray.init``; ``"lean"``: the lean local cluster the engine starts
    (:func:`nascore_ray.cluster.connect`: no dashboard API server, autoscaler monitor or log monitor).
    """
    wait_for_ray_to_exit()
    result = subprocess.run([sys.executable, "-c", _FLOOR, kind], capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        raise RuntimeError(f"measuring Ray's own start-up failed:\n{result.stderr[-2000:]}")
    init_s, actor_s = (float(v) for v in result.stdout.split()[-2:])
    return {"init_s": init_s, "actor_s": actor_s, "total_s": init_s + actor_s}


_RUN = """
import json, sys
sys.path.insert(0, {folder!r})
import torch
torch.set_num_threads(1)
import overhead, _ray_overhead
figures = (_ray_overhead.measure_ray({trials}, {concurrency}, {seed}) if {kind!r} == "ray"
           else overhead.run_training_service({trials}, {seed}, 1, {concurrency}))
print("FIGURES " + json.dumps({{k: v for k, v in figures.items() if isinstance(v, (int, float))}}))
"""


def measure_in_process_of_its_own(kind: str, trials: int, concurrency: int, seed: int = 0) -> dict:
    """``measure_ray`` (``kind="ray"``) or the local pool's ``overhead.run_training_service`` in a fresh Python.

    Neither run shares a process with the other (no Ray threads or state beside the pool), and a run starts only
    once the processes of the previous local Ray cluster have exited (:func:`wait_for_ray_to_exit`).
    """
    wait_for_ray_to_exit()
    code = _RUN.format(folder=str(Path(__file__).resolve().parent), trials=trials, concurrency=concurrency, seed=seed,
                       kind=kind)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=1800)
    lines = [line for line in result.stdout.splitlines() if line.startswith("FIGURES ")]
    if result.returncode != 0 or not lines:
        raise RuntimeError(f"the {kind} run failed:\n{result.stderr[-3000:]}")
    return json.loads(lines[-1][len("FIGURES "):])


def wait_for_ray_to_exit(timeout: float = 60.0) -> None:
    """Wait until no process of a local Ray cluster (raylet, GCS, workers) is left on this machine (Linux)."""
    limit = time.monotonic() + timeout
    while time.monotonic() < limit:
        if not _ray_processes():
            return
        time.sleep(0.2)


def _ray_processes() -> list[int]:
    found = []
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                command = f.read()
        except OSError:
            continue
        if b"ray::" in command or b"/ray/core/src/ray/" in command or b"ray/_private/" in command:
            found.append(int(entry))
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Per-trial overhead of the ray engine on a local Ray cluster.")
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--concurrency", type=lambda v: [int(c) for c in v.split(",")], default=[1, 4])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pool", action="store_true", help="also measure the local pool (training-service engine)")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    print(f"nascore: ray engine (local cluster), simplified format, random strategy (dedup=False), no-op evaluator, "
          f"{args.trials} trials")
    for c in args.concurrency:
        r = measure_ray(args.trials, c, args.seed)
        line = (f"  ray, concurrency {c}: {r['total_s']:.2f} s for {r['trials']} trials ({r['succeeded']} succeeded) = "
                f"{r['ms_per_trial']:.1f} ms/trial wall, {r['steady_ms_per_trial']:.1f} ms/trial steady, "
                f"start-up {r['startup_s']:.2f} s")
        if args.pool:
            p = overhead.run_training_service(args.trials, args.seed, 1, c)
            ratio = r["steady_ms_per_trial"] / p["steady_ms_per_trial"] if p["steady_ms_per_trial"] else float("nan")
            line += (f"\n  local pool, concurrency {c}: {p['total_s']:.2f} s = {p['ms_per_trial']:.1f} ms/trial wall, "
                     f"{p['steady_ms_per_trial']:.1f} ms/trial steady; ray steady / pool steady: {ratio:.2f}x")
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
