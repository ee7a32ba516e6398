"""The graph format on the test corpus: conversion, freeze and codegen time (and NNI 3.0's, optionally).

What is measured, for every space of ``tests/formats/graph/corpus.py`` (a DARTS cell network, a
ProxylessNAS-like MBConv space, a ResNet with choice-valued widths, transformer blocks, a
NAS-Bench-201 cell, InputChoice with n_chosen > 1, loops in forward, custom mutators):

* convert: ``GraphFormat().build(space)`` (torch.fx tracing, leaf arguments, mutator dry runs),
  best of ``--repeat``;
* per sample, over ``--samples`` random samples (fixed seed): freeze (``space.freeze(sample)``:
  mutators and primitive mutations), codegen (``model.to_code()``), and build (execute the code
  and construct the ``nn.Module``, what a trial does); for reference the simplified format's
  freeze + build of the same sample.

``--nni PYTHON`` runs ``_nni_graph_format.py`` with that Python (NNI 3.0): the same eight spaces
written with NNI's API, converted by NNI's graph format (``PytorchGraphModelSpace.from_model``,
TorchScript-based), then freeze, ``to_code()`` and ``executable_model()`` per sample. It prints
NNI's figures for the spaces it converts and the error for those it cannot. Always exits 0.

    python benchmarks/graph_format.py
    python benchmarks/graph_format.py --nni /tmp/nni-venv/bin/python
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the corpus lives in the tests

from nascore_formats import GraphFormat, SimplifiedFormat  # noqa: E402
from tests.formats.graph.corpus import CORPUS  # noqa: E402

NNI_SCRIPT = Path(__file__).with_name("_nni_graph_format.py")


def best_of(repeat: int, fn) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def measure_nascore(samples: int, repeat: int, seed: int) -> dict[str, dict]:
    figures = {}
    for entry in CORPUS:
        spaces = [entry.space() for _ in range(repeat)]
        convert, graph_space = best_of(repeat, lambda spaces=spaces: GraphFormat().build(spaces.pop()))
        simplified = SimplifiedFormat().build(entry.simplified_space())
        rng = random.Random(seed)
        sample_list = [graph_space.random_sample(random_state=rng) for _ in range(samples)]
        # Warm-up: operators built when freezing (cell factories) are traced once and cached.
        for sample in sample_list[:2]:
            graph_space.freeze(sample).build()
        freeze, codegen, build, reference = [], [], [], []
        for sample in sample_list:
            start = time.perf_counter()
            model = graph_space.freeze(sample)
            freeze.append(time.perf_counter() - start)
            start = time.perf_counter()
            model.to_code()
            codegen.append(time.perf_counter() - start)
            start = time.perf_counter()
            model.build()
            build.append(time.perf_counter() - start)
            start = time.perf_counter()
            simplified.freeze(sample).build()
            reference.append(time.perf_counter() - start)
        figures[entry.name] = {
            "graphs": len(graph_space.ir.graphs),
            "decisions": len(graph_space.simplify()),
            "convert_ms": convert * 1e3,
            "freeze_ms": median(freeze) * 1e3,
            "codegen_ms": median(codegen) * 1e3,
            "build_ms": median(build) * 1e3,
            "simplified_build_ms": median(reference) * 1e3,
        }
    return figures


def run_nni(python: str, samples: int, repeat: int, seed: int, threads: int) -> dict | None:
    home = Path(tempfile.mkdtemp(prefix="nni-graph-home-"))
    command = [python, str(NNI_SCRIPT), "--samples", str(samples), "--repeat", str(repeat), "--seed", str(seed), "--threads", str(threads)]
    env = {**os.environ, "HOME": str(home), "PYTHONWARNINGS": "ignore"}
    env.pop("PYTHONPATH", None)
    try:
        proc = subprocess.run(command, capture_output=True, text=True, env=env, timeout=3600)
    except (OSError, subprocess.TimeoutExpired) as exc:
        print(f"NNI run failed: {exc}")
        return None
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        print(f"NNI run failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
        return None
    return json.loads(lines[-1])


def fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:9.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3, help="conversions per space (the best is kept)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (tiny models: 1 is fastest)")
    parser.add_argument("--nni", metavar="PYTHON", help="a Python with NNI 3.0: also measure NNI's graph format")
    parser.add_argument("--json", metavar="PATH", help="also write the figures to this JSON file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    logging.getLogger("nascore").setLevel(logging.ERROR)

    ours = measure_nascore(args.samples, args.repeat, args.seed)
    print(f"nascore graph format, torch {torch.__version__}, {args.samples} samples per space, medians (ms)")
    print(f"{'space':14} {'graphs':>6} {'convert':>9} {'freeze':>9} {'codegen':>9} {'build':>9} {'simplified':>10}")
    for name, f in ours.items():
        print(
            f"{name:14} {f['graphs']:6d} {fmt(f['convert_ms'])} {fmt(f['freeze_ms'])} {fmt(f['codegen_ms'])} "
            f"{fmt(f['build_ms'])} {fmt(f['simplified_build_ms']):>10}"
        )
    result = {"nascore": ours}
    if args.nni:
        nni = run_nni(args.nni, args.samples, args.repeat, args.seed, args.threads)
        if nni is not None:
            result["nni"] = nni
            print(f"\nNNI {nni['nni_version']} graph format (TorchScript), torch {nni['torch_version']}, medians (ms)")
            print(f"{'space':14} {'convert':>9} {'freeze':>9} {'codegen':>9} {'build':>9}   nascore speed-up (convert / freeze / codegen)")
            for name, f in nni["spaces"].items():
                if "convert_ms" not in f:
                    print(f"{name:14} fails: {f['error']}")
                    continue
                ratio = " / ".join(
                    f"{f[key] / ours[name][key]:.1f}x" if f.get(key) and ours[name][key] else "-"
                    for key in ("convert_ms", "freeze_ms", "codegen_ms")
                )
                print(
                    f"{name:14} {fmt(f['convert_ms'])} {fmt(f.get('freeze_ms'))} {fmt(f.get('codegen_ms'))} "
                    f"{fmt(f.get('build_ms'))}   {ratio}" + (f"   ({f['note']})" if f.get("note") else "")
                )
                if "error" in f:
                    print(f"{'':14} then fails: {f['error']}")
            working = [n for n, f in nni["spaces"].items() if "error" not in f]
            print(
                f"\nNNI runs {len(working)} of {len(nni['spaces'])} spaces end to end ({', '.join(working) or 'none'}); "
                f"nascore runs {len(ours)} of {len(CORPUS)}."
            )
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
