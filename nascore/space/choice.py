"""The kinds of decision: :class:`Categorical`, :class:`CategoricalMultiple` and :class:`Numerical`."""

from __future__ import annotations

import itertools
import json
import math
import numbers
import random as _random
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from nascore.errors import SampleValidationError, SampleValueError, SearchSpaceError
from nascore.space.distributions import (
    Distribution,
    LogNormal,
    LogUniform,
    Normal,
    ScipyDistribution,
    Uniform,
)
from nascore.space.expression import ExpressionMixin
from nascore.space.label import auto_label, check_label
from nascore.space.mutable import LabelledMutable

__all__ = [
    "Categorical",
    "CategoricalMultiple",
    "Numerical",
    "choice",
    "loguniform",
    "lognormal",
    "normal",
    "qloguniform",
    "qlognormal",
    "qnormal",
    "quniform",
    "randint",
    "uniform",
]

_MISSING = object()


def _json_key(value: Any) -> str:
    try:
        return json.dumps(value, sort_keys=True)
    except (TypeError, ValueError):
        return "repr:" + repr(value)


def _short(values: Sequence[Any], limit: int = 8) -> str:
    shown = ", ".join(repr(v) for v in values[:limit])
    return f"[{shown}{', ...' if len(values) > limit else ''}]"


def _check_weights(weights: Any, n: int, what: str) -> list[float]:
    """``weights`` as a list of ``n`` non-negative finite floats, not all zero."""
    try:
        weights = list(weights)
    except TypeError:
        raise SearchSpaceError(f"{what}: weights must be a list of numbers, got {weights!r}") from None
    if len(weights) != n:
        raise SearchSpaceError(f"{what}: {len(weights)} weights for {n} candidates; give one weight per candidate")
    for w in weights:
        if isinstance(w, bool) or not isinstance(w, numbers.Real) or not 0 <= w < math.inf:
            raise SearchSpaceError(f"{what}: weights must be non-negative finite numbers, got {w!r}")
    if not any(weights):
        raise SearchSpaceError(f"{what}: the weights are all zero; at least one candidate needs a positive weight")
    return [float(w) for w in weights]


def _normalised(weights: list[float]) -> list[float]:
    """``weights`` divided by their sum; exactly ``1 / n`` each when they are all (nearly) equal."""
    total = math.fsum(weights)
    result = [w / total for w in weights]
    uniform = 1 / len(weights)
    if all(math.isclose(w, uniform, rel_tol=1e-9) for w in result):
        return [uniform] * len(weights)
    return result


def _weighted_index(rng: _random.Random, weights: Sequence[float]) -> int:
    """An index drawn with probability proportional to ``weights`` (one draw of ``rng``)."""
    return rng.choices(range(len(weights)), weights=weights)[0]


