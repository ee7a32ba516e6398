"""TPE: the Tree-structured Parzen Estimator of hyperopt, as a nascore strategy.

Bergstra, Bardenet, Bengio, Kégl. "Algorithms for Hyper-Parameter Optimization", NeurIPS 2011.

Needs ``hyperopt`` (``pip install "nascore-strategies[tpe]"``); importing this module does not.
"""

from __future__ import annotations

import bisect
import inspect
import itertools
import logging
import math
from typing import Any

from nascore.errors import StrategyError
from nascore.format import ExecutableSpace
from nascore.record import TrialRecord
from nascore.space import Categorical, CategoricalMultiple, LabelledMutable, Numerical, Sample
from nascore.strategy import ModelFilter, MultiTrialStrategy
from nascore_strategies._optional import require

__all__ = ["TPE"]

_log = logging.getLogger(__name__)

#: A ``CategoricalMultiple`` with ``n_chosen=k`` is one categorical over its subsets up to this many subsets.
MAX_SUBSETS_AS_CHOICE = 1000
#: With weights, the prior of each subset is computed exactly up to this much work (subsets * 2**k).
MAX_SUBSET_PRIOR_WORK = 200_000
#: CDF levels of a scipy distribution searched as hp.uniform(0, 1) stay this far from 0 and 1.
_EPS = 1e-12


def _subset_prior(weights: list[float], subset: tuple[int, ...]) -> float:
    """The probability that ``k`` weighted draws without replacement choose exactly ``subset``."""
    total = 1.0
    prob = {0: 1.0}  # bitmask of the drawn members of ``subset`` -> probability they are drawn first
    for _ in subset:
        nxt: dict[int, float] = {}
        for mask, p in prob.items():
            drawn = sum(weights[i] for j, i in enumerate(subset) if mask >> j & 1)
            for j, i in enumerate(subset):
                if not mask >> j & 1 and weights[i] > 0:
                    nxt[mask | 1 << j] = nxt.get(mask | 1 << j, 0.0) + p * weights[i] / (total - drawn)
        prob = nxt
    return prob.get((1 << len(subset)) - 1, 0.0)


def _no_objective(params: Any) -> float:  # pragma: no cover - hyperopt's Domain needs a function; never called
    return 0.0


