"""Expressions over decisions: ``choice * 2``, ``max(a, b)``, ``a > 3``.

Arithmetic and comparison on a decision give a :class:`MutableExpression`, itself a mutable whose
leaves are the decisions it reads and which freezes to a plain value. Equality (``==``) keeps its
Python meaning so that mutables stay usable as dict keys; use :func:`MutableExpression.eq` instead.
"""

from __future__ import annotations

import builtins
import operator
from collections.abc import Callable, Iterator
from typing import Any

from nascore.errors import SearchSpaceError
from nascore.space.mutable import LabelledMutable, Mutable, Sample, collect_mutables, freeze_structure

__all__ = ["MutableExpression", "ExpressionMixin"]

_SYMBOLS = {
    operator.add: "+", operator.sub: "-", operator.mul: "*", operator.truediv: "/",
    operator.floordiv: "//", operator.mod: "%", operator.pow: "**",
    operator.lt: "<", operator.le: "<=", operator.gt: ">", operator.ge: ">=",
    operator.eq: "==", operator.ne: "!=", operator.and_: "&", operator.or_: "|",
}


def _binary(fn: Callable[[Any, Any], Any], reverse: bool = False) -> Callable[[Any, Any], MutableExpression]:
    def method(self: Any, other: Any) -> MutableExpression:
        return MutableExpression(fn, [other, self] if reverse else [self, other])

    return method


class ExpressionMixin:
    """Operators that turn a mutable into a :class:`MutableExpression`."""

    __add__ = _binary(operator.add)
    __radd__ = _binary(operator.add, reverse=True)
    __sub__ = _binary(operator.sub)
    __rsub__ = _binary(operator.sub, reverse=True)
    __mul__ = _binary(operator.mul)
    __rmul__ = _binary(operator.mul, reverse=True)
    __truediv__ = _binary(operator.truediv)
    __rtruediv__ = _binary(operator.truediv, reverse=True)
    __floordiv__ = _binary(operator.floordiv)
    __rfloordiv__ = _binary(operator.floordiv, reverse=True)
    __mod__ = _binary(operator.mod)
    __rmod__ = _binary(operator.mod, reverse=True)
    __pow__ = _binary(operator.pow)
    __rpow__ = _binary(operator.pow, reverse=True)
    __lt__ = _binary(operator.lt)
    __le__ = _binary(operator.le)
    __gt__ = _binary(operator.gt)
    __ge__ = _binary(operator.ge)
    __and__ = _binary(operator.and_)
    __rand__ = _binary(operator.and_, reverse=True)
    __or__ = _binary(operator.or_)
    __ror__ = _binary(operator.or_, reverse=True)

    def __neg__(self) -> MutableExpression:
        return MutableExpression(operator.neg, [self], repr_fmt="-{0}")

    def __abs__(self) -> MutableExpression:
        return MutableExpression(builtins.abs, [self])

    def __round__(self, ndigits: int | None = None) -> MutableExpression:
        return MutableExpression(builtins.round, [self] if ndigits is None else [self, ndigits])

    def __bool__(self) -> bool:
        raise SearchSpaceError(
            f"{self!r} is a search-space decision, not a value, and cannot be used as a bool. "
            "Use MutableExpression.condition(...) to choose between values, or read the value of a "
            "frozen model instead."
        )

    def __index__(self) -> int:
        raise SearchSpaceError(
            f"{self!r} is a search-space decision, not an int: pass it to a nascore primitive "
            "(e.g. MutableLinear, Repeat) that accepts choices, or use MutableExpression.to_int."
        )

    def __iter__(self) -> Iterator[Any]:
        raise SearchSpaceError(f"{self!r} is a search-space decision and cannot be iterated")

    __hash__ = object.__hash__


class MutableExpression(ExpressionMixin, Mutable):
    """A function applied to decisions (and plain values); freezes to the function's result."""

    def __init__(self, function: Callable[..., Any], arguments: list[Any], repr_fmt: str | None = None) -> None:
        self.function = function
        self.arguments = list(arguments)
        self.repr_fmt = repr_fmt

    def leaf_mutables(self) -> Iterator[LabelledMutable]:
        yield from collect_mutables(self.arguments)

    def freeze(self, sample: Sample) -> Any:
        return self.function(*freeze_structure(self.arguments, sample))

    def __repr__(self) -> str:
        if self.repr_fmt is not None:
            return self.repr_fmt.format(*map(repr, self.arguments))
        symbol = _SYMBOLS.get(self.function)  # type: ignore[call-overload]
        if symbol is not None and len(self.arguments) == 2:
            return f"({self.arguments[0]!r} {symbol} {self.arguments[1]!r})"
        name = getattr(self.function, "__name__", repr(self.function))
        return f"{name}({', '.join(map(repr, self.arguments))})"

    # --- helpers that Python syntax cannot express -----------------------------------------------

    @staticmethod
    def condition(pred: Any, true: Any, false: Any) -> Any:
        """``true if pred else false``, where ``pred`` may be an expression."""
        if not isinstance(pred, Mutable):
            return true if pred else false
        return MutableExpression(lambda p, t, f: t if p else f, [pred, true, false], "condition({0}, {1}, {2})")

    @staticmethod
    def max(*args: Any) -> Any:
        return MutableExpression(builtins.max, list(args))

    @staticmethod
    def min(*args: Any) -> Any:
        return MutableExpression(builtins.min, list(args))

    @staticmethod
    def to_int(obj: Any) -> Any:
        return MutableExpression(int, [obj]) if isinstance(obj, Mutable) else int(obj)

    @staticmethod
    def to_float(obj: Any) -> Any:
        return MutableExpression(float, [obj]) if isinstance(obj, Mutable) else float(obj)

    @staticmethod
    def eq(a: Any, b: Any) -> Any:
        """``a == b`` as an expression (``==`` itself keeps identity semantics on mutables)."""
        return MutableExpression(operator.eq, [a, b])

    @staticmethod
    def ne(a: Any, b: Any) -> Any:
        return MutableExpression(operator.ne, [a, b])
