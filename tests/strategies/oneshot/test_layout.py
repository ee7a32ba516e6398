"""The supernet's memory layout: ``channels_last`` for conv supernets on CPU, decided safely and without side effects."""

from __future__ import annotations

import logging
from collections import namedtuple

import pytest
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset

from nascore.errors import StrategyError
from nascore.nn import LayerChoice, ModelSpace
from nascore_strategies.oneshot import DARTS, ENAS, RandomOneShot
from nascore_strategies.oneshot.layout import convert_batch, has_spatial_ops

CL = torch.channels_last


def conv(channels: int = 4) -> nn.Module:
    # No bias before BatchNorm: its gradient is zero up to rounding, which Adam would blow up to full steps.
    return nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels), nn.ReLU())


class ViewRoundTrip(nn.Module):
    """Flattens with ``.view`` and back: fine on contiguous tensors, an error on channels_last ones."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.view(x.size(0), -1).view(x.shape)


class Broken(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise ValueError("this candidate is broken in every layout")


class ImageSpace(ModelSpace):
    """A stem, one choice over ``candidates`` (conv, max pooling by default), a head; ``flatten="view"`` flattens with ``.view``."""

    def __init__(self, candidates: dict[str, nn.Module] | None = None, flatten: str = "module") -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.ReLU())
        self.choice = LayerChoice(candidates or {"conv": conv(), "pool": nn.MaxPool2d(3, 1, 1)}, label="op")
        self.flatten = flatten
        self.head = nn.Linear(4 * 8 * 8, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.choice(self.stem(x))
        x = x.view(x.size(0), -1) if self.flatten == "view" else torch.flatten(x, 1)
        return self.head(x)


def loaders(digits):
    """Digits as 1x8x8 images, in a fixed order (fresh generator each call)."""
    xt, yt, xv, yv = digits
    train = DataLoader(TensorDataset(xt[:320].view(-1, 1, 8, 8), yt[:320]), batch_size=32, shuffle=True,
                       generator=torch.Generator().manual_seed(0))
    val = DataLoader(TensorDataset(xv.view(-1, 1, 8, 8), yv), batch_size=90)
    return train, val


def run(strategy, make_space, digits, epochs: int = 1):
    """Train ``strategy``'s supernet of ``make_space()`` (built from a fixed seed) on digits images."""
    from nascore.evaluators import Classification

    train, val = loaders(digits)
    evaluator = Classification(train_dataloaders=train, val_dataloaders=val, num_classes=10, learning_rate=1e-2,
                               max_epochs=epochs)
    torch.manual_seed(0)
    strategy.create_supernet(make_space())
    strategy.search(evaluator)
    return strategy


def conv_weights(strategy) -> list[torch.Tensor]:
    return [p for p in strategy.supernet.parameters() if p.dim() == 4]


@pytest.mark.parametrize("cls", [DARTS, RandomOneShot, ENAS])
def test_an_unknown_memory_format_is_refused_with_the_allowed_values(cls):
    with pytest.raises(StrategyError, match=r"memory_format must be one of 'auto', 'channels_last', 'contiguous', got 'nhwc'"):
        cls(memory_format="nhwc")


def test_convert_batch_changes_only_4d_floating_point_tensors_and_keeps_the_structure():
    Pair = namedtuple("Pair", "x y")
    image, labels, mask = torch.randn(2, 3, 4, 4), torch.tensor([1, 2]), torch.ones(2, 3, 4, 4, dtype=torch.bool)
    batch = {"train": (image, labels), "val": [Pair(image, labels)], "kind": "train", "mask": mask}
    converted = convert_batch(batch, "channels_last")
    assert converted["kind"] == "train" and converted["train"][1] is labels and converted["mask"] is mask
    assert isinstance(converted["val"][0], Pair)
    for tensor in (converted["train"][0], converted["val"][0].x):
        assert tensor.is_contiguous(memory_format=CL) and not tensor.is_contiguous()
        assert torch.equal(tensor, image)


def test_spatial_ops_are_2d_convolutions_or_pooling(mlp_space):
    assert has_spatial_ops(ImageSpace())
    assert has_spatial_ops(nn.Sequential(nn.MaxPool2d(2)))
    assert not has_spatial_ops(mlp_space())


