"""Per-trial framework overhead of nascore's engines (and, optionally, of NNI 3.0's).

What is measured: an experiment of ``--trials`` trials (default 1,000) with the ``random`` strategy
(``dedup=False``), the ``simplified`` format and the ``sequential`` engine, on a space of 65,536
tiny architectures, with an evaluator that does no work (nascore builds the model, the function
reports a constant). Then, in the same process, the same models are built directly from the same
samples with ``nascore.fixed_arch(sample)`` (best of ``--repeat`` passes)::

    overhead per trial = (wall time of exp.run() - direct construction time) / trials

so what remains is what the framework adds around a trial: the strategy, validating and freezing
the sample, the store (every state change is written to SQLite before it is acted on), events,
logging calls. Target: <= 1 ms per trial. The script prints figures and PASS/FAIL and always exits 0.

``--nni PYTHON`` runs the same space and evaluator on NNI 3.0's sequential engine in a subprocess
(``_nni_overhead_space.py``, with that Python) and prints both overheads and their ratio.

With ``--training-service``, the same experiment also runs on the ``training-service`` engine
(local warm worker processes) at each ``--concurrency`` (default 1 and 4) for ``--ts-trials``
trials (default 200), with the same no-op evaluator, now run in the workers::

    wall time per trial = wall time of exp.run() / trials

which counts everything: starting the workers, shipping every trial, the worker building the model,
events back, the store, shutting down. The steady state (the interval between trial ends over the
second half of the run, every worker warm by then; see ``steady_state``) is printed beside it. Target: <= 50 ms per trial at concurrency 1. The same is printed
for ``--ts-short-trials`` trials (default 8), where starting the workers dominates: target 8 trials
at concurrency 1 in <= 0.5 s. Before those, the worker start-up time: a local worker pool with one
seat per concurrency is started in this process (torch imported, as in an experiment), timing its
first and its last worker's ``ready`` (best of ``--runs``). ``--worker-start`` picks how workers
start (``spawn``: a new interpreter each, as before templates; ``auto``: forked from a template, the
default; comma-separated to compare, e.g. ``spawn,auto``). With ``--nni``, NNI 3.0's training service (``NasExperimentConfig("ts", ...)``, local)
runs the same space and evaluator at the same concurrencies for ``--nni-ts-trials`` trials each
(default: 8, or 4 per concurrent trial if more; it takes seconds per trial), measured the same way.

    python benchmarks/overhead.py
    python benchmarks/overhead.py --nni /tmp/nni-venv/bin/python        # --nni-trials N to run NNI shorter
    python benchmarks/overhead.py --training-service --nni /tmp/nni-venv/bin/python
    python benchmarks/overhead.py --training-service --no-sequential    # only the training-service section
    python benchmarks/overhead.py --ray --no-sequential                 # the ray engine beside the local pool

With ``--ray``, the ``ray`` engine (plugin ``nascore-ray``) runs the same ``--ts-trials`` on a local Ray
cluster it starts on 127.0.0.1, at each ``--concurrency``, next to the local pool in the same process
(``_ray_overhead.py``): wall and steady-state per trial, and start-up (``run()`` to the first trial
started), the median of ``--runs`` runs of each, ray and the pool in turn. Targets: steady state within
2x the local pool's, start-up under 5 s.
    python benchmarks/overhead.py --training-service --no-sequential --worker-start spawn,auto   # before / after
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn as nn

import nascore
from nascore.evaluators import FunctionalEvaluator
from nascore.experiment import Experiment, ExperimentConfig
from nascore.nn import LayerChoice, ModelSpace, MutableLinear

TARGET_MS = 1.0
os.environ.setdefault("NASCORE_PROGRESS", "off")  # figures to read, not a progress display per trial
TS_TARGET_MS = 50.0
TS_SHORT_TARGET_S = 0.5
RAY_TARGET_RATIO = 2.0  # ray steady state per trial within 2x the local pool's
RAY_STARTUP_TARGET_S = 5.0  # first trial started within 5 s of run()
WIDTHS = [4, 8, 12, 16]
BLOCKS = 4
IN_FEATURES = 8
NNI_SCRIPT = Path(__file__).with_name("_nni_overhead_space.py")


class OverheadSpace(ModelSpace):
    """Linear(width_i) -> LayerChoice(activation) four times, then Linear(1): 4**8 = 65,536 architectures.

    Kept identical to ``_nni_overhead_space.OverheadSpace`` (the NNI side of the comparison).
    """

    def __init__(self):
        super().__init__()
        layers = []
        previous = IN_FEATURES
        for i in range(BLOCKS):
            width = nascore.choice(f"width{i}", WIDTHS)
            layers.append(MutableLinear(previous, width))
            layers.append(LayerChoice([nn.ReLU(), nn.Tanh(), nn.Sigmoid(), nn.Identity()], label=f"act{i}"))
            previous = width
        self.body = nn.Sequential(*layers)
        self.head = MutableLinear(previous, 1)

    def forward(self, x):
        return self.head(self.body(x))


def evaluate(model):
    """No work: the evaluator base class has built ``model``; report a constant."""
    nascore.report_final_result(0.5)


def space_size(space: ModelSpace) -> int:
    return math.prod(len(list(decision.grid_values())) for decision in space.simplify().values())


def construction_seconds(samples: list[dict], repeat: int) -> float:
    """Best of ``repeat`` passes building every sample directly with ``nascore.fixed_arch``."""
    for sample in samples[:10]:  # warm-up
        with nascore.fixed_arch(sample):
            OverheadSpace()
    best = math.inf
    for _ in range(repeat):
        start = time.perf_counter()
        for sample in samples:
            with nascore.fixed_arch(sample):
                OverheadSpace()
        best = min(best, time.perf_counter() - start)
    return best


def run_nascore(trials: int, seed: int, runs: int, repeat: int) -> dict:
    """Run the experiment ``runs`` times (a fresh experiment and folder each time) and keep the fastest."""
    from nascore_strategies import Random

    space = OverheadSpace()
    nascore_logger = logging.getLogger("nascore")
    previous_level = nascore_logger.level
    totals = []
    for _ in range(runs):
        experiment_dir = Path(tempfile.mkdtemp(prefix="nascore-overhead-"))
        try:
            config = ExperimentConfig(
                engine="sequential", format="simplified", max_trials=trials, seed=seed, experiment_dir=experiment_dir
            )
            exp = Experiment(space, FunctionalEvaluator(evaluate), Random(dedup=False), config)
            nascore_logger.setLevel(logging.WARNING)  # quiet during the timed run
            start = time.perf_counter()
            exp.run()
            totals.append(time.perf_counter() - start)
            nascore_logger.setLevel(previous_level)
            records = exp.trials()  # the same samples every run: same seed
            exp.close()
        finally:
            nascore_logger.setLevel(previous_level)
            shutil.rmtree(experiment_dir, ignore_errors=True)
    samples = [dict(t.sample) for t in records]
    total, construct, n = min(totals), construction_seconds(samples, repeat), len(samples)
    return {
        "space_size": space_size(space),
        "decisions": len(space.simplify()),
        "trials": n,
        "succeeded": sum(t.succeeded for t in records),
        "total_s": total,
        "run_totals_s": totals,
        "construct_s": construct,
        "overhead_ms_per_trial": (total - construct) / n * 1e3 if n else float("nan"),
    }


def worker_startup(concurrency: int, runs: int, worker_start: str) -> dict:
    """Seconds to the first and to the last worker's ``ready`` of a local pool of ``concurrency`` seats (best of ``runs``)."""
    from nascore_engines.training_service.gpu import Seat
    from nascore_engines.training_service.pool import WorkerPool

    first, last, kinds = [], [], set()
    for _ in range(runs):
        log_dir = Path(tempfile.mkdtemp(prefix="nascore-overhead-workers-"))
        pool = WorkerPool([Seat(i) for i in range(concurrency)], on_event=lambda event: None, log_dir=log_dir,
                          worker_start=worker_start)
        try:
            start = time.perf_counter()
            pool.start(wait_ready=300)
            first.append(time.perf_counter() - start)
            while len(pool.startup_seconds) < concurrency and pool.broken is None:
                time.sleep(0.0005)
            last.append(time.perf_counter() - start)
            kinds.add(pool.template.kind + " template" if pool.template is not None else "new processes")
        finally:
            pool.shutdown()
            shutil.rmtree(log_dir, ignore_errors=True)
    return {"first_s": min(first), "all_s": min(last), "how": ", ".join(sorted(kinds))}


