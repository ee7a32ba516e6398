"""CGO on a data-loading-bound workload: 4 models merged into one trial against 4 separate trials.

The workload: every sample is preprocessed on load (a 64x64 image filtered in the frequency domain
with a random band-pass, then pooled to 16x16), which costs more than one training step of the
small models searched (an MLP whose width and activation are the choices). Both runs use the same
engine, ``cgo`` around local ``training-service`` workers, with ``trial_concurrency = 1``:

* separate: ``max_concurrency_cgo = 1``, so every model is its own trial and loads every batch;
* merged: ``max_concurrency_cgo = 4``, so ``dedup-input`` puts the 4 models in one trial that loads
  each batch once and feeds it to all of them.

It prints the wall time of each search (experiment start to end, workers included; the best of
``--runs`` runs of each mode, run alternately), the ratio
(target: merged at least 2x faster) and how many times each training batch was loaded, counted in
the workers by the dataset itself. ``--device cuda`` trains on a GPU (preprocessing stays on CPU):
each trial gets ``--gpus`` GPUs (``trial_gpu_number``; default 1, or every GPU with ``--placement
spread``), and ``--placement spread`` puts the merged trial's model ``i`` on its GPU ``i % n``
instead of packing all four onto one.

    python benchmarks/cgo.py
    python benchmarks/cgo.py --rounds 10   # lighter preprocessing: fixed costs weigh more, the ratio drops
    python benchmarks/cgo.py --device cuda --placement spread --gpus 2
"""

from __future__ import annotations

import argparse
import collections
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, Dataset

import nascore
from nascore.nn import LayerChoice, ModelSpace, MutableLinear

HERE = Path(__file__).resolve().parent
os.environ.setdefault("NASCORE_PROGRESS", "off")  # figures to read, not a progress display per trial


class Space(ModelSpace):
    """4 models: hidden width 32 or 64, ReLU or GELU."""

    def __init__(self) -> None:
        super().__init__()
        width = nascore.choice("width", [32, 64])
        self.flatten = nn.Flatten()
        self.fc1 = MutableLinear(16 * 16, width)
        self.act = LayerChoice({"relu": nn.ReLU(), "gelu": nn.GELU()}, label="act")
        self.fc2 = MutableLinear(width, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(self.flatten(x))))


class Preprocessed(Dataset):
    """Synthetic images, preprocessed on every load; each load is appended to ``$CGO_BENCH_LOADS``."""

    def __init__(self, split: str, size: int, seed: int, rounds: int) -> None:
        self.split = split
        self.size = size
        self.seed = seed
        self.rounds = rounds

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + index)
        label = int(torch.randint(0, 10, (1,), generator=generator))
        image = torch.randn(64, 64, generator=generator) + label / 5
        for _ in range(self.rounds):  # the expensive part: band-pass filtering in the frequency domain
            spectrum = torch.fft.rfft2(image)
            mask = torch.rand(spectrum.shape, generator=generator) > 0.3
            image = torch.fft.irfft2(spectrum * mask, s=image.shape)
            image = (image - image.mean()) / (image.std() + 1e-6)
        pooled = nn.functional.avg_pool2d(image[None, None], 4)[0, 0] + label / 5
        path = os.environ.get("CGO_BENCH_LOADS")
        if path:
            with open(path, "a") as log:
                log.write(f"{self.split} {index}\n")
        return pooled, label


