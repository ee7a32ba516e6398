"""Each one-shot strategy trains a supernet on digits and exports architectures that train well alone.

These tests drive the strategies directly (``create_supernet``, then ``search`` with a Lightning
evaluator), so they need only the core and this plugin; ``tests/integration/test_oneshot.py`` runs
them inside experiments, where the exports are recorded as trials.
"""

from __future__ import annotations

import pytest
import torch

import nascore
from nascore.engine import TrialStatus
from nascore.errors import StrategyError
from nascore.evaluators import FunctionalEvaluator
from nascore.format import ExecutableModel, ExecutableSpace
from nascore.record import TrialRecord
from nascore.strategy import StrategyContext
from nascore_strategies.oneshot import DARTS, ENAS, ExpectedCostPenalty, GumbelDARTS, Proxyless, RandomOneShot

CHANCE = 0.1  # ten digits


def search(space, evaluator, strategy):
    """Build the supernet of ``space`` and train it; returns the exported architectures."""
    strategy.create_supernet(space)
    exported = strategy.search(evaluator)
    assert exported == strategy.exported
    return exported


def check_exports(exported, space_class, train_alone, count, images=False):
    """The exports are in the space and the best one, built with fixed_arch, trains well above chance alone."""
    assert len(exported) == count
    space = space_class()
    for sample in exported:
        assert space.contains(sample)
    with nascore.fixed_arch(exported[0]):
        model = space_class()
    assert not any(isinstance(m, nascore.nn.MutableModule) and not isinstance(m, nascore.nn.ModelSpace) for m in model.modules())
    assert train_alone(model, images=images) > 7 * CHANCE


def test_darts_exports_the_most_probable_architectures(mlp_space, evaluator, train_alone):
    strategy = DARTS(arc_learning_rate=3e-3, top_k=3)
    check_exports(search(mlp_space(), evaluator(), strategy), mlp_space, train_alone, 3)
    assert len({nascore.space.sample_key(s) for s in strategy.exported}) == 3
    assert strategy.exported[0] == strategy.export_sample()  # the argmax comes first
    probs = strategy.arch.export_probs()

    def log_probability(sample):
        return sum(torch.log(torch.tensor(probs[label][value])) for label, value in sample.items())

    scores = [log_probability(s) for s in strategy.exported]
    assert scores == sorted(scores, reverse=True)
    moved = [float(a.detach().abs().max()) for a in strategy.arch.alphas]
    assert max(moved) > 1e-2  # architecture steps happened


def test_second_order_darts_searches_a_conv_cell_space(conv_cell_space, image_loaders, train_alone):
    from nascore.evaluators import Classification

    evaluator = Classification(train_dataloaders=image_loaders[0], val_dataloaders=image_loaders[1], num_classes=10,
                               learning_rate=1e-2, max_epochs=3)
    strategy = DARTS(arc_learning_rate=3e-3, unrolled=True)
    check_exports(search(conv_cell_space(), evaluator, strategy), conv_cell_space, train_alone, 1, images=True)
    assert set(strategy.exported[0]) == set(conv_cell_space().simplify())
    assert max(float(a.detach().abs().max()) for a in strategy.arch.alphas) > 1e-2  # initialized at ~1e-3


def test_gumbel_darts_anneals_the_temperature(mlp_space, evaluator, train_alone):
    strategy = GumbelDARTS(arc_learning_rate=3e-3, gumbel_temperature=2.0, use_temp_anneal=True, min_temp=0.5)
    check_exports(search(mlp_space(), evaluator(max_epochs=4), strategy), mlp_space, train_alone, 1)
    assert strategy.arch.gumbel
    assert strategy.arch.tau == pytest.approx(2.0 - 1.5 * 3 / 4)  # the last of 4 epochs
    assert strategy.temperature(0, 4) == 2.0 and strategy.temperature(4, 4) == 0.5


def test_enas_learns_its_controller_from_the_logged_validation_metric(mlp_space, evaluator, train_alone):
    strategy = ENAS(ctrl_steps_aggregate=1, ctrl_lr=1e-2, export_candidates=8)
    check_exports(search(mlp_space(), evaluator(max_epochs=3), strategy), mlp_space, train_alone, 1)
    assert strategy.baseline is not None and 0.0 < strategy.baseline <= 1.0  # rewards are val_acc values
    assert strategy._ctrl_steps == 3 * 2  # two validation batches per epoch


