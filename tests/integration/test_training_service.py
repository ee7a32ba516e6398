"""Experiments on the training-service engine with local workers: faults, resume after kill -9, shipping."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from nascore.engine import TrialStatus
from nascore.errors import EngineError
from nascore.experiment import Experiment, ExperimentConfig
from nascore.serialization import load_shipped_model, ship_model

JOB = '''
"""A search job for the training-service tests (importable, so experiments resume from the store)."""
import json
import os
import signal
import time

import torch.nn as nn

import nascore
from nascore.evaluators import FunctionalEvaluator
from nascore.nn import LayerChoice, ModelSpace, MutableLinear

FAULTS = ["ok", "raise", "exit", "kill", "loop", "memory"]


class FaultSpace(ModelSpace):
    """One decision: how the trial behaves."""

    def __init__(self):
        super().__init__()
        self.fault = LayerChoice({name: nn.Identity() for name in FAULTS}, label="fault")
        self.fc = MutableLinear(2, 2)

    def forward(self, x):
        return self.fc(self.fault(x))


def misbehave(model):
    fault = nascore.get_current_sample()["fault"]
    print(f"fault={fault}", flush=True)
    if fault == "raise":
        raise RuntimeError("broken on purpose")
    if fault == "exit":
        os._exit(3)
    if fault == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    if fault == "loop":
        while True:
            time.sleep(0.01)
    if fault == "memory":
        import torch
        torch.ones(2**28)
    return sum(p.numel() for p in model.parameters())


class WidthSpace(ModelSpace):
    def __init__(self):
        super().__init__()
        self.fc = MutableLinear(4, nascore.choice("width", [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]))

    def forward(self, x):
        return self.fc(x)


def score(model, log, kill_parent_at=0, experiment_pid=0):
    """Logs every call; on call ``kill_parent_at`` kills the experiment process (kill -9) once."""
    sample = nascore.get_current_sample()
    with open(log, "a") as f:
        f.write(json.dumps(sample) + "\\n")
    calls = sum(1 for _ in open(log))
    marker = log + ".killed"
    if kill_parent_at and calls == kill_parent_at and not os.path.exists(marker):
        open(marker, "w").close()
        os.kill(experiment_pid, signal.SIGKILL)  # not getppid(): a worker may be a warm template's child
    return sample["width"] / 10


def evaluator(log, kill_parent_at=0):
    return FunctionalEvaluator(score, log=str(log), kill_parent_at=kill_parent_at, experiment_pid=os.getpid())
'''


@pytest.fixture
def tsjob(tmp_path):
    (tmp_path / "tsjob.py").write_text(JOB)
    sys.path.insert(0, str(tmp_path))
    import tsjob

    yield tsjob
    sys.path.remove(str(tmp_path))
    sys.modules.pop("tsjob", None)


def test_faulty_trials_never_fail_the_experiment(tmp_path, tsjob):
    from nascore.evaluators import FunctionalEvaluator

    config = ExperimentConfig(
        engine="training-service", trial_concurrency=2, trial_timeout=2, trial_memory_limit="256MB",
        experiment_dir=tmp_path / "exps",
    )
    exp = Experiment(tsjob.FaultSpace(), FunctionalEvaluator(tsjob.misbehave), "grid", config)
    assert exp.run() == "DONE"
    trials = {t.sample["fault"]: t for t in exp.trials()}
    assert sorted(trials) == sorted(tsjob.FAULTS)  # submitted = recorded: one trial per fault, each ended
    assert trials["ok"].status is TrialStatus.SUCCEEDED and trials["ok"].metric == 6.0
    causes = {
        "raise": "RuntimeError: broken on purpose",
        "exit": "exited with code 3",
        "kill": "killed by SIGKILL",
        "loop": "timed out after 2 s (trial_timeout)",
        "memory": "out of memory",
    }
    for fault, cause in causes.items():
        assert trials[fault].status is TrialStatus.FAILED and cause in trials[fault].error, trials[fault].error
        log = exp.path / "trials" / str(trials[fault].id) / "trial.log"
        assert f"fault={fault}" in log.read_text()


def test_kill_minus_nine_then_resume(tmp_path, tsjob):
    run = textwrap.dedent(
        """
        from nascore.experiment import Experiment, ExperimentConfig
        import tsjob
        config = ExperimentConfig(engine="training-service", trial_concurrency=2, max_trials=8, seed=3,
                                  experiment_dir={dir!r})
        Experiment(tsjob.WidthSpace(), tsjob.evaluator({log!r}, kill_parent_at=4), "random", config, id="ts").run()
        """
    )
    resume = 'from nascore.experiment import Experiment\nprint(Experiment.resume("ts", experiment_dir={dir!r}).run())\n'
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    log, exps = str(tmp_path / "calls.log"), str(tmp_path / "exps")

    killed = subprocess.run([sys.executable, "-c", run.format(dir=exps, log=log)], env=env, cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    view = Experiment.view("ts", experiment_dir=exps)
    before = view.trials()
    view.close()
    done_before = {t.id for t in before if t.status is TrialStatus.SUCCEEDED}
    assert 1 <= len(done_before) < 8 and any(not t.status.finished for t in before)

    resumed = subprocess.run([sys.executable, "-c", resume.format(dir=exps)], env=env, cwd=tmp_path,
                             capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0 and "DONE" in resumed.stdout, resumed.stderr
    view = Experiment.view("ts", experiment_dir=exps)
    trials = view.trials()
    view.close()
    assert len(trials) == 8 and all(t.status is TrialStatus.SUCCEEDED for t in trials)
    assert len({t.sample["width"] for t in trials}) == 8  # dedup survived the kill
    calls = [json.loads(line)["width"] for line in open(log).read().splitlines()]
    for trial in trials:
        ran = calls.count(trial.sample["width"])
        if trial.id in done_before:
            assert ran == 1 and trial.attempt == 1  # finished trials never run again
        else:
            assert ran <= trial.attempt  # interrupted ones ran again (those cut off had started once before)
    assert any(t.attempt == 2 for t in trials)


def test_simplified_models_ship_as_data(tsjob):
    from nascore.plugin import get_plugins

    space = get_plugins().formats.get("simplified")().build(tsjob.WidthSpace())
    shipment = ship_model(space.freeze({"width": 3}))
    assert shipment == {"kind": "payload", "payload": {
        "format": "simplified", "space": {"factory": "tsjob:WidthSpace", "args": [], "kwargs": {}}, "sample": {"width": 3},
    }}
    assert load_shipped_model(shipment).build().fc.out_features == 3


def test_asking_for_a_gpu_on_a_machine_without_one_fails_before_the_first_trial(tmp_path, tsjob, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # this machine has no GPU, whatever it really has
    config = ExperimentConfig(engine="training-service", trial_gpu_number=1, experiment_dir=tmp_path / "exps")
    exp = Experiment(tsjob.WidthSpace(), tsjob.evaluator(tmp_path / "log"), "random", config)
    with pytest.raises(EngineError, match="trial_gpu_number = 1, but this machine has no GPU"):
        exp.run()
    assert not (tmp_path / "exps").exists() and not (tmp_path / "log").exists()


SCRIPT = '''
import nascore
from nascore.evaluators import FunctionalEvaluator
from nascore.experiment import Experiment, ExperimentConfig
from nascore.nn import ModelSpace, MutableLinear


class Net(ModelSpace):  # defined in __main__: shipped to the workers with cloudpickle
    def __init__(self):
        super().__init__()
        self.fc = MutableLinear(4, nascore.choice("width", [1, 2, 3]))

    def forward(self, x):
        return self.fc(x)


def train(model):
    print("training width", model.fc.out_features)
    return float(model.fc.out_features)


if __name__ == "__main__":
    config = ExperimentConfig(engine="training-service", trial_concurrency=2, experiment_dir="runs")
    exp = Experiment(Net(), FunctionalEvaluator(train), "grid", config, id="main")
    print(exp.run(), sorted(t.metric for t in exp.trials()))
'''


def test_a_script_whose_space_and_evaluator_live_in_main(tmp_path):
    (tmp_path / "script.py").write_text(SCRIPT)
    result = subprocess.run([sys.executable, "script.py"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "DONE [1.0, 2.0, 3.0]"
    logs = sorted((tmp_path / "runs" / "main" / "trials").glob("*/trial.log"))
    assert sorted(p.read_text() for p in logs) == [f"training width {w}\n" for w in (1, 2, 3)]
