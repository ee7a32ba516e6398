"""NNI 3.0 side of ``benchmarks/oneshot.py``: supernet training throughput of NNI's DARTS and RandomOneShot.

Run by ``oneshot.py --nni PYTHON`` with a Python that has NNI 3.0 and PyTorch Lightning installed;
it can also be run by hand (``/path/to/nni/python benchmarks/_nni_oneshot.py --strategy darts``).
It must not import nascore. The last line it prints is one JSON object with the figures.

The space, the data (random tensors from the same seed), the evaluator settings and the timing
(steps after ``--warmup``, measured in a Lightning callback) mirror ``oneshot.py`` exactly. NNI's
one-shot path is used as NNI runs it: ``strategy.mutate_model`` (the supernet),
``strategy.mutate_evaluator`` (its one-shot Lightning module) and ``evaluator.evaluate``.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
import warnings

warnings.filterwarnings("ignore")

import nni  # noqa: E402
import pytorch_lightning as pl  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
from nni.nas.evaluator.pytorch import Classification, DataLoader  # noqa: E402
from nni.nas.nn.pytorch import LayerChoice, ModelSpace, MutableBatchNorm2d, MutableConv2d, MutableLinear  # noqa: E402
from nni.nas.strategy import DARTS, RandomOneShot  # noqa: E402
from torch.utils.data import TensorDataset  # noqa: E402


def conv_bn(channels: int, kernel: int, dilation: int = 1) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(channels, channels, kernel, padding=dilation * (kernel - 1) // 2, dilation=dilation, bias=False),
        nn.BatchNorm2d(channels),
        nn.ReLU(),
    )


class BenchSpace(ModelSpace):
    """Same as ``oneshot.BenchSpace``: a stem, LayerChoices over conv / pooling operators, a width choice."""

    def __init__(self, channels: int = 16, blocks: int = 3) -> None:
        super().__init__()
        self.stem = conv_bn_stem(channels)
        self.blocks = nn.Sequential(*[
            LayerChoice([conv_bn(channels, 3), conv_bn(channels, 5), conv_bn(channels, 3, 2),
                         nn.MaxPool2d(3, 1, 1), nn.AvgPool2d(3, 1, 1), nn.Identity()], label=f"op{i}")
            for i in range(blocks)
        ])
        width = nni.choice("width", [16, 32, 48])
        self.expand = nn.Sequential(MutableConv2d(channels, width, 1, bias=False), MutableBatchNorm2d(width), nn.ReLU())
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = MutableLinear(width, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.pool(self.expand(self.blocks(self.stem(x)))))


def conv_bn_stem(channels: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels), nn.ReLU())


def data(args: argparse.Namespace) -> tuple[TensorDataset, TensorDataset]:
    generator = torch.Generator().manual_seed(0)
    size = args.batch_size * (args.warmup + args.steps)
    x = torch.randn(size, 3, args.image_size, args.image_size, generator=generator)
    y = torch.randint(0, 10, (size,), generator=generator)
    return TensorDataset(x, y), TensorDataset(x[: args.batch_size * 4], y[: args.batch_size * 4])


class StepTimer(pl.Callback):
    """Times the training steps after the first ``warmup`` (CUDA-synchronized)."""

    def __init__(self, warmup: int) -> None:
        self.warmup = warmup
        self.steps = 0
        self.start: float | None = None
        self.end: float | None = None

    def _now(self) -> float:
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        return time.perf_counter()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if batch_idx == self.warmup:
            self.start = self._now()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if batch_idx >= self.warmup:
            self.steps += 1
            self.end = self._now()


def run(args: argparse.Namespace) -> float:
    torch.manual_seed(0)
    train, val = data(args)
    timer = StepTimer(args.warmup)
    evaluator = Classification(
        train_dataloaders=DataLoader(train, batch_size=args.batch_size, shuffle=False),
        val_dataloaders=DataLoader(val, batch_size=args.batch_size),
        num_classes=10, learning_rate=1e-3, max_epochs=1, limit_val_batches=0, num_sanity_val_steps=0,
        logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        accelerator="gpu" if args.device == "cuda" else "cpu", devices=1, callbacks=[timer],
    )
    strategy = DARTS() if args.strategy == "darts" else RandomOneShot()
    model = strategy.mutate_model(BenchSpace(args.channels, args.blocks))
    strategy.mutate_evaluator(evaluator).evaluate(model)
    assert timer.start is not None and timer.end is not None and timer.steps == args.steps, (timer.steps, args.steps)
    return timer.steps / (timer.end - timer.start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--strategy", choices=["darts", "random-oneshot"], default="darts")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--image-size", type=int, default=16)
    parser.add_argument("--channels", type=int, default=16)
    parser.add_argument("--blocks", type=int, default=3)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for name in ("nni", "pytorch_lightning", "lightning"):
        logging.getLogger(name).setLevel(logging.ERROR)
    rates = [run(args) for _ in range(args.runs)]
    print(json.dumps({
        "nni_version": nni.__version__,
        "lightning_version": pl.__version__,
        "torch_version": torch.__version__,
        "strategy": args.strategy,
        "steps_per_s": max(rates),
        "runs_steps_per_s": rates,
    }))


if __name__ == "__main__":
    main()