def test_covering_paths_run_every_candidate_of_every_decision(conv_cell_space):
    strategy = RandomOneShot()
    strategy.create_supernet(conv_cell_space())
    paths = strategy.covering_paths()
    for label, decision in strategy.decisions.items():
        assert {str(path[label]) for path in paths} == {str(v) for v in decision.values}, label
        for path in paths:
            assert decision.contains({label: path[label]})
    darts = DARTS()
    darts.create_supernet(conv_cell_space())
    assert darts.covering_paths() == [None]  # one differentiable pass runs every candidate


def test_auto_trains_a_conv_supernet_in_channels_last_with_the_result_of_the_contiguous_layout(digits):
    auto = run(DARTS(seed=0, arc_learning_rate=3e-2), ImageSpace, digits)
    plain = run(DARTS(seed=0, arc_learning_rate=3e-2, memory_format="contiguous"), ImageSpace, digits)
    assert auto.oneshot_module.layout == "channels_last"
    assert plain.oneshot_module.layout == "contiguous"
    assert all(w.is_contiguous(memory_format=CL) for w in conv_weights(auto))
    assert all(w.is_contiguous() for w in conv_weights(plain))
    # Same seeds, same data: the layout changes float rounding only.
    for a, b in zip(auto.arch.alphas, plain.arch.alphas):
        assert float(a.detach().abs().max()) > 1e-2  # the architecture was trained
        torch.testing.assert_close(a.detach(), b.detach(), atol=1e-5, rtol=1e-4)
    for a, b in zip(auto.supernet.state_dict().values(), plain.supernet.state_dict().values()):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-3)  # weights and BatchNorm statistics: no trace of the trial pass
    assert auto.exported == plain.exported


def test_auto_keeps_the_contiguous_layout_when_the_model_views_spatial_tensors(digits, caplog):
    with caplog.at_level(logging.INFO, logger="nascore_strategies"):
        strategy = run(DARTS(seed=0), lambda: ImageSpace(flatten="view"), digits)
    assert strategy.oneshot_module.layout == "contiguous"
    assert all(w.is_contiguous() for w in conv_weights(strategy))
    assert any("contiguous memory layout" in r.getMessage() and "view" in r.getMessage() for r in caplog.records)
    assert strategy.exported and set(strategy.exported[0]) == {"op"}


def test_auto_tries_every_candidate_of_a_sampling_supernet(digits):
    """Only the second candidate fails on channels_last; a single sampled path could miss it."""
    candidates = {"conv": conv(), "roundtrip": ViewRoundTrip(), "pool": nn.MaxPool2d(3, 1, 1)}
    strategy = run(RandomOneShot(seed=0, export_candidates=3), lambda: ImageSpace(candidates), digits)
    assert strategy.oneshot_module.layout == "contiguous"


def test_a_path_broken_in_every_layout_does_not_cost_the_others_channels_last(digits):
    candidates = {"conv": conv(), "broken": Broken(), "pool": nn.MaxPool2d(3, 1, 1)}
    strategy = RandomOneShot(seed=0, export_candidates=2, filter=lambda sample: sample["op"] != "broken")
    run(strategy, lambda: ImageSpace(candidates), digits)
    assert strategy.oneshot_module.layout == "channels_last"
    assert strategy.exported[0]["op"] in ("conv", "pool")


def test_channels_last_asked_for_is_used_and_its_errors_are_the_users(digits):
    strategy = run(RandomOneShot(seed=0, export_candidates=2, memory_format="channels_last"), ImageSpace, digits)
    assert strategy.oneshot_module.layout == "channels_last"
    with pytest.raises(RuntimeError, match="view"):
        run(DARTS(seed=0, memory_format="channels_last"), lambda: ImageSpace(flatten="view"), digits)


def test_a_supernet_without_spatial_layers_stays_contiguous(mlp_space, evaluator):
    strategy = DARTS(seed=0)
    strategy.create_supernet(mlp_space())
    strategy.search(evaluator(max_epochs=1, limit_train_batches=3))
    assert strategy.oneshot_module.layout == "contiguous"


