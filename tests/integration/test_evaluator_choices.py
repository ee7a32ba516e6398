"""End to end: decisions in the evaluator's arguments are searched with the architecture.

A FunctionalEvaluator with a learning-rate and an optimizer-class choice, and a Lightning
Classification with learning-rate and epoch choices, searched by grid and random on the sequential
and training-service engines; resume after kill -9; export_top_models; one-shot refusal; CGO never
merges trials whose evaluators were frozen with different values.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from nascore.engine import TrialStatus
from nascore.errors import ExperimentError, LabelConflictError
from nascore.experiment import Experiment, ExperimentConfig

JOB = '''
"""A search whose evaluators hold decisions (importable: workers and resume rebuild it)."""
import json
import os
import signal

import pytorch_lightning as pl
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset

import nascore
from nascore.evaluators import FunctionalEvaluator
from nascore.nn import LayerChoice, ModelSpace, MutableLinear


class Space(ModelSpace):
    def __init__(self):
        super().__init__()
        width = nascore.choice("width", [4, 8])
        self.fc1 = MutableLinear(6, width)
        self.act = LayerChoice({"relu": nn.ReLU(), "tanh": nn.Tanh()}, label="act")
        self.fc2 = MutableLinear(width, 3)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


def score(model, lr, optimizer, log, kill_at=0):
    """Records what the trial was given; prefers wide models, lr=0.1 and SGD. May kill its process once."""
    assert type(lr) is float and isinstance(optimizer, type), (lr, optimizer)
    sample = nascore.get_current_sample()
    with open(log, "a") as f:
        f.write(json.dumps({"width": model.fc1.out_features, "act": sample["act"], "lr": lr,
                            "optimizer": optimizer.__name__, "pid": os.getpid()}) + "\\n")
    calls = sum(1 for _ in open(log))
    marker = log + ".killed"
    if kill_at and calls == kill_at and not os.path.exists(marker):
        open(marker, "w").close()
        os.kill(os.getpid(), signal.SIGKILL)
    return model.fc1.out_features / 8 + (lr == 0.1) + (optimizer is torch.optim.SGD) / 10


def functional(log, kill_at=0, lrs=(0.1, 0.01)):
    return FunctionalEvaluator(
        score, lr=nascore.choice("lr", list(lrs)), optimizer=nascore.choice("optimizer", [torch.optim.Adam, torch.optim.SGD]),
        log=str(log), kill_at=kill_at, nascore_optimize_mode="maximize",
    )


class Probe(pl.Callback):
    """Logs the learning rate the optimizer got and the Trainer's max_epochs as validation metrics."""

    def on_validation_epoch_end(self, trainer, pl_module):
        pl_module.log("val_lr", trainer.optimizers[0].param_groups[0]["lr"])
        pl_module.log("val_epochs", float(trainer.max_epochs))


def classification():
    from nascore.evaluators import Classification

    generator = torch.Generator().manual_seed(0)
    x = torch.randn(96, 6, generator=generator)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0).long()
    train = DataLoader(TensorDataset(x[:64], y[:64]), batch_size=16, shuffle=True, generator=torch.Generator().manual_seed(1))
    val = DataLoader(TensorDataset(x[64:], y[64:]), batch_size=32)
    return Classification(
        train_dataloaders=train, val_dataloaders=val, num_classes=3, seed=0, num_sanity_val_steps=0,
        learning_rate=nascore.choice("lr", [0.05, 1e-6]), max_epochs=nascore.choice("epochs", [1, 3]), callbacks=[Probe()],
    )