def run_training_service(trials: int, seed: int, runs: int, concurrency: int, worker_start: str = "auto") -> dict:
    """The same experiment on the training-service engine (local workers), ``runs`` times; keeps the fastest."""
    from nascore_strategies import Random

    space = OverheadSpace()
    nascore_logger = logging.getLogger("nascore")
    engines_logger = logging.getLogger("nascore_engines")
    levels = nascore_logger.level, engines_logger.level
    best: dict | None = None
    totals = []
    for _ in range(runs):
        experiment_dir = Path(tempfile.mkdtemp(prefix="nascore-overhead-ts-"))
        try:
            config = ExperimentConfig(
                engine="training-service", format="simplified", max_trials=trials, seed=seed,
                trial_concurrency=concurrency, experiment_dir=experiment_dir,
            )
            exp = Experiment(space, FunctionalEvaluator(evaluate), Random(dedup=False), config)
            nascore_logger.setLevel(logging.WARNING)
            engines_logger.setLevel(logging.WARNING)
            previous_start = os.environ.get("NASCORE_WORKER_START")
            os.environ["NASCORE_WORKER_START"] = worker_start
            start = time.perf_counter()
            try:
                exp.run()
            finally:
                total = time.perf_counter() - start
                if previous_start is None:
                    os.environ.pop("NASCORE_WORKER_START", None)
                else:
                    os.environ["NASCORE_WORKER_START"] = previous_start
            nascore_logger.setLevel(levels[0])
            engines_logger.setLevel(levels[1])
            records = exp.trials()
            exp.close()
        finally:
            nascore_logger.setLevel(levels[0])
            engines_logger.setLevel(levels[1])
            shutil.rmtree(experiment_dir, ignore_errors=True)
        totals.append(total)
        figures = {
            "concurrency": concurrency,
            "trials": len(records),
            "succeeded": sum(t.succeeded for t in records),
            "total_s": total,
            **steady_state(records),
        }
        if best is None or total < best["total_s"]:
            best = figures
    assert best is not None
    best["run_totals_s"] = totals
    best["ms_per_trial"] = best["total_s"] / best["trials"] * 1e3
    return best


