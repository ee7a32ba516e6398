"""The typed plugin line end to end: strategy and options named in a TOML file, a third-party engine."""

from __future__ import annotations

import attrs
import pytest
import torch.nn as nn

import nascore
from nascore.engine import ExecutionEngine
from nascore.errors import ConfigError, PluginLoadError
from nascore.evaluators import FunctionalEvaluator
from nascore.experiment import Experiment, ExperimentConfig
from nascore.format import ExecutableModel, ExecutableSpace, ModelFormat
from nascore.nn import LayerChoice, ModelSpace, MutableLinear
from nascore.plugin import get_plugins, hookimpl
from nascore.trial import run_trial
from nascore_strategies import RegularizedEvolution


class Space(ModelSpace):
    def __init__(self):
        super().__init__()
        self.fc = MutableLinear(3, nascore.choice("width", [2, 4, 8]))
        self.act = LayerChoice([nn.ReLU(), nn.Sigmoid()], label="act")

    def forward(self, x):
        return self.act(self.fc(x))


def score(model):
    return nascore.get_current_sample()["width"] / 8


TOML = """
strategy = "evolution"
max_trials = 6
engine = "training-service"
trial_concurrency = 2

[strategy_options]
population_size = 3
sample_size = 2

[engine_options]
max_requeues = 1
"""


def test_a_toml_file_naming_strategy_arguments_and_engine_options_runs(tmp_path):
    path = tmp_path / "exp.toml"
    path.write_text(f'experiment_dir = "{tmp_path / "exps"}"\n' + TOML)
    exp = Experiment(Space(), FunctionalEvaluator(score), None, ExperimentConfig.load(path))
    assert exp.run() == "DONE"
    assert isinstance(exp.strategy, RegularizedEvolution) and exp.strategy.population_size == 3
    assert len(exp.trials()) == 6
    resumed = Experiment.resume(exp.id, Space(), FunctionalEvaluator(score), experiment_dir=tmp_path / "exps")
    assert resumed.config.strategy_options == {"population_size": 3, "sample_size": 2}


@pytest.mark.parametrize(
    ("typo", "message"),
    [
        (("population_size = 3", "populaton_size = 3"),
         "config.strategy_options: unknown setting 'populaton_size': did you mean 'population_size'?"),
        (("sample_size = 2", 'sample_size = "2"'), "config.strategy_options.sample_size: expected an int, got '2' (str)"),
        (("max_requeues = 1", "max_requeue = 1"),
         "config.engine_options: unknown setting 'max_requeue': did you mean 'max_requeues'?"),
        (('strategy = "evolution"', 'strategy = "evolutoin"'), "unknown strategy 'evolutoin'. Did you mean 'evolution'?"),
    ],
)
def test_a_typo_in_strategy_arguments_or_engine_options_is_an_error_naming_the_field(tmp_path, typo, message):
    path = tmp_path / "exp.toml"
    path.write_text(f'experiment_dir = "{tmp_path / "exps"}"\n' + TOML.replace(*typo))
    exp = Experiment(Space(), FunctionalEvaluator(score), None, ExperimentConfig.load(path))
    with pytest.raises(Exception) as info:
        exp.run()
    assert message in str(info.value)
    assert not (tmp_path / "exps").exists() or not any((tmp_path / "exps").iterdir())  # refused before any store


@attrs.define(kw_only=True)
class InlineOptions:
    note: str = "inline"


class InlineEngine(ExecutionEngine):
    """The README's example engine: runs each trial as it is submitted."""

    options_class = InlineOptions
    seen: list[str] = []

    @classmethod
    def create(cls, options, resources):
        engine = cls()
        engine.options, engine.resources = options, resources
        InlineEngine.seen.append(options.note)
        return engine

    def start(self, context):
        self.context = context

    def submit(self, s):
        run_trial(s.trial_id, s.model, s.evaluator, self.context.sink.emit, seed=s.seed)

    def idle_slots(self):
        return 1

    def running(self):
        return 0

    def wait(self, timeout=None):
        pass

    def shutdown(self):
        pass


class InlinePlugin:
    @staticmethod
    @hookimpl
    def nascore_register_engines(register):
        register("inline-test", InlineEngine)


@pytest.fixture
def inline_engine():
    host = get_plugins()
    if "inline-test" not in host.engines:
        host.register_plugin(InlinePlugin, name="inline-test", distribution="inline-dist")
    InlineEngine.seen = []
    return host


def test_a_third_party_engine_gets_its_typed_options(tmp_path, inline_engine):
    config = ExperimentConfig(engine="inline-test", engine_options={"note": "hello"}, max_trials=3, experiment_dir=tmp_path)
    exp = Experiment(Space(), FunctionalEvaluator(score), "grid", config)
    assert exp.run() == "DONE" and len(exp.trials()) == 3
    assert InlineEngine.seen == ["hello"]
    bad = ExperimentConfig(engine="inline-test", engine_options={"nose": "x"}, experiment_dir=tmp_path / "bad")
    with pytest.raises(ConfigError, match="config.engine_options: unknown setting 'nose': did you mean 'note'"):
        Experiment(Space(), FunctionalEvaluator(score), "grid", bad).run()


def test_an_engine_that_is_not_an_engine_is_refused_at_registration():
    class Broken:
        @staticmethod
        @hookimpl
        def nascore_register_engines(register):
            register("broken", InlineOptions)

    from nascore.plugin import PluginHost

    with pytest.raises(PluginLoadError, match="distribution broken-dist registered the engine 'broken' wrongly"):
        PluginHost().register_plugin(Broken, name="broken", distribution="broken-dist")


class CopyModel(ExecutableModel):
    """The README's example format."""

    format_name = "copy-test"

    def __init__(self, space, sample):
        super().__init__(sample)
        self.space = space

    def build(self):
        return self.space.freeze(self.sample)


class CopySpace(ExecutableSpace):
    def freeze(self, sample):
        self.validate(sample)
        return CopyModel(self.space, sample)


class CopyFormat(ModelFormat):
    name = "copy-test"

    def build(self, space):
        return CopySpace(space, space.simplify())


class CopyPlugin:
    @staticmethod
    @hookimpl
    def nascore_register_formats(register):
        register("copy-test", CopyFormat)


def test_a_third_party_format_runs_an_experiment(tmp_path):
    host = get_plugins()
    if "copy-test" not in host.formats:
        host.register_plugin(CopyPlugin, name="copy-test", distribution="copy-dist")
    config = ExperimentConfig(format="copy-test", max_trials=6, experiment_dir=tmp_path)
    exp = Experiment(Space(), FunctionalEvaluator(score), "grid", config)
    assert exp.run() == "DONE"
    assert exp.export_top_models()[0]["width"] == 8 and len(exp.trials()) == 6
    with pytest.raises(Exception, match="width"):
        CopyFormat().build(Space()).freeze({"width": 3, "act": 0})
