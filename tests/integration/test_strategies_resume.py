"""A search killed with kill -9 resumes the same search, for the strategies that learn.

Each strategy runs 12 trials twice: once straight through (the reference) and once in a process
killed during a trial, then resumed with ``Experiment.resume``. The resumed search must propose
exactly the reference's samples, re-run only the interrupted trial, and never re-run a finished
one: the evolution population, the TPE history and the RL policy (weights and episodes) all come
back from the store. The killed runs start together, in parallel processes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from nascore.engine import TrialStatus
from nascore.experiment import Experiment, ExperimentConfig
from nascore_strategies import TPE, PolicyBasedRL, RegularizedEvolution

from .conftest import JOB, read_log

#: name -> (strategy expression, evaluation call during which the process is killed)
CASES = {
    "evolution": ("RegularizedEvolution(population_size=4, sample_size=2)", 6),
    "evolution-repeats": ("RegularizedEvolution(population_size=3, sample_size=2, repeats=2)", 8),
    "tpe": ("TPE(n_startup_jobs=4)", 7),
    "rl": ("PolicyBasedRL(trial_per_collect=3)", 5),
}
NAMESPACE = {"RegularizedEvolution": RegularizedEvolution, "TPE": TPE, "PolicyBasedRL": PolicyBasedRL}

RUN = """
from nascore.experiment import Experiment, ExperimentConfig
from nascore_strategies import PolicyBasedRL, RegularizedEvolution, TPE
import job
exp = Experiment(job.Space(), job.evaluator("{log}", die_at={die_at}), {strategy},
                 ExperimentConfig(max_trials=12, seed=7, experiment_dir="{dir}"), id="{id}")
exp.run()
"""


@pytest.fixture(scope="module")
def killed(tmp_path_factory):
    """Start every killed run at once; returns the folder (with job.py) once all of them died."""
    root = tmp_path_factory.mktemp("resume")
    (root / "job.py").write_text(JOB)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    processes = {}
    for name, (strategy, die_at) in CASES.items():
        code = RUN.format(log=root / f"{name}.log", die_at=die_at, strategy=strategy, dir=root / "exps", id=name)
        processes[name] = subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(code)], cwd=root, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
    results = {name: (p.wait(timeout=120), p.stderr.read()) for name, p in processes.items()}
    for process in processes.values():
        process.stdout.close()
        process.stderr.close()
    sys.path.insert(0, str(root))
    yield root, results
    sys.path.remove(str(root))
    sys.modules.pop("job", None)


@pytest.mark.parametrize("name", list(CASES))
def test_kill_minus_nine_then_resume_continues_the_same_search(killed, name):
    import job  # written by the fixture

    root, results = killed
    strategy, die_at = CASES[name]
    returncode, stderr = results[name]
    assert returncode == -signal.SIGKILL, stderr

    view = Experiment.view(name, experiment_dir=root / "exps")
    before = view.trials()
    view.close()
    assert before[-1].status is TrialStatus.RUNNING
    assert all(t.status is TrialStatus.SUCCEEDED for t in before[:-1])

    reference_log = root / f"{name}.reference.log"
    reference = Experiment(
        job.Space(), job.evaluator(reference_log), eval(strategy, NAMESPACE),  # noqa: S307 - our own expressions
        ExperimentConfig(max_trials=12, seed=7, experiment_dir=root / "exps"), id=f"{name}-reference",
    )
    assert reference.run() == "DONE"
    expected_calls = read_log(reference_log)

    resumed = Experiment.resume(name, strategy=eval(strategy, NAMESPACE), experiment_dir=root / "exps")  # noqa: S307
    assert resumed.run() == "DONE"
    calls = read_log(root / f"{name}.log")
    # The interrupted evaluation ran once more; nothing that had finished ran again.
    assert calls[:die_at] == expected_calls[:die_at]
    assert calls[die_at:] == expected_calls[die_at - 1 :]
    trials = resumed.trials()
    assert [t.sample for t in trials] == [t.sample for t in reference.trials()]
    assert all(t.status is TrialStatus.SUCCEEDED for t in trials)
    assert sum(t.attempt for t in trials) == len(trials) + 1
