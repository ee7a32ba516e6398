"""Plugin discovery and the typed facade over pluggy that the rest of nascore uses.

:class:`PluginHost` owns a ``pluggy.PluginManager("nascore")`` and five :class:`Registry` objects.
It loads the built-in core plugins, then every entry point of the group ``nascore``, one at a
time: a plugin that fails to import, whose register hook raises, or that registers a bad or
conflicting name is recorded in :attr:`PluginHost.failures` (a :class:`PluginLoadError` naming
its distribution) and logged, and every other plugin still loads.

Register hooks are called per plugin, so each registration is attributed to the distribution and
version that provided it. Observer hooks are called through ``notify_*`` methods that log and
swallow an observer's exception. Nothing outside this module calls ``pm.hook.*``.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import logging
import os
import re
import sys
import threading
import traceback
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import pluggy

from nascore.errors import PluginError, PluginLoadError
from nascore.plugin import spec
from nascore.plugin.kinds import KINDS
from nascore.plugin.registry import Registration, Registry, check_name

if TYPE_CHECKING:
    from nascore.engine import ExecutionEngine
    from nascore.evaluator import Evaluator
    from nascore.format import ModelFormat
    from nascore.optimizer import LogicalOptimizer
    from nascore.strategy import Strategy

logger = logging.getLogger(__name__)

#: Core plugins, imported before any entry point and attributed to the ``nascore`` distribution.
BUILTIN_PLUGINS: tuple[str, ...] = ("nascore.evaluators.plugin",)
ENTRY_POINT_GROUP = "nascore"
CORE_DISTRIBUTION = "nascore"
#: Distribution name given to plugins registered in-process with :meth:`PluginHost.register_plugin`.
RUNTIME_DISTRIBUTION = "<runtime>"
DISABLED_ENV = "NASCORE_DISABLED_PLUGINS"
LOAD_ENV = "NASCORE_LOAD_PLUGINS"

# Frames from these files say nothing about the plugin; they are left out of failure summaries.
_MACHINERY_FILES = (
    str(Path(importlib.__file__).parent),
    str(Path(pluggy.__file__).parent),
    str(Path(__file__)),
)


def canonical_name(name: str) -> str:
    """Normalize a distribution or plugin name as PEP 503 does (``Good_Plugin`` -> ``good-plugin``)."""
    return re.sub(r"[-_.]+", "-", name.strip()).lower()


def core_version() -> str:
    """The installed version of nascore, or ``"unknown"`` when it runs from a source tree."""
    try:
        return importlib.metadata.version(CORE_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        version = getattr(sys.modules.get("nascore"), "__version__", None)
        return version if isinstance(version, str) else "unknown"


@attrs.frozen
class PluginInfo:
    """A plugin nascore found: its name (entry point, module path or run-time name) and provider."""

    name: str
    distribution: str
    version: str = ""

    @property
    def provider(self) -> str:
        """``"<distribution> <version>"``, as shown in messages."""
        return f"{self.distribution} {self.version}".strip()


@attrs.frozen
class PluginSelection:
    """Which entry-point plugins may load, from ``NASCORE_DISABLED_PLUGINS`` / ``NASCORE_LOAD_PLUGINS``.

    Both hold comma-separated entry-point names or distribution names, compared after
    :func:`canonical_name`. ``allowed`` is ``None`` when ``NASCORE_LOAD_PLUGINS`` is unset; set to
    an empty string it allows no third-party plugin at all. Built-in plugins always load.
    """

    disabled: frozenset[str] = frozenset()
    allowed: frozenset[str] | None = None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> PluginSelection:
        """Read the selection from environment variables."""

        def parse(value: str) -> frozenset[str]:
            return frozenset(canonical_name(part) for part in value.split(",") if part.strip())

        allowed = environ.get(LOAD_ENV)
        return cls(
            disabled=parse(environ.get(DISABLED_ENV, "")),
            allowed=None if allowed is None else parse(allowed),
        )

    def reason_to_skip(self, plugin: str, distribution: str) -> str | None:
        """Why the plugin must not be imported, or ``None`` if it may load."""
        keys = {canonical_name(plugin), canonical_name(distribution)}
        if keys & self.disabled:
            return f"disabled by {DISABLED_ENV}"
        if self.allowed is not None and not keys & self.allowed:
            return f"not listed in {LOAD_ENV}"
        return None


class PluginHost:
    """The plugins of one nascore process: registries, load failures and observer notifications.

    Use :func:`nascore.plugin.get_plugins` for the process-wide, lazily loaded instance. A fresh
    ``PluginHost()`` is empty until :meth:`load` (or :meth:`register_plugin`) is called.

    :ivar strategies: registry of search strategies.
    :ivar engines: registry of execution engines.
    :ivar formats: registry of model formats.
    :ivar evaluators: registry of evaluators.
    :ivar optimizers: registry of cross-graph optimizers.
    :ivar failures: every plugin problem found so far, each naming its distribution.
    :ivar plugins: the plugins that were imported and registered with the host.
    :ivar disabled: the entry-point plugins skipped because of the environment variables.
    """

    def __init__(self) -> None:
        self._pm = pluggy.PluginManager(spec.PROJECT_NAME)
        self._pm.add_hookspecs(spec)
        self.strategies: Registry[type[Strategy]] = Registry("strategy")
        self.engines: Registry[type[ExecutionEngine]] = Registry("engine")
        self.formats: Registry[type[ModelFormat]] = Registry("format")
        self.evaluators: Registry[type[Evaluator] | Callable[..., Evaluator]] = Registry("evaluator")
        self.optimizers: Registry[type[LogicalOptimizer]] = Registry("optimizer")
        self.failures: list[PluginLoadError] = []
        self.plugins: list[PluginInfo] = []
        self.disabled: list[PluginInfo] = []
        self._loaded = False

    # --- queries --------------------------------------------------------------------------------

    @property
    def registries(self) -> dict[str, Registry[Any]]:
        """Kind (``"strategy"``, ...) -> its registry."""
        return {
            "strategy": self.strategies,
            "engine": self.engines,
            "format": self.formats,
            "evaluator": self.evaluators,
            "optimizer": self.optimizers,
        }

    def registrations(self) -> list[Registration]:
        """Every registration of every kind, sorted by kind, then name."""
        return sorted(
            (entry for registry in self.registries.values() for entry in registry.entries()),
            key=lambda entry: (entry.kind, entry.name),
        )

    # --- loading --------------------------------------------------------------------------------

    def load(
        self,
        *,
        builtins: Iterable[str] = BUILTIN_PLUGINS,
        group: str | None = ENTRY_POINT_GROUP,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        """Import the built-in plugins, then the entry points of ``group``, one at a time.

        Never raises for a plugin's fault: problems go to :attr:`failures`. Calling it again does
        nothing.

        :param builtins: module paths of core plugins; always loaded, attributed to ``nascore``.
        :param group: the entry-point group to scan, or ``None`` to skip entry points.
        :param environ: where to read ``NASCORE_DISABLED_PLUGINS`` / ``NASCORE_LOAD_PLUGINS``
            (default: ``os.environ``).
        """
        if self._loaded:
            return
        self._loaded = True
        version = core_version()
        for module_path in builtins:
            info = PluginInfo(module_path, CORE_DISTRIBUTION, version)
            try:
                module = importlib.import_module(module_path)
            except Exception as exc:
                self._fail(info, "failed to import", exc)
                continue
            self._add_plugin(module, module_path, info)
        if group is not None:
            selection = PluginSelection.from_environ(os.environ if environ is None else environ)
            self._load_entry_points(group, selection)

    def _load_entry_points(self, group: str, selection: PluginSelection) -> None:
        try:
            entry_points = list(importlib.metadata.entry_points(group=group))
        except Exception as exc:
            self._fail(PluginInfo("*", "<installed distributions>"), "listing entry points failed", exc)
            return
        for entry_point in entry_points:
            info = _entry_point_info(entry_point)
            reason = selection.reason_to_skip(entry_point.name, info.distribution)
            if reason is not None:
                logger.info("plugin %r from %s not loaded: %s", info.name, info.provider, reason)
                self.disabled.append(info)
                continue
            try:
                plugin = entry_point.load()
            except Exception as exc:
                what = f"failed to import (entry point {entry_point.name} = {entry_point.value})"
                self._fail(info, what, exc)
                continue
            if self._pm.is_registered(plugin):
                logger.debug("plugin %r from %s is already registered", info.name, info.provider)
                continue
            self._add_plugin(plugin, f"{canonical_name(info.distribution)}:{entry_point.name}", info)

    def register_plugin(
        self,
        obj: object,
        name: str | None = None,
        *,
        distribution: str = RUNTIME_DISTRIBUTION,
        version: str = "",
        strict: bool = True,
    ) -> list[Registration]:
        """Register an in-process plugin (a module, class or instance with ``@hookimpl`` functions).

        Runs the register hooks of this plugin only; its observer hooks take effect at once.

        :param obj: the plugin object.
        :param name: its plugin name (default: the module or class name).
        :param distribution: the distribution to attribute its registrations to.
        :param version: that distribution's version.
        :param strict: raise the first problem instead of only recording it in :attr:`failures`.
            Registrations that succeeded are kept either way.
        :returns: the registrations this plugin added.
        :raises PluginLoadError: with ``strict``, if the plugin could not be registered entirely.
        """
        plugin_name = name or self._pm.get_canonical_name(obj)
        before_failures = len(self.failures)
        before = {(entry.kind, entry.name) for entry in self.registrations()}
        self._add_plugin(obj, plugin_name, PluginInfo(plugin_name, distribution, version))
        if strict and len(self.failures) > before_failures:
            raise self.failures[before_failures]
        return [entry for entry in self.registrations() if (entry.kind, entry.name) not in before]

    def _add_plugin(self, plugin: object, pm_name: str, info: PluginInfo) -> None:
        try:
            self._pm.register(plugin, name=pm_name)
        except Exception as exc:
            if self._pm.get_plugin(pm_name) is plugin:  # pluggy may leave a half-registered plugin
                self._pm.unregister(name=pm_name)
            self._fail(info, "could not be registered", exc)
            return
        self.plugins.append(info)
        self._check_unknown_hooks(plugin, info)
        for kind, hook_name in spec.REGISTER_HOOKS.items():
            for impl in getattr(self._pm.hook, hook_name).get_hookimpls():
                if impl.plugin_name == pm_name:
                    self._run_register_hook(impl, kind, info)

    def _run_register_hook(self, impl: pluggy.HookImpl, kind: str, info: PluginInfo) -> None:
        hook_name = spec.REGISTER_HOOKS[kind]
        staged: list[Registration] = []

        def register(name: str, obj: Any, *, description: str | None = None) -> None:
            try:
                check_name(kind, name, info.distribution)
                KINDS[kind].check(obj, name, info.distribution)
            except PluginError as exc:
                self._fail(info, f"a {kind} registration was rejected", exc)
                return
            staged.append(
                Registration(
                    kind=kind,
                    name=name,
                    obj=obj,
                    distribution=info.distribution,
                    version=info.version,
                    plugin=info.name,
                    description=description if description is not None else _first_doc_line(obj),
                )
            )

        if impl.hookwrapper or impl.wrapper:
            self._fail(
                info, f"its {hook_name} hook is a wrapper", PluginError("register hooks must be plain")
            )
            return
        try:
            _call_impl(impl, {"register": register})
        except Exception as exc:
            self._fail(info, f"its {hook_name} hook raised; none of its {kind} registrations were kept", exc)
            return
        registry = self.registries[kind]
        for registration in staged:
            try:
                registry.add(registration)
            except PluginError as exc:
                self._fail(info, f"{kind} {registration.name!r} was not registered", exc)

    def _check_unknown_hooks(self, plugin: object, info: PluginInfo) -> None:
        known = sorted((*spec.REGISTER_HOOKS.values(), *spec.OBSERVER_HOOKS))
        for caller in self._pm.get_hookcallers(plugin) or []:
            if caller.has_spec():
                continue
            if any(not impl.optionalhook for impl in caller.get_hookimpls() if impl.plugin is plugin):
                problem = PluginError(
                    f"{caller.name!r} is not a nascore hook, so it is never called. Known hooks: "
                    f"{', '.join(known)}. Fix the name, or mark it @hookimpl(optionalhook=True)."
                )
                self._fail(info, "implements an unknown hook", problem)

    def _fail(self, info: PluginInfo, what: str, exc: BaseException) -> None:
        lines = [f"plugin {info.name!r} from distribution {info.provider}: {what}: {_one_line(exc)}"]
        if not isinstance(exc, PluginError):
            lines.extend(_traceback_summary(exc))
            if info.distribution == CORE_DISTRIBUTION:
                lines.append("This is a bug in nascore's built-in plugins; please report it.")
            else:
                lines.append(
                    f"To fix: upgrade or reinstall {info.distribution}, or skip it with "
                    f"{DISABLED_ENV}={info.distribution}."
                )
        error = PluginLoadError("\n".join(lines), distribution=info.distribution)
        error.__cause__ = exc
        self.failures.append(error)
        logger.warning("%s", error)

    # --- observer hooks -------------------------------------------------------------------------

    def notify_trial_started(self, experiment_id: str, trial_id: int, sample: Mapping[str, Any]) -> None:
        """Tell observers that a trial was submitted. Never raises for an observer's fault."""
        self._notify(
            "nascore_trial_started",
            lambda: {"experiment_id": experiment_id, "trial_id": trial_id, "sample": dict(sample)},
        )

    def notify_trial_finished(
        self, experiment_id: str, trial_id: int, status: str, metric: float | None
    ) -> None:
        """Tell observers that a trial reached a final state. Never raises for an observer's fault."""
        self._notify(
            "nascore_trial_finished",
            lambda: {
                "experiment_id": experiment_id,
                "trial_id": trial_id,
                "status": status,
                "metric": metric,
            },
        )

    def notify_experiment_status_changed(self, experiment_id: str, status: str) -> None:
        """Tell observers that an experiment changed state. Never raises for an observer's fault."""
        self._notify(
            "nascore_experiment_status_changed", lambda: {"experiment_id": experiment_id, "status": status}
        )

    def _notify(self, hook_name: str, make_kwargs: Callable[[], dict[str, Any]]) -> None:
        # Each observer gets fresh arguments, so one cannot change what the next one sees.
        for impl in reversed(getattr(self._pm.hook, hook_name).get_hookimpls()):
            if impl.hookwrapper or impl.wrapper:
                continue
            try:
                _call_impl(impl, make_kwargs())
            except Exception:
                logger.warning(
                    "observer %s of plugin %r raised; ignored", hook_name, impl.plugin_name, exc_info=True
                )


