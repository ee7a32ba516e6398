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
    weighted_sum,
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
    space = Structural()  # "pair" chooses two inputs: Proxyless draws two distinct ones
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


def test_differentiable_loose_end_cells_scale_each_node_by_the_chance_no_slot_reads_it():
    space = CellSpace(merge_op="loose_end")
    net, arch = supernet(space, "differentiable")
    x, y = torch.randn(3, 4), torch.randn(3, 4)
    rng = random.Random(2)
    for _ in range(6):
        sample = space.random_sample(random_state=rng)
        run_path(net, arch, sample)  # every weight on this architecture
        frozen = space.freeze(sample)
        output = net(x, y)
        chunks = output.split(4, dim=1)  # every node, in order
        ends = frozen.cell.output_node_indices
        expected = frozen(x, y).split(4, dim=1)
        for node, chunk in zip(range(2, 5), chunks):
            if node in ends:
                torch.testing.assert_close(chunk, expected[ends.index(node)])
            else:
                assert torch.count_nonzero(chunk) == 0
        sub = net.freeze(sample)  # the exported sub-net concatenates only its loose ends
        torch.testing.assert_close(sub(x, y), frozen(x, y))


def test_differentiable_loose_end_cells_train_with_darts_and_gumbel_darts():
    from nascore_strategies.oneshot import DARTS, GumbelDARTS

    for strategy in (DARTS(), GumbelDARTS()):
        net = strategy.create_supernet(CellSpace(merge_op="loose_end"))
        out = net(torch.randn(3, 4), torch.randn(3, 4))
        out.sum().backward()
        assert all(strategy.arch.alpha(label).grad is not None for label in strategy.arch.labels())


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


@pytest.mark.parametrize("stacked", [True, False], ids=["stacked", "dot-per-output"])
@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last, "mixed"])
def test_the_weighted_sum_has_exact_first_and_second_order_gradients(layout, stacked, monkeypatch):
    from nascore_strategies.oneshot.supermodule import base

    if not stacked:  # small outputs are stacked for d/dw; the per-output dot products must agree
        monkeypatch.setattr(base, "_STACKED_BYTES", 0)
    torch.manual_seed(0)
    w = torch.randn(3, dtype=torch.float64, requires_grad=True)
    layouts = [torch.contiguous_format, torch.channels_last, torch.contiguous_format] if layout == "mixed" else [layout] * 3
    outputs = [torch.randn(2, 3, 4, 5, dtype=torch.float64).contiguous(memory_format=fmt).requires_grad_()
               for fmt in layouts]
    layout = layouts[0]

    def mix(w: torch.Tensor, *outputs: torch.Tensor) -> torch.Tensor:
        return weighted_sum(list(outputs), w, "test")

    assert torch.autograd.gradcheck(mix, (w, *outputs))
    assert torch.autograd.gradgradcheck(mix, (w, *outputs))
    assert mix(w, *outputs).is_contiguous(memory_format=layout)


def test_the_weighted_sum_keeps_the_outputs_only_when_the_weights_train():
    outputs = [torch.randn(4, 8, requires_grad=True) for _ in range(3)]
    saved: list[int] = []
    for w in (torch.rand(3, requires_grad=True), torch.rand(3)):  # an architecture step, then a weight step
        sizes: list[int] = []
        def pack(t: torch.Tensor, sizes: list[int] = sizes) -> torch.Tensor:
            sizes.append(t.numel())
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            weighted_sum(outputs, w, "test").sum().backward()
        saved.append(sum(sizes))
    assert saved == [3 + 3 * 32, 3]  # the weights and every output; then the weights alone


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


