"""Weight inheritance (issue 13): a supernet frozen with a sample is the plain model of that architecture.

``supernet.freeze(sample)`` (and each supernet module's ``freeze``) gives a PyTorch model with no
supernet module left inside, whose weights are the supernet's (selected candidates, sliced super
weights); in eval mode it computes what the supernet computes on that path.
"""

from __future__ import annotations

import random

import pytest
import torch
import torch.nn as nn

import nascore
from nascore.errors import SampleMissingError
from nascore.nn import (
    LayerChoice,
    ModelSpace,
    MutableBatchNorm2d,
    MutableConv2d,
    MutableLayerNorm,
    MutableLinear,
    MutableModule,
    MutableMultiheadAttention,
    Repeat,
)
from nascore_strategies.oneshot.supermodule import BaseSuperNetModule

from .test_supermodules import CellSpace, Structural, run_path, supernet

MODES = ["sampling", "differentiable", "proxyless"]


class Operations(ModelSpace):
    """Choices in Conv2d / BatchNorm2d / Linear / LayerNorm / MultiheadAttention arguments, widths chained."""

    def __init__(self) -> None:
        super().__init__()
        channels = nascore.choice("channels", [4, 8])
        kernel = nascore.choice("kernel", [1, 3])
        self.conv = MutableConv2d(3, channels, kernel, padding=kernel // 2)
        self.bn = MutableBatchNorm2d(channels)
        self.conv2 = MutableConv2d(channels, 6, 3, padding=1)
        width = nascore.choice("width", [8, 16])
        self.fc = MutableLinear(6, width)
        self.norm = MutableLayerNorm(width)
        self.attention = MutableMultiheadAttention(width, nascore.choice("heads", [2, 4]), batch_first=True)
        self.head = MutableLinear(width, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.bn(self.conv(x)))
        y = self.conv2(y).flatten(2).transpose(1, 2)  # (batch, positions, 6)
        y = self.norm(self.fc(y))
        y, _ = self.attention(y, y, y)
        return self.head(y).mean(1)


def assert_plain(model: nn.Module) -> None:
    """No supernet module, and no nascore module other than the model space itself."""
    for name, module in model.named_modules():
        assert not isinstance(module, BaseSuperNetModule), name
        assert name == "" or not isinstance(module, MutableModule), (name, type(module))


def check(space: ModelSpace, mode: str, inputs: tuple[torch.Tensor, ...], samples: list[dict]) -> None:
    net, arch = supernet(space, mode)
    net.train()
    for _ in range(2):  # some training-mode passes: batch-norm statistics move away from their start
        run_path(net, arch, samples[0])
        net(*inputs)
    net.eval()
    for sample in samples:
        run_path(net, arch, sample)
        with torch.no_grad():
            expected = net(*inputs)
        frozen = net.freeze(sample)
        assert_plain(frozen)
        assert frozen.sample == sample
        with torch.no_grad():
            torch.testing.assert_close(frozen.eval()(*inputs), expected, rtol=1e-5, atol=1e-5)
        # the frozen model is the architecture fixed_arch builds, with the supernet's weights
        args, kwargs = space.init_arguments
        with nascore.fixed_arch(sample):
            built = type(space)(*args, **kwargs)
        assert {k: v.shape for k, v in built.state_dict().items()} == {k: v.shape for k, v in frozen.state_dict().items()}


@pytest.mark.parametrize("mode", MODES)
def test_choices_in_layer_arguments(mode):
    torch.manual_seed(0)
    space = Operations()
    samples = [dict(zip(["channels", "kernel", "width", "heads"], values)) for values in
               [(4, 1, 8, 2), (8, 3, 16, 4), (4, 3, 16, 2), (8, 1, 8, 4)]]
    check(space, mode, (torch.randn(2, 3, 5, 5),), samples)


@pytest.mark.parametrize("mode", MODES)
def test_layer_choice_repeat_and_input_choice(mode):
    torch.manual_seed(0)
    space = Structural()
    rng = random.Random(0)
    samples = [space.random_sample(random_state=rng) for _ in range(6)]
    check(space, mode, (torch.randn(5, 6),), samples)


@pytest.mark.parametrize("mode", MODES)
def test_cells(mode):
    torch.manual_seed(0)
    space = CellSpace("all")
    rng = random.Random(1)
    samples = [space.random_sample(random_state=rng) for _ in range(4)]
    check(space, mode, (torch.randn(3, 4), torch.randn(3, 4)), samples)


class NestedSupernet(ModelSpace):
    """Conditional: a Repeat inside a LayerChoice candidate, each block with a width choice."""

    def __init__(self) -> None:
        super().__init__()
        deep = Repeat(lambda i: nn.Sequential(MutableLinear(6, nascore.choice(f"w{i}", [6])), nn.ReLU()), (1, 2), label="depth")
        self.op = LayerChoice({"deep": deep, "id": nn.Identity()}, label="op")
        self.head = nn.Linear(6, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.op(x))


@pytest.mark.parametrize("mode", MODES)
def test_a_supernet_is_a_space_of_the_same_conditional_decisions(mode):
    space = NestedSupernet()
    net, _ = supernet(space, mode)
    assert list(net.simplify()) == list(space.simplify())
    assert net.space_size() == space.space_size() == 3
    assert net.contains({"op": "id"}) and not net.contains({"op": "deep"})
    with pytest.raises(SampleMissingError, match="'depth'.*active because op == 'deep'"):
        net.freeze({"op": "deep"})
    assert isinstance(net.freeze({"op": "id"}).op, nn.Identity)
    assert len(net.freeze({"op": "deep", "depth": 2, "w0": 6, "w1": 6}).op) == 2


def test_each_mixed_operation_freezes_on_its_own():
    net, _ = supernet(Operations(), "sampling")
    conv = net.conv.freeze({"channels": 8, "kernel": 3})
    assert type(conv) is nn.Conv2d and conv.weight.shape == (8, 3, 3, 3)
    torch.testing.assert_close(conv.weight, net.conv.weight[:8, :, :, :])
    small = net.conv.freeze({"channels": 4, "kernel": 1})
    torch.testing.assert_close(small.weight, net.conv.weight[:4, :, 1:2, 1:2])  # the centred kernel
