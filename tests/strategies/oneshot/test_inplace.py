"""ReLUs that run in place while a supernet trains: which ones, restored after, same gradients."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

import nascore
from nascore.errors import StrategyError
from nascore.nn import LayerChoice, ModelSpace, MutableConv2d
from nascore_strategies.oneshot import DARTS, Proxyless, RandomOneShot
from nascore_strategies.oneshot.inplace import inplace_relus, relus_that_may_run_in_place


def conv_bn_relu(channels: int = 4) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.BatchNorm2d(channels), nn.ReLU())


class Custom(nn.Module):
    """Calls its ReLU on something of its own: the ReLU must never run in place."""

    def __init__(self, relu: nn.ReLU) -> None:
        super().__init__()
        self.act = relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.act(x)


class OwnForward(nn.Sequential):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self[0](x)
        return self[1](y) + y  # reads the output the ReLU would overwrite


def test_only_relus_after_layers_that_do_not_need_their_output_are_chosen():
    chosen = conv_bn_relu()
    after_linear = nn.Sequential(nn.Flatten(), nn.Linear(64, 8), nn.ReLU())
    after_identity = nn.Sequential(nn.Identity(), nn.ReLU())
    first = nn.Sequential(nn.ReLU(), nn.Conv2d(4, 4, 1))
    shared = nn.ReLU()  # after a BN here, but also called by a custom forward
    model = nn.ModuleList([chosen, after_linear, after_identity, first, nn.Sequential(nn.BatchNorm2d(4), shared),
                           Custom(shared), OwnForward(nn.Conv2d(4, 4, 1), nn.ReLU())])
    assert relus_that_may_run_in_place(model) == [chosen[2], after_linear[2]]


def test_hooks_on_the_layer_or_the_relu_or_global_hooks_keep_it_as_written():
    hooked_layer, hooked_relu = conv_bn_relu(), conv_bn_relu()
    hooked_layer[1].register_forward_hook(lambda module, inputs, output: None)
    hooked_relu[2].register_forward_pre_hook(lambda module, inputs: None)
    assert relus_that_may_run_in_place(nn.ModuleList([hooked_layer, hooked_relu])) == []
    handle = nn.modules.module.register_module_forward_hook(lambda module, inputs, output: None)
    try:
        assert relus_that_may_run_in_place(conv_bn_relu()) == []
    finally:
        handle.remove()


def test_inside_they_run_in_place_and_after_they_are_restored_even_on_an_error():
    model = conv_bn_relu()
    with inplace_relus(model) as count:
        assert count == 1 and model[2].inplace
    assert not model[2].inplace
    with pytest.raises(RuntimeError, match="boom"), inplace_relus(model):
        raise RuntimeError("boom")
    assert not model[2].inplace
    with inplace_relus(model, enabled=False) as count:
        assert count == 0 and not model[2].inplace


def test_values_and_gradients_are_those_of_the_model_as_written():
    torch.manual_seed(0)
    model = nn.Sequential(conv_bn_relu(), conv_bn_relu(), nn.Flatten(), nn.Linear(64, 3), nn.ReLU(), nn.Linear(3, 1))
    x = torch.randn(5, 4, 4, 4)

    def run() -> tuple[torch.Tensor, list[torch.Tensor]]:
        model.zero_grad()
        out = model(x)
        out.sum().backward()
        return out.detach(), [p.grad.clone() for p in model.parameters()]

    expected, expected_grads = run()
    with inplace_relus(model) as count:
        assert count == 3
        out, grads = run()
    torch.testing.assert_close(out, expected)
    for grad, expected_grad in zip(grads, expected_grads):
        torch.testing.assert_close(grad, expected_grad)


class Space(ModelSpace):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(MutableConv2d(3, 4, nascore.choice("k", [1, 3]), padding="same"), nn.ReLU())
        self.block = LayerChoice([conv_bn_relu(), nn.Sequential(nn.Conv2d(4, 4, 1), nn.ReLU()), nn.Identity()],
                                 label="op")
        self.after_choice = nn.ReLU()  # after the LayerChoice, which may give back its input: kept
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.after_choice(self.block(self.stem(x))))


@pytest.mark.parametrize(("strategy", "after_mixed_conv"), [(DARTS, True), (RandomOneShot, True), (Proxyless, False)])
def test_in_a_supernet_the_candidates_relus_and_one_after_a_sampled_or_mixed_conv_are_chosen(strategy, after_mixed_conv):
    supernet = strategy().create_supernet(Space())
    relus = relus_that_may_run_in_place(supernet)
    candidates = [relu for relu in relus if any(relu is m for m in supernet.block.modules())]
    assert len(candidates) == 2
    assert any(relu is supernet.stem[1] for relu in relus) is after_mixed_conv  # Proxyless's gate keeps the output
    assert not any(relu is supernet.after_choice for relu in relus)


@pytest.mark.parametrize("strategy", [DARTS, RandomOneShot, Proxyless])
def test_a_supernet_trains_to_the_same_weights_with_relus_in_place(strategy):
    def trained(inplace: bool) -> list[torch.Tensor]:
        torch.manual_seed(0)
        s = strategy(seed=0, inplace_relu=inplace)
        net = s.create_supernet(Space())
        optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
        x, y = torch.randn(6, 3, 5, 5), torch.tensor([0, 1, 2, 0, 1, 2])
        with inplace_relus(net, inplace):
            for _ in range(3):
                if strategy is not DARTS:
                    s.apply_sample(s.sample_path() if strategy is Proxyless else s.random_sample())
                optimizer.zero_grad()
                nn.functional.cross_entropy(net(x), y).backward()
                optimizer.step()
        return [p.detach().clone() for p in net.parameters()]

    for a, b in zip(trained(False), trained(True)):
        torch.testing.assert_close(a, b)


def test_the_option_must_be_a_bool():
    with pytest.raises(StrategyError, match="inplace_relu must be True or False"):
        DARTS(inplace_relu="yes")
