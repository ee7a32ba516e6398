"""Every built-in strategy end to end: real experiments on the sequential engine, seeding, errors,
behaviours, and a third-party strategy installed as a distribution and used by name."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap

import pytest

import nascore
from nascore.engine import TrialStatus
from nascore.errors import StrategyError
from nascore.evaluators import FunctionalEvaluator
from nascore.experiment import Experiment, ExperimentConfig
from nascore.nn import ModelSpace, MutableDropout, MutableLinear
from nascore.testing.distributions import make_distribution
from nascore.testing.strategies import StrategyConformance
from nascore_strategies import TPE, GridSearch, PolicyBasedRL, Random, RegularizedEvolution

from .conftest import read_log

NAMES = ["random", "grid", "evolution", "tpe", "rl"]


def small(name: str, **kwargs):
    """A strategy object tuned so that its learning phase starts within a dozen trials."""
    factories = {
        "random": lambda: Random(**kwargs),
        "grid": lambda: GridSearch(**kwargs),
        "evolution": lambda: RegularizedEvolution(population_size=4, sample_size=2, **kwargs),
        "tpe": lambda: TPE(n_startup_jobs=4, **kwargs),
        "rl": lambda: PolicyBasedRL(trial_per_collect=3, **kwargs),
    }
    return factories[name]()


def run_experiment(job, tmp_path, strategy, exp_id, max_trials=12, seed=7, **config):
    import job as job_module  # written by the fixture

    log = tmp_path / f"{exp_id}.log"
    exp = Experiment(
        job_module.Space(), job_module.evaluator(log), strategy,
        ExperimentConfig(max_trials=max_trials, seed=seed, experiment_dir=tmp_path / "exps", **config), id=exp_id,
    )
    assert exp.run() == "DONE"
    return exp


@pytest.mark.parametrize("name", NAMES)
def test_each_strategy_runs_a_full_experiment_by_name(job, tmp_path, name):
    exp = run_experiment(job, tmp_path, name, f"full-{name}")
    trials = exp.trials()
    assert len(trials) == 12 and all(t.status is TrialStatus.SUCCEEDED for t in trials)
    assert len({json.dumps(t.sample, sort_keys=True) for t in trials}) == 12  # every built-in deduplicates
    assert read_log(tmp_path / f"full-{name}.log") == [t.sample for t in trials]
    best = exp.export_top_models()[0]
    assert best == max(trials, key=lambda t: t.metric).sample


@pytest.mark.parametrize("name", NAMES)
def test_one_seed_gives_the_identical_sequence_on_the_sequential_engine(job, tmp_path, name):
    def samples(strategy, exp_id, seed):
        return [t.sample for t in run_experiment(job, tmp_path, strategy, exp_id, seed=seed).trials()]

    # ExperimentConfig.seed, with the strategy given by name and as an object in its learning phase.
    assert samples(name, f"{name}-a", 7) == samples(name, f"{name}-b", 7)
    first = samples(small(name), f"{name}-c", 7)
    assert first == samples(small(name), f"{name}-d", 7)
    # The strategy's own seed wins over the experiment's.
    own = samples(small(name, seed=3), f"{name}-e", 7)
    assert own == samples(small(name, seed=3), f"{name}-f", 8)


@pytest.mark.parametrize("name", NAMES)
def test_repeats_and_retries_in_a_real_experiment(job, tmp_path, name):
    import job as job_module

    calls = {"n": 0}

    def flaky(model):
        calls["n"] += 1
        if calls["n"] % 5 == 0:
            raise RuntimeError("a flaky failure")
        return job_module.score(model, str(tmp_path / "unused.log"))

    exp = Experiment(
        job_module.Space(), FunctionalEvaluator(flaky), small(name, repeats=2, retries=1),
        ExperimentConfig(max_trials=12, seed=1, experiment_dir=tmp_path / "exps"), id=f"rep-{name}",
    )
    assert exp.run() == "DONE"
    trials = exp.trials()
    keys = [json.dumps(t.sample, sort_keys=True) for t in trials]
    assert len(trials) == 12
    assert all(keys.count(k) >= 2 for k in keys[:-2])  # every sample ran twice (plus a retry if it failed)
    assert any(t.status is TrialStatus.FAILED for t in trials)


class UnboundedSpace(ModelSpace):
    def __init__(self):
        super().__init__()
        self.fc = MutableLinear(4, nascore.choice("width", [2, 4]))
        self.drop = MutableDropout(nascore.Numerical(0.0, math.inf, mu=0.2, sigma=0.1, label="drop"))

    def forward(self, x):
        return self.drop(self.fc(x))


@pytest.mark.parametrize("name", ["rl", "grid"])
def test_a_space_the_strategy_cannot_search_fails_before_the_first_trial(tmp_path, name):
    evaluated = []
    exp = Experiment(
        UnboundedSpace(), FunctionalEvaluator(lambda model: evaluated.append(model) or 1.0), name,
        ExperimentConfig(max_trials=3, experiment_dir=tmp_path), id="refused",
    )
    with pytest.raises(StrategyError, match="unbounded numerical decision 'drop'"):
        exp.run()
    assert evaluated == [] and not (tmp_path / "refused").exists()


@pytest.mark.parametrize("name", ["random", "evolution", "tpe"])
def test_strategies_that_sample_numbers_search_an_unbounded_space(tmp_path, name):
    exp = Experiment(
        UnboundedSpace(), FunctionalEvaluator(lambda model: 1.0), small(name),
        ExperimentConfig(max_trials=6, seed=0, experiment_dir=tmp_path),
    )
    assert exp.run() == "DONE"
    assert all(t.sample["drop"] >= 0.0 for t in exp.trials()) and len(exp.trials()) == 6


# --- a third-party strategy, installed as a distribution --------------------------------------------------

TOY_STRATEGY = '''
"""A third-party strategy: local search, a few decisions changed at a time around the best so far."""
from nascore.strategy import MultiTrialStrategy


class LocalSearch(MultiTrialStrategy):
    name = "local"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.best = None
        self.radius = 1  # decisions changed per proposal; grows while proposals are rejected

    def propose(self):
        decisions = self.space.simplify()
        if self.best is None:
            return {label: m.random_value(self.rng) for label, m in decisions.items()}
        sample = dict(self.best[1])
        for label in self.rng.sample(sorted(decisions), min(self.radius, len(decisions))):
            sample[label] = decisions[label].random_value(self.rng)
        return sample

    def rejected(self, sample, reason):
        self.radius += 1

    def learn(self, trial):
        if self.replay(trial):
            self.radius = 1

    def replay(self, trial):  # on resume: the saved radius already counts this result
        value = self.objective(trial)
        if value is not None and (self.best is None or value > self.best[0]):
            self.best = (value, dict(trial.sample))
            return True
        return False

    def state_dict(self):
        return {**super().state_dict(), "radius": self.radius}

    def load_state_dict(self, state):
        super().load_state_dict(state)
        self.radius = state["radius"]
'''

TOY_PLUGIN = '''
from nascore.plugin import hookimpl
from toy_strategies.search import LocalSearch


@hookimpl
def nascore_register_strategies(register):
    register("local", LocalSearch, description="local search (a third-party plugin)")
'''


@pytest.fixture(scope="module")
def toy_distribution(tmp_path_factory):
    root = tmp_path_factory.mktemp("site")
    make_distribution(
        root, "toy-strategies", "0.3",
        {"toy_strategies": "", "toy_strategies.search": TOY_STRATEGY, "toy_strategies.plugin": TOY_PLUGIN},
        {"toy": "toy_strategies.plugin"},
    )
    sys.path.insert(0, str(root))
    yield root
    sys.path.remove(str(root))
    for module in [m for m in sys.modules if m.startswith("toy_strategies")]:
        del sys.modules[module]


def test_a_third_party_strategy_runs_an_experiment_by_name(job, toy_distribution):
    code = textwrap.dedent(
        f"""
        import json
        from nascore.experiment import Experiment, ExperimentConfig
        from nascore.plugin import get_plugins
        import job
        entry = get_plugins().strategies.registration("local")
        exp = Experiment(job.Space(), job.evaluator("{job.path / 'toy.log'}"), "local",
                         ExperimentConfig(max_trials=10, seed=0, experiment_dir="{job.path / 'exps'}"), id="toy")
        print(json.dumps({{"status": exp.run(), "dist": entry.distribution, "version": entry.version,
                          "samples": [t.sample for t in exp.trials()]}}))
        """
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(toy_distribution), str(job.path), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["status"] == "DONE" and out["dist"] == "toy-strategies" and out["version"] == "0.3"
    assert len(out["samples"]) == 10 and len({json.dumps(s, sort_keys=True) for s in out["samples"]}) == 10
    assert read_log(job.path / "toy.log") == out["samples"]
    view = Experiment.view("toy", experiment_dir=job.path / "exps")
    assert view.trials()[0].status is TrialStatus.SUCCEEDED
    view.close()


class TestThirdPartyConformance(StrategyConformance):
    """The third-party strategy proves itself with the conformance suite: one fixture."""

    @pytest.fixture
    def make_strategy(self, toy_distribution):
        from toy_strategies.search import LocalSearch

        return lambda **kwargs: LocalSearch(**kwargs)
