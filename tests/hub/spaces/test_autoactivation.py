"""AutoActivation: the operators, the searchable activation in a model, the ResNet space, formats, one-shot and presets."""

from __future__ import annotations

import random

import pytest
import torch
import torch.nn as nn

import nascore
from nascore.errors import SampleMissingError, SearchSpaceError
from nascore.nn import LayerChoice, ModelSpace
from nascore_hub.spaces.autoactivation import (
    ACTIVATIONS,
    BINARY_OPERATORS,
    UNARY_OPERATORS,
    AutoActivation,
    AutoActivationResNet,
    BinaryOperator,
    UnaryOperator,
    UnknownPresetError,
    activation_sample,
)

SMALL = {"num_labels": 10, "stage_channels": (4, 8), "blocks_per_stage": 1}
LABELS = ["act/unit_1/unary_1", "act/unit_1/unary_2", "act/unit_1/binary"]


def small(unit_num: int = 1) -> AutoActivationResNet:
    return AutoActivationResNet(unit_num=unit_num, **SMALL)


def image_batch() -> torch.Tensor:
    return torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))


# Functions of one and two core units with a beta in each unit. Random ones may diverge (exp(x) * x^3...), which
# the format checks, wanting finite logits, would not take.
ONE_UNIT = {"act/unit_1/unary_1": "atan", "act/unit_1/unary_2": "scale", "act/unit_1/binary": "sigmoid_mul"}
TWO_UNITS = {
    **ONE_UNIT,
    "act/unit_2/unary_1": "shift", "act/unit_2/unary_2": "tanh", "act/unit_2/binary": "interp",
}
# For sampling strategies (one path per step): functions that do not blow up, so the shared weights stay finite.
BOUNDED = {
    "unary_candidates": ["identity", "scale", "sigmoid", "tanh", "sin", "max_zero", "atan"],
    "binary_candidates": ["add", "mul", "sigmoid_mul", "max", "interp"],
}


def test_the_space_size():
    assert len(UNARY_OPERATORS) == 25 and len(BINARY_OPERATORS) == 10
    assert AutoActivationResNet().space_size() == 25 * 25 * 10 == 6250
    assert small().space_size() == 6250  # the depth does not change the decisions
    assert small(unit_num=2).space_size() == 6250**2
    restricted = AutoActivationResNet(
        unary_candidates=["identity", "sigmoid", "tanh"], binary_candidates=["mul", "max"], **SMALL
    )
    assert restricted.space_size() == 3 * 3 * 2


def test_every_activation_shares_the_decisions_but_not_beta():
    space = AutoActivationResNet()  # ResNet-20
    activations = [m for m in space.modules() if isinstance(m, AutoActivation)]
    assert len(activations) == 1 + 9 * 2
    assert sorted(space.simplify()) == sorted(LABELS)
    assert list(space.simplify()["act/unit_1/unary_1"].values) == list(UNARY_OPERATORS)
    assert list(space.simplify()["act/unit_1/binary"].values) == list(BINARY_OPERATORS)
    betas = [m.beta for a in activations[:2] for m in a.modules() if isinstance(m, UnaryOperator) and m.name == "scale"]
    assert len(betas) == 4 and len({id(b) for b in betas}) == 4
    assert sorted(small(unit_num=2).simplify()) == sorted(
        LABELS + ["act/unit_2/unary_1", "act/unit_2/unary_2", "act/unit_2/binary"]
    )