# --- process-wide instance ----------------------------------------------------------------------

_host: PluginHost | None = None
_host_lock = threading.RLock()
_host_loading = False


def get_plugins() -> PluginHost:
    """The process-wide :class:`PluginHost`, loaded on first call (lazy and idempotent)."""
    global _host, _host_loading
    host = _host
    if host is not None:
        return host
    with _host_lock:
        if _host is not None:
            return _host
        if _host_loading:
            raise PluginError(
                "get_plugins() was called while nascore was loading its plugins (from a plugin's "
                "import or register hook). Look plugins up later, when they are used."
            )
        _host_loading = True
        try:
            host = PluginHost()
            host.load()
            _host = host
        finally:
            _host_loading = False
        return host


def reset_plugins() -> None:
    """Drop the process-wide host; the next :func:`get_plugins` discovers plugins again."""
    global _host
    with _host_lock:
        _host = None
    importlib.invalidate_caches()


# --- helpers ------------------------------------------------------------------------------------


def _entry_point_info(entry_point: importlib.metadata.EntryPoint) -> PluginInfo:
    dist = getattr(entry_point, "dist", None)
    try:
        name = dist.metadata["Name"] if dist is not None else None
        version = dist.version if dist is not None else ""
    except Exception:  # broken metadata must not stop discovery
        name, version = None, ""
    return PluginInfo(
        entry_point.name, name or f"<unknown distribution of {entry_point.value}>", version or ""
    )


def _call_impl(impl: pluggy.HookImpl, kwargs: Mapping[str, Any]) -> object:
    # Pass only the arguments the implementation declares, as pluggy does.
    return impl.function(*(kwargs[argname] for argname in impl.argnames))


def _first_doc_line(obj: object) -> str | None:
    doc = getattr(obj, "__doc__", None)
    if not isinstance(doc, str) or not doc.strip():
        return None
    return doc.strip().splitlines()[0].strip()


def _one_line(exc: BaseException, limit: int = 500) -> str:
    text = " ".join(str(exc).split())
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    if isinstance(exc, PluginError):
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _traceback_summary(exc: BaseException, limit: int = 3) -> list[str]:
    frames = [
        frame
        for frame in traceback.extract_tb(exc.__traceback__)
        if not frame.filename.startswith("<frozen") and not frame.filename.startswith(_MACHINERY_FILES)
    ][-limit:]
    lines = []
    for frame in frames:
        lines.append(f'  File "{frame.filename}", line {frame.lineno}, in {frame.name}')
        if frame.line:
            lines.append(f"    {frame.line.strip()}")
    return lines
