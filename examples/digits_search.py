"""Search a small CNN for handwritten digits with nascore: a complete, real search in under a minute.

Run it with::

    python examples/digits_search.py                  # 20 random trials, seed 0
    python examples/digits_search.py --trials 40 --seed 1 --strategy grid

What it shows, in order:

1. **Data**: scikit-learn's ``load_digits`` (1,797 grey 8x8 images that ship with scikit-learn, so
   nothing is downloaded), standardized and split into training and validation sets with a fixed seed.
2. **A model space** (:class:`DigitsNet`) written in plain PyTorch with nascore's search primitives:

   * ``nascore.choice`` -- the channel width, shared by every layer that uses the same choice;
   * ``MutableConv2d`` / ``MutableBatchNorm2d`` / ``MutableLinear`` -- ``torch.nn`` layers whose
     arguments may be choices;
   * ``LayerChoice`` -- per block, a plain 3x3 convolution or a depthwise-separable one; and an
     activation function shared by all blocks (one label used twice is one decision);
   * ``Repeat`` -- how many blocks are stacked (1 to 3);
   * ``MutableDropout`` -- the dropout rate before the classifier.

3. **An evaluator**: a plain function that trains one candidate for a few epochs with Adam, reports
   the validation accuracy after each epoch (``nascore.report_intermediate_result``) and at the end
   (``nascore.report_final_result``, a dict whose ``"default"`` value is what the search maximizes).
4. **An experiment** that runs a strategy (``random`` by default) on the ``sequential`` engine and
   records every trial in ``<experiment dir>/<experiment id>/``.
5. **The result**: the best architecture as a ``{label: value}`` sample, how to rebuild it with
   ``nascore.fixed_arch``, and the rebuilt model from ``export_top_models(formatter="instance")``.

Everything is deterministic given ``--seed`` (and ``--threads``): the strategy is seeded through the experiment
configuration, and every trial seeds torch from ``--seed`` and its own architecture, so the same
architecture always gets the same score whatever order it is tried in.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import sys
import time
import zlib
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

import nascore
from nascore.errors import NascoreError
from nascore.evaluators import FunctionalEvaluator
from nascore.experiment import Experiment, ExperimentConfig
from nascore.experiment.config import default_experiment_dir
from nascore.nn import (
    LayerChoice,
    ModelSpace,
    MutableBatchNorm2d,
    MutableConv2d,
    MutableDropout,
    MutableLinear,
    Repeat,
)

DATA_SEED = 0  # the train/validation split never changes, so scores from different runs compare
DEFAULT_EXPERIMENT_DIR = default_experiment_dir()  # where `nascore list` looks: ~/nascore-experiments or $NASCORE_EXPERIMENT_DIR


# --- 1. Data ---------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def load_data() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(x_train, y_train, x_val, y_val): standardized 1x8x8 images and integer labels, on the CPU.

    Cached: the evaluator calls it once per trial, the data is loaded once per process.
    """
    digits = load_digits()
    x_train, x_val, y_train, y_val = train_test_split(
        digits.data, digits.target, test_size=0.2, random_state=DATA_SEED, stratify=digits.target
    )
    scaler = StandardScaler().fit(x_train)  # statistics of the training set only

    def images(x):  # (N, 64) -> (N, 1, 8, 8) float32
        return torch.tensor(scaler.transform(x), dtype=torch.float32).reshape(-1, 1, 8, 8)

    return images(x_train), torch.tensor(y_train), images(x_val), torch.tensor(y_val)


# --- 2. The model space --------------------------------------------------------------------------


class SeparableConv(nn.Module):
    """A depthwise 3x3 convolution (one filter per channel) followed by a pointwise 1x1 one.

    ``channels`` may be a choice: the Mutable layers accept it, and ``groups=channels`` follows the
    same decision, so the depthwise convolution always has one group per channel.
    """

    def __init__(self, channels):
        super().__init__()
        self.depthwise = MutableConv2d(channels, channels, 3, padding=1, groups=channels, bias=False)
        self.pointwise = MutableConv2d(channels, channels, 1, bias=False)

    def forward(self, x):
        return self.pointwise(self.depthwise(x))


