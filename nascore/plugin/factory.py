"""The typed facade that makes plugins: the one place where a registered name becomes an object.

Nothing else in nascore calls ``registry.get(name)()``. Each function looks the name up in the
process's plugins (:func:`nascore.plugin.get_plugins`), structures the user's settings into the
plugin's declared options (:mod:`nascore.options`, errors naming ``<where>.<field>``), and checks
that what comes out meets the kind's contract.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from nascore.errors import PluginError
from nascore.options import options_from_signature, structure_options

if TYPE_CHECKING:
    from nascore.engine import ExecutionEngine, TrialResources
    from nascore.evaluator import Evaluator
    from nascore.format import ExecutableModel, ModelFormat
    from nascore.optimizer import LogicalOptimizer
    from nascore.plugin.manager import PluginHost
    from nascore.strategy import Strategy

__all__ = [
    "create_engine",
    "create_evaluator",
    "create_format",
    "create_optimizer",
    "create_strategy",
    "engine_options",
    "engines_reading_table",
    "load_model",
    "strategy_arguments",
]


def _host(plugins: PluginHost | None) -> PluginHost:
    from nascore.plugin.manager import get_plugins

    return plugins if plugins is not None else get_plugins()


def _made(kind: str, name: str, obj: object, plugins: PluginHost) -> Any:
    base = plugins.registries[kind].registration(name)
    from nascore.plugin.kinds import KINDS

    expected = KINDS[kind].base_class()
    if not isinstance(obj, expected):
        raise PluginError(
            f"the {kind} {name!r} of {base.provider} made a {type(obj).__name__}, not a {expected.__name__}; "
            "report it to its authors"
        )
    return obj


def engine_options(name: str, options: Any = None, *, where: str = "config.engine_options",
                   plugins: PluginHost | None = None) -> Any:
    """The options of engine ``name`` structured from ``options`` (a mapping, ``None`` or its options object)."""
    engine_class = _host(plugins).engines.get(name)
    if engine_class.options_class is None:
        if options:
            raise_no_options("engine", name, options, where)
        return None
    return structure_options(engine_class.options_class, options, where)


def raise_no_options(kind: str, name: str, options: Any, where: str) -> None:
    keys = ", ".join(map(repr, options)) if isinstance(options, Mapping) else repr(options)
    from nascore.errors import ConfigError

    raise ConfigError(f"{where}: the {kind} {name!r} takes no settings, got {keys}; remove them")


def create_engine(name: str, options: Any = None, resources: TrialResources | None = None, *,
                  where: str = "config.engine_options", plugins: PluginHost | None = None) -> ExecutionEngine:
    """Make engine ``name`` with its ``options`` (structured into its ``options_class``) for ``resources``."""
    from nascore.engine import TrialResources

    host = _host(plugins)
    engine_class = host.engines.get(name)
    structured = engine_options(name, options, where=where, plugins=host)
    engine = engine_class.create(structured, resources or TrialResources())
    return _made("engine", name, engine, host)  # type: ignore[no-any-return]


def engines_reading_table(table: str, plugins: PluginHost | None = None) -> list[str]:
    """The engines that read a top-level config table ``table`` as their options (``config_aliases``)."""
    host = _host(plugins)
    return [entry.name for entry in host.engines.entries() if table in entry.obj.config_aliases]


def create_format(name: str, options: Any = None, *, where: str = "config.format_options",
                  plugins: PluginHost | None = None) -> ModelFormat:
    """Make format ``name``, with its ``options`` when it declares an ``options_class``."""
    host = _host(plugins)
    format_class = host.formats.get(name)
    options_class = format_class.options_class
    if options_class is None:
        if options:
            raise_no_options("format", name, options, where)
        made = format_class()
    else:
        made = format_class(structure_options(options_class, options, where))  # type: ignore[call-arg]
    return _made("format", name, made, host)  # type: ignore[no-any-return]


def strategy_arguments(name: str, arguments: Mapping[str, Any] | None = None, *,
                       where: str = "config.strategy_options", plugins: PluginHost | None = None) -> dict[str, Any]:
    """``arguments`` checked against strategy ``name``'s constructor (names and data types), as given."""
    strategy_class = _host(plugins).strategies.get(name)
    arguments = dict(arguments or {})
    options_class = strategy_class.options_class or options_from_signature(strategy_class)
    structured = structure_options(options_class, arguments, where)
    return {key: getattr(structured, key) for key in arguments}


def create_strategy(name: str, *, where: str = "config.strategy_options", plugins: PluginHost | None = None,
                    **arguments: Any) -> Strategy:
    """Make strategy ``name`` with ``arguments`` (checked first: a misspelled or mistyped one names the field)."""
    host = _host(plugins)
    strategy_class = host.strategies.get(name)
    checked = strategy_arguments(name, arguments, where=where, plugins=host)
    try:
        made = strategy_class(**checked)
    except TypeError as exc:
        from nascore.errors import ConfigError

        raise ConfigError(f"{where}: strategy {name!r} refused its arguments: {exc}") from None
    return _made("strategy", name, made, host)  # type: ignore[no-any-return]


def create_evaluator(name: str, *, plugins: PluginHost | None = None, **arguments: Any) -> Evaluator:
    """Make evaluator ``name`` from ``arguments`` (a class is called, a registered factory function too)."""
    host = _host(plugins)
    made = host.evaluators.get(name)(**arguments)
    return _made("evaluator", name, made, host)  # type: ignore[no-any-return]


def create_optimizer(name: str, *, plugins: PluginHost | None = None) -> LogicalOptimizer:
    """Make cross-graph optimizer ``name``."""
    host = _host(plugins)
    return _made("optimizer", name, host.optimizers.get(name)(), host)  # type: ignore[no-any-return]


def load_model(payload: Mapping[str, Any], *, plugins: PluginHost | None = None) -> ExecutableModel:
    """The executable model of a shipped format payload (``{"format": <name>, ...}``), loaded by that format."""
    name = payload.get("format") if isinstance(payload, Mapping) else None
    if not isinstance(name, str):
        from nascore.errors import ShippingError

        raise ShippingError(f"a model payload must name its format (a 'format' key), got {payload!r:.200}")
    return create_format(name, plugins=plugins).load_model(dict(payload))