def steady_state(records: list) -> dict:
    """Per-trial figures of a run's trial records, without the start-up before the first trial.

    ``span_ms_per_trial``: first trial started to last trial ended, per trial. ``steady_ms_per_trial``: the
    interval between trial ends over the second half of the run (every worker warm by then, whatever the
    engine's start-up: an engine that starts its workers one after the other is not charged for it twice).
    """
    started = min(t.started for t in records if t.started is not None)
    ends = sorted(t.ended for t in records if t.ended is not None)
    half = len(ends) // 2
    span = (ends[-1] - started) / len(records)
    steady = (ends[-1] - ends[half]) / (len(ends) - 1 - half) if len(ends) - 1 - half > 0 else span
    return {"span_ms_per_trial": span * 1e3, "steady_ms_per_trial": steady * 1e3}


def run_nni_training_service(python: str, trials: int, seed: int, concurrency: int, threads: int) -> dict | None:
    """NNI 3.0's training service (local) on the same space, through ``_nni_overhead_space.py --engine ts``."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    options = [
        "--engine", "ts", "--concurrency", str(concurrency), "--trials", str(trials),
        "--seed", str(seed), "--runs", "1", "--threads", str(threads), "--port", str(port),
    ]
    return _run_nni_script(python, options, "NNI training-service run", in_home=True)


def training_service_section(args: argparse.Namespace) -> None:
    """Print the training-service figures (and NNI's, with ``--nni``), one row per concurrency."""
    for worker_start in args.worker_start:
        print(f"nascore: training-service engine (local workers, worker_start={worker_start}), simplified format, "
              f"random strategy (dedup=False), no-op evaluator, fastest of {args.runs} run(s)")
        for c in args.concurrency:
            w = worker_startup(c, args.runs, worker_start)
            print(f"  worker start-up, {c} seat(s): first ready {w['first_s'] * 1e3:.0f} ms, all ready "
                  f"{w['all_s'] * 1e3:.0f} ms ({w['how']})")
        for trials in (args.ts_short_trials, args.ts_trials):
            for c in args.concurrency:
                r = run_training_service(trials, args.seed, args.runs, c, worker_start)
                runs = ", ".join(f"{t:.2f}" for t in r["run_totals_s"])
                verdict = ""
                if c == 1 and trials == args.ts_short_trials:
                    verdict = f"  target <= {TS_SHORT_TARGET_S:g} s: {'PASS' if r['total_s'] <= TS_SHORT_TARGET_S else 'FAIL'}"
                elif c == 1:
                    verdict = f"  target <= {TS_TARGET_MS:g} ms: {'PASS' if r['ms_per_trial'] <= TS_TARGET_MS else 'FAIL'}"
                print(f"  {trials} trials, concurrency {c}: {r['total_s']:.2f} s ({r['succeeded']} succeeded) = "
                      f"{r['ms_per_trial']:.1f} ms/trial wall, {r['steady_ms_per_trial']:.1f} ms/trial steady "
                      f"(runs: {runs} s){verdict}")
    if not args.nni:
        return
    ours = {c: run_training_service(args.ts_trials, args.seed, args.runs, c) for c in args.concurrency}
    for c in args.concurrency:
        trials = args.nni_ts_trials or max(8, 4 * c)
        n = run_nni_training_service(args.nni, trials, args.seed, c, args.threads)
        if n is None:
            continue
        theirs = n["total_s"] / n["trials"] * 1e3
        ratio = theirs / ours[c]["ms_per_trial"] if ours[c]["ms_per_trial"] > 0 else math.inf
        print(f"NNI {n['nni_version']} training service (local), concurrency {c}: {n['total_s']:.2f} s for {n['trials']} "
              f"trials = {theirs:.1f} ms/trial wall; NNI / nascore: {ratio:.0f}x "
              f"({theirs:.1f} ms vs {ours[c]['ms_per_trial']:.1f} ms per trial)")
        # The same short run on nascore, so worker start-up is spread over as few trials as NNI's.
        short = run_training_service(n["trials"], args.seed, args.runs, c)
        ratio = theirs / short["ms_per_trial"] if short["ms_per_trial"] > 0 else math.inf
        print(f"  nascore with NNI's {n['trials']} trials, concurrency {c}: {short['total_s']:.2f} s = "
              f"{short['ms_per_trial']:.1f} ms/trial wall; NNI / nascore: {ratio:.0f}x")


def ray_section(args: argparse.Namespace) -> None:
    """The ``ray`` engine on a local Ray cluster next to the local pool (same trials) and NNI.

    Each concurrency runs ``--runs`` times, ray and the pool in turn (the machine's noise hits both alike),
    each run in a fresh process that starts once the previous run's Ray processes are gone; the medians are
    compared.
    """
    from _ray_overhead import measure_in_process_of_its_own, ray_floor

    print(f"nascore: ray engine (local Ray cluster on 127.0.0.1) against the local pool, {args.ts_trials} trials, "
          f"median of {args.runs} runs each, in turn")

    def median(runs: list[dict], key: str) -> float:
        return statistics.median(r[key] for r in runs)

    for c in args.concurrency:
        rays, pools, floors, plains = [], [], [], []
        for _ in range(args.runs):
            # Ray's own start-up just before each ray run: the two are compared in pairs (ray.init alone
            # varies by a second between processes here). "lean" is the local cluster the engine starts;
            # "plain" what a plain ray.init starts.
            plains.append(ray_floor("plain"))
            floors.append(ray_floor("lean"))
            ray_run = measure_in_process_of_its_own("ray", args.ts_trials, c, args.seed)
            rays.append({**ray_run, "above_floor_s": ray_run["startup_s"] - floors[-1]["total_s"]})
            pools.append(measure_in_process_of_its_own("pool", args.ts_trials, c, args.seed))

        ray_steady, pool_steady = median(rays, "steady_ms_per_trial"), median(pools, "steady_ms_per_trial")
        startup = median(rays, "startup_s")
        ratio = ray_steady / pool_steady if pool_steady > 0 else math.inf
        ray_runs = ", ".join(f"{r['steady_ms_per_trial']:.1f}" for r in rays)
        pool_runs = ", ".join(f"{r['steady_ms_per_trial']:.1f}" for r in pools)
        startups = ", ".join(f"{r['startup_s']:.1f}" for r in rays)
        print(f"  concurrency {c}: ray {median(rays, 'ms_per_trial'):.1f} ms/trial wall, {ray_steady:.1f} ms/trial "
              f"steady ({ray_runs}), start-up {startup:.1f} s ({startups}); local pool "
              f"{median(pools, 'ms_per_trial'):.1f} ms/trial wall, {pool_steady:.1f} ms/trial steady ({pool_runs}); "
              f"ray / pool steady: {ratio:.2f}x (target <= {RAY_TARGET_RATIO:g}x: "
              f"{'PASS' if ratio <= RAY_TARGET_RATIO else 'FAIL'}; start-up target <= {RAY_STARTUP_TARGET_S:g} s: "
              f"{'PASS' if startup <= RAY_STARTUP_TARGET_S else 'FAIL'})")
        own_runs = ", ".join(f"{f['total_s']:.1f}" for f in floors)
        plain_runs = ", ".join(f"{f['total_s']:.1f}" for f in plains)
        above_runs = ", ".join(f"{r['above_floor_s']:+.1f}" for r in rays)
        print(f"    Ray's own start-up just before each run (fresh process: import ray + the engine's lean local "
              f"cluster, then one actor importing torch and nascore): {median(floors, 'total_s'):.1f} s ({own_runs}); "
              f"nascore's start-up above it, run by run: {median(rays, 'above_floor_s'):+.1f} s ({above_runs}); "
              f"the same with a plain ray.init: {median(plains, 'total_s'):.1f} s ({plain_runs})")
        if args.nni:
            trials = args.nni_ts_trials or max(8, 4 * c)
            n = run_nni_training_service(args.nni, trials, args.seed, c, args.threads)
            if n is not None:
                print(f"  NNI {n['nni_version']} training service (local), concurrency {c}: "
                      f"{n['total_s'] / n['trials'] * 1e3:.1f} ms/trial wall ({n['trials']} trials)")


def run_nni(python: str, trials: int, seed: int, runs: int, repeat: int, threads: int) -> dict | None:
    """Run ``_nni_overhead_space.py`` with ``python`` on NNI's sequential engine."""
    options = [
        "--trials", str(trials), "--seed", str(seed), "--runs", str(runs), "--repeat", str(repeat),
        "--threads", str(threads),
    ]
    return _run_nni_script(python, options, "NNI run")


def _run_nni_script(python: str, options: list[str], what: str, in_home: bool = False) -> dict | None:
    """Run ``_nni_overhead_space.py``; NNI writes under a temporary HOME, deleted after. Its last line is JSON."""
    home = Path(tempfile.mkdtemp(prefix="nni-overhead-home-"))
    command = [python, str(NNI_SCRIPT), *options, "--workdir", str(home / "nni-experiments")]
    env = {**os.environ, "HOME": str(home), "PYTHONWARNINGS": "ignore"}
    env.pop("PYTHONPATH", None)
    try:
        proc = subprocess.run(
            command, capture_output=True, text=True, env=env, timeout=3600, cwd=home if in_home else None
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        print(f"{what} failed: {exc}")
        return None
    finally:
        shutil.rmtree(home, ignore_errors=True)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        print(f"{what} failed (exit code {proc.returncode}); last lines of its output:")
        print("\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:]))
        return None
    try:
        return json.loads(lines[-1])
    except ValueError:
        print(f"{what} printed no result line; last line: {lines[-1]!r}")
        return None


def print_times(figures: dict, construction: str) -> None:
    trials = figures["trials"]
    runs = ", ".join(f"{t:.3f}" for t in figures["run_totals_s"])
    print(f"  exp.run() total:           {figures['total_s']:.3f} s = {figures['total_s'] / trials * 1e3:.3f} ms/trial"
          f" (fastest of runs: {runs} s)")
    print(f"  model construction:        {figures['construct_s'] / trials * 1e3:.3f} ms/trial (direct, {construction})")
    print(f"  framework overhead:        {figures['overhead_ms_per_trial']:.3f} ms/trial")


def sequential_section(args: argparse.Namespace) -> None:
    """Print the sequential-engine figures (and NNI's sequential engine, with ``--nni``)."""
    r = run_nascore(args.trials, args.seed, args.runs, args.repeat)
    print("nascore: sequential engine, simplified format, random strategy (dedup=False), no-op evaluator")
    print(f"  python {sys.version.split()[0]}, torch {torch.__version__}, nascore {nascore.__version__}")
    print(f"  space size:                {r['space_size']:,} architectures ({r['decisions']} decisions)")
    print(f"  trials:                    {r['trials']} ({r['succeeded']} succeeded)")
    print_times(r, "nascore.fixed_arch")
    verdict = "PASS" if r["overhead_ms_per_trial"] <= TARGET_MS else "FAIL"
    print(f"  overhead target:           <= {TARGET_MS:g} ms/trial: {verdict}")

    if args.nni:
        n = run_nni(args.nni, args.nni_trials, args.seed, args.runs, args.repeat, args.threads)
        if n is not None:
            print(f"NNI {n['nni_version']}: sequential engine, simplified format, Random(dedup=False), "
                  f"same space and evaluator (subprocess: {args.nni})")
            print(f"  space size:                {n['space_size']:,} architectures")
            note = "" if n["trials"] == r["trials"] else f"  (fewer than nascore's {r['trials']}: compare per trial)"
            print(f"  trials:                    {n['trials']}{note}")
            print_times(n, "nni.nas.space.model_context")
            ours, theirs = r["overhead_ms_per_trial"], n["overhead_ms_per_trial"]
            ratio = theirs / ours if ours > 0 else math.inf
            print(f"overhead ratio NNI / nascore: {ratio:.2f}x ({theirs:.3f} ms vs {ours:.3f} ms per trial)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Per-trial framework overhead of nascore's engines (figures, not assertions: exits 0).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--trials", type=int, default=1000, help="nascore trials")
    parser.add_argument("--seed", type=int, default=0, help="strategy seed")
    parser.add_argument("--runs", type=int, default=3, help="experiment runs per framework (the fastest is used)")
    parser.add_argument("--repeat", type=int, default=3, help="passes of direct construction (the fastest is used)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--nni", metavar="PYTHON", help="a Python with NNI 3.0 installed: also measure NNI")
    parser.add_argument("--nni-trials", type=int, default=None, help="NNI trials (with --nni; default: --trials)")
    parser.add_argument("--training-service", action="store_true", help="also measure the training-service engine")
    parser.add_argument("--no-sequential", dest="sequential", action="store_false", help="skip the sequential engine")
    parser.add_argument("--ray", action="store_true", help="also measure the ray engine on a local Ray cluster")
    parser.add_argument("--ts-trials", type=int, default=200, help="trials per training-service run")
    parser.add_argument("--ts-short-trials", type=int, default=8, help="trials per short training-service run")
    parser.add_argument("--worker-start", type=lambda v: v.split(","), default=["auto"],
                        help="how training-service workers start: spawn, auto, fork, exec (comma-separated to compare)")
    parser.add_argument("--concurrency", type=lambda v: [int(c) for c in v.split(",")], default=[1, 4],
                        help="training-service concurrencies, comma-separated")
    parser.add_argument("--nni-ts-trials", type=int, default=None,
                        help="NNI training-service trials per concurrency (default: max(8, 4 x concurrency))")
    args = parser.parse_args(argv)
    if args.nni_trials is None:
        args.nni_trials = args.trials
    torch.set_num_threads(args.threads)

    if args.sequential:
        sequential_section(args)
    if args.training_service:
        training_service_section(args)
    if args.ray:
        ray_section(args)
    return 0


if __name__ == "__main__":
    # Run the copy of this file imported as the module ``overhead`` (benchmarks/ is on sys.path when it
    # runs as a script), so the space and the evaluator have import paths, as in real use.
    import importlib

    sys.exit(importlib.import_module(Path(__file__).stem).main())
