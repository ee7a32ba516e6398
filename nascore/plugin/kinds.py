"""The plugin kinds: for each, its register hook, the contract what it registers must meet, how it is made.

A :class:`PluginKind` is the one description of a kind that the host, the registries and the
factory (:mod:`nascore.plugin.factory`) share. ``register`` checks every registration against it
(a strategy that is not a :class:`~nascore.strategy.Strategy` subclass is refused, naming the
distribution), so a broken plugin fails when it loads, not in the middle of a search.

==========  ==========================================  ==========================================
kind        what is registered                          made by
==========  ==========================================  ==========================================
strategy    a :class:`~nascore.strategy.Strategy`       ``create_strategy(name, **arguments)``
            subclass
engine      an :class:`~nascore.engine.ExecutionEngine` ``create_engine(name, options, resources)``
            subclass
format      a :class:`~nascore.format.ModelFormat`      ``create_format(name, options)``
            subclass
evaluator   an :class:`~nascore.evaluator.Evaluator`    ``create_evaluator(name, **arguments)``
            subclass, or a function returning one
            (to import a heavy library only when used)
optimizer   a :class:`~nascore.optimizer.LogicalOptimizer`  ``create_optimizer(name)``
            subclass
==========  ==========================================  ==========================================
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

import attrs

from nascore.errors import PluginError

__all__ = ["KINDS", "PluginKind", "kind"]


@attrs.frozen
class PluginKind:
    """One plugin kind.

    :ivar name: the kind as users see it (``"engine"``).
    :ivar hook: its register hook (``"nascore_register_engines"``).
    :ivar base: ``"module:Class"`` of the base class every registered class must derive from
        (imported when the first registration is checked, so that loading the plugin system
        imports no contract module it does not need).
    :ivar factories: whether a plain function (a factory returning an instance of ``base``) may be
        registered instead of a class.
    """

    name: str
    hook: str
    base: str
    factories: bool = False

    def base_class(self) -> type:
        module, _, qualname = self.base.partition(":")
        obj: Any = importlib.import_module(module)
        for part in qualname.split("."):
            obj = getattr(obj, part)
        return obj  # type: ignore[no-any-return]

    def check(self, obj: object, name: str, distribution: str) -> None:
        """Raise :class:`PluginError` unless ``obj`` may be registered as this kind, naming ``distribution``."""
        base = self.base_class()
        if inspect.isclass(obj):
            if issubclass(obj, base) and not getattr(obj, "__abstractmethods__", None):
                return
            if issubclass(obj, base):
                missing = ", ".join(sorted(obj.__abstractmethods__))  # type: ignore[attr-defined]
                problem = f"{obj.__module__}.{obj.__qualname__} leaves abstract methods unimplemented: {missing}"
            else:
                problem = f"{obj.__module__}.{obj.__qualname__} does not derive from {base.__module__}.{base.__qualname__}"
        elif self.factories and inspect.isfunction(obj):
            return
        else:
            what = "a class" + (" or a function returning an instance" if self.factories else "")
            problem = f"expected {what} deriving from {base.__module__}.{base.__qualname__}, got {type(obj).__name__} {obj!r}"
        raise PluginError(
            f"distribution {distribution} registered the {self.name} {name!r} wrongly: {problem}. "
            f"Fix its {self.hook} hook, or report it to its authors."
        )


#: Every plugin kind, by name.
KINDS: dict[str, PluginKind] = {
    k.name: k
    for k in (
        PluginKind("strategy", "nascore_register_strategies", "nascore.strategy:Strategy"),
        PluginKind("engine", "nascore_register_engines", "nascore.engine:ExecutionEngine"),
        PluginKind("format", "nascore_register_formats", "nascore.format:ModelFormat"),
        PluginKind("evaluator", "nascore_register_evaluators", "nascore.evaluator:Evaluator", factories=True),
        PluginKind("optimizer", "nascore_register_optimizers", "nascore.optimizer:LogicalOptimizer"),
    )
}


def kind(name: str) -> PluginKind:
    """The :class:`PluginKind` called ``name``."""
    return KINDS[name]
