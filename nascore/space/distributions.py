"""The univariate distributions a :class:`~nascore.space.Numerical` decision draws from.

A :class:`Distribution` samples from a :class:`random.Random` (so a seed reproduces it), and knows
its quantiles (``ppf``), its median and its support. Uniform, log-uniform, normal and log-normal
need nothing but the standard library; :class:`ScipyDistribution` wraps any frozen continuous
``scipy.stats`` distribution (``scipy.stats.beta(2, 5)``) and needs scipy only when used.

The meanings are NNI's (``nni.mutable.Numerical``): *log-normal* is ``exp(normal(mu, sigma))``,
*log-uniform* is ``exp(uniform(log(low), log(high)))``.
"""

from __future__ import annotations

import math
import random as _random
from statistics import NormalDist
from typing import Any

from nascore.errors import SearchSpaceError

__all__ = [
    "Distribution",
    "LogNormal",
    "LogUniform",
    "Normal",
    "ScipyDistribution",
    "Uniform",
    "is_scipy_distribution",
]


def _g(value: float) -> str:
    return f"{value:g}"


class Distribution:
    """A univariate continuous distribution."""

    #: ``uniform``, ``loguniform``, ``normal``, ``lognormal`` or ``scipy``.
    name: str = ""

    @property
    def support(self) -> tuple[float, float]:
        """The closure of the set of values it draws, as ``(low, high)`` (ends may be infinite)."""
        raise NotImplementedError

    def sample(self, rng: _random.Random) -> float:
        raise NotImplementedError

    def ppf(self, p: float) -> float:
        """The ``p`` quantile (inverse of the CDF)."""
        raise NotImplementedError

    def cdf(self, x: float) -> float:
        raise NotImplementedError

    def median(self) -> float:
        return self.ppf(0.5)

    def key(self) -> tuple[Any, ...]:
        """What makes two distributions the same (for label reuse checks)."""
        raise NotImplementedError

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Distribution) and other.key() == self.key()

    def __hash__(self) -> int:
        return hash(self.key())

    def __repr__(self) -> str:
        return self.describe()

    def describe(self) -> str:
        raise NotImplementedError


class Uniform(Distribution):
    name = "uniform"

    def __init__(self, low: float, high: float) -> None:
        self.low, self.high = float(low), float(high)

    @property
    def support(self) -> tuple[float, float]:
        return self.low, self.high

    def sample(self, rng: _random.Random) -> float:
        return rng.uniform(self.low, self.high)

    def ppf(self, p: float) -> float:
        return self.low + (self.high - self.low) * p

    def cdf(self, x: float) -> float:
        return min(max((x - self.low) / (self.high - self.low), 0.0), 1.0)

    def median(self) -> float:
        return (self.low + self.high) / 2

    def key(self) -> tuple[Any, ...]:
        return (self.name, self.low, self.high)

    def describe(self) -> str:
        return f"uniform({_g(self.low)}, {_g(self.high)})"


class LogUniform(Distribution):
    """``exp(uniform(log(low), log(high)))``."""

    name = "loguniform"

    def __init__(self, low: float, high: float) -> None:
        self.low, self.high = float(low), float(high)
        self._log_low, self._log_high = math.log(self.low), math.log(self.high)

    @property
    def support(self) -> tuple[float, float]:
        return self.low, self.high

    def sample(self, rng: _random.Random) -> float:
        return math.exp(rng.uniform(self._log_low, self._log_high))

    def ppf(self, p: float) -> float:
        return math.exp(self._log_low + (self._log_high - self._log_low) * p)

    def cdf(self, x: float) -> float:
        if x <= self.low:
            return 0.0
        return min((math.log(x) - self._log_low) / (self._log_high - self._log_low), 1.0)

    def median(self) -> float:
        return math.sqrt(self.low * self.high)

    def key(self) -> tuple[Any, ...]:
        return (self.name, self.low, self.high)

    def describe(self) -> str:
        return f"log-uniform({_g(self.low)}, {_g(self.high)})"


class Normal(Distribution):
    name = "normal"

    def __init__(self, mu: float, sigma: float) -> None:
        self.mu, self.sigma = float(mu), float(sigma)
        self._normal = NormalDist(self.mu, self.sigma)

    @property
    def support(self) -> tuple[float, float]:
        return -math.inf, math.inf

    def sample(self, rng: _random.Random) -> float:
        return rng.gauss(self.mu, self.sigma)

    def ppf(self, p: float) -> float:
        return self._normal.inv_cdf(p)

    def cdf(self, x: float) -> float:
        return self._normal.cdf(x)

    def median(self) -> float:
        return self.mu

    def key(self) -> tuple[Any, ...]:
        return (self.name, self.mu, self.sigma)

    def describe(self) -> str:
        return f"normal(mu={_g(self.mu)}, sigma={_g(self.sigma)})"