class _Decision:
    """How one decision of the space maps to hyperopt parameters (named ``d<i>`` or ``d<i>_<j>``)."""

    def __init__(self, mutable: LabelledMutable, prefix: str, hp: Any) -> None:
        self.mutable = mutable
        self.prefix = prefix
        self.params: dict[str, Any] = {}
        self._build(hp)

    def _build(self, hp: Any) -> None:
        # Priors: a weighted Categorical is an hp.pchoice over its candidates of positive weight; a
        # weighted CategoricalMultiple is a pchoice per candidate (n_chosen=None), a pchoice over
        # subsets with their exact probabilities, or one score per candidate whose top n_chosen are
        # drawn as the weighted draws are (u ** (1 / w), Efraimidis-Spirakis); a Numerical is the
        # hyperopt expression of its distribution (a scipy one is searched through its CDF level).
        mutable = self.mutable
        if isinstance(mutable, Categorical):
            self.kind = "index"
            if mutable.weighted:
                self.options = [i for i, w in enumerate(mutable.weights) if w > 0]
                total = math.fsum(mutable.weights[i] for i in self.options)
                p_options = [(mutable.weights[i] / total, j) for j, i in enumerate(self.options)]
                self.params[self.prefix] = hp.pchoice(self.prefix, p_options)
            else:
                self.options = list(range(len(mutable.values)))
                self.params[self.prefix] = hp.choice(self.prefix, self.options)
            self.position = {i: j for j, i in enumerate(self.options)}
        elif isinstance(mutable, CategoricalMultiple):
            n = len(mutable.values)
            weights = mutable.weights if mutable.weighted else None
            self.weights = weights
            if mutable.n_chosen is None:
                self.kind = "bits"
                self.fixed_bits: dict[int, int] = {}
                for j in range(n):
                    name = f"{self.prefix}_{j}"
                    if weights is None:
                        self.params[name] = hp.choice(name, [0, 1])
                    elif weights[j] in (0.0, 1.0):  # never / always chosen: nothing to search
                        self.fixed_bits[j] = int(weights[j])
                    else:
                        self.params[name] = hp.pchoice(name, [(1.0 - weights[j], 0), (weights[j], 1)])
            elif math.comb(n, mutable.n_chosen) <= MAX_SUBSETS_AS_CHOICE and (
                weights is None or math.comb(n, mutable.n_chosen) * 2**mutable.n_chosen <= MAX_SUBSET_PRIOR_WORK
            ):
                self.kind = "subset"
                subsets = list(itertools.combinations(range(n), mutable.n_chosen))
                if weights is None:
                    self.subsets = subsets
                    self.params[self.prefix] = hp.choice(self.prefix, list(range(len(self.subsets))))
                else:
                    priors = [_subset_prior(weights, subset) for subset in subsets]
                    self.subsets = [subset for subset, p in zip(subsets, priors) if p > 0]
                    total = math.fsum(p for p in priors if p > 0)
                    p_options = [(p / total, j) for j, p in enumerate(p for p in priors if p > 0)]
                    self.params[self.prefix] = hp.pchoice(self.prefix, p_options)
                self.subset_index = {subset: i for i, subset in enumerate(self.subsets)}
            else:  # too many subsets: one score per candidate, the n_chosen highest are chosen
                self.kind = "scores"
                for j in range(n):
                    name = f"{self.prefix}_{j}"
                    self.params[name] = hp.uniform(name, 0.0, 1.0)
        elif isinstance(mutable, Numerical):
            self.kind = "number"
            q = mutable.quantize
            dist = mutable.distribution
            if dist.name == "loguniform":
                low, high = math.log(mutable.low), math.log(mutable.high)
                expr = hp.qloguniform(self.prefix, low, high, q) if q else hp.loguniform(self.prefix, low, high)
            elif dist.name == "uniform":
                low, high = mutable.low, mutable.high
                expr = hp.quniform(self.prefix, low, high, q) if q else hp.uniform(self.prefix, low, high)
            elif dist.name == "normal":
                mu, sigma = mutable.mu, mutable.sigma
                expr = hp.qnormal(self.prefix, mu, sigma, q) if q else hp.normal(self.prefix, mu, sigma)
            elif dist.name == "lognormal":
                mu, sigma = mutable.mu, mutable.sigma
                expr = hp.qlognormal(self.prefix, mu, sigma, q) if q else hp.lognormal(self.prefix, mu, sigma)
            else:  # any other distribution: search its CDF level u, the value is ppf(u)
                self.kind = "quantile"
                expr = hp.uniform(self.prefix, _EPS, 1.0 - _EPS)
            self.params[self.prefix] = expr
        else:
            raise StrategyError(
                f"TPE does not know the decision {mutable.label!r} of type {type(mutable).__name__}; "
                "use a Categorical, CategoricalMultiple or Numerical decision"
            )

    def encode(self, value: Any) -> dict[str, Any] | None:
        """hyperopt values for ``value``; ``None`` when it is not a value of this decision."""
        mutable = self.mutable
        if mutable.check_value(mutable.canonical_value(value)) is not None:
            return None
        if self.kind == "index":
            position = self.position.get(mutable.index_of(value))  # type: ignore[attr-defined]
            return None if position is None else {self.prefix: position}  # None: a candidate of weight 0
        if self.kind == "number":
            return {self.prefix: float(mutable.canonical_value(value))}
        if self.kind == "quantile":
            level = mutable.distribution.cdf(float(mutable.canonical_value(value)))  # type: ignore[attr-defined]
            return {self.prefix: min(max(level, _EPS), 1.0 - _EPS)}
        # canonical_value gives the candidates themselves, in candidate order: find them by identity.
        positions = {id(candidate): j for j, candidate in enumerate(mutable.values)}  # type: ignore[attr-defined]
        chosen = {positions[id(candidate)] for candidate in mutable.canonical_value(value)}
        n = len(positions)
        if self.kind == "bits":
            if any((j in chosen) != bool(bit) for j, bit in self.fixed_bits.items()):
                return None  # against a weight of 0 or 1
            return {f"{self.prefix}_{j}": int(j in chosen) for j in range(n) if j not in self.fixed_bits}
        if self.kind == "subset":
            index = self.subset_index.get(tuple(sorted(chosen)))
            return None if index is None else {self.prefix: index}
        if self.weights is None:
            return {f"{self.prefix}_{j}": 0.75 if j in chosen else 0.25 for j in range(n)}
        if any(self.weights[j] == 0 for j in chosen):
            return None
        # decode ranks u ** (1 / w): these u give the chosen candidates 0.75 and the others 0.25.
        return {
            f"{self.prefix}_{j}": (0.75 if j in chosen else 0.25) ** w if w > 0 else 0.5
            for j, w in enumerate(self.weights)
        }

    def decode(self, vals: dict[str, Any]) -> Any:
        mutable = self.mutable
        if self.kind == "index":
            return mutable.values[self.options[int(vals[self.prefix])]]  # type: ignore[attr-defined]
        if self.kind == "number":  # quantized (hyperopt's q-expressions round the same way) and clipped
            return mutable.qclip(float(vals[self.prefix]))  # type: ignore[attr-defined]
        if self.kind == "quantile":
            level = min(max(float(vals[self.prefix]), _EPS), 1.0 - _EPS)
            return mutable.qclip(mutable.distribution.ppf(level))  # type: ignore[attr-defined]
        values = mutable.values  # type: ignore[attr-defined]
        n = len(values)
        if self.kind == "bits":
            bits = {j: self.fixed_bits[j] if j in self.fixed_bits else int(vals[f"{self.prefix}_{j}"]) for j in range(n)}
            return [values[j] for j in range(n) if bits[j]]
        if self.kind == "subset":
            return [values[j] for j in self.subsets[int(vals[self.prefix])]]
        scores = [float(vals[f"{self.prefix}_{j}"]) for j in range(n)]
        if self.weights is not None:
            scores = [u ** (1.0 / w) if w > 0 else -1.0 for u, w in zip(scores, self.weights)]
        best = sorted(range(n), key=lambda j: (-scores[j], j))[: mutable.n_chosen]  # type: ignore[attr-defined]
        return [values[j] for j in sorted(best)]