def test_enas_names_a_reward_metric_that_is_not_logged(mlp_space, evaluator):
    with pytest.raises(StrategyError, match=r"logged \['val_acc', 'val_loss'\] and not 'val_f1'"):
        search(mlp_space(), evaluator(max_epochs=1), ENAS(reward_metric_name="val_f1"))


def test_random_oneshot_samples_only_what_the_filter_accepts(mlp_space, evaluator, train_alone):
    seen = []

    def wide(sample):
        seen.append(sample)
        return sample["width"] != 16

    strategy = RandomOneShot(filter=wide, top_k=2, export_candidates=6)
    exported = search(mlp_space(), evaluator(), strategy)
    check_exports(exported, mlp_space, train_alone, 2)
    assert len(seen) > 3 * 23  # one sample per training step, at least
    assert all(s["width"] != 16 for s in exported)


def test_proxyless_exports_the_strongest_path(mlp_space, evaluator, train_alone):
    strategy = Proxyless(arc_learning_rate=3e-3)
    check_exports(search(mlp_space(), evaluator(), strategy), mlp_space, train_alone, 1)
    assert strategy.exported[0] == strategy.export_sample()
    assert max(float(a.detach().abs().max()) for a in strategy.arch.alphas) > 1e-2


def test_proxyless_cost_penalty_prefers_the_cheaper_candidate(evaluator):
    class Costly(nascore.nn.ModelSpace):
        def __init__(self):
            super().__init__()
            self.inp = torch.nn.Linear(64, 32)
            self.mid = nascore.nn.LayerChoice(
                {"big": torch.nn.Sequential(torch.nn.Linear(32, 512), torch.nn.ReLU(), torch.nn.Linear(512, 32)),
                 "small": torch.nn.Tanh()},
                label="mid",
            )
            self.out = torch.nn.Linear(32, 10)

        def forward(self, x):
            return self.out(self.mid(self.inp(x)))

    penalty = ExpectedCostPenalty("flops", weight=5.0)
    strategy = Proxyless(arc_learning_rate=3e-2, penalty=penalty)
    search(Costly(), evaluator(max_epochs=2), strategy)
    assert penalty.label_costs["mid"][0] > 100 * penalty.label_costs["mid"][1]
    probs = strategy.arch.export_probs()["mid"]
    assert probs["small"] > probs["big"]
    assert strategy.exported[0] == {"mid": "small"}


def test_a_functional_evaluator_is_refused(mlp_space):
    with pytest.raises(StrategyError, match=r"Lightning evaluator.*FunctionalEvaluator"):
        search(mlp_space(), FunctionalEvaluator(lambda model: 0.0), RandomOneShot())


class RecordingContext(StrategyContext):
    """A context whose evaluator cannot train: running a strategy that still needed training would fail."""

    def __init__(self, space):
        self.space = space
        self.evaluator = None
        self.optimize_mode = "maximize"
        self.submitted = []

    def submit(self, sample):
        self.submitted.append(sample)
        return len(self.submitted)

    def idle_slots(self):
        return 1

    def running(self):
        return 0

    def wait(self, timeout=None):
        return []

    def should_stop(self):
        return False


class SpaceOf(ExecutableSpace):
    """The space object itself as an executable space (what the raw format does)."""

    def __init__(self, space):
        super().__init__(space, space.simplify())

    def freeze(self, sample):
        self.validate(sample)
        return Frozen(sample)


class Frozen(ExecutableModel):
    def build(self):
        raise AssertionError("not built in these tests")


def test_a_resumed_strategy_records_the_rest_of_its_exports_without_training_again(mlp_space):
    space = SpaceOf(mlp_space())
    first = {"width": 32, "act": "relu", "depth": 2, "skip": 1}
    second = {"width": 64, "act": "tanh", "depth": 1, "skip": 0}
    state = DARTS(top_k=2).state_dict() | {"exported": [first, second]}
    strategy = DARTS(top_k=2)
    strategy.setup(space)
    strategy.restore(state, [TrialRecord(id=1, sample=first, status=TrialStatus.SUCCEEDED, metric=0.9)])
    context = RecordingContext(space)
    strategy.run(context)
    assert context.submitted == [second]
    with pytest.raises(StrategyError, match="got NoneType"):
        fresh = DARTS()
        fresh.setup(space)
        fresh.run(RecordingContext(space))


