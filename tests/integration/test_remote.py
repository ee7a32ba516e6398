"""A search on two remote machines (real OpenSSH servers on loopback); one of them dies mid-trial."""

from __future__ import annotations

import sys

import pytest

from nascore.engine import TrialStatus
from nascore.experiment import Experiment, ExperimentConfig
from nascore_engines.training_service import RemoteMachine, TrainingServiceOptions

from ..engines.training_service.conftest import sshd_factory, user_keys  # noqa: F401 - fixtures

JOB = '''
"""The search job copied to the remote machines."""
import os
import signal
import time
from pathlib import Path

import nascore
from nascore.evaluators import FunctionalEvaluator
from nascore.nn import ModelSpace, MutableLinear


class Space(ModelSpace):
    def __init__(self):
        super().__init__()
        self.fc = MutableLinear(4, nascore.choice("width", list(range(1, 21))))

    def forward(self, x):
        return self.fc(x)


def _descendants(pid):
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = open(f"/proc/{entry}/stat").read()
            except OSError:
                continue
            children.setdefault(int(stat[stat.rindex(")") + 2:].split()[1]), []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def kill_machine(sshd_pid):
    """Kill the machine this trial runs on: its sshd and everything below it, this process last."""
    me, seen = os.getpid(), set()
    while True:
        new = [p for p in [sshd_pid, *_descendants(sshd_pid)] if p not in seen and p != me]
        if not new:
            break
        for pid in new:
            seen.add(pid)
            try:
                os.kill(pid, signal.SIGSTOP)
            except ProcessLookupError:
                pass
    for pid in seen:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    os.kill(me, signal.SIGKILL)


def score(model, marks, a_sshd):
    machine = os.environ["NASCORE_MACHINE"]
    print(f"trial {os.environ['NASCORE_TRIAL_ID']} on {machine}")
    marks = Path(marks)
    if machine == "b":
        while not (marks / "a-done").exists():  # b's trials end after a finished its first one
            time.sleep(0.01)
    elif (marks / "a-done").exists():
        kill_machine(a_sshd)  # a's second trial: the machine dies under it
    else:
        (marks / "a-done").write_text("a finished a trial")
    return {"default": nascore.get_current_sample()["width"] / 20, "machine": machine}
'''


@pytest.fixture
def remotejob(tmp_path):
    code = tmp_path / "code"
    code.mkdir()
    (code / "remotejob.py").write_text(JOB)
    sys.path.insert(0, str(code))
    import remotejob

    yield remotejob
    sys.path.remove(str(code))
    sys.modules.pop("remotejob", None)


def test_search_on_two_machines_survives_one_dying(tmp_path, remotejob, sshd_factory, user_keys):  # noqa: F811
    from nascore.evaluators import FunctionalEvaluator

    a, b = sshd_factory("a"), sshd_factory("b")
    (tmp_path / "known_hosts").write_text(a.known_hosts_line + b.known_hosts_line)
    machines = [
        RemoteMachine(host="127.0.0.1", port=server.port, key_file=user_keys[0], python=sys.executable,
                      workdir=str(tmp_path / f"remote-{name}"), name=name, max_trials=1)
        for name, server in (("a", a), ("b", b))
    ]
    config = ExperimentConfig(
        engine="training-service", trial_concurrency=2, max_trials=8, seed=1, experiment_dir=tmp_path / "exps",
        engine_options=TrainingServiceOptions(
            platform="remote", machines=machines, known_hosts=tmp_path / "known_hosts", code_dir=tmp_path / "code",
            retry_delay=0.5,
        ),
    )
    marks = tmp_path / "marks"
    marks.mkdir()
    evaluator = FunctionalEvaluator(remotejob.score, marks=str(marks), a_sshd=a.proc.pid)
    exp = Experiment(remotejob.Space(), evaluator, "random", config)
    assert exp.run() == "DONE"

    trials = exp.trials()
    assert len(trials) == 8 and all(t.status is TrialStatus.SUCCEEDED for t in trials)  # submitted = recorded
    ran_on = {t.id: t.metrics["machine"] for t in trials}
    assert ran_on[1] == "a" and list(ran_on.values()).count("a") == 1  # a finished one trial, then died
    requeued = [t for t in trials if t.attempt == 2]
    assert len(requeued) == 1 and ran_on[requeued[0].id] == "b"  # the trial a died under finished on b
    for trial in trials:
        assert (exp.path / "trials" / str(trial.id) / "trial.log").read_text() == f"trial {trial.id} on {ran_on[trial.id]}\n"
