"""The eager-PyTorch floor of a one-shot step on ``BenchSpace``: its supernet written by hand.

``oneshot.py --floor`` times these loops next to nascore and NNI. They are about the fastest an eager-mode
framework can run the same steps, as they do only what a step needs and nothing a framework does.

A first-order DARTS step (:func:`darts_throughput`):

* the same candidate modules (``conv_bn``, the two poolings, the identity) and the same width mask
  (a softmax-weighted 0/1 mask over the 48 channels of the 1x1 conv, its batch norm and the head);
* the ``channels_last`` layout and fused Adam (lr 1e-3 for the weights; 3e-4, betas (0.5, 0.999),
  weight decay 1e-3 for the architecture), as nascore uses;
* the architecture step computes architecture gradients only (weights frozen, ``backward(inputs=alphas)``)
  and the weight step weight gradients only;
* batches are slices of the data tensors (no ``DataLoader``), the validation batches cycle over the
  first four, and there is no Lightning, no hook, no logging and no check.

``oneshot.py`` runs both loops inside ``nascore_strategies.oneshot.allocator.reused_memory()``: glibc
keeps freed memory for the next step, as it does while nascore's one-shot strategies train.

A RandomOneShot step (:func:`random_oneshot_throughput`): one candidate per choice and one width drawn
uniformly at random (a seeded generator), the width sliced from the 48-channel conv, batch norm and
head as nascore's mixed operations slice it; the ReLUs after a batch norm run in place (as nascore's
supernet runs them, and as torchvision writes its ResNets); the sampled path trains with fused Adam
(lr 1e-3), the same layout and the same batches, again with nothing else around it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

WIDTHS = (16, 32, 48)
VAL_BATCHES = 4


def global_mean(x: torch.Tensor) -> torch.Tensor:
    """The mean over the spatial dimensions, taken as a sum: its backward hands back an expanded gradient
    (``mean``'s materializes one in NCHW, and the ReLU before it then runs its backward on mixed layouts)."""
    return x.sum((2, 3)) / (x.shape[2] * x.shape[3])


class EagerSupernet(nn.Module):
    """``BenchSpace``'s DARTS supernet: every candidate runs, outputs mixed by ``softmax(alpha)``."""

    def __init__(self, channels: int, blocks: int, conv_bn: Callable[..., nn.Module],
                 conv_bn_stem: Callable[[int], nn.Module]) -> None:
        super().__init__()
        self.stem = conv_bn_stem(channels)
        self.layers = nn.ModuleList([
            nn.ModuleList([conv_bn(channels, 3), conv_bn(channels, 5), conv_bn(channels, 3, 2),
                           nn.MaxPool2d(3, 1, 1), nn.AvgPool2d(3, 1, 1), nn.Identity()])
            for _ in range(blocks)
        ])
        width = max(WIDTHS)
        self.expand = nn.Conv2d(channels, width, 1, bias=False)
        self.norm = nn.BatchNorm2d(width)
        self.head = nn.Linear(width, 10)
        self.register_buffer("masks", torch.stack([(torch.arange(width) < w).float() for w in WIDTHS]))
        self.alphas = nn.ParameterList([nn.Parameter(torch.randn(6) * 1e-3) for _ in range(blocks)]
                                       + [nn.Parameter(torch.randn(len(WIDTHS)) * 1e-3)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for layer, alpha in zip(self.layers, self.alphas):
            w = F.softmax(alpha, dim=-1)
            outputs = [candidate(x) for candidate in layer]
            x = outputs[0] * w[0]
            for i in range(1, len(outputs)):
                x = x + outputs[i] * w[i]
        mask = F.softmax(self.alphas[-1], dim=-1) @ self.masks
        x = F.conv2d(x, self.expand.weight * mask.view(-1, 1, 1, 1))
        x = F.batch_norm(x, self.norm.running_mean, self.norm.running_var, self.norm.weight * mask,
                         self.norm.bias * mask, True, self.norm.momentum, self.norm.eps)
        x = global_mean(F.relu(x))
        return F.linear(x, self.head.weight * mask, self.head.bias)


def darts_throughput(channels: int, blocks: int, batch_size: int, image_size: int, steps: int, warmup: int,
                     conv_bn: Callable[..., nn.Module], conv_bn_stem: Callable[[int], nn.Module],
                     data: tuple[torch.Tensor, torch.Tensor]) -> float:
    """Steps per second of ``steps`` DARTS steps after ``warmup`` (``data``: the training images and labels;
    ``conv_bn`` and ``conv_bn_stem`` build ``BenchSpace``'s candidate and stem blocks)."""
    torch.manual_seed(0)
    fmt = torch.channels_last
    net = EagerSupernet(channels, blocks, conv_bn, conv_bn_stem).to(memory_format=fmt)
    alphas = list(net.alphas)
    weights = [p for name, p in net.named_parameters() if not name.startswith("alphas.")]
    weight_optimizer = torch.optim.Adam(weights, lr=1e-3, fused=True)
    arch_optimizer = torch.optim.Adam(alphas, lr=3e-4, betas=(0.5, 0.999), weight_decay=1e-3, fused=True)
    x, y = data
    start = 0.0
    for step in range(warmup + steps):
        if step == warmup:
            start = time.perf_counter()
        v = (step % VAL_BATCHES) * batch_size
        t = step * batch_size
        x_val, y_val = x[v : v + batch_size].contiguous(memory_format=fmt), y[v : v + batch_size]
        x_train, y_train = x[t : t + batch_size].contiguous(memory_format=fmt), y[t : t + batch_size]
        # Architecture step: gradients of the architecture parameters only.
        arch_optimizer.zero_grad(set_to_none=True)
        for p in weights:
            p.requires_grad_(False)
        loss = F.cross_entropy(net(x_val), y_val)
        torch.autograd.backward(loss, inputs=alphas)
        for p in weights:
            p.requires_grad_(True)
        arch_optimizer.step()
        # Weight step: gradients of the weights only.
        for p in alphas:
            p.requires_grad_(False)
        weight_optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(net(x_train), y_train).backward()
        weight_optimizer.step()
        for p in alphas:
            p.requires_grad_(True)
    return steps / (time.perf_counter() - start)


def sampled_forward(net: EagerSupernet, x: torch.Tensor, ops: list[int], width: int) -> torch.Tensor:
    """``net`` with one candidate per block (``ops``) and the first ``width`` channels of the expansion."""
    x = net.stem(x)
    for layer, op in zip(net.layers, ops):
        x = layer[op](x)
    x = F.conv2d(x, net.expand.weight[:width])
    x = F.batch_norm(x, net.norm.running_mean[:width], net.norm.running_var[:width], net.norm.weight[:width],
                     net.norm.bias[:width], True, net.norm.momentum, net.norm.eps)
    x = global_mean(F.relu_(x))
    return F.linear(x, net.head.weight[:, :width], net.head.bias)


def random_oneshot_throughput(channels: int, blocks: int, batch_size: int, image_size: int, steps: int, warmup: int,
                              conv_bn: Callable[..., nn.Module], conv_bn_stem: Callable[[int], nn.Module],
                              data: tuple[torch.Tensor, torch.Tensor]) -> float:
    """Steps per second of ``steps`` RandomOneShot steps after ``warmup`` (arguments as :func:`darts_throughput`)."""
    torch.manual_seed(0)
    fmt = torch.channels_last
    net = EagerSupernet(channels, blocks, conv_bn, conv_bn_stem).to(memory_format=fmt)
    for module in net.modules():
        if isinstance(module, nn.ReLU):
            module.inplace = True
    weights = [p for name, p in net.named_parameters() if not name.startswith("alphas.")]
    optimizer = torch.optim.Adam(weights, lr=1e-3, fused=True)
    generator = torch.Generator().manual_seed(0)
    candidates = len(net.layers[0])
    x, y = data
    start = 0.0
    for step in range(warmup + steps):
        if step == warmup:
            start = time.perf_counter()
        ops = torch.randint(candidates, (blocks,), generator=generator).tolist()
        width = WIDTHS[int(torch.randint(len(WIDTHS), (1,), generator=generator))]
        t = step * batch_size
        x_train, y_train = x[t : t + batch_size].contiguous(memory_format=fmt), y[t : t + batch_size]
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(sampled_forward(net, x_train, ops, width), y_train).backward()
        optimizer.step()
    return steps / (time.perf_counter() - start)