@pytest.mark.parametrize("reduction", ["sum", "mean", "concat"])
def test_proxyless_multiple_inputs_draw_distinct_inputs_and_gate_each(reduction):
    torch.manual_seed(0)

    class Pair(ModelSpace):
        def __init__(self) -> None:
            super().__init__()
            self.pair = InputChoice(4, 2, reduction=reduction, label="pair")

        def forward(self, xs):
            return self.pair(xs)

    net, arch = supernet(Pair(), "proxyless")
    drawn = set()
    for _ in range(30):
        memo = {}
        net.pair.resample(memo)
        assert len(memo["pair"]) == 2 and memo["pair"] == sorted(set(memo["pair"]))
        drawn.add(tuple(memo["pair"]))
    assert len(drawn) > 3
    xs = [torch.randn(3, 5) for _ in range(4)]
    net.pair.resample({"pair": [1, 3]})
    frozen = Pair().freeze({"pair": [1, 3]})
    torch.testing.assert_close(net(xs), frozen(xs))
    arch.binary_gates = True
    direction = torch.randn_like(net(xs))
    (net(xs) * direction).sum().backward()
    arch.binary_gates = False
    grad = arch.alpha("pair").grad
    assert grad is not None and grad.abs().sum() > 0
    torch.testing.assert_close(grad.sum(), torch.tensor(0.0), atol=1e-5, rtol=0)  # softmax gradients sum to zero


def test_proxyless_refuses_any_number_of_inputs():
    class AnyInputs(ModelSpace):
        def __init__(self) -> None:
            super().__init__()
            self.pick = InputChoice(3, None, label="pick")

    with pytest.raises(StrategyError, match=r"n_chosen=None .*Proxyless"):
        supernet(AnyInputs(), "proxyless")


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


def test_architecture_parameters_are_read_from_the_list_itself():
    net, arch = supernet(Structural(), "differentiable")
    assert arch.alpha_list() == list(arch.alphas)
    assert [arch.alpha(label) for label in arch.labels()] == list(arch.alphas)
    replaced = nn.Parameter(torch.tensor([5.0, 0.0, 0.0]))
    arch.alphas[arch.labels().index("op")] = replaced  # a parameter swapped in the list is the one read
    assert arch.alpha("op") is replaced and replaced in arch.alpha_list()
    with arch.frozen():
        assert not any(p.requires_grad for p in arch.alpha_list())
    assert all(p.requires_grad for p in arch.alpha_list())
    with arch.scope():
        assert arch.weights("op") is arch.weights("op")  # one softmax per forward pass
        assert arch.weights("op")[0] > 0.9


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


@pytest.mark.parametrize("kind", ["tuple", "dict", "number"])
def test_differentiable_repeat_mixes_blocks_that_return_tuples_dicts_or_numbers(kind):
    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, state):
            if kind == "tuple":
                x, count = state
                return self.fc(x), count + 1
            if kind == "dict":
                return {"x": self.fc(state["x"]), "aux": state["aux"] * 2}
            return state + 1.0  # numbers through the blocks

    class Deep(ModelSpace):
        def __init__(self) -> None:
            super().__init__()
            self.body = Repeat(lambda i: Block(), (1, 3), label="depth")

        def forward(self, state):
            return self.body(state)

    torch.manual_seed(0)
    space = Deep()
    net, arch = supernet(space, "differentiable")
    x = torch.randn(2, 4)
    state = {"tuple": (x, torch.tensor(0.0)), "dict": {"x": x, "aux": torch.ones(1)}, "number": 0.0}[kind]
    for depth in (1, 2, 3):
        run_path(net, arch, {"depth": depth})
        got, expected = net(state), space.freeze({"depth": depth})(state)
        if kind == "tuple":
            torch.testing.assert_close(got[0], expected[0])
            torch.testing.assert_close(got[1], expected[1].float())
        elif kind == "dict":
            assert set(got) == {"x", "aux"}
            torch.testing.assert_close(got["x"], expected["x"])
            torch.testing.assert_close(got["aux"], expected["aux"])
        else:
            assert float(got.detach()) == pytest.approx(expected)
    with torch.no_grad():
        arch.alpha("depth").zero_()  # equal weights: the mean over depths, and alpha gets a gradient
    out = net(state)
    value = {"tuple": lambda o: o[0].sum() + o[1], "dict": lambda o: o["x"].sum() + o["aux"].sum(), "number": lambda o: o}[kind](out)
    value.backward()
    assert arch.alpha("depth").grad is not None