def test_the_operators():
    x = torch.linspace(-3, 3, 61)
    x1, x2 = x, torch.cos(x)
    unary = {name: UnaryOperator(name)(x) for name in UNARY_OPERATORS}
    assert torch.equal(unary["identity"], x) and torch.equal(unary["neg"], -x)
    assert torch.allclose(unary["cube"], x**3) and torch.allclose(unary["softplus"], torch.log1p(torch.exp(x)))
    assert torch.allclose(unary["max_zero"], torch.relu(x)) and torch.allclose(unary["min_zero"], -torch.relu(-x))
    assert torch.allclose(unary["sqrt"][x > 0], torch.sqrt(x[x > 0])) and torch.isfinite(unary["sqrt"]).all()
    assert torch.allclose(unary["const"], torch.ones_like(x))
    binary = {name: BinaryOperator(name)(x1, x2) for name in BINARY_OPERATORS}
    assert torch.allclose(binary["sigmoid_mul"], torch.sigmoid(x1) * x2)
    assert torch.allclose(binary["interp"], x1)  # beta = 1
    assert torch.allclose(binary["exp_sq_diff"], torch.exp(-((x1 - x2) ** 2)))
    assert all(torch.isfinite(v).all() for v in [*unary.values(), *binary.values()])
    scale = UnaryOperator("scale")
    assert [n for n, _ in scale.named_parameters()] == ["beta"] and not list(UnaryOperator("sin").parameters())
    x = torch.randn(3, requires_grad=True)
    UnaryOperator("sqrt")(torch.cat([x, -x.abs(), torch.zeros(1)])).sum().backward()
    assert torch.isfinite(x.grad).all()


def test_the_paper_activations_are_samples():
    x = torch.linspace(-4, 4, 81)
    expected = {
        "swish": x * torch.sigmoid(x),
        "max-x-sigmoid": torch.maximum(x, torch.sigmoid(x)),
        "cos-minus-x": torch.cos(x) - x,
        "min-x-sin": torch.minimum(x, torch.sin(x)),
        "max-x-tanh": torch.maximum(x, torch.tanh(x)),
        "sinc-plus-x": torch.sinc(x) + x,
        "relu": torch.relu(x),
    }
    assert set(expected) == set(ACTIVATIONS)
    for name, values in expected.items():
        with nascore.fixed_arch(activation_sample(name)):
            act = AutoActivation(label="act")
        assert not any(isinstance(m, LayerChoice) for m in act.modules())
        assert torch.allclose(act(x), values, atol=1e-6), name
    assert activation_sample("swish", label="a") == {
        "a/unit_1/unary_1": "scale", "a/unit_1/unary_2": "identity", "a/unit_1/binary": "sigmoid_mul",
    }
    with nascore.fixed_arch(activation_sample("swish")):
        swish = AutoActivation(label="act")
    with torch.no_grad():
        swish.unary_1[0].beta.fill_(2.0)  # x * sigmoid(beta * x), beta trainable
    assert torch.allclose(swish(x), x * torch.sigmoid(2 * x))
    with pytest.raises(UnknownPresetError, match="'swish'"):
        activation_sample("gelu")


