"""Expressions over decisions: ``choice * 2``, ``max(a, b)``, ``a > 3``.

Arithmetic and comparison on a decision give a :class:`MutableExpression`, itself a mutable whose
leaves are the decisions it reads and which freezes to a plain value. Equality (``==`` and ``!=``)
keeps its Python meaning so that mutables stay usable as dict keys; use :func:`MutableExpression.eq`
and :func:`MutableExpression.ne` instead.

The operators are NNI's (``nni.mutable.symbol``), with the same meaning: ``+ - * / // % ** @``,
``<< >> & | ^``, the comparisons ``< <= > >=``, the unary ``- + ~`` (``~`` is Python's bitwise
invert, as in NNI: ``~True == -2``), ``abs``, ``round``, ``divmod``, ``pow(x, y, mod)``,
``math.floor`` / ``math.ceil`` and indexing (``choice[0]``, ``choice["key"]`` on a choice of tuples
or dicts). ``int()``, ``float()``, ``math.trunc``, ``bool()`` and iteration raise: use
:meth:`MutableExpression.to_int`, :meth:`~MutableExpression.to_float`,
:meth:`~MutableExpression.condition` and the other static helpers instead.
"""

from __future__ import annotations

import builtins
import itertools
import math
import operator
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from nascore.errors import SampleMissingError, SearchSpaceError
from nascore.space.mutable import (
    LabelledMutable,
    Mutable,
    MutableDict,
    MutableList,
    Sample,
    collect_mutables,
    contains_mutable,
    freeze_structure,
)

__all__ = ["MutableExpression", "ExpressionMixin"]

_SYMBOLS = {
    operator.add: "+", operator.sub: "-", operator.mul: "*", operator.truediv: "/",
    operator.floordiv: "//", operator.mod: "%", operator.pow: "**",
    operator.lt: "<", operator.le: "<=", operator.gt: ">", operator.ge: ">=",
    operator.eq: "==", operator.ne: "!=", operator.and_: "&", operator.or_: "|",
    operator.xor: "^", operator.matmul: "@", operator.lshift: "<<", operator.rshift: ">>",
}
_UNARY = {operator.neg: "-{0}", operator.pos: "+{0}", operator.invert: "~{0}", operator.getitem: "{0}[{1}]"}
_NAMES = {math.floor: "math.floor", math.ceil: "math.ceil"}


