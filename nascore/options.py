"""Plugin options: the attrs class a plugin declares, structured from plain settings with errors naming the field.

An engine, format or strategy declares what it can be configured with as an attrs class (its
``options_class``); the user gives plain data (``engine_options`` / ``strategy_options`` in
:class:`~nascore.experiment.ExperimentConfig` or a TOML table, or keyword arguments).
:func:`structure_options` turns the data into the class, checking every field, and reports every
problem at once with its path (``config.engine_options.max_concurrency_cgo: expected an int, got
'two' (str)``) and, for a misspelled name, the closest known one. Durations and sizes accept the
spellings of :mod:`nascore.units` (fields typed ``float | str`` / ``int | str`` with those parsers as
converters).

A strategy needs no options class: :func:`options_from_signature` derives one from its
constructor's keyword parameters, so ``strategy_options`` are checked against what the constructor
really takes.
"""

from __future__ import annotations

import difflib
import inspect
import os
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import attrs
import cattrs
import cattrs.errors
from cattrs.cols import list_structure_factory

from nascore.errors import ConfigError
from nascore.units import parse_duration, parse_size

__all__ = [
    "OptionError",
    "converter",
    "describe",
    "options_from_signature",
    "structure_options",
    "unstructure_options",
    "validation_problems",
    "without_none",
]

T = TypeVar("T")

_KIND_NAMES = {int: "an int", str: "a str", float: "a number", bool: "true or false"}


class OptionError(ValueError):
    """A wrong value of one option, raised by an options class's validators: reported as ``<path>.<field>: <problem>``."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field, self.problem = field, problem


def describe(value: Any) -> str:
    """``'10' (str)``: a value as given and its type, shortened when long (for messages)."""
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({type(value).__name__})"


def _path(value: Any) -> Path:
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"expected a path, got {describe(value)}")
    return Path(value)


def _make_converter() -> cattrs.Converter:
    made = cattrs.Converter(forbid_extra_keys=True)
    made.register_unstructure_hook(Path, str)
    made.register_structure_hook(Path, lambda value, _: _path(value))

    def strict(kind: type) -> Any:
        def hook(value: Any, _: Any) -> Any:
            if kind is float and isinstance(value, int) and not isinstance(value, bool):
                return float(value)
            if (isinstance(value, bool) and kind is not bool) or not isinstance(value, kind):
                raise TypeError(f"expected {_KIND_NAMES[kind]}, got {describe(value)}")
            return value

        return hook

    for kind in (int, str, float, bool):
        made.register_structure_hook(kind, strict(kind))
    made.register_structure_hook(Any, lambda value, _: value)  # type: ignore[arg-type]

    def no_text(factory: Callable[[Any, cattrs.Converter], Any]) -> Callable[[Any, cattrs.Converter], Any]:
        # A str is iterable: without this, "dedup-input" given for a list would become its letters.
        def make(kind: Any, conv: cattrs.Converter) -> Any:
            inner = factory(kind, conv)

            def hook(value: Any, target: Any) -> Any:
                if isinstance(value, (str, bytes, Mapping)):
                    raise TypeError(f"expected a list, got {describe(value)}")
                return inner(value, target)

            return hook

        return make

    made.register_structure_hook_factory(lambda t: typing.get_origin(t) is list, no_text(list_structure_factory))
    made.register_structure_hook_func(lambda t: t == (float | str | None), lambda v, _: parse_duration(v))
    made.register_structure_hook_func(lambda t: t == (float | str), lambda v, _: parse_duration(v))
    made.register_structure_hook_func(lambda t: t == (int | str | None), lambda v, _: parse_size(v))
    made.register_structure_hook_func(lambda t: t == (int | str), lambda v, _: parse_size(v))
    return made


#: The converter options are structured with: strict scalars (``"10"`` is not an int), paths,
#: durations and sizes, unknown keys refused.
converter = _make_converter()


def structure_options(options_class: type[T], data: Any, path: str) -> T:
    """``data`` (a mapping, ``None`` for no settings, or already an ``options_class``) as ``options_class``.

    :param path: where the settings come from, for messages (``"config.engine_options"``).
    :raises ConfigError: listing every problem, each as ``<path>.<field>: <what is wrong>``.
    """
    if isinstance(data, options_class):
        return data
    if data is None:
        data = {}
    if not isinstance(data, Mapping) or not all(isinstance(key, str) for key in data):
        raise ConfigError(f"{path}: expected a table of settings by name, got {describe(data)}")
    try:
        return converter.structure(dict(data), options_class)
    except cattrs.BaseValidationError as exc:
        problems = validation_problems(exc, path)
    except (ValueError, TypeError, ConfigError) as exc:  # raised by the class itself (validators, post-init)
        problems = validation_problems(exc, path)
    raise ConfigError(
        f"invalid settings in {path} ({len(problems)} problem{'s' if len(problems) > 1 else ''}):\n  "
        + "\n  ".join(problems)
    )


def unstructure_options(options: Any) -> dict[str, Any]:
    """Plain data (TOML/JSON-able) of an options object; ``None`` values left out."""
    return without_none(converter.unstructure(options))


def without_none(value: Any) -> Any:
    """``value`` with ``None`` entries of its dicts left out, recursively (what TOML cannot hold)."""
    if isinstance(value, dict):
        return {k: without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_none(v) for v in value]
    return value


def validation_problems(exc: BaseException, path: str) -> list[str]:
    """One ``path: problem`` line per problem of a failed structuring, ``path`` rooted at the source."""
    if isinstance(exc, (cattrs.ClassValidationError, cattrs.IterableValidationError)):
        with_notes, without = exc.group_exceptions()
        lines = []
        for inner, note in with_notes:
            where = f"{path}.{note.name}" if isinstance(note, cattrs.AttributeValidationNote) else f"{path}[{note.index!r}]"
            lines += validation_problems(inner, where)
        for inner in without:
            lines += validation_problems(inner, path)
        return lines
    if isinstance(exc, cattrs.ForbiddenExtraKeysError):
        known = sorted(a.name for a in attrs.fields(exc.cl)) if exc.cl is not None and attrs.has(exc.cl) else []
        return [f"{path}: {unknown_setting(key, known)}" for key in sorted(exc.extra_fields)]
    problem, field = getattr(exc, "problem", None), getattr(exc, "field", None)
    if isinstance(exc, (ConfigError, OptionError)) and problem is not None:  # a field error of the class itself
        where = path if path.endswith(f".{field}") else f"{path}.{field}"
        return [f"{where}: {problem}"]
    if isinstance(exc, (ValueError, TypeError, ConfigError)):
        return [f"{path}: {exc}"]
    return [f"{path}: {cattrs.v.format_exception(exc, None)}"]


def unknown_setting(key: str, known: list[str]) -> str:
    """``unknown setting 'x': did you mean 'y'?`` (or the list of known names)."""
    close = difflib.get_close_matches(key, known, n=1)
    if close:
        return f"unknown setting {key!r}: did you mean {close[0]!r}?"
    if not known:
        return f"unknown setting {key!r}; this takes no settings"
    return f"unknown setting {key!r}; remove it or use one of: {', '.join(known)}"


_SIGNATURE_OPTIONS: dict[Callable[..., Any], type] = {}


def _annotations(function: Callable[..., Any]) -> dict[str, Any]:
    """The parameters' annotations, each resolved on its own; one naming what only type checkers import is ``Any``."""
    try:
        return typing.get_type_hints(function)
    except Exception:  # noqa: BLE001 - resolve what can be resolved, one by one
        pass
    namespace = getattr(function, "__globals__", {})
    resolved: dict[str, Any] = {}
    for name, annotation in getattr(function, "__annotations__", {}).items():
        try:
            resolved[name] = eval(annotation, namespace) if isinstance(annotation, str) else annotation  # noqa: S307
        except Exception:  # noqa: BLE001
            resolved[name] = Any
    return resolved


