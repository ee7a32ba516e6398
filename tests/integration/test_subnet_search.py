"""Searching a trained supernet with multi-trial strategies (issue 13, point 2: SPOS / once-for-all).

A random-oneshot experiment trains a supernet on digits; SubnetEvaluator then scores each trial of
an evolution / tpe / random search as a sub-net with the supernet's weights, batch norm recalibrated,
without training, on every engine (in process, local workers, cgo, a remote machine over SSH).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset

import nascore
from nascore.errors import EvaluatorError
from nascore.experiment import Experiment, ExperimentConfig
from nascore.nn import LayerChoice, ModelSpace, MutableLinear, Repeat
from nascore_strategies.oneshot import RandomOneShot, SubnetEvaluator

from ..engines.training_service.conftest import sshd_factory, user_keys  # noqa: F401 - fixtures
from .conftest import digits_classification


class Mlp(ModelSpace):
    """Batch norm in the stem, per-block op and hidden-width choices under a Repeat."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Linear(64, 64), nn.BatchNorm1d(64), nn.ReLU())

        def block(i: int) -> LayerChoice:
            hidden = nascore.choice(f"hidden{i}", [32, 64])
            mlp = nn.Sequential(MutableLinear(64, hidden), nn.ReLU(), MutableLinear(hidden, 64))
            return LayerChoice({"mlp": mlp, "tanh": nn.Sequential(nn.Linear(64, 64), nn.Tanh()), "skip": nn.Identity()},
                               label=f"block{i}")

        self.body = Repeat(block, (1, 3), label="depth")
        self.head = nn.Linear(64, 10)

    def forward(self, x):
        return self.head(self.body(self.stem(x)))


def _loaders():
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x, y = torch.tensor(x / 16.0, dtype=torch.float32), torch.tensor(y)
    train = DataLoader(TensorDataset(x[:1400], y[:1400]), batch_size=64, shuffle=True, generator=torch.Generator().manual_seed(0))
    val = DataLoader(TensorDataset(x[1400:], y[1400:]), batch_size=200)
    return train, val


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    directory = tmp_path_factory.mktemp("supernet")
    torch.manual_seed(0)
    exp = Experiment(Mlp(), digits_classification(max_epochs=4), RandomOneShot(top_k=1),
                     ExperimentConfig(format="raw", experiment_dir=directory, seed=0))
    assert exp.run() == "DONE"
    return exp


def _search(evaluator, tmp_path, engine="sequential", strategy="evolution", trials=12):
    format_name = "graph" if engine == "cgo" else "raw"  # the evaluator builds the sub-net itself: any format
    config = ExperimentConfig(format=format_name, engine=engine, experiment_dir=tmp_path, max_trials=trials, seed=1)
    exp = Experiment(Mlp(), evaluator, strategy, config)
    assert exp.run() == "DONE"
    trials_ = exp.trials()
    assert len(trials_) == trials and all(t.succeeded for t in trials_), [t.error for t in trials_]
    return exp


def test_an_inherited_weights_search_beats_the_same_search_on_untrained_subnets(trained, tmp_path):
    train, val = _loaders()
    inherited = SubnetEvaluator.from_experiment(trained, train_dataloaders=train, val_dataloaders=val, recalibration_batches=5)
    untrained_weights = RandomOneShot(seed=0).create_supernet(Mlp()).state_dict()
    untrained = SubnetEvaluator(Mlp(), untrained_weights, train_dataloaders=train, val_dataloaders=val, recalibration_batches=5)
    best = _search(inherited, tmp_path / "a").best_trial().metric
    baseline = _search(untrained, tmp_path / "b").best_trial().metric
    assert best > 0.8 and best > baseline + 0.3, (best, baseline)


def test_a_trial_scores_the_subnet_the_supernet_gives(trained):
    train, val = _loaders()
    evaluator = SubnetEvaluator.from_experiment(trained, train_dataloaders=train, val_dataloaders=val, recalibration_batches=5)
    sample = {"depth": 2, "block0": "mlp", "hidden0": 32, "block1": "skip"}
    subnet = evaluator.subnet(sample)
    assert not any(isinstance(m, nascore.nn.MutableModule) for m in list(subnet.modules())[1:])
    assert len(subnet.body) == 2 and isinstance(subnet.stem[1], nn.BatchNorm1d)
    assert subnet.stem[1].num_batches_tracked == 5  # recalibrated on five batches
    assert 0.0 <= evaluator.evaluate_module(subnet) <= 1.0


@pytest.mark.parametrize("engine", ["training-service", "cgo"])
@pytest.mark.parametrize("strategy", ["random", "tpe"])
def test_every_engine_runs_the_subnet_search(trained, tmp_path, engine, strategy):
    train, val = _loaders()
    evaluator = SubnetEvaluator.from_experiment(trained, train_dataloaders=train, val_dataloaders=val, recalibration_batches=3)
    exp = _search(evaluator, tmp_path, engine=engine, strategy=strategy, trials=6)
    assert exp.best_trial().metric > 0.5


def test_weights_that_do_not_fit_the_space_are_refused_before_the_first_trial(tmp_path):
    train, val = _loaders()
    with pytest.raises(EvaluatorError, match="no supernet weights at"):
        SubnetEvaluator(Mlp(), tmp_path / "missing.pt", train_dataloaders=train, val_dataloaders=val)
    wrong = SubnetEvaluator(Mlp(), {"stem.0.weight": torch.zeros(3, 3)}, train_dataloaders=train, val_dataloaders=val)
    with pytest.raises(EvaluatorError, match="do not fit the supernet of Mlp"):
        wrong.check()


def test_remote_machines_run_the_subnet_search(trained, tmp_path, sshd_factory, user_keys):  # noqa: F811
    """The evaluator travels with its weights: a remote machine (OpenSSH on loopback) scores sub-nets."""
    import inspect
    import sys

    from nascore_engines.training_service import RemoteMachine, TrainingServiceOptions

    code = tmp_path / "code"
    code.mkdir()
    imports = "import nascore\nimport torch.nn as nn\nfrom nascore.nn import LayerChoice, ModelSpace, MutableLinear, Repeat\n\n\n"
    (code / "subnetjob.py").write_text(imports + inspect.getsource(Mlp))
    sys.path.insert(0, str(code))
    try:
        import subnetjob

        server = sshd_factory("a")
        (tmp_path / "known_hosts").write_text(server.known_hosts_line)
        machine = RemoteMachine(host="127.0.0.1", port=server.port, key_file=user_keys[0], python=sys.executable,
                                workdir=str(tmp_path / "remote"), name="a", max_trials=1)
        config = ExperimentConfig(
            format="raw", engine="training-service", max_trials=4, seed=1, experiment_dir=tmp_path / "exps",
            engine_options=TrainingServiceOptions(platform="remote", machines=[machine], known_hosts=tmp_path / "known_hosts",
                                                  code_dir=code),
        )
        train, val = _loaders()
        evaluator = SubnetEvaluator(subnetjob.Mlp(), trained.path / "strategy" / "supernet.pt",
                                    train_dataloaders=train, val_dataloaders=val, recalibration_batches=3)
        exp = Experiment(subnetjob.Mlp(), evaluator, "random", config)
        assert exp.run() == "DONE"
        trials = exp.trials()
        assert len(trials) == 4 and all(t.succeeded for t in trials), [t.error for t in trials]
        assert exp.best_trial().metric > 0.5
    finally:
        sys.path.remove(str(code))
        sys.modules.pop("subnetjob", None)