def _lookup(table: dict[Any, str], function: Any) -> str | None:
    try:
        return table.get(function)
    except TypeError:  # an unhashable callable
        return None


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
    __lt__ = _binary(operator.lt)
    __le__ = _binary(operator.le)
    __gt__ = _binary(operator.gt)
    __ge__ = _binary(operator.ge)
    __and__ = _binary(operator.and_)
    __rand__ = _binary(operator.and_, reverse=True)
    __or__ = _binary(operator.or_)
    __ror__ = _binary(operator.or_, reverse=True)
    __xor__ = _binary(operator.xor)
    __rxor__ = _binary(operator.xor, reverse=True)
    __matmul__ = _binary(operator.matmul)
    __rmatmul__ = _binary(operator.matmul, reverse=True)
    __lshift__ = _binary(operator.lshift)
    __rlshift__ = _binary(operator.lshift, reverse=True)
    __rshift__ = _binary(operator.rshift)
    __rrshift__ = _binary(operator.rshift, reverse=True)
    __divmod__ = _binary(builtins.divmod)
    __rdivmod__ = _binary(builtins.divmod, reverse=True)

    def __pow__(self, other: Any, modulo: Any = None) -> MutableExpression:
        if modulo is not None:
            return MutableExpression(builtins.pow, [self, other, modulo])
        return MutableExpression(operator.pow, [self, other])

    def __rpow__(self, other: Any, modulo: Any = None) -> MutableExpression:
        if modulo is not None:
            return MutableExpression(builtins.pow, [other, self, modulo])
        return MutableExpression(operator.pow, [other, self])

    def __neg__(self) -> MutableExpression:
        return MutableExpression(operator.neg, [self])

    def __pos__(self) -> MutableExpression:
        return MutableExpression(operator.pos, [self])

    def __invert__(self) -> MutableExpression:
        return MutableExpression(operator.invert, [self])

    def __abs__(self) -> MutableExpression:
        return MutableExpression(builtins.abs, [self])

    def __round__(self, ndigits: int | None = None) -> MutableExpression:
        return MutableExpression(builtins.round, [self] if ndigits is None else [self, ndigits])

    def __floor__(self) -> MutableExpression:
        return MutableExpression(math.floor, [self])

    def __ceil__(self) -> MutableExpression:
        return MutableExpression(math.ceil, [self])

    def __trunc__(self) -> Any:
        raise SearchSpaceError(
            f"{self!r} is a search-space decision: use MutableExpression.to_int(...) instead of math.trunc()"
        )

    def __getitem__(self, key: Any) -> MutableExpression:
        """``choice[0]``, ``choice["key"]``: the item of the chosen value (a tuple, a list, a dict)."""
        return MutableExpression(operator.getitem, [self, key])

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

    def evaluate(self, values: Sample | Iterable[Any]) -> Any:
        """The value under ``values``, without validating them (:meth:`freeze` validates).

        ``values`` is a sample (``{label: value}``), or the values of :meth:`leaf_symbols` in their
        order (one per occurrence: a decision read twice takes two values), as in NNI.
        """
        return _evaluate(self, values if isinstance(values, dict) else iter(values))

    def leaf_symbols(self) -> Iterator[LabelledMutable]:
        """The decisions read, in order and with repeats (what :meth:`evaluate` takes a list of)."""
        return self.leaf_mutables()  # type: ignore[attr-defined,no-any-return]

    # Defined last: inside the class body these names shadow the builtins.
    def int(self) -> Any:
        """``MutableExpression.to_int(self)``."""
        return MutableExpression.to_int(self)

    def float(self) -> Any:
        """``MutableExpression.to_float(self)``."""
        return MutableExpression.to_float(self)


def _evaluate(obj: Any, values: Sample | Iterator[Any]) -> Any:
    if isinstance(obj, MutableExpression):
        if isinstance(values, dict):
            return obj.call(lambda arg: _evaluate(arg, values))
        return obj.function(*[_evaluate(arg, values) for arg in obj.arguments])
    if isinstance(obj, LabelledMutable):
        if isinstance(values, dict):
            if obj.label not in values:
                message = f"no value for label {obj.label!r} (expected one of {obj.describe()})"
                raise SampleMissingError(message, label=obj.label)
            return obj.canonical_value(values[obj.label])
        try:
            return next(values)
        except StopIteration:
            raise SearchSpaceError(f"ran out of values when evaluating {obj!r}") from None
    if isinstance(obj, MutableList):
        return [_evaluate(item, values) for item in obj.mutables]
    if isinstance(obj, MutableDict):
        return {key: _evaluate(item, values) for key, item in obj.mutables.items()}
    if isinstance(obj, Mutable):
        if not isinstance(values, dict):
            raise SearchSpaceError(f"{obj!r} can only be evaluated with a sample dict")
        return obj.freeze(values)
    if isinstance(obj, list):
        return [_evaluate(item, values) for item in obj]
    if isinstance(obj, tuple):
        return tuple(_evaluate(item, values) for item in obj)
    if isinstance(obj, dict):
        return {key: _evaluate(item, values) for key, item in obj.items()}
    return obj


def _condition(pred: Any, true: Any, false: Any) -> Any:
    return true if pred else false


def _case(*flat: Any) -> Any:
    for pred, value in zip(flat[::2], flat[1::2]):
        if pred:
            return value
    raise SearchSpaceError(
        f"MutableExpression.case: no matching case, every predicate is false ({list(flat[::2])!r})"
    )


def _switch_case(branch: Any, *flat: Any) -> Any:
    for key, value in zip(flat[::2], flat[1::2]):
        if key == branch:
            return value
    raise SearchSpaceError(
        f"MutableExpression.switch_case: no matching case for {branch!r} (cases: {list(flat[::2])!r})"
    )


def _first_true(*preds: Any) -> int:
    return next((index for index, pred in enumerate(preds) if pred), -1)