class Block(nn.Module):
    """One searchable block: a chosen convolution, batch norm and a chosen activation."""

    def __init__(self, index, channels):
        super().__init__()
        # Each block chooses its own operation: labels "block0/op", "block1/op", ...
        self.op = LayerChoice(
            {
                "conv3x3": MutableConv2d(channels, channels, 3, padding=1, bias=False),
                "sepconv3x3": SeparableConv(channels),
            },
            label=f"block{index}/op",
        )
        self.bn = MutableBatchNorm2d(channels)
        # Every block uses the label "activation": one decision shared by all blocks.
        self.act = LayerChoice({"relu": nn.ReLU(), "gelu": nn.GELU()}, label="activation")

    def forward(self, x):
        return self.act(self.bn(self.op(x)))


class DigitsNet(ModelSpace):
    """stem conv -> 1..3 searchable blocks -> max pool -> global average pool -> dropout -> linear.

    Built normally it is the whole space; built inside ``nascore.fixed_arch(sample)`` the same
    code gives one plain PyTorch model (only ``nn`` layers, no nascore classes inside).
    """

    def __init__(self, num_classes=10):
        super().__init__()
        width = nascore.choice("width", [16, 32, 48])
        self.stem = nn.Sequential(
            MutableConv2d(1, width, 3, padding=1, bias=False), MutableBatchNorm2d(width), nn.ReLU()
        )
        # A factory f(index) gives every block its own decisions; depth=(1, 3) adds the choice "depth".
        self.blocks = Repeat(lambda index: Block(index, width), depth=(1, 3), label="depth")
        self.pool = nn.MaxPool2d(2)  # 8x8 -> 4x4
        self.dropout = MutableDropout(nascore.choice("dropout", [0.0, 0.2, 0.4]))
        self.classifier = MutableLinear(width, num_classes)

    def forward(self, x):
        x = self.pool(self.blocks(self.stem(x)))
        x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        return self.classifier(self.dropout(x))


# --- 3. The evaluator --------------------------------------------------------------------------


def architecture_seed(seed: int, sample: dict) -> int:
    """A seed from the run seed and the architecture (stable across processes, unlike ``hash``)."""
    return zlib.crc32(json.dumps([seed, sample], sort_keys=True).encode())


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    return (model(x).argmax(dim=1) == y).float().mean().item()


def train_and_evaluate(
    model: nn.Module, epochs: int = 6, lr: float = 3e-3, batch_size: int = 64, seed: int = 0
) -> None:
    """Train one candidate and report its validation accuracy (nascore has already built ``model``)."""
    x_train, y_train, x_val, y_val = load_data()

    # Reproducible trials: seed torch from the architecture and re-initialize the weights, so an
    # architecture's score does not depend on which trials ran before it.
    generator = torch.Generator().manual_seed(architecture_seed(seed, nascore.get_current_sample()))
    torch.manual_seed(generator.initial_seed())
    for module in model.modules():
        if module is not model and hasattr(module, "reset_parameters"):
            module.reset_parameters()

    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    val_acc = 0.0
    for _ in range(epochs):
        model.train()
        for batch in torch.randperm(len(x_train), generator=generator).split(batch_size):
            optimizer.zero_grad()
            loss = F.cross_entropy(model(x_train[batch]), y_train[batch])
            loss.backward()
            optimizer.step()
        val_acc = accuracy(model, x_val, y_val)
        nascore.report_intermediate_result(val_acc)  # one point per epoch (used by early-stopping strategies)

    params = sum(p.numel() for p in model.parameters())
    # "default" is the number the strategy maximizes; other keys are kept with the trial.
    nascore.report_final_result({"default": val_acc, "params": params})


