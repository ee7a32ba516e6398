"""Torture test: ``kill -9`` a running experiment at random moments, resume it, and check what survived.

The experiment runs in a child process (``python benchmarks/torture.py --child ...``) started in its
own session. The child builds the experiment (or resumes it from the store), prints ``go`` right before
``Experiment.run()``, and the parent kills the child's whole process group with SIGKILL at a uniformly
random moment in ``[0, --window]`` seconds after that line; then it resumes the experiment, and again,
``--kills`` times in all. Some kills land deliberately in the first ``--creation-window`` seconds of a
run that creates the experiment (``--creation-kills`` of them, one per slice of the window, the slices
narrower at its start so that some land in its first milliseconds): the experiment store is being created then, and after such a
kill the experiment id must either not exist (the next run creates it anew, with the same id) or be
whole and resumable. The kills are spread over one experiment per creation-window kill; each
experiment finally runs to its end unkilled and is checked.

The evaluator (:func:`evaluate`, importable, so every resume rebuilds it from the store) sleeps 20-200
ms so that kills land mid-trial, then appends ``<trial id> <sample json>`` to ``completions.log`` in
the experiment's folder (fsync'd) and returns a metric computed from the sample alone (one sample in
``--fail-every`` fails by design instead), so what ran can be compared with what was recorded.

What is counted (the store is only read, with ``ExperimentStore(readonly=True)``, between runs):

- **lost**: a trial recorded finished (SUCCEEDED or FAILED, with its metric) before a kill that is
  missing, changed or no longer finished afterwards; or a completion the evaluator wrote whose trial
  is not recorded (no such trial id, or one with another sample).
- **repeated**: an evaluation that completed again for a trial id already recorded finished (or twice
  in one run); samples duplicated in the store although the strategy deduplicates; trials beyond
  ``max_trials``. A trial cut off after its evaluation returned but before its result was committed
  runs again on resume: that is expected (*reruns*), not a repeat.
- **zombie**: after the final run: trials still WAITING, RUNNING or INTERRUPTED; an experiment left
  RUNNING with no process; processes of a run (its process group, or any process carrying the run's
  marker in its environment: the training-service workers) still alive ``--grace`` seconds after the
  run was killed or ended (they are killed then, so the next run starts clean).
- **wrong**: a recorded result that differs from the one the evaluator computed for that sample, or a
  finished trial whose evaluation never completed.
- **errors**: a store that could not be read after a kill (damaged: not whole, not absent), or a run
  that stopped with an error instead of finishing or being killed (its stderr is shown).

Exit code 0 (PASS) only if every count is zero.

    python benchmarks/torture.py                                  # 20 kills on each engine
    python benchmarks/torture.py --engine sequential --kills 50 --strategy evolution -v
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import attrs
import torch.nn as nn

import nascore
from nascore.errors import NascoreError
from nascore.experiment import ExperimentStore
from nascore.nn import LayerChoice, ModelSpace, MutableLinear
from nascore.trial import get_current_trial

ENGINES = ("sequential", "training-service")
os.environ.setdefault("NASCORE_PROGRESS", "off")  # figures to read, not a progress display per trial
#: Default kill window per engine (seconds after ``go``): a training-service run spends its first
#: seconds starting workers (each imports torch), so its window is longer.
WINDOWS = {"sequential": 1.5, "training-service": 4.0}
COMPLETIONS = "completions.log"
#: Set in each run's environment (and so in its workers'): finds a killed run's leftover processes.
MARKER = "NASCORE_TORTURE_RUN"
SCRIPT = Path(__file__).resolve()
#: A run that has not printed ``go`` after this long, or not finished after RUN_TIMEOUT, is an error.
START_TIMEOUT = 120.0
RUN_TIMEOUT = 300.0

_pause = random.Random()  # seeded from the OS: run_trial seeds the global `random` per trial


# --- what the experiment runs (imported by the child and by training-service workers) ---------------


class TortureSpace(ModelSpace):
    """Two widths and two activations: 4 * 4 * 3 * 3 = 144 small architectures."""

    def __init__(self, features: int = 4) -> None:
        super().__init__()
        width = nascore.choice("width", [4, 8, 16, 32])
        hidden = nascore.choice("hidden", [2, 4, 6, 8])
        self.inp = MutableLinear(features, width)
        self.act = LayerChoice({"relu": nn.ReLU(), "tanh": nn.Tanh(), "id": nn.Identity()}, label="act")
        self.mid = MutableLinear(width, hidden)
        self.act2 = LayerChoice({"relu": nn.ReLU(), "tanh": nn.Tanh(), "id": nn.Identity()}, label="act2")
        self.out = MutableLinear(hidden, 2)

    def forward(self, x: Any) -> Any:
        return self.out(self.act2(self.mid(self.act(self.inp(x)))))


def canonical(sample: dict[str, Any]) -> str:
    """The sample as JSON with sorted keys: how samples are compared."""
    return json.dumps(sample, sort_keys=True)


def _digest(sample: dict[str, Any]) -> bytes:
    return hashlib.sha256(canonical(sample).encode()).digest()


def expected_metric(sample: dict[str, Any]) -> float:
    """The metric :func:`evaluate` returns for ``sample``: a function of the sample alone."""
    return int.from_bytes(_digest(sample)[:6], "big") / 2**48


def fails_by_design(sample: dict[str, Any], fail_every: int) -> bool:
    """Whether :func:`evaluate` raises for ``sample`` (about one sample in ``fail_every``; never if 0)."""
    return fail_every > 0 and _digest(sample)[8] % fail_every == 0


def evaluate(model: nn.Module, log: str, fail_every: int = 10) -> float:
    """Sleep 20-200 ms, append ``<trial id> <sample>`` to ``log`` (fsync'd), return the sample's metric."""
    trial = get_current_trial()
    sample = nascore.get_current_sample()
    time.sleep(_pause.uniform(0.02, 0.2))  # kills must find trials mid-way
    nascore.report_intermediate_result(expected_metric(sample) / 2)
    line = f"{trial.trial_id if trial else -1} {canonical(sample)}\n".encode()
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line)  # one write: a kill cannot leave half a line
        os.fsync(fd)
    finally:
        os.close(fd)
    if fails_by_design(sample, fail_every):
        raise RuntimeError(f"torture: sample {canonical(sample)} fails by design")
    return expected_metric(sample)


def _strategy(name: str) -> Any:
    if name == "random":
        return "random"  # registered name: dedup on; resume finds it in the store
    from nascore_strategies import RegularizedEvolution

    # A population smaller than the budget, so that the search really breeds (dedup on by default).
    return RegularizedEvolution(population_size=8, sample_size=3)


def child_main(args: argparse.Namespace) -> int:
    """Run (create or resume) one experiment; prints ``go`` right before ``run()``, then its status."""
    import logging

    from nascore.evaluators import FunctionalEvaluator
    from nascore.experiment import Experiment, ExperimentConfig
    from nascore.plugin import get_plugins

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    experiment_dir = Path(args.dir)
    strategy = _strategy(args.strategy)
    if args.mode == "create":
        settings: dict[str, Any] = {"fail_fast": 0}  # failures by design are not a setup mistake
        # (kept only where this nascore has the setting: the script also runs against older checkouts)
        settings = {k: v for k, v in settings.items() if k in attrs.fields_dict(ExperimentConfig)}
        config = ExperimentConfig(
            engine=args.engine, max_trials=args.trials, seed=args.seed, trial_concurrency=args.concurrency,
            experiment_dir=experiment_dir, **settings,
        )
        log = experiment_dir / args.id / COMPLETIONS
        evaluator = FunctionalEvaluator(evaluate, log=str(log), fail_every=args.fail_every)
        exp = Experiment(TortureSpace(), evaluator, strategy, config, id=args.id)
    else:
        exp = Experiment.resume(
            args.id, experiment_dir=experiment_dir, strategy=None if isinstance(strategy, str) else strategy
        )
    get_plugins()  # load plugins and build the space now, so that a kill soon after `go` meets the store
    exp.executable_space()
    print("go", flush=True)
    status = exp.run()
    print(f"status {status}", flush=True)
    return 0 if status == "DONE" else 1


# --- the parent: running, killing, inspecting ------------------------------------------------------


@attrs.define
class Report:
    """What one engine's torture found."""

    engine: str
    kills: int = 0
    resumes: int = 0
    creations: int = 0
    runs: int = 0
    experiments: int = 0
    #: (experiment, ms after go, outcome, whether a half-built staging folder was left)
    creation_kills: list[tuple[str, float, str, bool]] = attrs.Factory(list)
    states: Counter[str] = attrs.Factory(Counter)
    trials: int = 0
    completions: int = 0
    reruns: int = 0
    lost: list[str] = attrs.Factory(list)
    repeated: list[str] = attrs.Factory(list)
    zombie_trials: list[str] = attrs.Factory(list)
    zombie_experiments: list[str] = attrs.Factory(list)
    zombie_processes: list[str] = attrs.Factory(list)
    wrong: list[str] = attrs.Factory(list)
    errors: list[str] = attrs.Factory(list)
    #: half-built experiments left by creation-window kills and not cleaned up by a later creation
    staging_left: list[str] = attrs.Factory(list)
    seconds: float = 0.0

    @property
    def zombies(self) -> int:
        return len(self.zombie_trials) + len(self.zombie_experiments) + len(self.zombie_processes)

    @property
    def passed(self) -> bool:
        return not (self.lost or self.repeated or self.zombies or self.wrong or self.errors)


@attrs.define
class Tracked:
    """One experiment under torture and what the parent has seen of it."""

    id: str
    experiment_dir: Path
    #: trial id -> (sample, status, metric) as first seen finished after a run.
    recorded: dict[int, tuple[str, str, float | None]] = attrs.Factory(dict)
    #: per run: (completion lines when it started, trial ids recorded finished when it started).
    runs: list[tuple[int, frozenset[int]]] = attrs.Factory(list)
    lost_ids: set[int] = attrs.Factory(set)
    set_aside: int = 0

    @property
    def root(self) -> Path:
        return self.experiment_dir / self.id

    @property
    def log(self) -> Path:
        return self.root / COMPLETIONS


@attrs.define
class Snapshot:
    """The experiment as the store says between runs."""

    state: str  # "absent", "broken", or the experiment's recorded status
    trials: list[Any] = attrs.Factory(list)
    meta: dict[str, Any] = attrs.Factory(dict)
    error: str | None = None

    def describe(self) -> str:
        if self.state in ("absent", "broken"):
            return self.state
        done = sum(t.status.finished for t in self.trials)
        return f"{self.state}, {len(self.trials)} trials ({done} finished)"


@attrs.define
class Outcome:
    """How one run of the child ended."""

    kind: str  # "killed", "finished", "error"
    after: float | None = None  # seconds after `go` that the kill was sent
    detail: str = ""


def inspect(tracked: Tracked) -> Snapshot:
    """Read the experiment's store (read-only); absent, broken (unreadable or incomplete) or whole."""
    if not tracked.root.exists():
        return Snapshot("absent")
    try:
        with ExperimentStore.open(tracked.experiment_dir, tracked.id, readonly=True) as store:
            meta = store.meta()
            trials = store.trials()
    except NascoreError as exc:
        return Snapshot("broken", error=f"{type(exc).__name__}: {exc}")
    missing = [key for key in ("config", "schema_version") if key not in meta]
    if missing:
        return Snapshot("broken", error=f"the store's meta lacks {', '.join(missing)} (has {sorted(meta)})")
    return Snapshot(str(meta.get("status", "no status")), trials, meta)


def try_resume(tracked: Tracked) -> str:
    """What ``Experiment.resume`` makes of the experiment (it reads the store; nothing runs)."""
    from nascore.experiment import Experiment

    try:
        exp = Experiment.resume(tracked.id, experiment_dir=tracked.experiment_dir, strategy="random")
    except NascoreError as exc:
        return f"refused ({type(exc).__name__}: {str(exc).splitlines()[0]})"
    exp.close()
    return f"accepted, with max_trials={exp.config.max_trials}, engine={exp.config.engine!r}"


def _key(trial: Any) -> tuple[str, str, float | None]:
    return canonical(trial.sample), trial.status.value, trial.metric


def check_recorded(tracked: Tracked, snapshot: Snapshot, report: Report) -> None:
    """Trials recorded finished earlier must still be there, unchanged; remember the newly finished ones."""
    by_id = {t.id: t for t in snapshot.trials}
    for trial_id, before in tracked.recorded.items():
        if trial_id in tracked.lost_ids:
            continue
        now = by_id.get(trial_id)
        if now is None:
            problem = "is gone from the store"
        elif not now.status.finished:
            problem = f"is {now.status.value} again"
        elif _key(now) != before:
            problem = f"changed to {_key(now)}"
        else:
            continue
        tracked.lost_ids.add(trial_id)
        report.lost.append(f"{tracked.id} trial {trial_id}, recorded {before} before a kill, {problem}")
    for trial in snapshot.trials:
        if trial.status.finished and trial.id not in tracked.recorded:
            tracked.recorded[trial.id] = _key(trial)


def read_completions(path: Path) -> list[tuple[int, str] | None]:
    """The evaluator's completion lines (``None`` for a line that does not parse)."""
    if not path.exists():
        return []
    entries: list[tuple[int, str] | None] = []
    for line in path.read_text().splitlines():
        trial_id, _, sample = line.partition(" ")
        try:
            entries.append((int(trial_id), canonical(json.loads(sample))))
        except ValueError:
            entries.append(None)
    return entries


def final_check(tracked: Tracked, snapshot: Snapshot, report: Report, max_trials: int, fail_every: int) -> None:
    """After the final run: compare the store with what ran, and look for leftovers."""
    check_recorded(tracked, snapshot, report)
    entries = read_completions(tracked.log)
    report.completions += len(entries)
    by_id = {t.id: t for t in snapshot.trials}
    report.trials += len(snapshot.trials)

    # Repeats: per run, completions of trials already recorded finished when it started, or twice in it.
    bounds = [start for start, _ in tracked.runs] + [len(entries)]
    for number, (start, finished_before) in enumerate(tracked.runs, 1):
        seen: set[int] = set()
        for entry in entries[start:bounds[number]]:
            if entry is None:
                continue
            trial_id = entry[0]
            if trial_id in finished_before:
                report.repeated.append(f"{tracked.id} trial {trial_id} ran again in run {number}, after it was recorded finished")
            elif trial_id in seen:
                report.repeated.append(f"{tracked.id} trial {trial_id} ran twice in run {number}")
            seen.add(trial_id)

    # Lost: a completion whose trial the store does not have (or has with another sample).
    last: dict[int, str] = {}
    for entry in entries:
        if entry is None:
            report.errors.append(f"{tracked.id}: {tracked.log} has a line that does not parse")
            continue
        trial_id, sample = entry
        trial = by_id.get(trial_id)
        if trial_id in last:
            report.reruns += 1
        if trial is None:
            report.lost.append(f"{tracked.id}: the evaluator completed trial {trial_id} {sample}, the store has no such trial")
        elif canonical(trial.sample) != sample and trial_id not in tracked.lost_ids:
            tracked.lost_ids.add(trial_id)
            report.lost.append(f"{tracked.id}: the evaluator completed trial {trial_id} {sample}, the store records {canonical(trial.sample)}")
        last[trial_id] = sample

    for trial in snapshot.trials:
        if not trial.status.finished:
            report.zombie_trials.append(f"{tracked.id} trial {trial.id} is still {trial.status.value}")
            continue
        if trial.id not in last:
            report.wrong.append(f"{tracked.id} trial {trial.id} is recorded {trial.status.value} but its evaluation never completed")
            continue
        sample = json.loads(last[trial.id])
        if fails_by_design(sample, fail_every):
            want: tuple[str, float | None] = ("FAILED", None)
        else:
            want = ("SUCCEEDED", expected_metric(sample))
        got = (trial.status.value, trial.metric)
        if got != want:
            report.wrong.append(f"{tracked.id} trial {trial.id} is recorded {got}, the evaluator gave {want}")

    status = snapshot.meta.get("status")
    if status == "RUNNING":
        report.zombie_experiments.append(f"{tracked.id} is recorded RUNNING after its last run ended")
    elif status != "DONE":
        report.errors.append(f"{tracked.id} ended with status {status!r}, not DONE")

    counts = Counter(canonical(t.sample) for t in snapshot.trials)
    for sample, count in counts.items():
        if count > 1:
            report.repeated.extend([f"{tracked.id}: sample {sample} is stored {count} times despite dedup"] * (count - 1))
    if len(snapshot.trials) > max_trials:
        excess = len(snapshot.trials) - max_trials
        report.repeated.extend([f"{tracked.id} has {len(snapshot.trials)} trials, max_trials is {max_trials}"] * excess)


# --- processes -------------------------------------------------------------------------------------


def _read_stat(pid: int) -> tuple[str, int] | None:
    """(state, process group) of ``pid`` from /proc, or None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rfind(")") + 2:].split()
    return fields[0], int(fields[2])


def find_processes(marker: str, group: int) -> dict[int, str]:
    """Live processes of one run: in its process group, or carrying its marker in their environment."""
    wanted = f"{MARKER}={marker}".encode()
    found: dict[int, str] = {}
    if not Path("/proc/self/stat").exists():
        return found  # not Linux: leftovers cannot be looked for
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        pid = int(entry.name)
        stat = _read_stat(pid)
        if stat is None or stat[0] in ("Z", "X"):  # gone, or dead and waiting to be reaped
            continue
        try:
            environment = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            environment = []
        if stat[1] == group or wanted in environment:
            try:
                command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
            except OSError:
                command = "?"
            found[pid] = command
    return found


def reap_leftovers(marker: str, group: int, grace: float) -> list[str]:
    """Wait up to ``grace`` s for a run's processes to exit; kill (by pid) and describe those that do not."""
    deadline = time.monotonic() + grace
    found = find_processes(marker, group)
    while found and time.monotonic() < deadline:
        time.sleep(0.02)  # polling the process table: nothing to wait on for processes we are not the parent of
        found = find_processes(marker, group)
    for pid in found:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    return [f"pid {pid} ({command[:120]}) still alive {grace:g} s after run {marker} ended" for pid, command in found.items()]


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()


def _wait_for_go(proc: subprocess.Popen[bytes], timeout: float) -> tuple[bool, bytes]:
    """Read the child's stdout until it says ``go`` (True), ends or times out (False)."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    output = b""
    deadline = time.monotonic() + timeout
    while b"go\n" not in output:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
            return False, output
        chunk = os.read(fd, 4096)
        if not chunk:
            return False, output
        output += chunk
    return True, output


def _read_rest(proc: subprocess.Popen[bytes]) -> bytes:
    """What an ended child left in its stdout (without blocking, should another process hold the pipe)."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    output = b""
    while select.select([fd], [], [], 1.0)[0]:
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        output += chunk
    return output


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no output)"


