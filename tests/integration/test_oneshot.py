"""One-shot search end to end: a strategy by name, a Lightning evaluator, the store, export and `nascore show`."""

from __future__ import annotations

import io
from contextlib import redirect_stdout

import pytest
import torch
import torch.nn as nn

import nascore
from nascore.cli import main as cli
from nascore.errors import StrategyError
from nascore.evaluators import FunctionalEvaluator
from nascore.experiment import Experiment, ExperimentConfig
from nascore.nn import InputChoice, LayerChoice, ModelSpace, MutableDropout, MutableLinear, Repeat
from nascore.plugin import get_plugins, hookimpl, reset_plugins
from nascore_strategies.oneshot import DARTS, ENAS, GumbelDARTS, Proxyless, RandomOneShot
from nascore_strategies.oneshot.plugin import register_oneshot

from .conftest import digits_classification


class Net(ModelSpace):
    def __init__(self) -> None:
        super().__init__()
        width = nascore.choice("width", [16, 32, 64])
        self.inp = MutableLinear(64, width)
        self.act = LayerChoice({"relu": nn.ReLU(), "tanh": nn.Tanh()}, label="act")
        self.body = Repeat(lambda i: nn.Sequential(MutableLinear(width, width), nn.ReLU()), (1, 2), label="depth")
        self.skip = InputChoice(2, 1, label="skip")
        self.out = MutableLinear(width, 10)

    def forward(self, x):
        hidden = self.act(self.inp(x))
        return self.out(self.skip([hidden, self.body(hidden)]))


class _OneShotNames:
    """Registers the one-shot strategies, as the nascore-strategies plugin does once it calls register_oneshot."""

    @staticmethod
    @hookimpl
    def nascore_register_strategies(register):
        register_oneshot(register)


@pytest.fixture
def plugins():
    host = get_plugins()
    if "darts" not in host.strategies:
        host.register_plugin(_OneShotNames, name="oneshot-test", distribution="nascore-strategies")
    torch.manual_seed(0)
    yield host
    reset_plugins()


@pytest.fixture
def evaluator():
    return digits_classification()


def test_register_oneshot_registers_the_five_strategies_by_their_names():
    registered = {}
    register_oneshot(lambda name, obj, description=None: registered.setdefault(name, obj))
    assert registered == {
        "darts": DARTS, "gumbel-darts": GumbelDARTS, "enas": ENAS, "random-oneshot": RandomOneShot, "proxyless": Proxyless,
    }


@pytest.mark.parametrize("name", ["darts", "gumbel-darts", "enas", "random-oneshot", "proxyless"])
def test_a_one_shot_experiment_by_name_is_recorded_shown_and_exported(name, plugins, evaluator, tmp_path):
    config = ExperimentConfig(format="raw", experiment_dir=tmp_path, seed=0)
    exp = Experiment(Net(), evaluator, name, config)
    assert exp.run() == "DONE"

    [trial] = exp.trials()
    assert trial.succeeded and trial.metric > 0.5 and len(trial.intermediates) == 2
    [best] = exp.export_top_models()
    assert best == trial.sample and Net().contains(best)
    [model] = exp.export_top_models(formatter="instance")
    assert model(torch.zeros(3, 64)).shape == (3, 10)

    viewed = Experiment.view(exp.id, experiment_dir=tmp_path)
    assert viewed.export_top_models() == [best]
    out = io.StringIO()
    with redirect_stdout(out):
        assert cli(["show", exp.id, "--experiment-dir", str(tmp_path)]) == 0
    shown = out.getvalue()
    assert "DONE" in shown and f"{trial.metric:.4g}"[:4] in shown
    assert all(str(value) in shown for value in best.values())


def test_the_top_k_exports_are_recorded_and_ranked_by_their_trials(plugins, evaluator, tmp_path):
    strategy = DARTS(arc_learning_rate=3e-3, top_k=3)
    exp = Experiment(Net(), evaluator, strategy, ExperimentConfig(format="raw", experiment_dir=tmp_path))
    exp.run()
    trials = exp.trials()
    assert [t.sample for t in trials] == strategy.exported  # submitted in the algorithm's order
    ranked = sorted(trials, key=lambda t: -t.metric)
    assert exp.export_top_models(top_k=3) == [t.sample for t in ranked]


def test_the_trial_budget_cuts_the_exports(plugins, evaluator, tmp_path):
    exp = Experiment(Net(), evaluator, DARTS(top_k=3), ExperimentConfig(format="raw", experiment_dir=tmp_path, max_trials=1))
    exp.run()
    assert len(exp.trials()) == 1


def test_an_unsupported_space_is_refused_before_anything_runs(plugins, tmp_path):
    class WithDropout(ModelSpace):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(64, 10)
            self.drop = MutableDropout(nascore.choice("p", [0.1, 0.5]))

        def forward(self, x):
            return self.drop(self.fc(x))

    def never(model):
        raise AssertionError("no trial may run")

    exp = Experiment(WithDropout(), FunctionalEvaluator(never), "proxyless", ExperimentConfig(format="raw", experiment_dir=tmp_path))
    with pytest.raises(StrategyError, match=r"Proxyless cannot search module 'drop' \(MutableDropout, label 'p'\)"):
        exp.run()
    assert not (tmp_path / exp.id).exists()  # refused in setup, before the store was created


@pytest.mark.parametrize("name", ["darts", "random-oneshot"])
def test_exported_instances_inherit_the_trained_supernet_weights_also_in_a_later_session(name, plugins, evaluator, tmp_path):
    exp = Experiment(Net(), evaluator, name, ExperimentConfig(format="raw", experiment_dir=tmp_path, seed=0))
    assert exp.run() == "DONE"
    assert (exp.path / "strategy" / "supernet.pt").is_file()
    [best] = exp.export_top_models()
    [model] = exp.export_top_models(formatter="instance")
    assert not any(isinstance(m, nascore.nn.MutableModule) for m in list(model.modules())[1:])
    expected = exp.strategy.supernet.freeze(best).state_dict()
    assert model.state_dict().keys() == expected.keys()
    assert all(torch.equal(model.state_dict()[k], v) for k, v in expected.items())
    untrained = Net().freeze(best)
    assert not all(torch.equal(untrained.state_dict()[k], v) for k, v in expected.items())

    x = torch.randn(4, 64)
    later = Experiment.view(exp.id, Net(), experiment_dir=tmp_path)  # a new strategy object, set up from the store
    [again] = later.export_top_models(formatter="instance")
    with torch.no_grad():
        torch.testing.assert_close(again.eval()(x), model.eval()(x))