class Categorical(ExpressionMixin, LabelledMutable):
    """Choose one value from a list of candidates.

    ``weights`` is a prior (NNI's ``weights``): one non-negative weight per candidate, not all zero,
    normalised to probabilities (NNI requires them to sum to 1; nascore normalises). Random sampling
    (:meth:`random`, and the strategies that sample) draws candidates with these probabilities, and
    :meth:`grid` lists the likeliest first (as NNI). A candidate of weight 0 stays a valid value but
    is never drawn at random.

    >>> width = Categorical([16, 32, 64], label="width")
    >>> (width * 2).freeze({"width": 32})
    64
    """

    def __init__(
        self,
        values: Iterable[Any],
        *,
        weights: Iterable[float] | None = None,
        default: Any = _MISSING,
        label: str | None = None,
    ) -> None:
        self.label = check_label(label) if label is not None else auto_label("choice")
        values = list(values)
        if not values:
            raise SearchSpaceError(f"choice {self.label!r} has no candidates: give at least one value")
        if weights is None:
            self.weights = [1 / len(values)] * len(values)
        else:
            self.weights = _normalised(_check_weights(weights, len(values), f"choice {self.label!r}"))
        #: Whether the prior is not uniform (a uniform one samples as if no weights were given).
        self.weighted = any(w != self.weights[0] for w in self.weights)
        # Hashable candidates (the common case) are looked up by (type, value); JSON keys, built only
        # when needed, also match values that came back from JSON (a list for a tuple, ...).
        self._hashed: dict[tuple[type, Any], int] = {}
        self._json_keys: dict[str, int] | None = None
        all_hashable = True
        for index, value in enumerate(values):
            try:
                key = (type(value), value)
                if key in self._hashed:
                    raise SearchSpaceError(f"choice {self.label!r} lists the candidate {value!r} twice")
                self._hashed[key] = index
            except TypeError:
                all_hashable = False
        self.values = values
        if not all_hashable:
            self._keys  # noqa: B018 - builds the JSON keys now, which checks for duplicates
        if default is not _MISSING and self.index_of(default) is None:
            raise SearchSpaceError(f"default {default!r} of choice {self.label!r} is not one of {_short(values)}")
        self._default = values[0] if default is _MISSING else default

    @property
    def _keys(self) -> dict[str, int]:
        if self._json_keys is None:
            keys: dict[str, int] = {}
            for index, value in enumerate(self.values):
                key = _json_key(value)
                if key in keys:
                    raise SearchSpaceError(f"choice {self.label!r} lists the candidate {value!r} twice")
                keys[key] = index
            self._json_keys = keys
        return self._json_keys

    def index_of(self, value: Any) -> int | None:
        try:
            index = self._hashed.get((type(value), value))
        except TypeError:
            index = None
        return index if index is not None else self._keys.get(_json_key(value))

    def canonical_value(self, value: Any) -> Any:
        index = self.index_of(value)
        return value if index is None else self.values[index]

    def check_value(self, value: Any) -> SampleValidationError | None:
        if self.index_of(value) is None:
            return SampleValueError(
                f"value {value!r} for label {self.label!r} is not a candidate; expected one of {_short(self.values)}",
                label=self.label,
            )
        return None

    def default_value(self) -> Any:
        return self._default

    def random_value(self, rng: _random.Random) -> Any:
        if self.weighted:
            return self.values[_weighted_index(rng, self.weights)]
        return self.values[rng.randrange(len(self.values))]

    def grid_values(self, granularity: int | None = None) -> Iterable[Any]:
        if self.weighted:  # the likeliest first (ties keep their order), as NNI
            order = sorted(range(len(self.values)), key=lambda i: -self.weights[i])
            return iter([self.values[i] for i in order])
        return iter(self.values)

    def equals(self, other: LabelledMutable) -> bool:
        return (
            type(other) is type(self)
            and other.label == self.label
            and other._keys == self._keys  # type: ignore[attr-defined]
            and other.weights == self.weights  # type: ignore[attr-defined]
        )

    def describe(self) -> str:
        if self.weighted:
            return f"{_short(self.values)} with probabilities {_short([round(w, 4) for w in self.weights])}"
        return _short(self.values)

    @property
    def size(self) -> float:
        return len(self.values)

    def __repr__(self) -> str:
        weights = f", weights={_short([round(w, 4) for w in self.weights])}" if self.weighted else ""
        return f"Categorical({_short(self.values)}{weights}, label={self.label!r})"