class Torturer:
    """Runs, kills and resumes the experiments of one engine."""

    def __init__(self, opts: argparse.Namespace, engine: str, workdir: Path, rng: random.Random) -> None:
        self.opts = opts
        self.engine = engine
        self.rng = rng
        self.experiment_dir = workdir / engine / "experiments"
        self.logs = workdir / engine / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.window = opts.window if opts.window is not None else WINDOWS[engine]
        self.report = Report(engine)
        self.attempt = 0
        # Creation-window kill times: one per slice of the window, slices narrower at its start (a store
        # can be created within a few milliseconds), in random order.
        count, width = opts.creation_kills, opts.creation_window
        self.creation_times = [width * ((i + rng.random()) / count) ** 2 for i in range(count)]
        rng.shuffle(self.creation_times)

    def say(self, text: str) -> None:
        if self.opts.verbose:
            print(f"  [{self.engine}] {text}", flush=True)

    def run_child(self, tracked: Tracked, mode: str, kill_after: float | None) -> Outcome:
        """One run of the experiment in a child process, killed ``kill_after`` s after ``go`` (None: never)."""
        self.attempt += 1
        marker = f"{os.getpid()}-{self.engine}-{self.attempt}"
        command = [
            sys.executable, str(SCRIPT), "--child", "--dir", str(self.experiment_dir), "--id", tracked.id,
            "--mode", mode, "--engine", self.engine, "--trials", str(self.opts.trials), "--seed", str(self.opts.seed),
            "--strategy", self.opts.strategy, "--concurrency", str(self.opts.concurrency),
            "--fail-every", str(self.opts.fail_every),
        ]
        stderr_path = self.logs / f"run-{self.attempt}-{tracked.id}-{mode}.log"
        completions = len(read_completions(tracked.log))
        tracked.runs.append((completions, frozenset(tracked.recorded)))
        self.report.runs += 1
        if mode == "create":
            self.report.creations += 1
        else:
            self.report.resumes += 1
        with open(stderr_path, "wb") as stderr:
            proc = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr,
                env={**os.environ, MARKER: marker}, start_new_session=True,
            )
        try:
            outcome = self._drive(proc, kill_after, stderr_path)
        finally:
            _kill_group(proc)
            if proc.stdout is not None:
                proc.stdout.close()
        self.report.zombie_processes.extend(reap_leftovers(marker, proc.pid, self.opts.grace))
        return outcome

    def _drive(self, proc: subprocess.Popen[bytes], kill_after: float | None, stderr_path: Path) -> Outcome:
        went, output = _wait_for_go(proc, START_TIMEOUT)
        if not went:
            _kill_group(proc)
            return Outcome("error", detail=f"exit code {proc.returncode} before it started; {stderr_path}:\n{_tail(stderr_path)}")
        started = time.monotonic()
        try:
            proc.wait(timeout=RUN_TIMEOUT if kill_after is None else kill_after)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            after = time.monotonic() - started
            proc.wait()
            if kill_after is None:
                return Outcome("error", detail=f"still running after {RUN_TIMEOUT:g} s; {stderr_path}:\n{_tail(stderr_path)}")
            return Outcome("killed", after=after)
        output += _read_rest(proc)
        if proc.returncode == 0 and b"status DONE" in output:
            return Outcome("finished")
        return Outcome("error", detail=f"exit code {proc.returncode}; {stderr_path}:\n{_tail(stderr_path)}")

    def after_run(self, tracked: Tracked, label: str) -> Snapshot:
        """Inspect the store after a run; a broken store is an error and is set aside for a fresh start."""
        snapshot = inspect(tracked)
        if snapshot.state == "broken":
            self.report.errors.append(
                f"{tracked.id} after {label}: the store is neither whole nor absent: {snapshot.error}; "
                f"Experiment.resume: {try_resume(tracked)}"
            )
            for trial_id, before in tracked.recorded.items():
                self.report.lost.append(f"{tracked.id} trial {trial_id}, recorded {before}, is in a store that cannot be read")
            tracked.set_aside += 1
            tracked.root.rename(tracked.root.with_name(f"{tracked.id}.broken-{tracked.set_aside}"))
            tracked.recorded.clear()
            tracked.runs.clear()
            tracked.lost_ids.clear()
        else:
            check_recorded(tracked, snapshot, self.report)
        return snapshot

    def torture(self) -> Report:
        opts, report = self.opts, self.report
        started = time.monotonic()
        kills_left = opts.kills
        errors_in_a_row = 0
        failed_runs = 0
        while kills_left > 0 and report.experiments <= 2 * opts.kills + 2 and failed_runs < 5:
            report.experiments += 1
            tracked = Tracked(f"torture-{self.engine}-{report.experiments}", self.experiment_dir)
            quota = math.ceil(kills_left / max(1, len(self.creation_times)))  # one experiment per creation kill
            kills_here = 0
            finished = False
            while kills_here < quota and not finished and errors_in_a_row < 3:
                state = inspect(tracked).state
                mode = "create" if state == "absent" else "resume"
                in_creation_window = mode == "create" and bool(self.creation_times)
                kill_after = self.creation_times[-1] if in_creation_window else self.rng.uniform(0.0, self.window)
                outcome = self.run_child(tracked, mode, kill_after)
                label = f"run {len(tracked.runs)} ({mode})"
                if outcome.kind == "error":
                    errors_in_a_row += 1
                    failed_runs += 1
                    report.errors.append(f"{tracked.id} {label} failed: {outcome.detail}")
                    self.say(f"{tracked.id} {label}: error")
                    self.after_run(tracked, label)
                    continue
                errors_in_a_row = 0
                if outcome.kind == "finished":
                    finished = True
                    self.say(f"{tracked.id} {label}: finished before its kill")
                    break
                kills_here += 1
                kills_left -= 1
                report.kills += 1
                snapshot = self.after_run(tracked, f"kill {report.kills}")
                report.states[snapshot.state] += 1
                assert outcome.after is not None
                if in_creation_window:
                    self.creation_times.pop()
                    staging = any(self.experiment_dir.glob(f".creating-{tracked.id}-*"))
                    report.creation_kills.append((tracked.id, outcome.after * 1000, snapshot.state, staging))
                self.say(f"{tracked.id} {label}: killed {outcome.after * 1000:.0f} ms after start; {snapshot.describe()}")
                if snapshot.state == "DONE":  # killed while exiting: nothing is left to resume
                    finished = True
            if errors_in_a_row >= 3:
                report.errors.append(f"{tracked.id}: given up after 3 failed runs in a row")
                break
            if not finished:
                state = inspect(tracked).state
                mode = "create" if state == "absent" else "resume"
                outcome = self.run_child(tracked, mode, None)
                label = f"final run {len(tracked.runs)} ({mode})"
                self.say(f"{tracked.id} {label}: {outcome.kind}")
                if outcome.kind == "error":
                    failed_runs += 1
                    report.errors.append(f"{tracked.id} {label} failed: {outcome.detail}")
            snapshot = self.after_run(tracked, "its final run")
            if snapshot.state != "broken":
                final_check(tracked, snapshot, report, opts.trials, opts.fail_every)
        report.staging_left = sorted(p.name for p in self.experiment_dir.glob(".creating-*"))
        report.seconds = time.monotonic() - started
        return report


