"""NNI 3.0 side of ``benchmarks/overhead.py``: the same space and no-op evaluator on NNI's engines.

``--engine sequential`` (default) runs NNI's sequential engine and measures construction as
``overhead.py`` does; ``--engine ts`` runs NNI's training service (local, ``--concurrency`` trials at
once, its web server on ``--port``) and reports the wall time of ``exp.run()``.

Run by ``overhead.py --nni PYTHON`` with a Python that has NNI 3.0 installed; not meant to be run by
hand (but it can be: ``/path/to/nni/python benchmarks/_nni_overhead_space.py --trials 200``).
It must not import nascore. The last line it prints is one JSON object with the figures.

The space mirrors ``overhead.OverheadSpace`` line for line: four tiny Linear layers whose widths
are choices and four activation LayerChoices (4**8 = 65,536 architectures).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import shutil
import tempfile
import time
import warnings

warnings.filterwarnings("ignore")

import nni  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
from nni.nas.evaluator import FunctionalEvaluator  # noqa: E402
from nni.nas.experiment import NasExperiment, NasExperimentConfig  # noqa: E402
from nni.nas.nn.pytorch import LayerChoice, ModelSpace, MutableLinear  # noqa: E402
from nni.nas.space import model_context  # noqa: E402  (NNI 3.0's fixed_arch)
from nni.nas.strategy import Random  # noqa: E402

WIDTHS = [4, 8, 12, 16]
BLOCKS = 4
IN_FEATURES = 8


class OverheadSpace(ModelSpace):
    """Same as ``overhead.OverheadSpace``: Linear(width_i) -> LayerChoice(activation) x 4 -> Linear(1)."""

    def __init__(self):
        super().__init__()
        layers = []
        previous = IN_FEATURES
        for i in range(BLOCKS):
            width = nni.choice(f"width{i}", WIDTHS)
            layers.append(MutableLinear(previous, width))
            layers.append(LayerChoice([nn.ReLU(), nn.Tanh(), nn.Sigmoid(), nn.Identity()], label=f"act{i}"))
            previous = width
        self.body = nn.Sequential(*layers)
        self.head = MutableLinear(previous, 1)

    def forward(self, x):
        return self.head(self.body(x))


def evaluate(model):
    """No work: the engine has built ``model``; report a constant."""
    nni.report_final_result(0.5)


def space_size(space) -> int:
    return math.prod(len(mutable.values) for mutable in space.simplify().values())


def construction_seconds(samples, repeat: int) -> float:
    """Best of ``repeat`` passes building every sample directly, as NNI's simplified format does."""
    for sample in samples[:10]:  # warm-up
        with model_context(sample):
            OverheadSpace()
    best = math.inf
    for _ in range(repeat):
        start = time.perf_counter()
        for sample in samples:
            with model_context(sample):
                OverheadSpace()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--workdir", default=None, help="NNI experiment working directory (default: a temp dir)")
    parser.add_argument("--engine", choices=["sequential", "ts"], default="sequential")
    parser.add_argument("--concurrency", type=int, default=1, help="trials at once (--engine ts)")
    parser.add_argument("--port", type=int, default=8765, help="NNI's web server port (--engine ts)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    # Quiet, like nascore's side. ERROR rather than WARNING: NNI re-validates its config for every
    # trial and logs "`training_service` will be ignored for sequential execution engine" each time.
    logging.getLogger("nni").setLevel(logging.ERROR)

    space = OverheadSpace()
    workdir = args.workdir or tempfile.mkdtemp(prefix="nni-overhead-")
    try:
        (run_training_service if args.engine == "ts" else run)(args, space, workdir)
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)


def run(args, space, workdir) -> None:
    """Run the experiment ``args.runs`` times (fresh each time), keep the fastest, print the JSON line."""
    totals = []
    for index in range(args.runs):
        config = NasExperimentConfig("sequential", "simplified", "local")
        config.max_trial_number = args.trials
        config.trial_concurrency = 1
        config.experiment_working_directory = os.path.join(workdir, str(index))
        strategy = Random(dedup=False, seed=args.seed)
        exp = NasExperiment(space, FunctionalEvaluator(evaluate), strategy, config=config)
        start = time.perf_counter()
        exp.run()
        totals.append(time.perf_counter() - start)
        exp.stop()

    samples = [model.sample for model in strategy.list_models(sort=False)]  # the same every run: same seed
    total, construct, trials = min(totals), construction_seconds(samples, args.repeat), len(samples)
    print(json.dumps({
        "nni_version": nni.__version__,
        "torch_version": torch.__version__,
        "space_size": space_size(space),
        "trials": trials,
        "total_s": total,
        "run_totals_s": totals,
        "construct_s": construct,
        "overhead_ms_per_trial": (total - construct) / trials * 1e3 if trials else None,
    }))


def run_training_service(args, space, workdir) -> None:
    """NNI's training service, local: every trial in a new process; prints the JSON line."""
    totals = []
    for index in range(args.runs):
        config = NasExperimentConfig("ts", "simplified", "local")
        config.max_trial_number = args.trials
        config.trial_concurrency = args.concurrency
        config.experiment_working_directory = os.path.join(workdir, str(index))
        exp = NasExperiment(space, FunctionalEvaluator(evaluate), Random(dedup=False, seed=args.seed), config=config)
        start = time.perf_counter()
        exp.run(port=args.port)
        totals.append(time.perf_counter() - start)
        exp.stop()
    print(json.dumps({
        "nni_version": nni.__version__,
        "torch_version": torch.__version__,
        "engine": "ts",
        "concurrency": args.concurrency,
        "space_size": space_size(space),
        "trials": args.trials,
        "total_s": min(totals),
        "run_totals_s": totals,
    }))


if __name__ == "__main__":
    main()