'''


@pytest.fixture
def job(tmp_path):
    (tmp_path / "choicejob.py").write_text(JOB)
    sys.path.insert(0, str(tmp_path))
    import choicejob

    yield choicejob
    sys.path.remove(str(tmp_path))
    sys.modules.pop("choicejob", None)


def config(tmp_path: Path, **kw) -> ExperimentConfig:
    return ExperimentConfig(experiment_dir=tmp_path / "exps", **kw)


def calls(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()]


def check_functional_trials(exp: Experiment, log: Path) -> None:
    """Each trial's function got its sample's values (plain), and the sample holds the evaluator's labels."""
    trials = [t for t in exp.trials() if t.status is TrialStatus.SUCCEEDED]
    assert trials and all(set(t.sample) == {"width", "act", "lr", "optimizer"} for t in trials)
    got = calls(log)
    for trial in trials:
        optimizer = trial.sample["optimizer"]  # the store keeps a class as its repr
        expected = {"width": trial.sample["width"], "act": trial.sample["act"], "lr": trial.sample["lr"],
                    "optimizer": "SGD" if "SGD" in optimizer else "Adam"}
        assert any({k: c[k] for k in expected} == expected for c in got), (trial.sample, got)
        metric = trial.sample["width"] / 8 + (trial.sample["lr"] == 0.1) + ("SGD" in optimizer) / 10
        assert trial.metric == pytest.approx(metric)


@pytest.mark.parametrize("engine", ["sequential", "training-service"])
def test_grid_searches_every_architecture_with_every_evaluator_value(tmp_path, job, engine):
    log = tmp_path / "calls.log"
    exp = Experiment(job.Space(), job.functional(log), "grid", config(tmp_path, engine=engine, trial_concurrency=2))
    assert exp.run() == "DONE"
    trials = exp.trials()
    assert len(trials) == 2 * 2 * 2 * 2 and all(t.status is TrialStatus.SUCCEEDED for t in trials)
    assert len({json.dumps(t.sample, sort_keys=True) for t in trials}) == 16
    check_functional_trials(exp, log)
    if engine == "training-service":
        assert all(c["pid"] != os.getpid() for c in calls(log))

    best, second = exp.export_top_models(top_k=2)
    assert best == {"width": 8, "act": best["act"], "lr": 0.1, "optimizer": torch.optim.SGD}  # classes mapped back
    assert second["lr"] == 0.1 and second["optimizer"] is torch.optim.SGD and second["width"] == 8
    [model] = exp.export_top_models(formatter="instance")
    assert isinstance(model, job.Space) and model.fc1.out_features == 8
    assert model(torch.randn(2, 6)).shape == (2, 3)
    # the exported sample gives the trial's evaluator back
    frozen = job.functional(log).freeze(best)
    assert frozen.arguments["lr"] == 0.1 and frozen.arguments["optimizer"] is torch.optim.SGD


@pytest.mark.parametrize("engine", ["sequential", "training-service"])
def test_random_search_samples_the_evaluator_values_too(tmp_path, job, engine):
    log = tmp_path / "calls.log"
    exp = Experiment(job.Space(), job.functional(log), "random",
                     config(tmp_path, engine=engine, trial_concurrency=2, max_trials=10, seed=1))
    assert exp.run() == "DONE"
    trials = exp.trials()
    assert len(trials) == 10 and all(t.status is TrialStatus.SUCCEEDED for t in trials)
    assert len({json.dumps(t.sample, sort_keys=True) for t in trials}) == 10  # dedup counts the evaluator's labels
    assert {t.sample["lr"] for t in trials} == {0.1, 0.01}
    check_functional_trials(exp, log)
    assert exp.export_top_models()[0]["lr"] == 0.1


@pytest.mark.parametrize("engine", ["sequential", "training-service"])
def test_lightning_trains_each_trial_with_its_learning_rate_and_epochs(tmp_path, job, engine):
    exp = Experiment(job.Space(), job.classification(), "grid",
                     config(tmp_path, engine=engine, trial_concurrency=2, seed=0, max_trials=8))
    assert exp.run() == "DONE"
    trials = exp.trials()
    assert len(trials) == 8 and all(t.status is TrialStatus.SUCCEEDED for t in trials), [t.error for t in trials]
    assert {(t.sample["lr"], t.sample["epochs"]) for t in trials} == {(0.05, 1), (0.05, 3), (1e-6, 1), (1e-6, 3)}
    for trial in trials:
        assert trial.metrics["val_lr"] == pytest.approx(trial.sample["lr"])  # what the optimizer was given
        assert trial.metrics["val_epochs"] == trial.sample["epochs"]
        assert len(trial.intermediates) == trial.sample["epochs"]
    best = exp.export_top_models()[0]
    assert set(best) == {"width", "act", "lr", "epochs"}
    assert exp.best_trial().metric == max(t.metric for t in trials)
    [model] = exp.export_top_models(formatter="instance")
    assert model(torch.randn(2, 6)).shape == (2, 3)


def test_resume_after_kill_keeps_the_evaluator_values(tmp_path, job):
    log, exps = tmp_path / "calls.log", tmp_path / "exps"
    run = textwrap.dedent(
        f"""
        from nascore.experiment import Experiment, ExperimentConfig
        import choicejob
        config = ExperimentConfig(max_trials=10, seed=3, experiment_dir={str(exps)!r})
        Experiment(choicejob.Space(), choicejob.functional({str(log)!r}, kill_at=4), "random", config, id="ev").run()
        """
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    killed = subprocess.run([sys.executable, "-c", run], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    view = Experiment.view("ev", experiment_dir=exps)
    before = view.trials()
    assert len(before) == 4 and not before[-1].status.finished
    assert view.export_top_models()[0].keys() == {"width", "act", "lr", "optimizer"}  # no evaluator: as stored
    assert view.export_top_models(formatter="instance")[0].fc1.out_features in (4, 8)
    view.close()

    with pytest.raises(ExperimentError, match="differs from the one it was run with"):
        Experiment.resume("ev", job.Space(), job.functional(log, lrs=(0.1, 0.001)), experiment_dir=exps).run()
    exp = Experiment.resume("ev", job.Space(), job.functional(log), experiment_dir=exps)
    assert exp.run() == "DONE"
    trials = exp.trials()
    assert len(trials) == 10 and all(t.status is TrialStatus.SUCCEEDED for t in trials)
    assert [t.sample for t in trials[:4]] == [t.sample for t in before]  # the interrupted trial ran with its own values
    assert trials[3].attempt == 2
    assert len({json.dumps(t.sample, sort_keys=True) for t in trials}) == 10
    check_functional_trials(exp, log)
    assert exp.export_top_models()[0]["optimizer"] in (torch.optim.SGD, torch.optim.Adam)


def test_a_label_shared_by_the_model_and_the_evaluator_is_one_decision(tmp_path, job):
    import nascore
    from nascore.evaluators import FunctionalEvaluator

    seen = []

    def train(model, hidden):
        seen.append((model.fc1.out_features, hidden))
        return hidden

    evaluator = FunctionalEvaluator(train, hidden=nascore.choice("width", [4, 8]))
    exp = Experiment(job.Space(), evaluator, "grid", config(tmp_path))
    assert exp.run() == "DONE"
    assert len(exp.trials()) == 4 and all(width == hidden for width, hidden in seen)

    clash = FunctionalEvaluator(train, hidden=nascore.choice("width", [4, 16]))
    with pytest.raises(LabelConflictError, match="'width' is used by the model space .* and by the evaluator"):
        Experiment(job.Space(), clash, "grid", config(tmp_path / "clash")).run()
    assert not (tmp_path / "clash").exists()


def test_a_bad_candidate_is_found_before_the_first_trial(tmp_path, job):
    import nascore
    from nascore.errors import EvaluatorError

    evaluator = job.classification()
    evaluator = type(evaluator)(
        train_dataloaders=evaluator.train_dataloaders, val_dataloaders=evaluator.val_dataloaders,
        learning_rate=nascore.choice("lr", [0.05, 0.0]), max_epochs=1,
    )
    with pytest.raises(EvaluatorError, match=r"lr=0\.0.*learning_rate must be a positive number"):
        Experiment(job.Space(), evaluator, "random", config(tmp_path)).run()
    assert not (tmp_path / "exps").exists()


def test_one_shot_strategies_refuse_an_evaluator_with_decisions(tmp_path, job):
    from nascore_strategies.oneshot import DARTS

    exp = Experiment(job.Space(), job.classification(), DARTS(), config(tmp_path, format="raw"))
    with pytest.raises(ExperimentError, match=r"DARTS trains with the experiment's evaluator itself.*'lr', 'epochs'"):
        exp.run()
    assert exp.trials() == []


def test_cgo_never_merges_trials_frozen_with_different_values(tmp_path, monkeypatch):
    import importlib

    import nascore

    monkeypatch.syspath_prepend(str(Path(__file__).parents[1] / "cgo"))
    cgo_job = importlib.import_module("cgo_job")
    evaluator = cgo_job.evaluator(max_epochs=1, num_sanity_val_steps=0, learning_rate=nascore.choice("lr", [0.05, 0.01]))
    exp = Experiment(cgo_job.Space(broken=False), evaluator, cgo_job.Every(), ExperimentConfig(
        engine="cgo", format="graph", trial_concurrency=1, experiment_dir=tmp_path,
        engine_options={"batch_waiting_time": 30, "max_concurrency_cgo": 8},
    ))
    assert exp.run() == "DONE"
    trials = exp.trials()
    assert len(trials) == 8 and all(t.status is TrialStatus.SUCCEEDED for t in trials), [t.error for t in trials]
    merged = list((tmp_path / exp.id / "cgo").glob("merged-*"))
    assert len(merged) == 2  # one merged trial per learning rate, the four architectures of each together
    by_lr = {lr: [t for t in trials if t.sample["lr"] == lr] for lr in (0.05, 0.01)}
    assert all(len(group) == 4 for group in by_lr.values())
