"""Killed or interrupted experiments resume without losing or repeating finished trials."""

from __future__ import annotations

import signal

import pytest

from nascore.engine import TrialStatus
from nascore.experiment import Experiment

from .conftest import read_log

RUN = """
import logging, sys
from nascore.experiment import Experiment, ExperimentConfig
from nascore_strategies import Random
import job
exp = Experiment(job.Space(), job.evaluator("{log}", die_at={die_at}, how="{how}"), {strategy},
                 ExperimentConfig(max_trials=12, seed=7, experiment_dir="{dir}"), id="{id}")
print(exp.run())
print("after run")
"""

RESUME = """
from nascore.experiment import Experiment
exp = Experiment.resume("{id}", experiment_dir="{dir}")
print(exp.run())
"""


def _run(job, exp_id, log, die_at=0, how="kill", strategy='"random"'):
    code = RUN.format(log=log, die_at=die_at, how=how, dir=job.path / "exps", id=exp_id, strategy=strategy)
    return job(code, check=False)


@pytest.mark.parametrize("strategy", ['"random"', '"grid"'])
def test_kill_minus_nine_then_resume(job, strategy):
    reference_log = job.path / "reference.log"
    _run(job, "reference", reference_log, strategy=strategy)
    reference = read_log(reference_log)
    assert len(reference) == 12

    log = job.path / "killed.log"
    killed = _run(job, "killed", log, die_at=5, strategy=strategy)
    assert killed.returncode == -signal.SIGKILL
    view = Experiment.view("killed", experiment_dir=job.path / "exps")
    statuses = [t.status for t in view.trials()]
    view.close()
    assert statuses == [TrialStatus.SUCCEEDED] * 4 + [TrialStatus.RUNNING]

    out = job(RESUME.format(id="killed", dir=job.path / "exps"))
    assert "DONE" in out.stdout
    calls = read_log(log)
    # Trial 5 was cut off once and ran again; no finished trial ran twice; the sequence is the reference's.
    assert calls[:5] == reference[:5] and calls[5:] == reference[4:]
    view = Experiment.view("killed", experiment_dir=job.path / "exps")
    trials = view.trials()
    view.close()
    assert [t.sample for t in trials] == reference
    assert all(t.status is TrialStatus.SUCCEEDED for t in trials)
    assert [t.attempt for t in trials] == [1] * 4 + [2] + [1] * 7


def test_ctrl_c_marks_interrupted_and_resume_finishes(job):
    log = job.path / "int.log"
    result = _run(job, "ctrlc", log, die_at=3, how="int")
    # run() returns INTERRUPTED (no traceback) and the code after it runs.
    assert result.returncode == 0 and result.stdout.split() == ["INTERRUPTED", "after", "run"]
    assert "Traceback" not in result.stderr
    view = Experiment.view("ctrlc", experiment_dir=job.path / "exps")
    assert view.status == "INTERRUPTED"
    assert [t.status for t in view.trials()] == [TrialStatus.SUCCEEDED] * 2 + [TrialStatus.INTERRUPTED]
    view.close()

    job(RESUME.format(id="ctrlc", dir=job.path / "exps"))
    view = Experiment.view("ctrlc", experiment_dir=job.path / "exps")
    trials = view.trials()
    view.close()
    assert view.status == "DONE" and len(trials) == 12
    assert all(t.status is TrialStatus.SUCCEEDED for t in trials)
    keys = [tuple(sorted(t.sample.items())) for t in trials]
    assert len(set(keys)) == 12  # dedup survives the resume


def test_resume_with_a_different_space_is_refused(job):
    import job as job_module  # written by the fixture

    from nascore.errors import ExperimentError
    from nascore.evaluators import FunctionalEvaluator

    _run(job, "base", job.path / "b.log")
    exp = Experiment.resume("base", job_module.Space(features=4), FunctionalEvaluator(lambda m: 1.0), "random",
                            experiment_dir=job.path / "exps")
    exp.run()  # same space: fine (nothing left to do but the budget is already spent)

    import nascore
    from nascore.nn import ModelSpace, MutableLinear

    class Other(ModelSpace):
        def __init__(self):
            super().__init__()
            self.fc = MutableLinear(2, nascore.choice("width", [1, 2]))

        def forward(self, x):
            return self.fc(x)

    with pytest.raises(ExperimentError, match="differs"):
        Experiment.resume("base", Other(), FunctionalEvaluator(lambda m: 1.0), "random",
                          experiment_dir=job.path / "exps").run()
