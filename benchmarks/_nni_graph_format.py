"""NNI 3.0 side of ``benchmarks/graph_format.py``: NNI's graph format on the same eight spaces.

Run by ``graph_format.py --nni PYTHON`` with a Python that has NNI 3.0 installed (it can be run by
hand too). It must not import nascore. For every space of ``_nni_graph_spaces.py``: conversion
(``PytorchGraphModelSpace.from_model``, which scripts the space with TorchScript), then per sample
freeze, ``to_code()`` and ``executable_model()``. A space NNI cannot convert (or freeze, or run)
gets its error instead of figures. The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
import time
import traceback
import warnings
from statistics import median

warnings.filterwarnings("ignore")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _nni_graph_spaces as spaces  # noqa: E402
import nni  # noqa: E402
import numpy  # noqa: E402
import torch  # noqa: E402
from nni.nas.space.pytorch.graph import PytorchGraphModelSpace  # noqa: E402

INPUTS = {"transformer": lambda: (torch.randn(2, 5, 5),)}


def first_line(exc: BaseException) -> str:
    """The line of the message that says what went wrong (TorchScript errors start with a signature)."""
    lines = [line.strip() for line in str(exc).splitlines()]
    meaningful = [line for line in lines if line and line != ":" and not re.match(r"^[\w.]+\(.*\) ->", line)]
    return f"{type(exc).__name__}: {meaningful[0][:240] if meaningful else ''}".rstrip(": ")


def random_sample(model_space, rng: numpy.random.RandomState) -> dict:
    return {label: mutable.random(random_state=rng) for label, mutable in model_space.simplify().items()}


def measure(name: str, factory, samples: int, repeat: int, seed: int) -> dict:
    figures: dict = {}
    best = float("inf")
    model_space = None
    for _ in range(repeat):
        space = factory()
        start = time.perf_counter()
        try:
            model_space = PytorchGraphModelSpace.from_model(space)
        except Exception as exc:  # noqa: BLE001 - the figure is the error
            return {"error": f"conversion failed: {first_line(exc)}", "traceback": traceback.format_exc()[-2000:]}
        best = min(best, time.perf_counter() - start)
    figures["convert_ms"] = best * 1e3
    if name == "mutators":
        for mutator in spaces.mutators():
            model_space.mutators.append(mutator)
        figures["note"] = "mutators appended to the converted space by hand; no edge-inserting mutator"
    try:
        figures["decisions"] = len(model_space.simplify())
    except Exception as exc:  # noqa: BLE001 - NNI's dry run of its own mutations fails on some spaces
        figures["error"] = f"converted, but listing its decisions (dry run of the mutators) failed: {first_line(exc)}"
        figures["traceback"] = traceback.format_exc()[-2000:]
        return figures
    rng = numpy.random.RandomState(seed)
    freeze, codegen, build = [], [], []
    inputs = INPUTS.get(name, lambda: (torch.randn(2, 3, 8, 8),))
    for index in range(samples):
        stage = "sampling"
        try:
            sample = random_sample(model_space, rng)
            stage = "freeze"
            start = time.perf_counter()
            frozen = model_space.freeze(sample)
            freeze.append(time.perf_counter() - start)
            stage = "to_code"
            start = time.perf_counter()
            frozen.to_code()
            codegen.append(time.perf_counter() - start)
            stage = "executable_model"
            start = time.perf_counter()
            model = frozen.executable_model()
            build.append(time.perf_counter() - start)
            stage = "forward"
            model.eval()(*inputs())
        except Exception as exc:  # noqa: BLE001
            figures["error"] = f"{stage} failed on sample {index}: {first_line(exc)}"
            figures["traceback"] = traceback.format_exc()[-2000:]
            break
    if freeze:
        figures["freeze_ms"] = median(freeze) * 1e3
    if codegen:
        figures["codegen_ms"] = median(codegen) * 1e3
    if build:
        figures["build_ms"] = median(build) * 1e3
    figures["samples_ok"] = len(build)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--only", nargs="*", help="measure only these spaces")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    logging.getLogger("nni").setLevel(logging.CRITICAL)
    results = {}
    for name, factory in spaces.SPACES.items():
        if args.only and name not in args.only:
            continue
        results[name] = measure(name, factory, args.samples, args.repeat, args.seed)
        print(f"{name}: {({k: v for k, v in results[name].items() if k != 'traceback'})}", file=sys.stderr)
    print(json.dumps({"nni_version": nni.__version__, "torch_version": torch.__version__, "spaces": results}))


if __name__ == "__main__":
    main()
