"""End to end: searches in the graph format on the sequential engine, trials running generated code."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn as nn

import nascore
from nascore.engine import TrialStatus
from nascore.evaluators import FunctionalEvaluator
from nascore.experiment import Experiment, ExperimentConfig
from nascore.nn import Cell, LayerChoice, ModelSpace, MutableConv2d, MutableLinear, Repeat, basic_unit
from nascore_formats.graph import GraphConversionError, GraphIR, LeafModule, Mutator, apply_mutators
from nascore_strategies import Random


@basic_unit
class ConvBlock(nn.Module):
    def __init__(self, channels: int, kernel: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, kernel, padding=kernel // 2)
        self.norm = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.norm(self.conv(x)))


class Activation(Mutator):
    def mutate(self, model: GraphIR) -> None:
        [(graph, node)] = model.find("act")
        graph.set_leaf(node, LeafModule({"relu": nn.ReLU, "gelu": nn.GELU}[self.choice(["relu", "gelu"])]))


class SearchSpace(ModelSpace):
    def __init__(self, mutate: bool = True) -> None:
        super().__init__()
        width = nascore.choice("width", [4, 8])
        self.stem = MutableConv2d(3, width, 3, padding=1)
        self.act = nn.ReLU()
        self.cell = Cell(
            {"conv": lambda: ConvBlock(width, 3), "pool": nn.MaxPool2d(3, 1, 1), "skip": nn.Identity()},
            num_nodes=2,
            label="cell",
        )
        self.body = Repeat(
            lambda i: LayerChoice({"conv3": ConvBlock(width * 2, 3), "conv1": ConvBlock(width * 2, nascore.choice(f"k{i}", [1, 3]))}, label=f"block{i}"),
            (1, 2),
            label="depth",
        )
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), MutableLinear(width * 2, 3))
        if mutate:
            apply_mutators(self, [Activation(label="activation")])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(self.cell(self.act(self.stem(x)))))


def train(model: nn.Module) -> None:
    """Three SGD steps on fixed random data; the score is the negated final loss."""
    generator = torch.Generator().manual_seed(0)
    x, y = torch.randn(8, 3, 6, 6, generator=generator), torch.randint(0, 3, (8,), generator=generator)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(3):
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        nascore.report_intermediate_result(-loss.item())
    generated = type(model).__module__.startswith("nascore_graph_") and not any(
        type(m).__module__.startswith("nascore.") for m in model.modules()
    )
    nascore.report_final_result({"default": -loss.item(), "generated_code": generated})




def test_search_in_graph_format_runs_generated_code_and_exports_it(tmp_path):
    config = ExperimentConfig(format="graph", engine="sequential", max_trials=6, seed=0, experiment_dir=tmp_path)
    exp = Experiment(SearchSpace(), FunctionalEvaluator(train), Random(seed=0), config)
    assert exp.run() == "DONE"
    trials = exp.trials()
    assert len(trials) == 6 and all(t.status is TrialStatus.SUCCEEDED for t in trials), [t.error for t in trials]
    assert all(t.metrics["generated_code"] is True for t in trials), "every trial ran the model built from generated code"
    assert all(len(t.intermediates) == 3 for t in trials)
    assert {"activation/0", "width", "depth", "cell/op_1_0"} <= set(trials[0].sample)

    [best_sample] = exp.export_top_models(formatter="dict")
    [source] = exp.export_top_models(formatter="code")
    assert "class SearchSpace(nn.Module):" in source and "nascore" not in source.split('"""', 2)[2].split("class")[0]
    namespace: dict = {}
    exec(compile(source, "<exported>", "exec"), namespace)
    exported = namespace["SearchSpace"]()
    [instance] = exp.export_top_models(formatter="instance")
    exported.load_state_dict(instance.state_dict())
    x = torch.randn(2, 3, 6, 6)
    assert torch.allclose(exported.eval()(x), instance.eval()(x), atol=1e-6)
    for label, value in best_sample.items():
        assert f"    {label}: {json.dumps(value)}\n" in source, "the code's header records the best sample"
    exp.close()


def test_strategies_see_the_same_decisions_in_both_formats(tmp_path):
    samples = {}
    for model_format in ("graph", "simplified"):
        config = ExperimentConfig(
            format=model_format, max_trials=5, seed=3, experiment_dir=tmp_path / model_format
        )
        exp = Experiment(SearchSpace(mutate=False), FunctionalEvaluator(train), Random(seed=3), config)
        exp.run()
        samples[model_format] = [t.sample for t in exp.trials()]
        assert all(t.status is TrialStatus.SUCCEEDED for t in exp.trials())
        exp.close()
    assert samples["graph"] == samples["simplified"]


def test_a_space_that_cannot_be_traced_fails_before_any_trial(tmp_path):
    class Branchy(ModelSpace):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 2)

        def forward(self, x):
            return self.fc(x) if x.mean() > 0 else -self.fc(x)

    exp = Experiment(Branchy(), FunctionalEvaluator(lambda model: 1.0), "random", ExperimentConfig(format="graph", max_trials=2, experiment_dir=tmp_path))
    with pytest.raises(GraphConversionError, match="cannot trace the model space"):
        exp.run()
    assert not (tmp_path / exp.id).exists(), "nothing ran, nothing was recorded"


def test_graph_format_on_the_training_service_engine(tmp_path):
    """Trials run in worker processes from the shipped graph IR (JSON), as generated code."""
    config = ExperimentConfig(
        format="graph", engine="training-service", trial_concurrency=2, max_trials=4, seed=0, experiment_dir=tmp_path
    )
    exp = Experiment(SearchSpace(), FunctionalEvaluator(train), Random(seed=0), config)
    assert exp.run() == "DONE"
    trials = exp.trials()
    assert len(trials) == 4 and all(t.status is TrialStatus.SUCCEEDED for t in trials), [t.error for t in trials]
    assert all(t.metrics["generated_code"] is True for t in trials)
    sequential = Experiment(
        SearchSpace(), FunctionalEvaluator(train), Random(seed=0),
        ExperimentConfig(format="graph", max_trials=4, seed=0, experiment_dir=tmp_path / "seq"),
    )
    sequential.run()
    # The strategy sees the same space through either engine: the same seeded samples are proposed.
    assert sorted(json.dumps(t.sample, sort_keys=True) for t in trials) == sorted(
        json.dumps(t.sample, sort_keys=True) for t in sequential.trials()
    )
    exp.close()
    sequential.close()
