"""FLOPs / parameter / latency profilers of nascore_hub: hand counts and the three integrations."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

import nascore
from nascore.errors import ConstraintViolationError
from nascore.nn import LayerChoice, ModelSpace, MutableConv2d, MutableLinear
from nascore_hub.profiler import (
    FlopsProfiler,
    LatencyProfiler,
    LatencyTable,
    MissingLatencyError,
    ParamsProfiler,
    ProfilerConstraint,
    count_flops,
    count_parameters,
    flops_cost,
    flops_filter,
    op_key,
    params_filter,
)


class BasicBlock(nn.Module):
    """ResNet basic block: conv3x3-BN-ReLU-conv3x3-BN, + identity, ReLU (no bias on the convs)."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + x)


def test_basic_block_hand_count() -> None:
    c, h, w = 16, 8, 8
    block = BasicBlock(c)
    x = torch.randn(1, c, h, w)
    # Only the two convs count (BN, ReLU and the residual add count 0): 2 * C*C*9*H*W MACs.
    macs = 2 * c * c * 9 * h * w
    assert count_flops(block, x) == macs
    assert count_flops(block, x, unit="flop") == 2 * macs
    assert count_flops(block, torch.randn(4, c, h, w)) == 4 * macs  # the whole batch
    assert count_parameters(block) == 2 * c * c * 9 + 2 * 2 * c  # conv weights + BN weight/bias
    assert block.training  # the mode is restored