# --- 4. The experiment -----------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Neural architecture search for a small CNN on scikit-learn's digits (CPU, < 1 minute).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--strategy", default="random", help="a registered strategy name (`nascore plugins` lists them)"
    )
    parser.add_argument("--trials", type=int, default=20, help="number of architectures to try")
    parser.add_argument("--epochs", type=int, default=6, help="training epochs per trial")
    parser.add_argument("--seed", type=int, default=0, help="seeds the strategy and every trial's training")
    parser.add_argument(
        "--experiment-dir", type=Path, default=DEFAULT_EXPERIMENT_DIR,
        help="where the experiment is recorded (in a new <id>/ folder); default: nascore's own folder, "
        "$NASCORE_EXPERIMENT_DIR or ~/nascore-experiments, where `nascore list` looks",
    )
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Progress shows on stderr by itself (ExperimentConfig.progress); nascore's warnings are logging records.
    logging.basicConfig(format="%(asctime)s %(levelname)-7s %(name)s: %(message)s", datefmt="%H:%M:%S")
    # Tiny models and batches: one thread is as fast as several, and much faster on a busy machine
    # (threads of the intra-op pool spin waiting for each other when the cores are shared).
    torch.set_num_threads(args.threads)

    space = DigitsNet()
    print(f"Search space: {len(space.simplify())} decisions")
    for label, decision in sorted(space.simplify().items()):
        print(f"  {label:14s} {decision.describe()}")

    evaluator = FunctionalEvaluator(train_and_evaluate, epochs=args.epochs, seed=args.seed)
    config = ExperimentConfig(
        engine="sequential",  # trials run one after another in this process
        format="simplified",  # a trial rebuilds DigitsNet() inside nascore.fixed_arch(sample)
        max_trials=args.trials,
        seed=args.seed,  # seeds the strategy
        experiment_dir=args.experiment_dir,
    )
    experiment = Experiment(space, evaluator, args.strategy, config)
    started = time.perf_counter()
    try:
        experiment.run()
    except NascoreError as exc:  # e.g. an unknown strategy name: nascore's errors say what to do
        print(f"error: {exc}", file=sys.stderr)
        return 2
    seconds = time.perf_counter() - started

    # --- 5. The result -----------------------------------------------------------------------------
    best = experiment.best_trial()
    if best is None:
        print("No trial succeeded; see the trial logs in", experiment.path, file=sys.stderr)
        return 1
    finished = experiment.trials()
    best_arch = experiment.export_top_models(top_k=1, formatter="dict")[0]  # == best.sample
    arch_file = experiment.path / "best_arch.json"
    arch_file.write_text(json.dumps(best_arch, indent=2) + "\n")

    print()
    print(f"Searched {len(finished)} architectures with '{args.strategy}' in {seconds:.1f}s "
          f"(experiment {experiment.id}, recorded in {experiment.path})")
    print(f"Best architecture (trial {best.id}): {json.dumps(best_arch)}")
    print(f"Best validation accuracy: {best.metric:.4f}  (chance is 0.10)")

    # export_top_models(formatter="instance") rebuilds the best architectures as plain nn.Modules.
    model = experiment.export_top_models(top_k=1, formatter="instance")[0]
    params = sum(p.numel() for p in model.parameters())
    print(f"Rebuilt best model (untrained): {type(model).__name__} with {params:,} parameters")

    # The same model, rebuilt by hand from the sample: this is how to reload it in your own code.
    with nascore.fixed_arch(best_arch):
        reloaded = DigitsNet()
    assert sum(p.numel() for p in reloaded.parameters()) == params
    print(f"Architecture saved to {arch_file}; reload it (untrained) with:")
    print("    from digits_search import DigitsNet   # with examples/ on sys.path")
    print(f"    with nascore.fixed_arch({str(arch_file)!r}):   # or the dict above")
    print("        model = DigitsNet()")
    print(f"See every trial with: nascore show {experiment.id} --experiment-dir {experiment.config.experiment_dir}")
    experiment.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