@pytest.mark.parametrize("pool", [nn.AdaptiveAvgPool2d(1), nn.AdaptiveMaxPool2d(1)], ids=["avg", "max"])
def test_global_pooling_hands_back_gradients_in_its_inputs_layout(pool):
    from nascore_strategies.oneshot.layout import keep_gradient_layout

    model = nn.Sequential(nn.ReLU(), pool, nn.Flatten(), nn.Linear(3, 2))
    x = torch.randn(4, 3, 5, 5).contiguous(memory_format=CL)
    seen = []
    model[0].register_full_backward_hook(lambda m, grad_in, grad_out: seen.append((grad_in[0], grad_out[0])))

    def input_gradient() -> torch.Tensor:
        leaf = x.clone().requires_grad_()
        model(leaf).sum().backward()
        return leaf.grad

    plain = input_gradient()
    if isinstance(pool, nn.AdaptiveAvgPool2d):
        assert not seen[-1][1].is_contiguous(memory_format=CL)  # what PyTorch's pooling backward gives
    handles = keep_gradient_layout(model)
    assert len(handles) == 1
    hooked = input_gradient()
    grad_in, grad_out = seen[-1]
    if isinstance(pool, nn.AdaptiveAvgPool2d):
        assert grad_out.stride()[2:] == (0, 0)  # expanded from the pooled gradient, never materialized
    else:
        assert grad_out.is_contiguous(memory_format=CL) and not grad_out.is_contiguous()
    assert grad_in.is_contiguous(memory_format=CL) and not grad_in.is_contiguous()
    torch.testing.assert_close(hooked, plain)
    for handle in handles:
        handle.remove()
    with torch.no_grad():  # without gradients the hooks leave the output alone
        torch.testing.assert_close(model(x), model(x.contiguous()))


class GlobalPoolSpace(ImageSpace):
    """:class:`ImageSpace` with a global average pooling before a linear head."""

    def __init__(self) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(4, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(self.pool(self.choice(self.stem(x))), 1))


def test_global_pooling_trains_with_expanded_gradients_and_is_given_back_after_training(digits):
    import pytorch_lightning as pl

    from nascore.evaluators import Classification

    seen: list[tuple[type, tuple[int, ...]]] = []

    class Watch(pl.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            if batch_idx == 1:
                pool = pl_module.inner.model.pool
                grads = []
                handle = pool.register_full_backward_hook(lambda m, grad_in, grad_out: grads.append(grad_in[0]))
                trainer.strategy.lightning_module.inner.model.pool._watch = (handle, grads)
                seen.append((type(pool), ()))

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            if batch_idx == 1:
                handle, grads = pl_module.inner.model.pool.__dict__.pop("_watch")
                handle.remove()
                seen.append((type(pl_module.inner.model.pool), tuple(grads[0].stride())))

    train, val = loaders(digits)
    evaluator = Classification(train_dataloaders=train, val_dataloaders=val, num_classes=10, max_epochs=1,
                               limit_train_batches=3, callbacks=[Watch()])
    strategy = DARTS(seed=0)
    strategy.create_supernet(GlobalPoolSpace())
    strategy.search(evaluator)
    (during, _), (_, stride) = seen
    assert during is not nn.AdaptiveAvgPool2d and issubclass(during, nn.AdaptiveAvgPool2d)  # the cheap-gradient pooling
    assert stride[2:] == (0, 0)  # the pooling hands back its gradient expanded, not materialized
    assert type(strategy.supernet.pool) is nn.AdaptiveAvgPool2d  # given back after training
    exported = strategy.freeze(strategy.export_sample())  # a trained sub-net
    assert all(type(m) is not during for m in exported.modules())


def test_keeping_the_gradient_layout_twice_changes_nothing_more():
    from nascore_strategies.oneshot.layout import keep_gradient_layout

    model = nn.Sequential(nn.ReLU(), nn.AdaptiveAvgPool2d(1))
    first = keep_gradient_layout(model)
    assert len(first) == 1 and type(model[1]) is not nn.AdaptiveAvgPool2d
    assert keep_gradient_layout(model) == []  # no gradient hook on top of the swapped pooling
    assert not model[1]._forward_pre_hooks
    first[0].remove()
    assert type(model[1]) is nn.AdaptiveAvgPool2d