def search(max_concurrency: int, args: argparse.Namespace, root: Path, loads: Path) -> tuple[float, list]:
    from nascore.evaluators import Classification
    from nascore.experiment import Experiment, ExperimentConfig

    train = DataLoader(Preprocessed("train", args.samples, 0, args.rounds), batch_size=args.batch_size, shuffle=True)
    val = DataLoader(Preprocessed("val", args.samples // 4, 1, args.rounds), batch_size=args.batch_size)
    evaluator = Classification(train_dataloaders=train, val_dataloaders=val, num_classes=10, max_epochs=args.epochs,
                               seed=0, num_sanity_val_steps=0, accelerator=args.device, placement=args.placement)
    config = ExperimentConfig(engine="cgo", format="graph", trial_concurrency=1, experiment_dir=root,
                              trial_gpu_number=args.gpus,
                              engine_options={"max_concurrency_cgo": max_concurrency, "batch_waiting_time": 30})
    os.environ["CGO_BENCH_LOADS"] = str(loads)
    started = time.perf_counter()
    exp = Experiment(Space(), evaluator, "grid", config)
    exp.run()
    elapsed = time.perf_counter() - started
    return elapsed, exp.trials()


def loads_per_batch(loads: Path, args: argparse.Namespace) -> float:
    counts = collections.Counter(line.split()[0] for line in loads.read_text().splitlines())
    return counts["train"] / (args.samples * args.epochs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=1024, help="training samples (validation: a quarter)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=40, help="filtering rounds per sample (preprocessing cost)")
    parser.add_argument("--device", default="cpu", help="Lightning accelerator for training: cpu, cuda")
    parser.add_argument("--placement", choices=["pack", "spread"], default="pack",
                        help="where the merged trial's models train: all on its device, or over its GPUs")
    parser.add_argument("--runs", type=int, default=2, help="runs of each mode, alternating; the fastest counts")
    parser.add_argument("--gpus", type=int, default=None,
                        help="trial_gpu_number: GPUs per trial (default: 0 on cpu; with cuda 1, or all for spread)")
    args = parser.parse_args()
    if args.gpus is None:
        from nascore_engines.training_service.gpu import detect_gpus

        args.gpus = 0 if args.device == "cpu" else (max(1, len(detect_gpus())) if args.placement == "spread" else 1)
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(1)

    results: dict[str, list[tuple[float, float, float, dict[str, float]]]] = {"separate": [], "merged": []}
    with tempfile.TemporaryDirectory(prefix="nascore-cgo-bench-") as tmp:
        root = Path(tmp)
        # The two modes alternate, so that a change in the machine's speed hits both; the best run counts.
        for run in range(args.runs):
            for mode, k in (("separate", 1), ("merged", 4)):
                loads = root / f"{mode}-{run}-loads.txt"
                elapsed, trials = search(k, args, root / f"{mode}-{run}", loads)
                ok = [t for t in trials if t.metric is not None]
                if len(ok) != 4:
                    raise SystemExit(f"{mode}: expected 4 successful trials, got {[(t.id, t.status.value, t.error) for t in trials]}")
                in_trials = sum({round(t.duration or 0.0, 6) for t in ok})  # merged members share one duration
                metrics = {f"{t.sample['width']}/{t.sample['act']}": round(t.metric, 4) for t in sorted(ok, key=lambda t: t.id)}
                results[mode].append((elapsed, in_trials, loads_per_batch(loads, args), metrics))

    print(f"workload: 4 models, {args.samples} samples x {args.epochs} epoch(s), batch {args.batch_size}, "
          f"{args.rounds} preprocessing rounds per sample, training on {args.device} "
          f"({args.gpus} GPU(s) per trial, placement {args.placement}), best of {args.runs} alternating runs")
    best = {}
    for mode, runs in results.items():
        elapsed, in_trials, per_batch, metrics = best[mode] = min(runs, key=lambda r: r[0])
        print(f"  {mode:9s} {elapsed:7.2f} s end to end ({in_trials:.2f} s in trials)   "
              f"each training batch loaded {per_batch:.0f} time(s)   val_acc {metrics}   "
              f"(all runs: {', '.join(f'{r[0]:.2f}' for r in runs)} s)")
    ratio = best["separate"][0] / best["merged"][0]
    print(f"merged is {ratio:.2f}x faster end to end (target >= 2x)")


if __name__ == "__main__":
    # Workers import the workload by module name, so run it as the module ``cgo`` from this folder.
    sys.path.insert(0, str(HERE))
    import cgo

    cgo.main()