class TPE(MultiTrialStrategy):
    """The Tree-structured Parzen Estimator, a sequential model-based optimization (SMBO) approach
    (registered as ``tpe``; uses hyperopt).

    SMBO methods build a model of how good each choice is from the evaluations so far, and choose
    the next sample by that model. TPE models the density of the best ``gamma`` fraction of the
    observations and of the rest, and proposes the candidate (of ``n_ei_candidates`` drawn from the
    first) with the best ratio. The first ``n_startup_jobs`` samples are random.

    Every kind of decision is supported: categorical choices, multiple choices (one yes/no per
    candidate, or one choice among the subsets of size ``n_chosen``), and numerical decisions
    (uniform, log-uniform, normal, log-normal, quantized or not, or any scipy distribution, searched
    through its CDF). Priors are the model's prior: a weighted choice is hyperopt's ``pchoice``
    (candidates of weight 0 are never proposed), a numerical decision its distribution. Running
    trials count as bad observations until they finish (hyperopt's own rule), so concurrent
    proposals spread out.

    On a long search the model is fit on at most ``max_history`` finished evaluations: the best
    ones (hyperopt's "good" group, at most 25 of them, taken from the whole history) and the most
    recent ones (hyperopt already down-weights older observations). This keeps a proposal fast
    (hyperopt's cost grows linearly with the history) and changes nothing below ``max_history``.

    With ``dedup``, when hyperopt proposes a sample that was already tried (common once the model
    is sure of its best guess on a small discrete space), or one that ``model_filter`` rejects, a
    neighbour of it is proposed instead: one decision resampled (more after repeated misses), so
    the trial explores around the model's best guess instead of being wasted.

    :param n_startup_jobs: random samples before the model is used. Default: 20.
    :param n_ei_candidates: candidates drawn per proposal. Default: 24.
    :param gamma: the good group is the best ``ceil(gamma * sqrt(n))`` observations. Default: 0.25.
    :param prior_weight: weight of the prior (uniform) density. Default: 1.0.
    :param max_history: most evaluations the model is fit on. Default: 1000.
    :param dedup: never propose the same sample twice. Default: true.
    :param model_filter: ``f(model) -> bool``; models it rejects are never submitted.
    :param on_failure: ``"ignore"`` leaves failed models out of the model; ``"worst"`` adds them
        with the worst possible value.
    :param seed: seed (defaults to the experiment's ``seed``).
    :param retries: run a failed trial again up to this many times before ``on_failure`` applies.
    :param repeats: evaluate every sample this many times; the model sees the mean.
    """

    name = "tpe"

    def __init__(
        self,
        *,
        n_startup_jobs: int = 20,
        n_ei_candidates: int = 24,
        gamma: float = 0.25,
        prior_weight: float = 1.0,
        max_history: int = 1000,
        dedup: bool = True,
        model_filter: ModelFilter | None = None,
        on_failure: str = "ignore",
        seed: int | None = None,
        retries: int = 0,
        repeats: int = 1,
    ) -> None:
        super().__init__(
            seed=seed, dedup=dedup, model_filter=model_filter, on_failure=on_failure, retries=retries, repeats=repeats
        )
        if not isinstance(n_startup_jobs, int) or n_startup_jobs < 0:
            raise StrategyError(f"n_startup_jobs must be an int >= 0, got {n_startup_jobs!r}")
        if not isinstance(n_ei_candidates, int) or n_ei_candidates < 1:
            raise StrategyError(f"n_ei_candidates must be a positive int, got {n_ei_candidates!r}")
        if not 0.0 < gamma < 1.0:
            raise StrategyError(f"gamma must be in (0, 1), got {gamma!r}")
        if not isinstance(max_history, int) or max_history < 50:
            raise StrategyError(f"max_history must be an int >= 50, got {max_history!r}")
        self.n_startup_jobs = n_startup_jobs
        self.n_ei_candidates = n_ei_candidates
        self.gamma = float(gamma)
        self.prior_weight = float(prior_weight)
        self.max_history = max_history
        self._hyperopt: Any = None
        self._tpe: Any = None
        self._domain: Any = None
        self._decisions: dict[str, _Decision] = {}
        self._docs: dict[int, dict[str, Any]] = {}
        self._by_loss: list[tuple[float, int]] = []
        self._by_tid: list[int] = []
        self._suggest_kwargs: dict[str, Any] = {}

    def setup(self, space: ExecutableSpace, *, optimize_mode: str = "maximize", seed: int | None = None) -> None:
        self._hyperopt = require("hyperopt", extra="tpe", strategy="tpe")
        self._tpe = require("hyperopt.tpe", extra="tpe", strategy="tpe")
        super().setup(space, optimize_mode=optimize_mode, seed=seed)
        hp = self._hyperopt.hp
        self._decisions = {
            label: _Decision(mutable, f"d{i}", hp) for i, (label, mutable) in enumerate(space.simplify().items())
        }
        params = {name: expr for decision in self._decisions.values() for name, expr in decision.params.items()}
        self._domain = self._hyperopt.Domain(_no_objective, params)
        self._docs, self._by_loss, self._by_tid = {}, [], []
        accepted = inspect.signature(self._tpe.suggest).parameters
        self._suggest_kwargs = {"verbose": False} if "verbose" in accepted else {}

    # --- history --------------------------------------------------------------------------------

    def _vals(self, sample: Sample) -> dict[str, Any] | None:
        """hyperopt's values for ``sample``; a decision the sample leaves out (inactive in a conditional
        space) has none, as hyperopt's own conditional parameters."""
        assert self.space is not None
        vals: dict[str, Any] = {}
        active = set(self.space.active_labels(sample))
        for label, decision in self._decisions.items():
            if label not in sample:
                if label in active:
                    return None
                continue
            encoded = decision.encode(sample[label])
            if encoded is None:
                return None
            vals.update(encoded)
        return vals

    def _doc(self, tid: int, vals: dict[str, Any], loss: float | None) -> dict[str, Any]:
        hyperopt = self._hyperopt
        done = loss is not None
        return {
            "state": hyperopt.JOB_STATE_DONE if done else hyperopt.JOB_STATE_RUNNING,
            "tid": tid,
            "spec": None,
            "result": {"loss": loss, "status": hyperopt.STATUS_OK} if done else {"status": hyperopt.STATUS_RUNNING},
            "misc": {
                "tid": tid,
                "cmd": self._domain.cmd,
                "workdir": None,
                "idxs": {name: [tid] if name in vals else [] for name in self._domain.params},
                "vals": {name: [vals[name]] if name in vals else [] for name in self._domain.params},
            },
            "exp_key": None,
            "owner": None,
            "version": 0,
            "book_time": None,
            "refresh_time": None,
        }

    def learn(self, trial: TrialRecord) -> None:
        value = self.objective(trial)
        if value is None or trial.id in self._docs:
            return
        vals = self._vals(trial.sample)
        if vals is None:
            _log.warning("TPE: trial %d has a sample outside the space; not learned: %s", trial.id, trial.sample)
            return
        loss = -value  # hyperopt minimizes; a failure scored "worst" has loss +inf
        self._docs[trial.id] = self._doc(trial.id, vals, loss)
        bisect.insort(self._by_loss, (loss, trial.id))
        bisect.insort(self._by_tid, trial.id)

    def _history(self) -> tuple[list[dict[str, Any]], float]:
        """The finished evaluations the model is fit on, and the ``gamma`` that keeps hyperopt's good group."""
        n = len(self._by_tid)
        if n <= self.max_history:
            return [self._docs[tid] for tid in self._by_tid], self.gamma
        cap = getattr(self._tpe, "DEFAULT_LF", 25)
        n_good = min(math.ceil(self.gamma * math.sqrt(n)), cap)
        chosen = {tid for _, tid in self._by_loss[:n_good]}
        chosen.update(self._by_tid[-(self.max_history - n_good) :])
        # hyperopt takes the best ceil(gamma * sqrt(len)) of what it is given: make that n_good again.
        gamma = n_good / math.sqrt(len(chosen)) * (1.0 - 1e-9)
        return [self._docs[tid] for tid in sorted(chosen)], gamma

    # --- proposing ------------------------------------------------------------------------------

    def propose(self) -> Sample | None:
        hyperopt = self._hyperopt
        docs, gamma = self._history()
        for evaluation in self.pending():
            vals = self._vals(evaluation.sample)
            if evaluation.id is not None and vals is not None and evaluation.id not in self._docs:
                docs.append(self._doc(evaluation.id, vals, None))
        trials = hyperopt.Trials()
        trials._dynamic_trials = docs
        trials.refresh()
        new_id = max((doc["tid"] for doc in docs), default=0) + 1
        seed = self.rng.getrandbits(32)
        new_docs = self._tpe.suggest(
            [new_id], self._domain, trials, seed,
            prior_weight=self.prior_weight, n_startup_jobs=self.n_startup_jobs,
            n_EI_candidates=self.n_ei_candidates, gamma=gamma, **self._suggest_kwargs,
        )
        vals = {name: values[0] for name, values in new_docs[0]["misc"]["vals"].items() if values}
        sample = {label: decision.decode(vals) for label, decision in self._decisions.items()}
        if not self.accepts(sample):
            return self._neighbour(sample)
        return sample

    def _neighbour(self, sample: Sample) -> Sample:
        """A sample near ``sample`` (the model's choice, already tried or filtered out) that can be submitted.

        TPE on a small discrete space keeps proposing its best sample once the good group is
        small. Re-running it would waste a trial, and asking again mostly gives the same answer:
        instead, resample one decision (after every five misses, one more) until a new sample comes.
        """
        assert self.space is not None
        sample = self.space.canonical_sample(sample)
        decisions = [
            (label, decision.mutable)
            for label, decision in self._decisions.items()
            if decision.mutable.size > 1 and label in sample  # a decision the architecture uses
        ]
        candidate = sample
        for attempt in range(50):
            changes = min(1 + attempt // 5, len(decisions))
            candidate = dict(sample)
            for index in self.rng.sample(range(len(decisions)), changes):
                label, mutable = decisions[index]
                candidate[label] = mutable.random_value(self.rng)
            candidate = self.space.canonical_sample(candidate, fill=self.rng)
            if self.accepts(candidate):
                break
        return candidate

    def observations(self) -> int:
        """How many finished evaluations the model knows."""
        return len(self._docs)