# --- printing --------------------------------------------------------------------------------------


def print_report(report: Report, opts: argparse.Namespace) -> None:
    window = opts.window if opts.window is not None else WINDOWS[report.engine]
    print(f"\n== {report.engine}: {opts.strategy} strategy, {opts.trials} trials per experiment, seed {opts.seed}, "
          f"kills at 0-{window:g} s after start ==")
    print(f"{report.experiments} experiment(s), {report.runs} runs ({report.creations} creating, {report.resumes} resuming), "
          f"{report.seconds:.0f} s")
    outcomes = Counter(outcome for _, _, outcome, _ in report.creation_kills)
    print(f"creation-window kills: {len(report.creation_kills)} (whole {sum(v for k, v in outcomes.items() if k not in ('absent', 'broken'))}, "
          f"absent {outcomes['absent']}, broken {outcomes['broken']})")
    for experiment_id, ms, outcome, staging in report.creation_kills:
        what = "absent (created anew by the next run)" if outcome == "absent" else (
            "broken" if outcome == "broken" else f"whole ({outcome})")
        during = "; killed mid-creation (a staging folder was left)" if staging else ""
        print(f"  {experiment_id} killed {ms:.1f} ms after start: {what}{during}")
    states = ", ".join(f"{state} {count}" for state, count in report.states.most_common())
    print(f"experiment states after kills: {states or '-'}")
    if report.staging_left:
        print(f"staging folders of interrupted creations still there: {', '.join(report.staging_left)}")
    print(f"trials recorded: {report.trials}; evaluations completed: {report.completions} "
          f"({report.reruns} reran a trial cut off before its result was recorded)")
    print(f"zombies: {len(report.zombie_trials)} unfinished trials, {len(report.zombie_experiments)} experiments left RUNNING, "
          f"{len(report.zombie_processes)} leftover processes")
    for title, items in (("lost", report.lost), ("repeated", report.repeated), ("zombie", report.zombie_trials
                         + report.zombie_experiments + report.zombie_processes), ("wrong", report.wrong),
                         ("error", report.errors)):
        for item in items[:10]:
            print(f"  {title}: {item}")
        if len(items) > 10:
            print(f"  ... {len(items) - 10} more {title}")