def _extremum(function: Callable[..., Any], arg0: Any, args: tuple[Any, ...]) -> Any:
    name = function.__name__
    if args:
        items = [arg0, *args]
    elif isinstance(arg0, Mutable):
        # One decision whose value is a collection (a multiple choice, a choice of tuples).
        return MutableExpression(function, [arg0])
    else:
        try:
            items = list(arg0)
        except TypeError:
            raise TypeError(
                f"MutableExpression.{name} takes one iterable or at least two values, got {arg0!r}"
            ) from None
    if not contains_mutable(items):
        return function(items)
    if len(items) == 1:
        return items[0]
    return MutableExpression(function, items)


class MutableExpression(ExpressionMixin, Mutable):
    """A function applied to decisions (and plain values); freezes to the function's result."""

    def __init__(self, function: Callable[..., Any], arguments: list[Any], repr_fmt: str | None = None) -> None:
        self.function = function
        self.arguments = list(arguments)
        self.repr_fmt = repr_fmt

    def leaf_mutables(self) -> Iterator[LabelledMutable]:
        yield from collect_mutables(self.arguments)

    def conditional_leaves(self) -> Iterator[tuple[Any, tuple[Any, ...]]]:
        """The decisions read, each with when it matters: a branch of ``condition``, ``case`` or
        ``switch_case`` only when it is the one selected."""
        from nascore.space.conditions import Condition, conditional_leaves, under

        args = self.arguments
        if self.function is _condition:
            pred, true, false = args
            yield from conditional_leaves(pred)
            if isinstance(pred, Mutable):
                yield from under(Condition(pred, bool, str(pred)), conditional_leaves(true))
                yield from under(Condition(pred, lambda v: not v, f"not {pred}"), conditional_leaves(false))
                return
            yield from conditional_leaves(true if pred else false)
        elif self.function is _switch_case and isinstance(args[0], Mutable):
            branch = args[0]
            yield from conditional_leaves(branch)
            for key, value in zip(args[1::2], args[2::2]):
                yield from conditional_leaves(key)
                yield from under(Condition.equals(branch, key), conditional_leaves(value))
        elif self.function is _case:
            preds = args[::2]
            yield from conditional_leaves(preds)
            selected = MutableExpression(_first_true, list(preds), "first_true({})")
            for index, value in enumerate(args[1::2]):
                yield from under(Condition(selected, lambda v, i=index: v == i, f"case {index} is the first true"), conditional_leaves(value))
        else:
            yield from conditional_leaves(args)

    def call(self, evaluate: Callable[[Any], Any]) -> Any:
        """The expression's value, its arguments evaluated by ``evaluate``; the branches of ``condition``,
        ``case`` and ``switch_case`` that are not selected are not evaluated (their decisions may be absent)."""
        args = self.arguments
        if self.function is _condition:
            return evaluate(args[1] if evaluate(args[0]) else args[2])
        if self.function is _switch_case:
            branch = evaluate(args[0])
            keys = [evaluate(key) for key in args[1::2]]
            for key, value in zip(keys, args[2::2]):
                if key == branch:
                    return evaluate(value)
            return _switch_case(branch, *[item for key in keys for item in (key, None)])
        if self.function is _case:
            for pred, value in zip(args[::2], args[1::2]):
                if evaluate(pred):
                    return evaluate(value)
            return _case(*[item for pred in args[::2] for item in (False, None)])
        return self.function(*[evaluate(arg) for arg in args])

    def freeze(self, sample: Sample) -> Any:
        return self.call(lambda arg: freeze_structure(arg, sample))

    def describe(self) -> str:
        """What the expression computes and the decisions it reads, for messages."""
        decisions = "; ".join(f"{label}: {m.describe()}" for label, m in self.simplify().items())
        return f"{self} ({decisions})"

    def symbolic_repr(self, neat: bool = False) -> str:
        """The expression as text; ``neat`` writes decisions by their label (``str()``), else by ``repr``."""

        def show(arg: Any) -> str:
            if isinstance(arg, MutableExpression):
                return arg.symbolic_repr(neat)
            if neat and isinstance(arg, LabelledMutable):
                return arg.label
            if isinstance(arg, (list, tuple)) and contains_mutable(arg):
                inner = ", ".join(show(item) for item in arg)
                return f"[{inner}]" if isinstance(arg, list) else f"({inner}{',' if len(arg) == 1 else ''})"
            return repr(arg)

        shown = [show(arg) for arg in self.arguments]
        fmt = self.repr_fmt or _lookup(_UNARY, self.function)
        if fmt is not None:
            return fmt.format(*shown)
        symbol = _lookup(_SYMBOLS, self.function)
        if symbol is not None and len(shown) == 2:
            return f"({shown[0]} {symbol} {shown[1]})"
        name = _lookup(_NAMES, self.function) or getattr(self.function, "__name__", repr(self.function))
        return f"{name}({', '.join(shown)})"

    def __repr__(self) -> str:
        return self.symbolic_repr()

    def __str__(self) -> str:
        return self.symbolic_repr(neat=True)

    # --- helpers that Python syntax cannot express -----------------------------------------------

    # Each helper also takes plain values, and then gives the plain result (as NNI's do).

    @staticmethod
    def condition(pred: Any, true: Any, false: Any) -> Any:
        """``true if pred else false``, where ``pred`` may be an expression."""
        if not isinstance(pred, Mutable):
            return true if pred else false
        return MutableExpression(_condition, [pred, true, false], "condition({0}, {1}, {2})")

    @staticmethod
    def case(pred_expr_pairs: Iterable[tuple[Any, Any]]) -> Any:
        """The value of the first pair whose predicate is true: ``case([(x < y, 17), (x > z, 23)])``.

        Freezing raises :class:`~nascore.errors.SearchSpaceError` when no predicate is true.
        """
        pairs = [tuple(pair) for pair in pred_expr_pairs]
        if not pairs or any(len(pair) != 2 for pair in pairs):
            raise SearchSpaceError(f"MutableExpression.case takes a non-empty list of (predicate, value) pairs, got {pairs!r}")
        flat = list(itertools.chain.from_iterable(pairs))
        if not contains_mutable(flat):
            return _case(*flat)
        return MutableExpression(_case, flat, "case([" + ", ".join(["({}, {})"] * len(pairs)) + "])")

    @staticmethod
    def switch_case(branch: Any, expressions: dict[Any, Any]) -> Any:
        """The value of ``expressions`` under the key equal to ``branch``: ``switch_case(x, {0: y, 1: x * 2})``.

        Freezing raises :class:`~nascore.errors.SearchSpaceError` when no key matches.
        """
        flat = list(itertools.chain.from_iterable(expressions.items()))
        if not contains_mutable([branch, *flat]):
            return expressions[branch]
        fmt = "switch_case({}, {{" + ", ".join(["{}: {}"] * len(expressions)) + "}})"
        return MutableExpression(_switch_case, [branch, *flat], fmt)

    @staticmethod
    def max(arg0: Any, *args: Any) -> Any:
        """``max(a, b, ...)`` or ``max(iterable)``, as Python's; plain values give the plain maximum."""
        return _extremum(builtins.max, arg0, args)

    @staticmethod
    def min(arg0: Any, *args: Any) -> Any:
        """``min(a, b, ...)`` or ``min(iterable)``, as Python's; plain values give the plain minimum."""
        return _extremum(builtins.min, arg0, args)

    @staticmethod
    def to_int(obj: Any) -> Any:
        return MutableExpression(int, [obj]) if isinstance(obj, Mutable) else int(obj)

    @staticmethod
    def to_float(obj: Any) -> Any:
        return MutableExpression(float, [obj]) if isinstance(obj, Mutable) else float(obj)

    @staticmethod
    def eq(a: Any, b: Any) -> Any:
        """``a == b`` as an expression (``==`` itself keeps identity semantics on mutables)."""
        if not contains_mutable([a, b]):
            return a == b
        return MutableExpression(operator.eq, [a, b])

    @staticmethod
    def ne(a: Any, b: Any) -> Any:
        """``a != b`` as an expression (``!=`` itself keeps identity semantics on mutables)."""
        if not contains_mutable([a, b]):
            return a != b
        return MutableExpression(operator.ne, [a, b])
