"""One writer per experiment: a second process is refused, a dead one is told from a running one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from nascore.cli import main
from nascore.engine import TrialStatus
from nascore.errors import ExperimentLockedError
from nascore.experiment import Experiment

RUN = textwrap.dedent(
    """
    import sys
    from nascore.experiment import Experiment, ExperimentConfig
    import job
    exp = Experiment(job.Space(), job.gated(sys.argv[1]), "random",
                     ExperimentConfig(max_trials=6, seed=3, experiment_dir=sys.argv[2]), id="exp")
    print(exp.run())
    """
)

GATED = textwrap.dedent(
    '''
    import os
    from pathlib import Path
    import nascore
    from nascore.evaluators import FunctionalEvaluator

    def wait_for_gate(model, folder):
        """Say that trial N started (a file), then wait until the test opens the gate (another file)."""
        folder = Path(folder)
        sample = nascore.get_current_sample()
        (folder / f"started-{os.getpid()}").write_text("x")
        while not (folder / "gate").exists():
            os.sched_yield()
        return sample["width"] / 32 + sample["depth"] / 10

    def gated(folder):
        return FunctionalEvaluator(wait_for_gate, folder=folder)
    '''
)


@pytest.fixture
def running(job, tmp_path):
    """An experiment run by another process, held inside its first trial until the test opens the gate."""
    with open(tmp_path / "job.py", "a") as f:
        f.write(GATED)
    gate = tmp_path / "gates"
    gate.mkdir()
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    proc = subprocess.Popen(
        [sys.executable, "-c", RUN, str(gate), str(tmp_path / "exps")], env=env, cwd=tmp_path,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    started = gate / f"started-{proc.pid}"
    while not started.exists():
        assert proc.poll() is None, proc.communicate()
        os.sched_yield()
    proc.gate = gate  # type: ignore[attr-defined]
    yield proc
    if proc.poll() is None:
        proc.kill()
    proc.communicate()


def _list(tmp_path, capsys):
    assert main(["list", "--json", "--experiment-dir", str(tmp_path / "exps")]) == 0
    return {row["id"]: row for row in json.loads(capsys.readouterr().out)}


def test_a_second_writer_is_refused_naming_the_first(running, tmp_path, capsys):
    with pytest.raises(ExperimentLockedError) as info:
        Experiment.resume("exp", experiment_dir=tmp_path / "exps").run()
    assert f"pid {running.pid}" in str(info.value) and "since" in str(info.value)
    assert _list(tmp_path, capsys)["exp"]["status"] == "RUNNING"
    assert main(["show", "exp", "--experiment-dir", str(tmp_path / "exps")]) == 0
    assert f"RUNNING (by pid {running.pid}" in capsys.readouterr().out

    (running.gate / "gate").write_text("open")
    out, err = running.communicate(timeout=120)
    assert running.returncode == 0 and out.split() == ["DONE"], err
    view = Experiment.view("exp", experiment_dir=tmp_path / "exps")
    trials = view.trials()
    view.close()
    assert len(trials) == 6 and len({json.dumps(t.sample, sort_keys=True) for t in trials}) == 6
    assert all(t.status is TrialStatus.SUCCEEDED and t.attempt == 1 for t in trials)


def test_a_killed_experiment_shows_dead_and_resumes(running, tmp_path, capsys):
    os.kill(running.pid, signal.SIGKILL)
    running.wait()
    row = _list(tmp_path, capsys)["exp"]
    assert row["status"] == "DEAD" and row["heartbeat"] is not None
    assert main(["show", "exp", "--experiment-dir", str(tmp_path / "exps")]) == 0
    assert "DEAD (recorded RUNNING, but no process runs it" in capsys.readouterr().out

    (running.gate / "gate").write_text("open")  # the kill released the lock: resume takes it
    assert Experiment.resume("exp", experiment_dir=tmp_path / "exps").run() == "DONE"
    view = Experiment.view("exp", experiment_dir=tmp_path / "exps")
    trials = view.trials()
    view.close()
    assert len(trials) == 6 and all(t.status is TrialStatus.SUCCEEDED for t in trials)
    assert [t.attempt for t in trials][0] == 2  # the trial cut by the kill ran again, under its own id
    assert _list(tmp_path, capsys)["exp"]["status"] == "DONE"
