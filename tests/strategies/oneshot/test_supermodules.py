"""Supernet versions of LayerChoice, InputChoice, Repeat and Cell behave as the architecture they stand for.

A supernet is built from a space with the hooks of each algorithm family. Made to run one
architecture (sampled; or all probability on it), its output must equal that of ``space.freeze``
for the same sample: both are copies of the same space, so they hold the same weights.
"""

from __future__ import annotations

import copy
import random

import pytest
import torch
import torch.nn as nn

from nascore.errors import StrategyError
from nascore.nn import Cell, InputChoice, LayerChoice, ModelSpace, Repeat
from nascore_strategies.oneshot.hooks import default_mutation_hooks, traverse_and_mutate_submodules
from nascore_strategies.oneshot.supermodule import (
    ArchParameters,
    BaseSuperNetModule,
    DifferentiableMixedLayer,
    ProxylessMixedLayer,
)


class Scale(nn.Module):
    """An operator whose behaviour depends on the input it reads (a factory receives the input index)."""

    def __init__(self, input_index: int | None) -> None:
        super().__init__()
        self.factor = 1.0 + (input_index or 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.factor


class Structural(ModelSpace):
    def __init__(self, pair_chosen: int = 2) -> None:
        super().__init__()
        self.stem = nn.Linear(6, 8)
        self.op = LayerChoice({"lin": nn.Linear(8, 8), "tanh": nn.Sequential(nn.Linear(8, 8), nn.Tanh()), "id": nn.Identity()}, label="op")
        self.repeat = Repeat(lambda i: nn.Sequential(nn.Linear(8, 8), nn.ReLU()), (0, 3), label="depth")
        self.skip = InputChoice(3, 1, label="skip")
        self.pair = InputChoice(3, pair_chosen, reduction="mean", label="pair")
        self.head = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.stem(x)
        a = self.op(s)
        b = self.repeat(a)
        return self.head(self.skip([s, a, b]) + self.pair([s, a, b]))


class CellSpace(ModelSpace):
    def __init__(self, merge_op: str = "all") -> None:
        super().__init__()
        self.cell = Cell(
            {"lin": nn.Linear(4, 4), "tanh": nn.Tanh(), "scale": lambda node, op, inp: Scale(inp)},
            num_nodes=3,
            num_ops_per_node=2,
            num_predecessors=2,
            merge_op=merge_op,
            label="cell",
        )

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.cell(x, y)


def supernet(space: ModelSpace, mode: str) -> tuple[nn.Module, ArchParameters | None]:
    arch = None if mode == "sampling" else ArchParameters(generator=torch.Generator().manual_seed(0))
    net = copy.deepcopy(space)
    traverse_and_mutate_submodules(net, default_mutation_hooks(mode), {"mode": mode, "arch": arch, "strategy": "test"})
    return net, arch


def run_path(net: nn.Module, arch: ArchParameters | None, sample: dict) -> None:
    memo = dict(sample)
    for module in net.modules():
        if isinstance(module, BaseSuperNetModule):
            module.resample(memo)
    if arch is not None:
        with torch.no_grad():
            for label, decision in arch.decisions.items():
                alpha = arch.alpha(label)
                alpha.fill_(float("-inf"))
                value = sample[label]
                chosen = [decision.values.index(v) for v in value] if isinstance(value, list) else [decision.index_of(value)]
                alpha[chosen] = 0.0  # several chosen inputs get equal weights, which is what "mean" computes


@pytest.mark.parametrize("mode", ["sampling", "differentiable", "proxyless"])
def test_layer_input_and_repeat_run_the_chosen_architecture(mode):
    torch.manual_seed(0)
    space = Structural(pair_chosen=1 if mode == "proxyless" else 2)  # Proxyless samples a single input
    net, arch = supernet(space, mode)
    x = torch.randn(5, 6)
    rng = random.Random(0)
    for _ in range(8):
        sample = space.random_sample(random_state=rng)
        run_path(net, arch, sample)
        torch.testing.assert_close(net(x), space.freeze(sample)(x))


@pytest.mark.parametrize("mode", ["sampling", "differentiable", "proxyless"])
def test_cell_runs_the_chosen_operators_on_the_chosen_inputs(mode):
    torch.manual_seed(0)
    space = CellSpace()
    net, arch = supernet(space, mode)
    x, y = torch.randn(3, 4), torch.randn(3, 4)
    rng = random.Random(1)
    for _ in range(8):
        sample = space.random_sample(random_state=rng)
        run_path(net, arch, sample)
        torch.testing.assert_close(net(x, y), space.freeze(sample)(x, y))


@pytest.mark.parametrize("mode", ["sampling", "proxyless"])
def test_loose_end_cells_concatenate_the_nodes_no_sampled_input_reads(mode):
    space = CellSpace(merge_op="loose_end")
    net, arch = supernet(space, mode)
    x, y = torch.randn(3, 4), torch.randn(3, 4)
    rng = random.Random(2)
    ends = set()
    for _ in range(12):
        sample = space.random_sample(random_state=rng)
        ends.add(tuple(space.freeze(sample).cell.output_node_indices))
        run_path(net, arch, sample)
        torch.testing.assert_close(net(x, y), space.freeze(sample)(x, y))
    assert len(ends) > 1  # the samples had different loose ends


def test_differentiable_cell_refuses_loose_end_naming_the_module():
    with pytest.raises(StrategyError, match=r"module 'cell' \(Cell 'cell'\).*merge_op='loose_end'.*sampling strategy"):
        supernet(CellSpace(merge_op="loose_end"), "differentiable")


def test_differentiable_layer_choice_is_the_softmax_weighted_sum():
    torch.manual_seed(0)
    space = Structural()
    net, arch = supernet(space, "differentiable")
    layer = net.op
    assert isinstance(layer, DifferentiableMixedLayer)
    with torch.no_grad():
        arch.alpha("op").copy_(torch.tensor([0.2, -1.0, 0.5]))
    x = torch.randn(4, 8)
    weights = torch.softmax(arch.alpha("op"), 0)
    expected = sum(w * c(x) for w, c in zip(weights, layer.candidates))
    torch.testing.assert_close(layer(x), expected)
    layer(x).sum().backward()
    assert arch.alpha("op").grad is not None and arch.alpha("op").grad.abs().sum() > 0


def test_proxyless_binary_gates_give_the_proxylessnas_gradient():
    torch.manual_seed(0)
    net, arch = supernet(Structural(pair_chosen=1), "proxyless")
    layer = net.op
    assert isinstance(layer, ProxylessMixedLayer)
    alpha = arch.alpha("op")
    with torch.no_grad():
        alpha.copy_(torch.tensor([0.3, -0.2, 0.1]))
    layer.resample({"op": "tanh"})
    x = torch.randn(4, 8)
    direction = torch.randn(4, 8)
    arch.binary_gates = True
    (layer(x) * direction).sum().backward()
    arch.binary_gates = False
    with torch.no_grad():
        gate_grads = torch.stack([(c(x) * direction).sum() for c in layer.candidates])
        p = torch.softmax(alpha, 0)
        expected = p * (gate_grads - (gate_grads * p).sum())
    torch.testing.assert_close(alpha.grad, expected)


def test_proxyless_runs_only_the_sampled_candidate():
    net, arch = supernet(Structural(pair_chosen=1), "proxyless")
    calls = []
    for name in net.op.names:
        net.op.candidate(name).register_forward_hook(lambda m, i, o, name=name: calls.append(name))
    net.op.resample({"op": "lin"})
    net.op(torch.randn(2, 8)).sum().backward()
    assert calls == ["lin"]


def test_differentiable_input_choice_needs_a_fixed_number_of_added_inputs():
    class AnyInputs(ModelSpace):
        def __init__(self):
            super().__init__()
            self.inputs = InputChoice(3, None, label="inputs")

        def forward(self, xs):
            return self.inputs(xs)

    with pytest.raises(StrategyError, match=r"module 'inputs' \(InputChoice 'inputs'\).*n_chosen=None"):
        supernet(AnyInputs(), "differentiable")
    net, _ = supernet(AnyInputs(), "sampling")
    net.inputs.resample({"inputs": [0, 2]})
    xs = [torch.full((2,), float(i)) for i in range(3)]
    torch.testing.assert_close(net(xs), xs[0] + xs[2])


def test_exports_of_differentiable_modules_follow_the_architecture_parameters():
    net, arch = supernet(Structural(), "differentiable")
    with torch.no_grad():
        arch.alpha("op").copy_(torch.tensor([0.0, 2.0, 1.0]))
        arch.alpha("pair").copy_(torch.tensor([3.0, -1.0, 2.0]))
    memo: dict = {}
    for module in net.modules():
        if isinstance(module, BaseSuperNetModule):
            memo.update(module.export(memo))
    assert memo["op"] == "tanh"
    assert memo["pair"] == [0, 2]
    ranked = arch.ranked("op", 2)
    assert [value for _, value in ranked] == ["tanh", "id"]


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_differentiable_multiple_inputs_reduce_like_the_chosen_ones(reduction):
    class TwoOfThree(ModelSpace):
        def __init__(self):
            super().__init__()
            self.inputs = InputChoice(3, 2, reduction=reduction, label="inputs")

        def forward(self, xs):
            return self.inputs(xs)

    space = TwoOfThree()
    net, arch = supernet(space, "differentiable")
    run_path(net, arch, {"inputs": [0, 2]})
    xs = [torch.randn(4) for _ in range(3)]
    torch.testing.assert_close(net(xs), space.freeze({"inputs": [0, 2]})(xs))