def test_ranking_follows_the_evaluators_metric_mode():
    """With Regression (val_mse, smaller is better), RandomOneShot ranks the lower error first."""
    from torch.utils.data import DataLoader, TensorDataset

    from nascore.evaluators import Regression

    class Zero(torch.nn.Module):
        def forward(self, x):
            return x[:, :1] * 0

    class Fit(nascore.nn.ModelSpace):
        def __init__(self):
            super().__init__()
            self.head = nascore.nn.LayerChoice({"linear": torch.nn.Linear(8, 1), "zero": Zero()}, label="head")

        def forward(self, x):
            return self.head(x)

    x = torch.randn(256, 8)
    y = x @ torch.randn(8, 1)
    data = DataLoader(TensorDataset(x, y), batch_size=64)
    evaluator = Regression(train_dataloaders=data, val_dataloaders=data, learning_rate=0.05, max_epochs=3)
    strategy = RandomOneShot(export_candidates=2, top_k=2)
    assert [s["head"] for s in search(Fit(), evaluator, strategy)] == ["linear", "zero"]


def test_the_enas_controller_samples_every_kind_of_decision():
    from nascore.space import Categorical, CategoricalMultiple
    from nascore_strategies.oneshot.controller import ReinforceController, fields_of

    decisions = {
        "op": Categorical(["conv", "pool", "id"], label="op"),
        "skips": CategoricalMultiple([0, 1, 2, 3], n_chosen=None, label="skips"),
        "pair": CategoricalMultiple([0, 1, 2], n_chosen=2, label="pair"),
    }
    controller = ReinforceController(fields_of(decisions), lstm_size=16, skip_target=0.4)
    for _ in range(20):
        drawn = controller.sample()
        assert all(decision.contains({label: drawn.sample[label]}) for label, decision in decisions.items())
        assert torch.isfinite(drawn.log_prob) and drawn.entropy > 0 and drawn.skip_penalty >= 0
    loss = -drawn.log_prob + drawn.skip_penalty
    loss.backward()
    assert controller.soft[1].weight.grad is not None


@pytest.mark.parametrize("strategy_class", [DARTS, GumbelDARTS])
def test_a_refused_primitive_is_refused_by_name(strategy_class):
    """An error of a supernet module while the supernet is built names the strategy, and the module and label."""

    class AnyInputs(nascore.nn.ModelSpace):
        def __init__(self):
            super().__init__()
            self.inputs = nascore.nn.InputChoice(3, None, reduction="none", label="inputs")

        def forward(self, x):
            return sum(self.inputs([x, x, x]), torch.zeros_like(x))

    name = strategy_class.__name__
    with pytest.raises(StrategyError, match=rf"^{name} cannot search this space: module 'inputs' \(InputChoice 'inputs'\): "
                                            r"n_chosen=None .*differentiable strategy"):
        strategy_class().create_supernet(AnyInputs())
    with pytest.raises(StrategyError, match=rf"^{name} cannot search this space: .*'inputs'"):
        strategy_class().setup(SpaceOf(AnyInputs()), seed=1)


def test_a_seeded_search_resumes_with_its_exports_without_training_again(mlp_space, evaluator):
    space = SpaceOf(mlp_space())
    searched = DARTS(arc_learning_rate=3e-3, top_k=2)
    searched.setup(space, seed=5)
    exported = searched.search(evaluator(max_epochs=1))
    state = searched.state_dict()
    resumed = DARTS(arc_learning_rate=3e-3, top_k=2)
    resumed.setup(space, seed=5)
    torch_state = torch.get_rng_state()
    resumed.restore(state, [TrialRecord(id=1, sample=exported[0], status=TrialStatus.SUCCEEDED, metric=0.9)])
    context = RecordingContext(space)  # its evaluator cannot train
    resumed.run(context)
    assert context.submitted == exported[1:]
    assert resumed.exported == exported
    assert torch.equal(torch.get_rng_state(), torch_state)