def test_autoactivation_is_usable_in_any_model():
    class MLP(ModelSpace, label_prefix="mlp"):
        def __init__(self) -> None:
            super().__init__()
            self.fc1 = nn.Linear(4, 8)
            self.act1 = AutoActivation(unit_num=2, unary_candidates=["identity", "tanh"], binary_candidates=["add"])
            self.act2 = AutoActivation(unary_candidates=["sigmoid", "sin"])
            self.fc2 = nn.Linear(8, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc2(self.act2(self.fc1(x) + self.act1(x).sum(1, keepdim=True)))

    space = MLP()
    assert space.act1.label == "mlp/autoactivation_1" and space.act2.label == "mlp/autoactivation_2"
    assert space.space_size() == 2**4 * 1 * 2**2 * 10
    assert space(torch.randn(3, 4)).shape == (3, 2)  # a space runs its defaults
    sample = space.random_sample(random_state=random.Random(0))
    with nascore.fixed_arch(sample):
        model = MLP()
    assert model(torch.randn(3, 4)).shape == (3, 2)
    with pytest.raises(SampleMissingError, match="unit_2"):
        with nascore.fixed_arch({k: v for k, v in sample.items() if "unit_2" not in k}):
            MLP()


@pytest.mark.parametrize("format_name", ["raw", "simplified", "graph"])
def test_a_sample_builds_and_runs_in_each_format(format_name, format_checks):
    format_checks.runs(format_name, small, ONE_UNIT)
    format_checks.runs(format_name, lambda: small(unit_num=2), TWO_UNITS)


def test_the_graph_format_computes_what_the_simplified_format_builds(format_checks):
    format_checks.graph_matches_simplified(lambda: small(unit_num=2), TWO_UNITS)


@pytest.mark.parametrize("strategy_name", ["DARTS", "RandomOneShot", "ENAS"])
def test_the_supernet_trains_one_step(strategy_name, tiny_evaluator):
    from nascore_strategies import oneshot

    torch.manual_seed(0)
    strategy = getattr(oneshot, strategy_name)(seed=0)
    # DARTS mixes every function (all of them, stable with one unit); sampling strategies take the bounded ones.
    kwargs = {} if strategy_name == "DARTS" else BOUNDED
    supernet = strategy.create_supernet(AutoActivationResNet(**SMALL, **kwargs))
    assert not any(isinstance(m, LayerChoice) for m in supernet.modules())
    assert sorted(supernet.simplify()) == sorted(LABELS)  # every activation shares the three decisions
    if strategy_name == "DARTS":
        assert sorted(strategy.arch.labels()) == sorted(LABELS)
    before = {k: v.detach().clone() for k, v in supernet.state_dict().items() if v.is_floating_point()}
    exported = strategy.search(tiny_evaluator)
    assert exported and all(AutoActivationResNet(**SMALL, **kwargs).contains(s) for s in exported)
    assert set(exported[0]) == set(LABELS)
    after = supernet.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    assert all(torch.isfinite(v).all() for v in after.values() if v.is_floating_point())
    if strategy_name == "DARTS":
        assert all(torch.isfinite(strategy.arch.alpha(label)).all() for label in LABELS)
    with nascore.fixed_arch(exported[0]):
        model = small()
    assert model(image_batch()).shape == (2, 10)


def test_presets():
    assert AutoActivationResNet.preset("swish") == {
        "act/unit_1/unary_1": "scale", "act/unit_1/unary_2": "identity", "act/unit_1/binary": "sigmoid_mul",
    }
    assert set(AutoActivationResNet.PRESET_NAMES) == set(ACTIVATIONS)
    for name in AutoActivationResNet.PRESET_NAMES:
        sample = AutoActivationResNet.preset(name)
        assert small().contains(sample)
        model = AutoActivationResNet.load_preset(name, **SMALL)
        assert model.sample == sample
        assert model(image_batch()).shape == (2, 10)
    model = AutoActivationResNet.load_preset("swish", **SMALL)
    act = model.stem[2]
    x = torch.randn(10)
    assert torch.allclose(act(x), x * torch.sigmoid(x))
    with pytest.raises(UnknownPresetError, match=r"no preset 'gelu'.*'swish'"):
        AutoActivationResNet.preset("gelu")
    with pytest.raises(SampleMissingError, match="unit_2"):  # the presets are one core unit
        AutoActivationResNet.load_preset("swish", unit_num=2, **SMALL)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"unit_num": 0}, "unit_num must be a positive int"),
        ({"unary_candidates": ["identity", "gelu"]}, r"unknown: \['gelu'\].*the unary operators are"),
        ({"unary_candidates": ["identity", "identity"]}, "distinct"),
        ({"binary_candidates": []}, "at least one"),
        ({"binary_candidates": "add"}, "list of names"),
        ({"label": "my act"}, "without whitespace"),
    ],
)
def test_bad_activation_arguments_say_what_to_do(kwargs, message):
    with pytest.raises(SearchSpaceError, match=message):
        AutoActivation(**kwargs)


def test_bad_arguments_are_refused():
    with pytest.raises(SearchSpaceError, match="unknown unary operator 'x2'"):
        UnaryOperator("x2")
    with pytest.raises(SearchSpaceError, match="unknown binary operator 'pow'"):
        BinaryOperator("pow")
    with pytest.raises(SearchSpaceError, match="stage_channels must be a non-empty sequence"):
        AutoActivationResNet(stage_channels=())
    with pytest.raises(SearchSpaceError, match="blocks_per_stage must be a positive int"):
        AutoActivationResNet(blocks_per_stage=0)
