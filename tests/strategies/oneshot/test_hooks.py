"""Supernet conversion by mutation hooks: order, return conventions, and clear refusals."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

import nascore
from nascore.errors import StrategyError
from nascore.nn import LayerChoice, ModelSpace, MutableDropout, MutableLinear, MutableModule
from nascore.space import Categorical
from nascore_strategies.oneshot import DARTS, ENAS, GumbelDARTS, Proxyless, RandomOneShot
from nascore_strategies.oneshot.hooks import traverse_and_mutate_submodules
from nascore_strategies.oneshot.supermodule import (
    BaseSuperNetModule,
    DifferentiableMixedLayer,
    PathSamplingLayer,
)

STRATEGIES = [DARTS, GumbelDARTS, ENAS, RandomOneShot, Proxyless]


class Small(ModelSpace):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(MutableLinear(4, nascore.choice("width", [2, 3])), nn.ReLU())
        self.act = LayerChoice({"relu": nn.ReLU(), "tanh": nn.Tanh()}, label="act")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x))


class Fixed(BaseSuperNetModule):
    """A user's supernet module: runs one activation and exports it for its label."""

    def __init__(self, layer_choice: LayerChoice, name: str) -> None:
        super().__init__()
        self.decision = layer_choice.choice
        self.chosen = layer_choice.names[-1]
        self.inner = layer_choice[self.chosen]

    def search_space_spec(self):
        return {self.decision.label: self.decision}

    def export(self, memo):
        return {} if self.decision.label in memo else {self.decision.label: self.chosen}

    def forward(self, x):
        return self.inner(x)


def test_user_hooks_run_first_and_a_returned_module_suppresses_the_defaults():
    seen = []

    def hook(module, name, memo, mutate_kwargs):
        seen.append(name)
        if isinstance(module, LayerChoice):
            return Fixed(module, name)
        return None

    strategy = DARTS(mutation_hooks=[hook])
    supernet = strategy.create_supernet(Small())
    assert isinstance(supernet.act, Fixed)
    assert seen == ["body", "body.0", "body.1", "act", "act.inner"]  # top-down, children of the replacement too
    assert strategy.arch.labels() == ["width"]  # the default hook never saw the LayerChoice
    assert strategy.export_sample() == {"width": strategy.arch.export("width"), "act": "tanh"}


def test_hook_return_conventions():
    space = Small()
    calls = []

    def keep(module, name, memo, mutate_kwargs):
        calls.append(("keep", name))
        return None

    def replace_and_continue(module, name, memo, mutate_kwargs):
        if isinstance(module, LayerChoice):
            memo["replaced"] = name
            return PathSamplingLayer(module, name), False
        return False

    def see_replacement(module, name, memo, mutate_kwargs):
        if name == "act":
            calls.append(("after", type(module).__name__))
        return name == "act"  # True: suppress the hooks after this one

    def never_for_act(module, name, memo, mutate_kwargs):
        assert name != "act"

    memo: dict = {}
    replaced = traverse_and_mutate_submodules(
        space, [keep, replace_and_continue, see_replacement, never_for_act], {"mode": "sampling"}, memo=memo
    )
    assert list(replaced) == ["act"] and memo == {"replaced": "act"}
    assert ("after", "PathSamplingLayer") in calls
    assert isinstance(space.act, PathSamplingLayer)


def test_a_hook_with_a_wrong_return_value_is_named():
    def bad(module, name, memo, mutate_kwargs):
        return "replace me"

    with pytest.raises(StrategyError, match=r"mutation hook .*bad returned a str for module 'body'"):
        traverse_and_mutate_submodules(Small(), [bad], {})


@pytest.mark.parametrize("strategy_class", STRATEGIES)
def test_a_layer_without_mixed_operation_is_refused_with_its_path_and_label(strategy_class):
    class WithDropout(ModelSpace):
        def __init__(self) -> None:
            super().__init__()
            self.blocks = nn.Sequential(nn.Linear(4, 4), MutableDropout(nascore.choice("drop_rate", [0.1, 0.5])))

        def forward(self, x):
            return self.blocks(x)

    with pytest.raises(StrategyError) as info:
        strategy_class().create_supernet(WithDropout())
    message = str(info.value)
    assert strategy_class.__name__ in message
    assert "module 'blocks.1'" in message and "'drop_rate'" in message
    assert "nn.Dropout" in message and "LayerChoice" in message and "mutation hook" in message


def test_a_custom_module_holding_decisions_is_refused():
    class Gate(MutableModule):
        def __init__(self) -> None:
            super().__init__()
            self.open = self.add_mutable(Categorical([True, False], label="gate_open"))

        def forward(self, x):
            return x

    class WithGate(ModelSpace):
        def __init__(self) -> None:
            super().__init__()
            self.gate = Gate()
            self.act = LayerChoice([nn.ReLU(), nn.Tanh()], label="act")

        def forward(self, x):
            return self.act(self.gate(x))

    with pytest.raises(StrategyError, match=r"RandomOneShot cannot search module 'gate' \(Gate, label 'gate_open'\).*mutation hook"):
        RandomOneShot().create_supernet(WithGate())


def test_a_hook_that_drops_decisions_is_caught():
    def plain(module, name, memo, mutate_kwargs):
        if isinstance(module, LayerChoice):
            return module["relu"]
        return None

    with pytest.raises(StrategyError, match=r"decision\(s\) 'act' of the space are not used by any supernet module"):
        DARTS(mutation_hooks=[plain]).create_supernet(Small())


def test_the_space_is_left_untouched():
    space = Small()
    before = {k: v.clone() for k, v in space.state_dict().items()}
    supernet = GumbelDARTS().create_supernet(space)
    assert isinstance(supernet.act, DifferentiableMixedLayer)
    assert type(space.act) is LayerChoice
    assert all(torch.equal(before[k], v) for k, v in space.state_dict().items())
