"""The kinds of decision: :class:`Categorical`, :class:`CategoricalMultiple` and :class:`Numerical`."""

from __future__ import annotations

import itertools
import json
import math
import random as _random
from collections.abc import Iterable, Sequence
from typing import Any

from nascore.errors import SampleValidationError, SampleValueError, SearchSpaceError
from nascore.space.expression import ExpressionMixin
from nascore.space.label import auto_label, check_label
from nascore.space.mutable import LabelledMutable

__all__ = ["Categorical", "CategoricalMultiple", "Numerical", "choice"]

_MISSING = object()


def _json_key(value: Any) -> str:
    try:
        return json.dumps(value, sort_keys=True)
    except (TypeError, ValueError):
        return "repr:" + repr(value)


def _short(values: Sequence[Any], limit: int = 8) -> str:
    shown = ", ".join(repr(v) for v in values[:limit])
    return f"[{shown}{', ...' if len(values) > limit else ''}]"


class Categorical(ExpressionMixin, LabelledMutable):
    """Choose one value from a list of candidates.

    >>> width = Categorical([16, 32, 64], label="width")
    >>> (width * 2).freeze({"width": 32})
    64
    """

    def __init__(self, values: Iterable[Any], *, default: Any = _MISSING, label: str | None = None) -> None:
        self.label = check_label(label) if label is not None else auto_label("choice")
        values = list(values)
        if not values:
            raise SearchSpaceError(f"choice {self.label!r} has no candidates: give at least one value")
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
        return self.values[rng.randrange(len(self.values))]

    def grid_values(self, granularity: int | None = None) -> Iterable[Any]:
        return iter(self.values)

    def equals(self, other: LabelledMutable) -> bool:
        return (
            type(other) is type(self)
            and other.label == self.label
            and other._keys == self._keys  # type: ignore[attr-defined]
        )

    def describe(self) -> str:
        return _short(self.values)

    @property
    def size(self) -> float:
        return len(self.values)

    def __repr__(self) -> str:
        return f"Categorical({_short(self.values)}, label={self.label!r})"


class CategoricalMultiple(ExpressionMixin, LabelledMutable):
    """Choose several distinct values from a list; the value is a list in candidate order.

    ``n_chosen=None`` allows any number (including none).
    """

    def __init__(
        self,
        values: Iterable[Any],
        *,
        n_chosen: int | None = None,
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
            return [v for v in self.values if rng.random() < 0.5]
        chosen = sorted(rng.sample(range(len(self.values)), self.n_chosen))
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
        )

    def describe(self) -> str:
        count = "any number" if self.n_chosen is None else str(self.n_chosen)
        return f"{count} of {_short(self.values)}"

    @property
    def size(self) -> float:
        n = len(self.values)
        if self.n_chosen is None:
            return 2**n
        return math.comb(n, self.n_chosen)

    def __repr__(self) -> str:
        return f"CategoricalMultiple({_short(self.values)}, n_chosen={self.n_chosen}, label={self.label!r})"


class Numerical(ExpressionMixin, LabelledMutable):
    """A number in ``[low, high]`` (uniform, or log-uniform), or unbounded around ``mu`` with ``sigma``.

    ``quantize`` rounds values to multiples of it. A bounded numerical decision has a grid of
    ``granularity`` evenly spaced points (default 5).
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
        default: Any = _MISSING,
        label: str | None = None,
    ) -> None:
        self.label = check_label(label) if label is not None else auto_label("numerical")
        if not low < high:
            raise SearchSpaceError(f"numerical {self.label!r}: low={low} must be smaller than high={high}")
        if log_distributed and low <= 0:
            raise SearchSpaceError(f"numerical {self.label!r}: a log-distributed range needs low > 0")
        if (math.isinf(low) or math.isinf(high)) and (mu is None or sigma is None):
            raise SearchSpaceError(f"numerical {self.label!r}: an unbounded range needs mu and sigma")
        self.low, self.high = float(low), float(high)
        self.mu, self.sigma = mu, sigma
        self.log_distributed = log_distributed
        self.quantize = quantize
        if default is _MISSING:
            if self.bounded:
                default = math.sqrt(low * high) if log_distributed else (low + high) / 2
            else:
                default = mu
            default = self._quantized(default)
        self._default = default

    @property
    def bounded(self) -> bool:
        return not (math.isinf(self.low) or math.isinf(self.high))

    def _quantized(self, value: float) -> float:
        if self.quantize:
            value = round(value / self.quantize) * self.quantize
        # Clamp also without quantize: exp(log(high)) can land a rounding error above ``high``.
        return min(max(value, self.low), self.high)

    def check_value(self, value: Any) -> SampleValidationError | None:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
            return SampleValueError(f"value {value!r} for label {self.label!r} must be a number", label=self.label)
        if not self.low <= value <= self.high:
            return SampleValueError(
                f"value {value!r} for label {self.label!r} is outside [{self.low}, {self.high}]", label=self.label
            )
        return None

    def default_value(self) -> Any:
        return self._default

    def random_value(self, rng: _random.Random) -> Any:
        if not self.bounded:
            value = rng.gauss(self.mu, self.sigma)  # type: ignore[arg-type]
            value = min(max(value, self.low), self.high)
        elif self.log_distributed:
            value = math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        else:
            value = rng.uniform(self.low, self.high)
        return self._quantized(value)

    def grid_values(self, granularity: int | None = None) -> Iterable[Any]:
        if not self.bounded:
            raise SearchSpaceError(f"numerical {self.label!r} is unbounded and has no grid")
        points = granularity or 5
        if points == 1:
            return [self._default]
        lo, hi = (math.log(self.low), math.log(self.high)) if self.log_distributed else (self.low, self.high)
        values = [lo + (hi - lo) * i / (points - 1) for i in range(points)]
        if self.log_distributed:
            values = [math.exp(v) for v in values]
        result: list[float] = []
        for v in values:
            q = self._quantized(v)
            if q not in result:
                result.append(q)
        return result

    def equals(self, other: LabelledMutable) -> bool:
        return type(other) is type(self) and vars(other) == vars(self)

    def describe(self) -> str:
        if self.bounded:
            return f"a number in [{self.low}, {self.high}]"
        return f"a number around {self.mu} (sigma {self.sigma})"

    @property
    def size(self) -> float:
        if self.quantize and self.bounded:
            return math.floor((self.high - self.low) / self.quantize) + 1
        return math.inf

    def __repr__(self) -> str:
        return f"Numerical({self.low}, {self.high}, label={self.label!r})"


def choice(label: str, values: Iterable[Any]) -> Categorical:
    """A categorical decision named ``label`` over ``values``: ``nascore.choice("width", [16, 32])``."""
    return Categorical(values, label=label)