def _is_data_type(kind: Any) -> bool:
    """Whether values of ``kind`` can be written in TOML: scalars, paths and containers, unions and literals of them."""
    if kind in (int, float, str, bool, Path, type(None), Any):
        return True
    origin = typing.get_origin(kind)
    if origin is typing.Literal:
        return True
    if origin in (list, tuple, dict, typing.Union, types.UnionType):
        return all(arg is Ellipsis or _is_data_type(arg) for arg in typing.get_args(kind))
    return False


def options_from_signature(cls: type) -> type:
    """An attrs class with one optional field per keyword parameter of ``cls.__init__``.

    Each field has the parameter's annotation where cattrs can structure it (else any value) and
    the parameter's default. Used for plugins that declare no ``options_class``: their settings are
    checked against what their constructor takes. Cached per class.
    """
    init = cls.__init__  # type: ignore[misc]
    cached = _SIGNATURE_OPTIONS.get(init)
    if cached is not None:
        return cached
    hints = _annotations(init)
    fields: dict[str, Any] = {}
    for name, parameter in inspect.signature(init).parameters.items():
        if name == "self" or parameter.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            continue
        if parameter.kind is inspect.Parameter.POSITIONAL_ONLY:
            continue
        kind = hints.get(name, Any)
        if not _is_data_type(kind):  # a callable, a class, an object: given in Python, checked by the plugin
            kind = Any
        default = None if parameter.default is inspect.Parameter.empty else parameter.default
        fields[name] = attrs.field(default=default, type=kind)
    made = attrs.make_class(f"{cls.__name__}Options", fields, kw_only=True)
    made.__doc__ = f"The keyword arguments of {cls.__module__}.{cls.__qualname__}."
    _SIGNATURE_OPTIONS[init] = made
    return made