class LogNormal(Distribution):
    """``exp(normal(mu, sigma))``: the logarithm of the value is normal (NNI's ``lognormal``)."""

    name = "lognormal"

    def __init__(self, mu: float, sigma: float) -> None:
        self.mu, self.sigma = float(mu), float(sigma)
        self._normal = NormalDist(self.mu, self.sigma)

    @property
    def support(self) -> tuple[float, float]:
        return 0.0, math.inf

    def sample(self, rng: _random.Random) -> float:
        return math.exp(rng.gauss(self.mu, self.sigma))

    def ppf(self, p: float) -> float:
        return math.exp(self._normal.inv_cdf(p))

    def cdf(self, x: float) -> float:
        return 0.0 if x <= 0 else self._normal.cdf(math.log(x))

    def median(self) -> float:
        return math.exp(self.mu)

    def key(self) -> tuple[Any, ...]:
        return (self.name, self.mu, self.sigma)

    def describe(self) -> str:
        return f"log-normal(mu={_g(self.mu)}, sigma={_g(self.sigma)})"


def is_scipy_distribution(obj: Any) -> bool:
    """Whether ``obj`` looks like a frozen ``scipy.stats`` distribution (without importing scipy)."""
    return hasattr(obj, "dist") and hasattr(obj, "ppf") and hasattr(obj, "args") and hasattr(obj, "kwds")


class ScipyDistribution(Distribution):
    """A frozen continuous ``scipy.stats`` distribution, e.g. ``scipy.stats.beta(2, 5)``.

    Sampling is by inverse transform (``ppf`` of a uniform draw of the seeded generator), so it is
    reproducible from a seed like the other distributions.
    """

    name = "scipy"

    def __init__(self, frozen: Any, *, label: str = "?") -> None:
        try:
            import scipy.stats
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise SearchSpaceError(
                f"numerical {label!r}: distribution={frozen!r} needs scipy (pip install scipy); "
                "without it, use low/high, mu/sigma and log_distributed"
            ) from exc
        dist = getattr(frozen, "dist", None)
        if isinstance(dist, scipy.stats.rv_discrete):
            raise SearchSpaceError(
                f"numerical {label!r}: {dist.name} is a discrete distribution; Numerical takes a continuous "
                "one (for integers use nascore.randint or a Categorical, or quantize=1)"
            )
        if not isinstance(dist, scipy.stats.rv_continuous) or not is_scipy_distribution(frozen):
            raise SearchSpaceError(
                f"numerical {label!r}: distribution must be a frozen continuous scipy.stats distribution "
                f"such as scipy.stats.beta(2, 5), or 'normal' / 'lognormal' / 'uniform' / 'loguniform'; "
                f"got {frozen!r}"
            )
        self.frozen = frozen
        low, high = frozen.support()
        self._support = (float(low), float(high))
        if math.isnan(self._support[0]) or math.isnan(self._support[1]):
            raise SearchSpaceError(f"numerical {label!r}: {self.describe()} has invalid parameters")

    @property
    def support(self) -> tuple[float, float]:
        return self._support

    def sample(self, rng: _random.Random) -> float:
        u = rng.random()
        while u == 0.0:  # ppf(0) is the lower end of the support, which may be -inf
            u = rng.random()
        return float(self.frozen.ppf(u))

    def ppf(self, p: float) -> float:
        return float(self.frozen.ppf(p))

    def cdf(self, x: float) -> float:
        return float(self.frozen.cdf(x))

    def median(self) -> float:
        return float(self.frozen.median())

    def key(self) -> tuple[Any, ...]:
        kwds = tuple(sorted((k, repr(v)) for k, v in self.frozen.kwds.items()))
        return (self.name, type(self.frozen.dist).__name__, repr(tuple(self.frozen.args)), kwds)

    def describe(self) -> str:
        args = [repr(a) for a in self.frozen.args] + [f"{k}={v!r}" for k, v in sorted(self.frozen.kwds.items())]
        return f"scipy.stats.{self.frozen.dist.name}({', '.join(args)})"