def print_table(reports: list[Report]) -> None:
    header = f"{'engine':<18}{'kills':>6}{'resumes':>9}{'creation (whole/absent/broken)':>32}{'lost':>6}{'repeated':>10}{'zombie':>8}{'wrong':>7}{'errors':>8}"
    print("\n" + header)
    for report in reports:
        outcomes = Counter(outcome for _, _, outcome, _ in report.creation_kills)
        whole = len(report.creation_kills) - outcomes["absent"] - outcomes["broken"]
        creation = f"{len(report.creation_kills)} ({whole}/{outcomes['absent']}/{outcomes['broken']})"
        print(f"{report.engine:<18}{report.kills:>6}{report.resumes:>9}{creation:>32}{len(report.lost):>6}"
              f"{len(report.repeated):>10}{report.zombies:>8}{len(report.wrong):>7}{len(report.errors):>8}")
    for report in reports:  # one machine-readable line per engine
        print(f"RESULT engine={report.engine} kills={report.kills} resumes={report.resumes} "
              f"creation_kills={len(report.creation_kills)} lost={len(report.lost)} repeated={len(report.repeated)} "
              f"zombie={report.zombies} wrong={len(report.wrong)} errors={len(report.errors)}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=20, help="kills per engine (default 20)")
    parser.add_argument("--engine", choices=(*ENGINES, "both"), default="both", help="default: both, one after the other")
    parser.add_argument("--trials", type=int, default=40, help="max_trials of each experiment (default 40)")
    parser.add_argument("--seed", type=int, default=0, help="experiment seed and seed of the kill schedule")
    parser.add_argument("--strategy", choices=("random", "evolution"), default="random")
    parser.add_argument("--window", type=float, default=None,
                        help="kill at a uniform time in [0, WINDOW] s after the run starts "
                             f"(default: {', '.join(f'{k} {v:g}' for k, v in WINDOWS.items())})")
    parser.add_argument("--creation-kills", type=int, default=None,
                        help="kills in the creation window, one experiment each (default: kills / 7, at least 1)")
    parser.add_argument("--creation-window", type=float, default=0.05, help="seconds (default 0.05)")
    parser.add_argument("--concurrency", type=int, default=2, help="trial_concurrency (training-service; default 2)")
    parser.add_argument("--fail-every", type=int, default=10, help="about one sample in N fails by design (0: none)")
    parser.add_argument("--grace", type=float, default=5.0,
                        help="seconds a run's processes may take to exit after it ends (default 5)")
    parser.add_argument("--workdir", type=Path, default=None, help="keep the experiments here (default: a temporary folder, deleted)")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every run")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--dir", help=argparse.SUPPRESS)
    parser.add_argument("--id", help=argparse.SUPPRESS)
    parser.add_argument("--mode", choices=("create", "resume"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.kills < 1 or args.trials < 1:
        parser.error("--kills and --trials must be at least 1")
    if args.creation_kills is None:
        args.creation_kills = max(1, round(args.kills / 7))
    args.creation_kills = min(args.creation_kills, args.kills)
    return args


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    engines = ENGINES if opts.engine == "both" else (opts.engine,)
    workdir = opts.workdir or Path(tempfile.mkdtemp(prefix="nascore-torture-"))
    workdir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(opts.seed)
    reports = []
    try:
        for engine in engines:
            print(f"torturing the {engine} engine: {opts.kills} kills ...", flush=True)
            report = Torturer(opts, engine, workdir, rng).torture()
            print_report(report, opts)
            reports.append(report)
    finally:
        if opts.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    print_table(reports)
    passed = all(report.passed for report in reports)
    print("PASS" if passed else "FAIL")
    return 0 if passed else 1


if __name__ == "__main__":
    if "--child" in sys.argv[1:]:
        # Run the experiment from the module `torture` (this file imported under its own name), not
        # from __main__, so that the store records importable names for the space and the evaluator.
        import torture

        sys.exit(torture.child_main(torture.parse_args()))
    sys.exit(main())