class CategoricalMultiple(ExpressionMixin, LabelledMutable):
    """Choose several distinct values from a list; the value is a list in candidate order.

    ``n_chosen=None`` allows any number (including none).

    ``weights`` is a prior, with NNI's meaning: with ``n_chosen=None`` each weight is the probability
    (in ``[0, 1]``) that its candidate is chosen, independently of the others (default 0.5); with
    ``n_chosen=k`` the weights (non-negative, normalised to sum to 1) are the probabilities of
    drawing each candidate, and ``k`` are drawn one after another without replacement, each draw
    proportional to the weights of the candidates left (as ``numpy``'s ``choice(replace=False,
    p=weights)``, which NNI uses). Either way the weights must not all be zero, and with ``n_chosen=k``
    at least ``k`` must be positive.
    """

    def __init__(
        self,
        values: Iterable[Any],
        *,
        n_chosen: int | None = None,
        weights: Iterable[float] | None = None,
        default: Any = _MISSING,
        label: str | None = None,
    ) -> None:
        self.label = check_label(label) if label is not None else auto_label("choices")
        self.values = list(values)
        if not self.values:
            raise SearchSpaceError(f"multiple choice {self.label!r} has no candidates")
        self._keys = {_json_key(v): i for i, v in enumerate(self.values)}
        if len(self._keys) != len(self.values):
            raise SearchSpaceError(f"multiple choice {self.label!r} lists a candidate twice")
        if n_chosen is not None and not (0 <= n_chosen <= len(self.values)):
            raise SearchSpaceError(
                f"multiple choice {self.label!r}: n_chosen={n_chosen} is not between 0 and {len(self.values)}"
            )
        self.n_chosen = n_chosen
        n = len(self.values)
        what = f"multiple choice {self.label!r}"
        if weights is None:
            self.weights = [0.5] * n if n_chosen is None else [1 / n] * n
        elif n_chosen is None:
            self.weights = _check_weights(weights, n, what)
            if any(w > 1 for w in self.weights):
                raise SearchSpaceError(
                    f"{what}: with n_chosen=None each weight is the probability that its candidate is chosen "
                    f"and must be in [0, 1], got {weights!r}"
                )
        else:
            self.weights = _normalised(_check_weights(weights, n, what))
            if sum(1 for w in self.weights if w > 0) < n_chosen:
                raise SearchSpaceError(
                    f"{what}: only {sum(1 for w in self.weights if w > 0)} candidates have a positive weight, "
                    f"fewer than n_chosen={n_chosen}"
                )
        #: Whether the prior differs from the default one (then sampling follows the weights).
        self.weighted = any(w != (0.5 if n_chosen is None else 1 / n) for w in self.weights)
        if default is _MISSING:
            default = self.values[: n_chosen if n_chosen is not None else len(self.values)]
        self._default = list(default)
        error = self.check_value(self._default)
        if error is not None:
            raise SearchSpaceError(f"invalid default for {self.label!r}: {error}")

    def canonical_value(self, value: Any) -> Any:
        if not isinstance(value, (list, tuple)):
            return value
        indices = [self._keys.get(_json_key(v)) for v in value]
        if any(i is None for i in indices):
            return list(value)
        return [self.values[i] for i in sorted(indices)]  # type: ignore[type-var]

    def check_value(self, value: Any) -> SampleValidationError | None:
        if not isinstance(value, (list, tuple)):
            return SampleValueError(
                f"value {value!r} for label {self.label!r} must be a list of candidates from {_short(self.values)}",
                label=self.label,
            )
        keys = [_json_key(v) for v in value]
        unknown = [v for v, k in zip(value, keys) if k not in self._keys]
        if unknown:
            return SampleValueError(
                f"values {unknown!r} for label {self.label!r} are not candidates; expected items of {_short(self.values)}",
                label=self.label,
            )
        if len(set(keys)) != len(keys):
            return SampleValueError(f"value {value!r} for label {self.label!r} repeats a candidate", label=self.label)
        if self.n_chosen is not None and len(value) != self.n_chosen:
            return SampleValueError(
                f"value {value!r} for label {self.label!r} must choose exactly {self.n_chosen} candidates",
                label=self.label,
            )
        return None

    def default_value(self) -> Any:
        return list(self._default)

    def random_value(self, rng: _random.Random) -> Any:
        if self.n_chosen is None:
            return [v for v, w in zip(self.values, self.weights) if rng.random() < w]
        if not self.weighted:
            chosen = sorted(rng.sample(range(len(self.values)), self.n_chosen))
        else:  # one draw at a time, proportional to the weights of the candidates left
            left = list(range(len(self.values)))
            picks: list[int] = []
            for _ in range(self.n_chosen):
                position = _weighted_index(rng, [self.weights[i] for i in left])
                picks.append(left.pop(position))
            chosen = sorted(picks)
        return [self.values[i] for i in chosen]

    def grid_values(self, granularity: int | None = None) -> Iterable[Any]:
        sizes = range(len(self.values) + 1) if self.n_chosen is None else [self.n_chosen]
        for size in sizes:
            for combo in itertools.combinations(self.values, size):
                yield list(combo)

    def equals(self, other: LabelledMutable) -> bool:
        return (
            type(other) is type(self)
            and other.label == self.label
            and other._keys == self._keys  # type: ignore[attr-defined]
            and other.n_chosen == self.n_chosen  # type: ignore[attr-defined]
            and other.weights == self.weights  # type: ignore[attr-defined]
        )

    def describe(self) -> str:
        count = "any number" if self.n_chosen is None else str(self.n_chosen)
        if self.weighted:
            return f"{count} of {_short(self.values)} with weights {_short([round(w, 4) for w in self.weights])}"
        return f"{count} of {_short(self.values)}"

    @property
    def size(self) -> float:
        n = len(self.values)
        if self.n_chosen is None:
            return 2**n
        return math.comb(n, self.n_chosen)

    def __repr__(self) -> str:
        weights = f", weights={_short([round(w, 4) for w in self.weights])}" if self.weighted else ""
        return f"CategoricalMultiple({_short(self.values)}, n_chosen={self.n_chosen}{weights}, label={self.label!r})"


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _is_integral(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _num(value: float) -> Any:
    """``value`` as written in messages: ``16`` rather than ``16.0``."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        return int(value)
    return value


_DISTRIBUTION_NAMES = ("uniform", "loguniform", "normal", "lognormal")


def _reached(t: float, *, lower: bool) -> int:
    """``round(x)`` for ``x`` just inside an end ``t`` of the support (above a lower end, below an upper one).

    Only differs from ``round(t)`` when ``t`` is half-way between two ints: ``quniform(0.5, 3.5, 1)``
    reaches 0.5 and 3.5 only by drawing exactly ``low`` or ``high``, so its values are 1, 2 and 3.
    """
    floor = math.floor(t)
    if abs(t - floor - 0.5) < 1e-9:
        return floor + 1 if lower else floor
    return round(t)


class Numerical(ExpressionMixin, LabelledMutable):
    """A number drawn from a univariate distribution, optionally quantized and clipped (NNI's ``Numerical``).

    The distribution is, as in NNI:

    * ``distribution=`` a frozen continuous ``scipy.stats`` distribution (``scipy.stats.beta(2, 5)``;
      needs scipy), with no ``mu`` / ``sigma`` / ``log_distributed``;
    * else, with ``mu`` and ``sigma``: normal, or log-normal (``exp(normal(mu, sigma))``) with
      ``log_distributed=True``; ``low`` / ``high`` then only clip the value (it is not a truncated
      normal);
    * else uniform in ``[low, high]``, or log-uniform with ``log_distributed=True``.

    ``distribution="uniform" | "loguniform" | "normal" | "lognormal"`` names one of the last two
    explicitly (a nascore spelling; NNI infers it from the arguments).

    ``quantize=q`` rounds as NNI does: a drawn ``x`` becomes ``clip(round(x / q) * q, low, high)``.
    The values are therefore the multiples of ``q`` the rounding reaches inside ``[low, high]``, plus
    ``low`` (``high``) when rounding can fall below (above) it and the value is clipped: ``low=1,
    high=3, quantize=0.75`` has the 4 values ``1, 1.5, 2.25, 3``. :attr:`size`, :meth:`grid`,
    :meth:`random` and :meth:`contains` agree on exactly this set: the values drawn with a positive
    probability (a bound the rounding never crosses is not a value, and ``quniform(0.5, 3.5, 1)``,
    NNI's recipe for an int in ``[1, 3]``, has the values 1, 2 and 3). Multiples are written to 15 significant digits (``0.9``, not
    ``0.8999999999999999``); with an ``int`` ``quantize`` and ``int`` (or infinite) bounds they are
    ``int`` (NNI always returns floats). A ``default`` must be one of the values.

    The default is the median of the distribution, quantized and clipped. :meth:`grid` (see
    :meth:`grid_values`) lists every value of a quantized decision with finitely many; otherwise it
    takes ``granularity`` points (default 5): evenly spaced from ``low`` to ``high`` (in log space
    when log-uniform), or, for normal, log-normal and scipy distributions, the quantiles
    ``i / (granularity + 1)`` (NNI's quantile grid: 1 point is the median, 3 the quartiles, 7 the
    eighths). A decision without finite bounds has a grid only when ``granularity`` is given.
    """

    def __init__(
        self,
        low: float = -math.inf,
        high: float = math.inf,
        *,
        mu: float | None = None,
        sigma: float | None = None,
        log_distributed: bool = False,
        quantize: float | None = None,
        distribution: Any = None,
        default: Any = _MISSING,
        label: str | None = None,
    ) -> None:
        self.label = check_label(label) if label is not None else auto_label("numerical")
        for name, value in (("low", low), ("high", high), ("mu", mu), ("sigma", sigma), ("quantize", quantize)):
            if value is not None and (not _is_real(value) or math.isnan(value)):
                raise SearchSpaceError(f"numerical {self.label!r}: {name} must be a number, got {value!r}")
        if not low < high:
            raise SearchSpaceError(f"numerical {self.label!r}: low={low} must be smaller than high={high}")
        if quantize is not None and not (0 < quantize < math.inf):
            raise SearchSpaceError(f"numerical {self.label!r}: quantize must be a positive number, got {quantize!r}")
        self.low, self.high = float(low), float(high)
        self.mu, self.sigma = mu, sigma
        self.quantize = quantize
        self.log_distributed = bool(log_distributed)
        self.distribution: Distribution = self._make_distribution(distribution, low, high)
        self.log_distributed = self.distribution.name in ("loguniform", "lognormal")
        a, b = self.distribution.support
        # Without quantize the values are the support clipped to [low, high].
        self._lo, self._hi = max(self.low, a), min(self.high, b)
        if self._lo > self._hi or (self._lo == self._hi and not quantize):
            raise SearchSpaceError(
                f"numerical {self.label!r}: [{_num(self.low)}, {_num(self.high)}] leaves nothing of "
                f"{self.distribution.describe()} (its values lie in [{_num(a)}, {_num(b)}])"
            )
        # An int quantize with int (or infinite) bounds gives int values.
        self._integral = (
            quantize is not None
            and _is_integral(quantize)
            and all(_is_integral(v) or math.isinf(v) for v in (low, high))
        )
        self._low_value: Any = int(low) if self._integral and not math.isinf(low) else self.low
        self._high_value: Any = int(high) if self._integral and not math.isinf(high) else self.high
        if quantize is not None:
            self._setup_quantized()
        if default is _MISSING:
            self._default = self.qclip(self.distribution.median())
        else:
            error = self.check_value(default)
            if error is not None:
                raise SearchSpaceError(f"invalid default for numerical {self.label!r}: {error}")
            self._default = self.canonical_value(default)

    def _make_distribution(self, distribution: Any, low: float, high: float) -> Distribution:
        label = self.label
        if distribution is not None and not isinstance(distribution, str):
            if self.mu is not None or self.sigma is not None or self.log_distributed:
                raise SearchSpaceError(
                    f"numerical {label!r}: mu, sigma and log_distributed must not be given with distribution="
                )
            return ScipyDistribution(distribution, label=label)
        kind = distribution
        if kind is None:
            normal = self.mu is not None or self.sigma is not None
            kind = ("lognormal" if normal else "loguniform") if self.log_distributed else ("normal" if normal else "uniform")
        elif kind not in _DISTRIBUTION_NAMES:
            raise SearchSpaceError(
                f"numerical {label!r}: distribution={kind!r} is not one of {list(_DISTRIBUTION_NAMES)} "
                "(or give a frozen scipy.stats distribution)"
            )
        elif self.log_distributed and kind in ("uniform", "normal"):
            raise SearchSpaceError(
                f"numerical {label!r}: log_distributed=True contradicts distribution={kind!r}; "
                f"use distribution='log{kind}'"
            )
        if kind in ("normal", "lognormal"):
            if self.mu is None or self.sigma is None:
                raise SearchSpaceError(f"numerical {label!r}: a {kind} distribution needs both mu and sigma")
            if math.isinf(self.mu) or not 0 < self.sigma < math.inf:
                raise SearchSpaceError(
                    f"numerical {label!r}: mu must be finite and sigma > 0, got mu={self.mu}, sigma={self.sigma}"
                )
            return Normal(self.mu, self.sigma) if kind == "normal" else LogNormal(self.mu, self.sigma)
        if self.mu is not None or self.sigma is not None:
            raise SearchSpaceError(f"numerical {label!r}: mu and sigma belong to a normal distribution, not {kind!r}")
        if math.isinf(low) or math.isinf(high):
            raise SearchSpaceError(f"numerical {label!r}: an unbounded range needs mu and sigma")
        if kind == "loguniform":
            if low <= 0:
                raise SearchSpaceError(f"numerical {label!r}: a log-distributed range needs low > 0")
            return LogUniform(low, high)
        return Uniform(low, high)

    # --- the quantized value set ----------------------------------------------------------------

    def _qvalue(self, k: int) -> Any:
        """The ``k``-th multiple of ``quantize``, written to 15 significant digits."""
        if self._integral:
            return k * self.quantize  # type: ignore[operator]
        return float(f"{k * self.quantize:.15g}")  # type: ignore[operator]

    def _setup_quantized(self) -> None:
        q = self.quantize
        a, b = self.distribution.support
        # round() is monotone, so the multiples reached from the support are kmin..kmax (None: unbounded).
        self._kmin: int | None = None if math.isinf(a) else _reached(a / q, lower=True)  # type: ignore[operator]
        self._kmax: int | None = None if math.isinf(b) else _reached(b / q, lower=False)  # type: ignore[operator]
        # Multiples inside [low, high]: k_lo..k_hi.
        if math.isinf(self.low):
            k_lo = self._kmin
        else:
            k_lo = math.floor(self.low / q) - 1  # type: ignore[operator]
            if self._kmin is not None:
                k_lo = max(k_lo, self._kmin)
            while self._qvalue(k_lo) < self.low:
                k_lo += 1
        if math.isinf(self.high):
            k_hi = self._kmax
        else:
            k_hi = math.ceil(self.high / q) + 1  # type: ignore[operator]
            if self._kmax is not None:
                k_hi = min(k_hi, self._kmax)
            while self._qvalue(k_hi) > self.high:
                k_hi -= 1
        self._k_lo, self._k_hi = k_lo, k_hi
        empty = k_lo is not None and k_hi is not None and k_hi < k_lo
        # A bound is a value when rounding reaches past it and the value is clipped back.
        self._has_low = (
            not math.isinf(self.low)
            and (self._kmin is None or self._kmin < k_lo)  # type: ignore[operator]
            and (empty or self._qvalue(k_lo) != self.low)  # type: ignore[arg-type]
        )
        self._has_high = (
            not math.isinf(self.high)
            and (self._kmax is None or self._kmax > k_hi)  # type: ignore[operator]
            and (empty or self._qvalue(k_hi) != self.high)  # type: ignore[arg-type]
        )
        if k_lo is None or k_hi is None:
            self._count: float = math.inf
        else:
            self._count = max(0, k_hi - k_lo + 1) + int(self._has_low) + int(self._has_high)

    def _iter_values(self) -> Iterator[Any]:
        """Every value of a quantized decision with finitely many, in ascending order."""
        if self._has_low:
            yield self._low_value
        for k in range(self._k_lo, self._k_hi + 1):  # type: ignore[arg-type]
            yield self._qvalue(k)
        if self._has_high:
            yield self._high_value

    def _snap(self, value: float) -> Any:
        """The value of a quantized decision ``value`` stands for, or ``None`` when it is not one."""
        q = self.quantize
        close = lambda target: math.isclose(value, target, rel_tol=1e-9, abs_tol=q * 1e-9)  # noqa: E731
        if self._has_low and close(self.low):
            return self._low_value
        if self._has_high and close(self.high):
            return self._high_value
        k = round(value / q)  # type: ignore[operator]
        if (self._k_lo is not None and k < self._k_lo) or (self._k_hi is not None and k > self._k_hi):
            return None
        target = self._qvalue(k)
        return target if close(target) else None

    def qclip(self, x: float) -> Any:
        """``x`` quantized and clipped to the bounds: the value a draw ``x`` of the distribution gives."""
        if self.quantize:
            k = round(x / self.quantize)
            if self._kmin is not None:
                k = max(k, self._kmin)
            if self._kmax is not None:
                k = min(k, self._kmax)
            value = self._qvalue(k)
            if value < self.low:
                return self._low_value
            if value > self.high:
                return self._high_value
            return value
        # Clip also to the support: exp(log(high)) can land a rounding error above ``high``.
        return float(min(max(x, self._lo), self._hi))

    # --- the decision ---------------------------------------------------------------------------

    @property
    def bounded(self) -> bool:
        """Whether the values lie in a finite interval (bounds, or the support of the distribution)."""
        if self.quantize:
            return self._k_lo is not None and self._k_hi is not None
        return not (math.isinf(self._lo) or math.isinf(self._hi))

    def canonical_value(self, value: Any) -> Any:
        if self.quantize and _is_real(value) and not math.isnan(value):
            snapped = self._snap(value)
            if snapped is not None:
                return snapped
        return value

    def check_value(self, value: Any) -> SampleValidationError | None:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
            return SampleValueError(f"value {value!r} for label {self.label!r} must be a number", label=self.label)
        if not self.low <= value <= self.high:
            return SampleValueError(
                f"value {value!r} for label {self.label!r} is outside [{self.low}, {self.high}]", label=self.label
            )
        if self.quantize:
            if self._snap(value) is None:
                return SampleValueError(
                    f"value {value!r} for label {self.label!r} is not on its quantization grid: "
                    f"expected {self.describe()}",
                    label=self.label,
                )
        elif not self._lo <= value <= self._hi:
            return SampleValueError(
                f"value {value!r} for label {self.label!r} is not in the distribution "
                f"{self.distribution.describe()} (its values lie in [{_num(self._lo)}, {_num(self._hi)}])",
                label=self.label,
            )
        return None

    def default_value(self) -> Any:
        return self._default

    def random_value(self, rng: _random.Random) -> Any:
        return self.qclip(self.distribution.sample(rng))

    def grid_values(self, granularity: int | None = None) -> Iterable[Any]:
        """The grid of this decision (see the class docstring).

        ``granularity`` is the number of points (an int >= 1); ``None`` lists every value of a
        quantized decision with finitely many, and else takes 5 points.
        """
        if granularity is not None and (not _is_integral(granularity) or granularity < 1):
            raise SearchSpaceError(
                f"numerical {self.label!r}: granularity must be an int >= 1 (the number of grid points), "
                f"got {granularity!r}"
            )
        if granularity is None:
            if self.quantize and self._count < math.inf:
                return list(self._iter_values())
            if not self.bounded:
                raise SearchSpaceError(
                    f"numerical {self.label!r} is unbounded and has no grid ({self.describe()}): give low and "
                    "high, or a granularity (the number of quantiles to take, e.g. 3 for the quartiles)"
                )
            granularity = 5
        dist = self.distribution
        if dist.name in ("uniform", "loguniform"):
            if granularity == 1:
                points = [dist.median()]
            else:
                lo, hi = (math.log(self.low), math.log(self.high)) if dist.name == "loguniform" else (self.low, self.high)
                points = [lo + (hi - lo) * i / (granularity - 1) for i in range(granularity)]
                if dist.name == "loguniform":
                    points = [math.exp(p) for p in points]
        else:
            points = [dist.ppf(i / (granularity + 1)) for i in range(1, granularity + 1)]
        result: list[Any] = []
        for point in points:
            value = self.qclip(point)
            if value not in result:
                result.append(value)
        return result

    def _key(self) -> tuple[Any, ...]:
        return (self.label, self.low, self.high, self.distribution.key(), self.quantize, self._integral, self._default)

    def equals(self, other: LabelledMutable) -> bool:
        return type(other) is type(self) and other._key() == self._key()  # type: ignore[attr-defined]

    def describe(self) -> str:
        dist = self.distribution
        if dist.name == "uniform":
            base = f"a number in [{_num(self.low)}, {_num(self.high)}]"
        elif dist.name == "loguniform":
            base = f"a number in [{_num(self.low)}, {_num(self.high)}] (log-uniform)"
        else:
            base = f"a number from {dist.describe()}"
            if not (math.isinf(self.low) and math.isinf(self.high)):
                base += f" clipped to [{_num(self.low)}, {_num(self.high)}]"
        if not self.quantize:
            return base
        if self._count <= 8:
            return f"one of {_short(list(self._iter_values()))} ({base}, quantized to {self.quantize})"
        return f"{base}, quantized to multiples of {self.quantize}"

    @property
    def size(self) -> float:
        """The number of values: finite only for a quantized decision with finitely many."""
        return self._count if self.quantize else math.inf

    def __repr__(self) -> str:
        parts = [repr(_num(self.low)), repr(_num(self.high))]
        if self.distribution.name == "scipy":
            parts.append(f"distribution={self.distribution.describe()}")
        if self.mu is not None and self.sigma is not None:
            parts.append(f"mu={self.mu}, sigma={self.sigma}")
        if self.quantize is not None:
            parts.append(f"q={self.quantize}")
        if self.log_distributed:
            parts.append("log_distributed=True")
        parts.append(f"label={self.label!r}")
        return f"Numerical({', '.join(parts)})"


def choice(label: str, values: Iterable[Any]) -> Categorical:
    """A categorical decision named ``label`` over ``values``: ``nascore.choice("width", [16, 32])``."""
    return Categorical(values, label=label)


# --- NNI's shortcuts (``nni.uniform``, ...): same arguments, same meaning ----------------------------


def _check_range(label: str, low: float, high: float) -> None:
    if not (_is_real(low) and _is_real(high)) or not low < high:
        raise SearchSpaceError(f"numerical {label!r}: low={low!r} must be a number smaller than high={high!r}")


def uniform(label: str, low: float, high: float) -> Numerical:
    """A number drawn uniformly from ``[low, high]``: ``nascore.uniform("dropout", 0, 0.5)``."""
    _check_range(label, low, high)
    return Numerical(low, high, label=label)


def quniform(label: str, low: float, high: float, quantize: float) -> Numerical:
    """``clip(round(uniform(low, high) / quantize) * quantize, low, high)``.

    ``quniform("x", 0, 10, 2.5)`` has the values 0, 2.5, 5, 7.5, 10 and ``quniform("x", 2, 10, 5)``
    has 2, 5, 10. Values are floats unless ``low``, ``high`` and ``quantize`` are all ints (NNI:
    always floats).
    """
    _check_range(label, low, high)
    return Numerical(low, high, quantize=quantize, label=label)


def loguniform(label: str, low: float, high: float) -> Numerical:
    """``exp(uniform(log(low), log(high)))``, for ``0 < low < high``: ``nascore.loguniform("lr", 1e-4, 1e-1)``."""
    _check_range(label, low, high)
    if low <= 0:
        raise SearchSpaceError(f"numerical {label!r}: loguniform needs low > 0, got low={low!r}")
    return Numerical(low, high, log_distributed=True, label=label)


def qloguniform(label: str, low: float, high: float, quantize: float) -> Numerical:
    """:func:`loguniform`, then quantized (after the draw) and clipped like :func:`quniform`."""
    _check_range(label, low, high)
    if low <= 0:
        raise SearchSpaceError(f"numerical {label!r}: qloguniform needs low > 0, got low={low!r}")
    return Numerical(low, high, log_distributed=True, quantize=quantize, label=label)


def normal(label: str, mu: float, sigma: float) -> Numerical:
    """A number from the normal distribution of mean ``mu`` and standard deviation ``sigma > 0`` (unbounded)."""
    return Numerical(mu=mu, sigma=sigma, label=label)


def qnormal(label: str, mu: float, sigma: float, quantize: float) -> Numerical:
    """:func:`normal`, rounded to a multiple of ``quantize``."""
    return Numerical(mu=mu, sigma=sigma, quantize=quantize, label=label)


def lognormal(label: str, mu: float, sigma: float) -> Numerical:
    """``exp(normal(mu, sigma))``: the logarithm of the value is normal (NNI's meaning)."""
    return Numerical(mu=mu, sigma=sigma, log_distributed=True, label=label)


def qlognormal(label: str, mu: float, sigma: float, quantize: float) -> Numerical:
    """:func:`lognormal`, rounded to a multiple of ``quantize`` (after the draw)."""
    return Numerical(mu=mu, sigma=sigma, log_distributed=True, quantize=quantize, label=label)


def randint(label: str, lower: int, upper: int) -> Categorical:
    """An integer from ``lower`` (inclusive) to ``upper`` (exclusive), as NNI's ``randint``.

    Like NNI, a categorical decision over ``range(lower, upper)``: ``randint("k", 1, 5)`` is
    ``Categorical([1, 2, 3, 4], label="k")``.
    """
    if not (_is_integral(lower) and _is_integral(upper)):
        raise SearchSpaceError(f"randint {label!r}: lower and upper must be ints, got {lower!r} and {upper!r}")
    if not lower < upper:
        raise SearchSpaceError(
            f"randint {label!r}: lower={lower} must be smaller than upper={upper} (upper is exclusive)"
        )
    return Categorical(range(int(lower), int(upper)), label=label)