def test_linear_and_conv_hand_counts() -> None:
    linear = nn.Linear(10, 4)
    assert count_flops(linear, torch.randn(3, 10)) == 3 * 10 * 4  # bias add not counted
    assert count_parameters(linear) == 10 * 4 + 4

    conv = nn.Conv2d(8, 16, kernel_size=3, stride=2, padding=1, groups=4)  # 16x16 -> 8x8
    out_hw = 8 * 8
    assert count_flops(conv, torch.randn(1, 8, 16, 16)) == 16 * (8 // 4) * 9 * out_hw
    assert count_parameters(conv) == 16 * (8 // 4) * 9 + 16
    conv.weight.requires_grad_(False)
    assert count_parameters(conv, trainable_only=True) == 16
    with pytest.raises(ValueError, match="unit"):
        count_flops(linear, torch.randn(1, 10), unit="gflops")


class Net(ModelSpace):
    def __init__(self) -> None:
        super().__init__()
        width = nascore.choice("width", [4, 8])
        self.stem = MutableConv2d(3, width, 3, padding=1)
        self.op = LayerChoice(
            {
                "conv3": MutableConv2d(width, width, 3, padding=1),
                "conv1": MutableConv2d(width, width, 1),
                "id": nn.Identity(),
            },
            label="op",
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = MutableLinear(width, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.op(self.stem(x))).flatten(1))


X = torch.randn(2, 3, 8, 8)


def _hand(sample: dict) -> int:
    w, n = sample["width"], 2
    stem = n * w * 3 * 9 * 64
    op = {"conv3": n * w * w * 9 * 64, "conv1": n * w * w * 64, "id": 0}[sample["op"]]
    return stem + op + n * w * 10


def test_profiler_matches_frozen_model_and_hand_count() -> None:
    space = Net()
    flops = FlopsProfiler(space, X)
    params = ParamsProfiler(space)
    samples = list(space.grid_samples())
    assert len(samples) == 6
    for sample in samples:
        frozen = space.freeze(sample)
        assert flops(sample) == count_flops(frozen, X) == _hand(sample)
        assert params(sample) == count_parameters(frozen)
    assert flops.builds == 6
    for sample in samples:
        flops(sample)
    assert flops.builds == 6  # cached
    assert FlopsProfiler(space, (X,), unit="flop")(samples[0]) == 2 * flops(samples[0])
    assert flops(space.freeze(samples[0])) == flops(samples[0])  # a plain module too


def test_model_filter_rejects_big_samples() -> None:
    space = Net()
    profiler = FlopsProfiler(space, X)
    small, big = {"width": 4, "op": "id"}, {"width": 8, "op": "conv3"}
    limit = _hand(small) + 1
    model_filter = flops_filter(profiler, limit)

    class Model:  # what the strategies give model_filter: an ExecutableModel with a sample
        def __init__(self, sample: dict) -> None:
            self.sample = sample

    assert model_filter(Model(small)) is True
    assert model_filter(Model(big)) is False
    assert model_filter(space.freeze(big)) is False  # a built module
    assert params_filter(ParamsProfiler(space), 10**6)(Model(big)) is True


def test_model_filter_in_a_strategy() -> None:
    from nascore.strategy_behaviours import ModelFilterCheck

    space = Net()
    limit = _hand({"width": 8, "op": "conv1"})
    check = ModelFilterCheck(flops_filter(FlopsProfiler(space, X), limit))

    class Exec:
        def freeze(self, sample: dict) -> object:
            return type("M", (), {"sample": sample})()

    accepted = {(s["width"], s["op"]) for s in space.grid_samples() if check.accepts(Exec(), s, str(s))}
    assert accepted == {(4, "conv3"), (4, "conv1"), (4, "id"), (8, "conv1"), (8, "id")}


def test_constraint_on_the_space() -> None:
    space = Net()
    profiler = FlopsProfiler(space, X)
    limit = _hand({"width": 4, "op": "conv3"})
    space.add_mutable(ProfilerConstraint(profiler, max_value=limit, label="flops"))
    allowed = list(space.grid_samples())
    assert all(profiler(s) <= limit for s in allowed)
    assert {(s["width"], s["op"]) for s in allowed} == {(4, "conv3"), (4, "conv1"), (4, "id"), (8, "id")}
    assert not space.contains({"width": 8, "op": "conv3"})
    with pytest.raises(ConstraintViolationError, match="flops"):
        space.freeze({"width": 8, "op": "conv3"})
    for seed in range(5):
        assert profiler(space.random_sample(seed=seed)) <= limit
    frozen = space.freeze({"width": 8, "op": "id"})
    assert count_flops(frozen, X) == _hand({"width": 8, "op": "id"})


def test_flops_cost_for_the_penalty() -> None:
    cost = flops_cost()
    conv = nn.Conv2d(4, 4, 3, padding=1)
    x = torch.randn(1, 4, 8, 8)
    assert cost(conv, (x,), {}) == 4 * 4 * 9 * 64
    assert flops_cost("flop")(conv, (x,), {}) == 2 * 4 * 4 * 9 * 64


def test_latency_table_sums_and_errors(tmp_path) -> None:
    space = Net()
    table = LatencyTable(unit="ms", device="cpu-test")
    profiler = LatencyProfiler(space, X, table)
    sample = {"width": 4, "op": "conv3"}
    calls = profiler.record(space.freeze(sample))
    assert [type(m).__name__ for m, _ in calls] == ["Conv2d", "Conv2d", "AdaptiveAvgPool2d", "Linear"]
    for i, (module, shape) in enumerate(calls):
        table.add(module, shape, float(i + 1))
    assert profiler(sample) == 1 + 2 + 3 + 4
    assert table[calls[0][0], (2, 3, 8, 8)] == 1.0

    path = tmp_path / "table.json"
    table.save(path)
    loaded = LatencyTable.load(path)
    assert loaded.entries == table.entries and loaded.device == "cpu-test"
    assert LatencyProfiler(space, X, loaded)(sample) == 10

    with pytest.raises(MissingLatencyError) as info:
        profiler({"width": 4, "op": "conv1"})
    message = str(info.value)
    assert "Conv2d(4, 4, kernel_size=(1, 1), stride=(1, 1))" in message and "2x4x8x8" in message
    with pytest.raises(MissingLatencyError, match="2x4x16x16"):
        table.lookup(calls[1][0], torch.randn(2, 4, 16, 16))
    assert table.cost_function()(calls[1][0], (torch.randn(2, 4, 8, 8),), {}) == 2.0
    assert op_key(nn.ReLU()) == "ReLU()"

    measured = table.measure(nn.ReLU(), torch.randn(1, 4), repeat=2, warmup=0)
    assert table.lookup("ReLU()", "1x4") == measured >= 0


def test_costs_plug_into_expected_cost_penalty() -> None:
    from nascore_strategies.oneshot.penalty import ExpectedCostPenalty

    conv, x = nn.Conv2d(4, 4, 3, padding=1), torch.randn(1, 4, 8, 8)
    assert ExpectedCostPenalty(cost=flops_cost())._measure(conv, (x,), {}) == 4 * 4 * 9 * 64
    table = LatencyTable({(conv, x): 0.5})
    assert ExpectedCostPenalty(cost=table.cost_function())._measure(conv, (x,), {}) == 0.5
