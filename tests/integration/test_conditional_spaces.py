"""Conditional spaces end to end (issue 12): only active decisions in samples, everywhere.

A decision inside a ``LayerChoice`` candidate matters only when that candidate is chosen, one inside
a ``Repeat`` block only up to the chosen depth, one in a ``switch_case`` branch only when that branch
is selected. Samples are canonical (those decisions left out), so grid and the space size count
architectures, every format freezes canonical samples to the same model, and no strategy evaluates
one architecture twice.
"""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn as nn

import nascore
from nascore.errors import SampleMissingError
from nascore.evaluators import FunctionalEvaluator
from nascore.experiment import Experiment, ExperimentConfig
from nascore.nn import LayerChoice, ModelSpace, MutableLinear, ParametrizedModule, Repeat, fixed_arch
from nascore.plugin import create_format
from nascore.space import MutableExpression, choice

from .conftest import digits_classification
from .test_space_parity import assert_formats_agree

FORMATS = ("raw", "simplified", "graph")


class Blocks(ModelSpace):
    """The space of the issue: 1 to 3 blocks, each its own choice of 3 ops; 4 stems and 6 widths around them."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = LayerChoice([nn.ReLU(), nn.Tanh(), nn.GELU(), nn.Sigmoid()], label="stem")
        self.scale = choice("scale", [1, 2, 3, 4, 5, 6])
        self.add_mutable(self.scale)
        self.body = Repeat(
            lambda i: LayerChoice([nn.Linear(4, 4), nn.Identity(), nn.Tanh()], label=f"block{i}/op"), (1, 3), label="depth"
        )

    def forward(self, x):
        return self.body(self.stem(x))


def test_grid_and_size_count_distinct_architectures_not_samples():
    space = Blocks()
    assert list(space.simplify()) == ["scale", "stem", "depth", "block0/op", "block1/op", "block2/op"]
    flat = 1
    for mutable in space.simplify().values():
        flat *= mutable.size
    assert flat == 1944  # what every sample of every label gives
    samples = list(space.grid_samples())
    assert len(samples) == space.space_size() == 24 * (3 + 9 + 27) == 936
    assert len({json.dumps(s, sort_keys=True) for s in samples}) == 936
    for sample in samples:  # canonical: exactly the blocks the depth builds
        assert [f"block{i}/op" in sample for i in range(3)] == [i < sample["depth"] for i in range(3)]
        assert space.contains(sample)
    shallow = next(s for s in samples if s["depth"] == 1)
    assert set(shallow) == {"scale", "stem", "depth", "block0/op"}


def test_validation_freeze_and_fixed_arch_need_only_active_decisions():
    space = Blocks()
    sample = {"scale": 1, "stem": 0, "depth": 1, "block0/op": 2}
    assert space.active_labels(sample) == ["scale", "stem", "depth", "block0/op"]
    assert space.contains(sample)
    assert space.contains({**sample, "block2/op": 1})  # an inactive decision given anyway is ignored
    assert space.canonical_sample({**sample, "block2/op": 1}) == sample
    error = space.check_contains({**sample, "depth": 2})
    assert isinstance(error, SampleMissingError) and error.label == "block1/op"
    assert "active because depth > 1" in str(error)
    assert len(space.freeze(sample).body) == 1
    with fixed_arch(sample):
        model = Blocks()
    assert len(model.body) == 1 and isinstance(model.body[0], nn.Tanh)
    with pytest.raises(SampleMissingError, match="'block1/op'.*active because depth > 1"), fixed_arch({**sample, "depth": 2}):
        Blocks()


class Mixer(ParametrizedModule):
    def __init__(self, features: int, scale: float) -> None:
        super().__init__()
        self.fc = nn.Linear(4, features)
        self.scale = scale

    def forward(self, x):
        return self.fc(x) * self.scale


class Nested(ModelSpace):
    """Choices nested in LayerChoice candidates and Repeat blocks, and a switch_case over a choice."""

    def __init__(self) -> None:
        super().__init__()
        kind = choice("kind", ["wide", "narrow"])
        wide = choice("wide_features", [6, 8])
        self.head = Mixer(MutableExpression.switch_case(kind, {"wide": wide, "narrow": 4}), 1.0)
        self.head_kind = kind
        self.op = LayerChoice(
            {
                "linear": MutableLinear(4, 4, bias=choice("bias", [True, False])),
                "deep": nn.Sequential(
                    LayerChoice([nn.ReLU(), nn.Tanh()], label="inner"),
                    Repeat(lambda i: MutableLinear(4, 4, bias=choice(f"deep{i}/bias", [True, False])), (1, 2), label="deep_depth"),
                ),
                "skip": nn.Identity(),
            },
            label="op",
        )

    def forward(self, x):
        return self.head(self.op(x))


def test_nested_conditions_are_counted_and_every_format_builds_every_architecture_the_same():
    space = Nested()
    decisions = space.decisions()
    assert decisions.why_active("bias") == "op == 'linear'"
    assert decisions.why_active("deep1/bias") == "op == 'deep' and deep_depth > 1"
    assert decisions.why_active("wide_features") == "kind == 'wide'"
    # op: linear (2) + deep (inner 2 x (2 + 4)) + skip (1) = 15; kind: wide (2) + narrow (1) = 3
    samples = list(space.grid_samples())
    assert len(samples) == space.space_size() == 45
    for name in FORMATS:
        built = create_format(name).build(space)
        assert built.space_size() == 45
        assert all(built.contains(s) for s in samples)
    assert_formats_agree(space, torch.randn(3, 4), samples)


def test_a_choice_in_a_switch_case_branch_is_not_needed_when_another_branch_is_taken():
    space = Nested()
    sample = {"kind": "narrow", "op": "skip"}
    assert space.contains(sample)
    for name in FORMATS:
        model = create_format(name).build(space).freeze(sample).build()
        assert model.head.fc.out_features == 4
    with fixed_arch(sample):
        assert Nested().head.fc.out_features == 4


def _evaluator():
    def evaluate(model):
        # a deterministic score per architecture: nothing to train
        nascore.report_final_result(float(sum(p.numel() for p in model.parameters())))

    return FunctionalEvaluator(evaluate)


MULTI_TRIAL = ["random", "grid", "evolution", "tpe", "rl"]


def _strategy(name: str):
    from nascore_strategies import TPE, GridSearch, PolicyBasedRL, Random, RegularizedEvolution

    return {
        "random": lambda: Random(),
        "grid": lambda: GridSearch(),
        "evolution": lambda: RegularizedEvolution(population_size=4, sample_size=2),
        "tpe": lambda: TPE(n_startup_jobs=4),
        "rl": lambda: PolicyBasedRL(trial_per_collect=3),
    }[name]()


@pytest.mark.parametrize("name", MULTI_TRIAL)
def test_no_strategy_evaluates_an_architecture_twice_and_grid_visits_each_once(name, tmp_path):
    space = Nested()
    size = int(space.space_size())
    budget = size if name == "grid" else 30
    config = ExperimentConfig(format="raw", experiment_dir=tmp_path, max_trials=budget + 10, seed=1)
    exp = Experiment(space, _evaluator(), _strategy(name), config)
    assert exp.run() == "DONE"
    trials = exp.trials()
    keys = [json.dumps(t.sample, sort_keys=True) for t in trials]
    assert len(keys) == len(set(keys)), "an architecture was evaluated twice"
    assert all(t.succeeded for t in trials)
    for trial in trials:  # recorded canonical: exactly the active decisions
        assert set(trial.sample) == set(space.active_labels(trial.sample))
    if name == "grid":
        assert sorted(keys) == sorted(json.dumps(s, sort_keys=True) for s in space.grid_samples())
    else:
        assert len(trials) >= min(budget, size) - 5


ONE_SHOT = ["darts", "gumbel-darts", "enas", "random-oneshot", "proxyless"]


class Supernet(ModelSpace):
    """A conditional space the one-shot strategies can supernet: per-block choices under a Repeat, a
    width choice inside one LayerChoice candidate."""

    def __init__(self) -> None:
        super().__init__()
        self.inp = nn.Linear(64, 16)
        self.body = Repeat(
            lambda i: LayerChoice({"lin": nn.Linear(16, 16), "act": nn.ReLU()}, label=f"b{i}/op"), (1, 3), label="depth"
        )
        self.out = nn.Linear(16, 10)

    def forward(self, x):
        return self.out(self.body(self.inp(x)))


class NestedSupernet(ModelSpace):
    """A LayerChoice inside a LayerChoice candidate: "inner" is active only with op == "nested"."""

    def __init__(self) -> None:
        super().__init__()
        self.inp = nn.Linear(64, 16)
        nested = nn.Sequential(nn.Linear(16, 16), LayerChoice([nn.ReLU(), nn.Tanh()], label="inner"))
        self.op = LayerChoice({"nested": nested, "id": nn.Identity()}, label="op")
        self.out = nn.Linear(16, 10)

    def forward(self, x):
        return self.out(self.op(self.inp(x)))


@pytest.fixture
def digits():
    return digits_classification(n_train=512, max_epochs=1)


@pytest.mark.parametrize("space_class", [Supernet, NestedSupernet])
@pytest.mark.parametrize("name", ONE_SHOT)
def test_one_shot_strategies_train_a_conditional_supernet_and_export_canonical_samples(name, space_class, digits, tmp_path):
    from nascore_strategies.oneshot import DARTS, ENAS, GumbelDARTS, Proxyless, RandomOneShot

    strategy = {"darts": DARTS, "gumbel-darts": GumbelDARTS, "enas": ENAS, "random-oneshot": RandomOneShot,
                "proxyless": Proxyless}[name](top_k=3)
    torch.manual_seed(0)
    exp = Experiment(space_class(), digits, strategy, ExperimentConfig(format="raw", experiment_dir=tmp_path, seed=0))
    assert exp.run() == "DONE"
    trials = exp.trials()
    assert trials and all(t.succeeded for t in trials)
    keys = [json.dumps(t.sample, sort_keys=True) for t in trials]
    assert len(keys) == len(set(keys))
    for trial in trials:
        assert set(trial.sample) == set(space_class().active_labels(trial.sample))
        assert space_class().contains(trial.sample)


# --- constraints ------------------------------------------------------------------------------------


class Constrained(ModelSpace):
    """Wide layers only without the deep op (NNI's ExpressionConstraint), on a conditional space."""

    def __init__(self) -> None:
        super().__init__()
        width = choice("width", [8, 16, 32])
        self.fc = MutableLinear(4, width)
        self.op = LayerChoice(
            {"deep": MutableLinear(width, width, bias=choice("bias", [True, False])), "skip": nn.Identity()}, label="op"
        )
        wide = MutableExpression.condition(width > 16, 1, 0)
        self.add_mutable(nascore.ExpressionConstraint(wide + MutableExpression.eq(self.op.choice, "deep") <= 1, label="budget"))

    def forward(self, x):
        return self.op(self.fc(x))


def _satisfies(sample: dict) -> bool:
    return not (sample["width"] == 32 and sample["op"] == "deep")


def test_every_format_keeps_the_constraints_of_the_space():
    for name in FORMATS:
        built = create_format(name).build(Constrained())
        assert built.space_size() == 7
        assert not built.contains({"width": 32, "op": "deep", "bias": True})


@pytest.mark.parametrize("name", MULTI_TRIAL)
def test_every_multi_trial_strategy_only_proposes_samples_within_the_constraints(name, tmp_path):
    config = ExperimentConfig(format="raw", experiment_dir=tmp_path, max_trials=12, seed=2)
    exp = Experiment(Constrained(), _evaluator(), _strategy(name), config)
    assert exp.run() == "DONE"
    trials = exp.trials()
    assert trials and all(t.succeeded and _satisfies(t.sample) for t in trials)
    assert len({json.dumps(t.sample, sort_keys=True) for t in trials}) == len(trials)
    if name == "grid":
        assert len(trials) == 7


class ConstrainedSupernet(Supernet):
    def __init__(self) -> None:
        super().__init__()
        ops = [choice(f"b{i}/op", ["lin", "act"]) for i in range(3)]
        # at most one linear block among those built: a constraint the supernet training ignores
        linear = sum((MutableExpression.eq(op, "lin") for op in ops[1:]), MutableExpression.eq(ops[0], "lin"))
        self.add_mutable(nascore.ExpressionConstraint(linear <= 1, label="one_linear"))


@pytest.mark.parametrize("name", ["darts", "random-oneshot"])
def test_one_shot_exports_only_architectures_within_the_constraints(name, digits, tmp_path):
    from nascore_strategies.oneshot import DARTS, RandomOneShot

    strategy = {"darts": DARTS, "random-oneshot": RandomOneShot}[name](top_k=3)
    torch.manual_seed(0)
    exp = Experiment(ConstrainedSupernet(), digits, strategy, ExperimentConfig(format="raw", experiment_dir=tmp_path, seed=0))
    assert exp.run() == "DONE"
    trials = exp.trials()
    assert len(trials) == 3
    for trial in trials:
        assert ConstrainedSupernet().contains(trial.sample)
        assert sum(trial.sample.get(f"b{i}/op") == "lin" for i in range(3)) <= 1


@pytest.mark.parametrize("engine", ["sequential", "training-service"])
@pytest.mark.parametrize("format_name", FORMATS)
def test_conditional_samples_run_in_every_format_on_every_engine(format_name, engine, tmp_path):
    config = ExperimentConfig(format=format_name, engine=engine, experiment_dir=tmp_path, max_trials=8, seed=3)
    exp = Experiment(Nested(), _evaluator(), "random", config)
    assert exp.run() == "DONE"
    trials = exp.trials()
    assert len(trials) == 8 and all(t.succeeded for t in trials), [t.error for t in trials]
    for trial in trials:
        assert set(trial.sample) == set(Nested().active_labels(trial.sample))
    [best] = exp.export_top_models(formatter="instance")
    assert best(torch.randn(2, 4)).shape[0] == 2
