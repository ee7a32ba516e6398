"""Build the tabular NAS benchmark used by ``benchmarks/strategies.py``: every architecture, trained for real.

A one-off script. It trains **every** point of a space of 2,304 fully connected networks on
scikit-learn's digits (1,797 grey 8x8 images that ship with scikit-learn, nothing downloaded) and
writes the scores to ``benchmarks/data/digits_nas_table.json.gz``, so that strategies can then be
compared on thousands of searches in seconds, the way NAS-Bench-101/201 and the HPO-Bench tables
are used.

The space (7 decisions, 3 x 4 x 4 x 3 x 2 x 2 x 4 = 2,304 architectures)::

    layers         1, 2, 3             hidden layers
    width          16, 32, 64, 128     units per hidden layer
    activation     relu, tanh, sigmoid, gelu
    dropout        0.0, 0.25, 0.5      after every hidden layer
    batch_norm     no, yes             before every activation
    optimizer      adam, sgd           (sgd: momentum 0.9)
    learning_rate  0.0003, 0.001, 0.003, 0.01

One evaluation: inputs standardized; a fixed stratified split (seed 0) into 898 training, 450
validation and 449 test images; 15 epochs of mini-batches of 64 with cross-entropy; then the
accuracy on the validation set (the metric a search maximizes) and on the test set. Each
architecture is trained with ``--seeds`` training seeds (default 3) and the accuracies are
averaged. The work is split over ``--workers`` processes (default 2, one torch thread each).

    python benchmarks/build_digits_table.py                     # about 8 minutes on 2 cores
    python benchmarks/build_digits_table.py --limit 50 --out /tmp/t.json.gz   # a quick try
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import json
import multiprocessing
import platform
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

DEFAULT_OUT = Path(__file__).parent / "data" / "digits_nas_table.json.gz"
DATA_SEED = 0
EPOCHS = 15
BATCH_SIZE = 64

DECISIONS: dict[str, list] = {
    "layers": [1, 2, 3],
    "width": [16, 32, 64, 128],
    "activation": ["relu", "tanh", "sigmoid", "gelu"],
    "dropout": [0.0, 0.25, 0.5],
    "batch_norm": [False, True],
    "optimizer": ["adam", "sgd"],
    "learning_rate": [0.0003, 0.001, 0.003, 0.01],
}
ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "gelu": nn.GELU}

_DATA: tuple[torch.Tensor, ...] | None = None


def load_data() -> tuple[torch.Tensor, ...]:
    """(x_train, y_train, x_val, y_val, x_test, y_test), standardized on the training set."""
    global _DATA
    if _DATA is None:
        x, y = load_digits(return_X_y=True)
        x_train, x_rest, y_train, y_rest = train_test_split(x, y, train_size=898, stratify=y, random_state=DATA_SEED)
        x_val, x_test, y_val, y_test = train_test_split(
            x_rest, y_rest, train_size=450, stratify=y_rest, random_state=DATA_SEED
        )
        scaler = StandardScaler().fit(x_train)
        as_x = lambda a: torch.tensor(scaler.transform(a), dtype=torch.float32)  # noqa: E731
        as_y = lambda a: torch.tensor(a, dtype=torch.long)  # noqa: E731
        _DATA = (as_x(x_train), as_y(y_train), as_x(x_val), as_y(y_val), as_x(x_test), as_y(y_test))
    return _DATA


def build_model(arch: dict) -> nn.Sequential:
    layers: list[nn.Module] = []
    previous = 64
    for _ in range(arch["layers"]):
        layers.append(nn.Linear(previous, arch["width"]))
        if arch["batch_norm"]:
            layers.append(nn.BatchNorm1d(arch["width"]))
        layers.append(ACTIVATIONS[arch["activation"]]())
        if arch["dropout"]:
            layers.append(nn.Dropout(arch["dropout"]))
        previous = arch["width"]
    layers.append(nn.Linear(previous, 10))
    return nn.Sequential(*layers)


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


def train_once(arch: dict, seed: int) -> tuple[float, float, int]:
    """Train one architecture with one seed: (validation accuracy, test accuracy, parameters)."""
    x_train, y_train, x_val, y_val, x_test, y_test = load_data()
    torch.manual_seed(seed)
    model = build_model(arch)
    if arch["optimizer"] == "adam":
        optimizer: torch.optim.Optimizer = torch.optim.Adam(model.parameters(), lr=arch["learning_rate"])
    else:
        optimizer = torch.optim.SGD(model.parameters(), lr=arch["learning_rate"], momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(seed)
    n = len(x_train)
    for _ in range(EPOCHS):
        model.train()
        order = torch.randperm(n, generator=generator)
        for start in range(0, n, BATCH_SIZE):
            index = order[start : start + BATCH_SIZE]
            if len(index) < 2:  # batch norm needs two samples
                continue
            optimizer.zero_grad()
            loss_fn(model(x_train[index]), y_train[index]).backward()
            optimizer.step()
    params = sum(p.numel() for p in model.parameters())
    return accuracy(model, x_val, y_val), accuracy(model, x_test, y_test), params


def evaluate(task: tuple[int, tuple[int, ...], int]) -> list:
    """One row of the table: the decision indices, mean validation and test accuracy, parameters, seconds."""
    row_id, indices, seeds = task
    torch.set_num_threads(1)
    arch = {name: DECISIONS[name][i] for name, i in zip(DECISIONS, indices)}
    start = time.perf_counter()
    results = [train_once(arch, seed) for seed in range(seeds)]
    seconds = time.perf_counter() - start
    val = sum(r[0] for r in results) / seeds
    test = sum(r[1] for r in results) / seeds
    return [row_id, *indices, round(val, 6), round(test, 6), results[0][2], round(seconds, 3)]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seeds", type=int, default=3, help="training seeds averaged per architecture")
    parser.add_argument("--limit", type=int, default=None, help="only the first N architectures (for a quick try)")
    args = parser.parse_args(argv)

    grid = list(itertools.product(*(range(len(values)) for values in DECISIONS.values())))
    if args.limit:
        grid = grid[: args.limit]
    tasks = [(row_id, indices, args.seeds) for row_id, indices in enumerate(grid)]
    load_data()  # fail early if scikit-learn is missing
    start = time.perf_counter()
    rows: list[list] = []
    with multiprocessing.get_context("spawn").Pool(args.workers) as pool:
        for done, row in enumerate(pool.imap_unordered(evaluate, tasks, chunksize=8), 1):
            rows.append(row)
            if done % 200 == 0 or done == len(tasks):
                print(f"{done}/{len(tasks)} architectures in {time.perf_counter() - start:.0f}s", flush=True)
    rows.sort()
    table = {
        "name": "digits-fc-2304",
        "description": "Every fully connected network of a 2,304-point space trained on scikit-learn's digits",
        "built_with": "python benchmarks/build_digits_table.py "
        + f"--seeds {args.seeds} --workers {args.workers}" + (f" --limit {args.limit}" if args.limit else ""),
        "data": {"dataset": "sklearn.datasets.load_digits", "split_seed": DATA_SEED, "train": 898, "val": 450, "test": 449},
        "training": {"epochs": EPOCHS, "batch_size": BATCH_SIZE, "seeds": args.seeds, "loss": "cross-entropy"},
        "environment": {"torch": torch.__version__, "numpy": np.__version__, "python": platform.python_version()},
        "decisions": DECISIONS,
        "columns": [*DECISIONS, "val_accuracy", "test_accuracy", "params", "seconds"],
        "metric": "val_accuracy",
        "rows": [row[1:] for row in rows],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(args.out, "wt", encoding="utf-8") as f:
        json.dump(table, f, separators=(",", ":"))
    vals = [row[len(DECISIONS) + 1] for row in rows]
    print(
        f"wrote {args.out} ({args.out.stat().st_size / 1024:.0f} KiB): {len(rows)} architectures in "
        f"{time.perf_counter() - start:.0f}s; validation accuracy min {min(vals):.4f} "
        f"median {float(np.median(vals)):.4f} max {max(vals):.4f}"
    )


if __name__ == "__main__":
    main()
