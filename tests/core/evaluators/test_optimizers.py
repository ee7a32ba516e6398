"""``make_optimizer``: the fastest implementation an optimizer class has for the parameters it trains."""

from __future__ import annotations

import torch

from nascore.evaluators.optimizers import make_optimizer


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))


def _train(optimizer: torch.optim.Optimizer, model: torch.nn.Module) -> None:
    x, y = torch.randn(16, 4, generator=torch.Generator().manual_seed(1)), torch.zeros(16, dtype=torch.long)
    for _ in range(5):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()


def test_adam_on_cpu_is_fused_with_the_settings_given():
    model = _model()
    optimizer = make_optimizer(torch.optim.Adam, model.parameters(), 0.01, 0.001, betas=(0.5, 0.999))
    group = optimizer.param_groups[0]
    assert optimizer.defaults["fused"] is True
    assert (group["lr"], group["weight_decay"], group["betas"]) == (0.01, 0.001, (0.5, 0.999))
    assert len(group["params"]) == 4


def test_the_fused_optimizer_trains_as_the_plain_one():
    fused_model, plain_model = _model(), _model()
    _train(make_optimizer(torch.optim.Adam, fused_model.parameters(), 0.01, 0.0), fused_model)
    _train(torch.optim.Adam(plain_model.parameters(), lr=0.01, weight_decay=0.0, foreach=False), plain_model)
    for fused, plain in zip(fused_model.parameters(), plain_model.parameters()):
        torch.testing.assert_close(fused, plain, rtol=1e-5, atol=1e-6)


def test_sgd_keeps_foreach_and_its_sparse_gradients():
    embedding = torch.nn.Embedding(10, 3, sparse=True)
    optimizer = make_optimizer(torch.optim.SGD, embedding.parameters(), 0.1, 0.0)
    assert not optimizer.defaults.get("fused") and optimizer.defaults["foreach"] is True
    embedding(torch.tensor([1, 2])).sum().backward()
    assert embedding.weight.grad.is_sparse
    before = embedding.weight.detach().clone()
    optimizer.step()
    assert not torch.equal(before, embedding.weight)


def test_a_class_without_a_fused_kernel_gets_foreach():
    model = torch.nn.Linear(2, 2).double()
    optimizer = make_optimizer(torch.optim.RMSprop, model.parameters(), 0.01, 0.0)
    assert optimizer.defaults.get("fused") in (None, False)
    assert optimizer.defaults["foreach"] is True


def test_a_class_that_takes_neither_is_built_plainly_and_groups_are_kept():
    class Plain(torch.optim.SGD):
        def __init__(self, params, lr, weight_decay):  # no fused, no foreach
            super().__init__(params, lr=lr, weight_decay=weight_decay)

    model = _model()
    groups = [{"params": list(model[0].parameters())}, {"params": list(model[2].parameters()), "lr": 0.5}]
    optimizer = make_optimizer(Plain, groups, 0.1, 0.0)
    assert [g["lr"] for g in optimizer.param_groups] == [0.1, 0.5]
    _train(optimizer, model)
