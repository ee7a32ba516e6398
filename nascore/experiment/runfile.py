"""A search described by one TOML (or JSON) file, for ``nascore run``: the experiment's configuration
plus the space and the evaluator, named by import path with JSON arguments::

    max_trials = 30
    strategy = "evolution"
    seed = 0

    [strategy_options]
    population_size = 10

    [space]                                   # a ModelSpace class and its init arguments
    class = "my_search:Net"                   # "module:qualname"; my_search.py may sit beside this file
    kwargs = { hidden = 64 }                  # (and args = [...] for positional ones)

    [evaluator]                               # one of:
    name = "nasbench201"                      #   an evaluator registered by a plugin (`nascore plugins`)
    # function = "my_search:train"            #   a function train(model, **kwargs): a FunctionalEvaluator
    # factory = "my_search:make_evaluator"    #   anything returning an Evaluator
    kwargs = { dataset = "cifar10" }

Every other key is an :class:`~nascore.experiment.ExperimentConfig` field, checked as a config file
is. A mistake names the file and the key (``search.toml: [space] class: ...``) and what to give.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import attrs

from nascore.errors import ConfigError, NascoreError
from nascore.evaluator import Evaluator
from nascore.experiment.config import ExperimentConfig, read_settings

__all__ = ["RunFile", "load_run_file"]

_SPACE_KEYS = {"class", "args", "kwargs"}
_EVALUATOR_KINDS = ("name", "function", "factory")


@attrs.frozen
class RunFile:
    """What a run file describes: the space and evaluator to build, and the experiment's config."""

    path: Path
    config: ExperimentConfig
    space: dict[str, Any]
    evaluator: dict[str, Any]

    def build_space(self) -> Any:
        """The model space (its class imported, called with the file's arguments)."""
        factory = self._resolve("[space] class", self.space["class"])
        try:
            return factory(*self.space.get("args", []), **self.space.get("kwargs", {}))
        except NascoreError:
            raise
        except Exception as exc:
            raise ConfigError(
                f"{self.path.name}: [space] {self.space['class']}(...) raised {type(exc).__name__}: {exc}; "
                "check the space's args / kwargs"
            ) from exc

    def build_evaluator(self) -> Evaluator:
        """The evaluator: a registered one by name, a function wrapped in a FunctionalEvaluator, or a factory's."""
        kwargs = self.evaluator.get("kwargs", {})
        args = self.evaluator.get("args", [])
        if "name" in self.evaluator:
            from nascore.plugin import get_plugins

            name = self.evaluator["name"]
            try:
                make = get_plugins().evaluators.registration(name).obj
            except NascoreError as exc:
                raise ConfigError(f"{self.path.name}: [evaluator] name {name!r}: {exc}") from exc
            evaluator = make(*args, **kwargs)
        elif "function" in self.evaluator:
            from nascore.evaluators import FunctionalEvaluator

            evaluator = FunctionalEvaluator(self._resolve("[evaluator] function", self.evaluator["function"]), **kwargs)
        else:
            evaluator = self._resolve("[evaluator] factory", self.evaluator["factory"])(*args, **kwargs)
        if not isinstance(evaluator, Evaluator):
            raise ConfigError(
                f"{self.path.name}: [evaluator] gave {type(evaluator).__name__}, not a nascore Evaluator; a factory "
                "must return one (use function = ... for a plain training function)"
            )
        return evaluator

    def _resolve(self, where: str, path: str) -> Any:
        from nascore.serialization import resolve

        # the file's folder first: a space module written beside the run file imports without installing
        folder = str(self.path.parent.resolve())
        if folder not in sys.path:
            sys.path.insert(0, folder)
        try:
            return resolve(path)
        except NascoreError as exc:
            raise ConfigError(
                f"{self.path.name}: {where} {path!r} cannot be imported ({exc}); give 'module:qualname' of an "
                f"importable module (the run file's folder {folder} is searched first)"
            ) from exc


def load_run_file(path: str | Path, **overrides: Any) -> RunFile:
    """Read a run file; ``overrides`` (``max_trials=...``) replace its config fields.

    :raises ConfigError: the file cannot be read or parsed, ``[space]`` or ``[evaluator]`` is missing or
        malformed, or a config field is wrong (every problem named with the file and the key).
    """
    path = Path(path)
    data = read_settings(path, "run file")
    if not isinstance(data, dict):
        raise ConfigError(f"{path.name}: expected a table of settings, got {type(data).__name__}")
    space = _table(data.pop("space", None), "space", path, 'class = "my_module:MySpace"')
    evaluator = _table(data.pop("evaluator", None), "evaluator", path, 'name = "nasbench201" or function = "my_module:train"')
    unknown = set(space) - _SPACE_KEYS
    if unknown or "class" not in space:
        raise ConfigError(
            f"{path.name}: [space] takes class (required), args and kwargs; "
            + (f"unknown key(s) {sorted(unknown)}" if unknown else "class is missing")
        )
    kinds = [kind for kind in _EVALUATOR_KINDS if kind in evaluator]
    unknown = set(evaluator) - {*_EVALUATOR_KINDS, "args", "kwargs"}
    if len(kinds) != 1 or unknown:
        raise ConfigError(
            f"{path.name}: [evaluator] takes exactly one of name / function / factory, and args / kwargs; got "
            f"{sorted(evaluator)}"
        )
    for where, table in (("space", space), ("evaluator", evaluator)):
        if not isinstance(table.get("args", []), list) or not isinstance(table.get("kwargs", {}), dict):
            raise ConfigError(f"{path.name}: [{where}] args must be a list and kwargs a table")
    if data.get("strategy") is None:
        raise ConfigError(f'{path.name}: name the strategy, e.g. strategy = "random" (`nascore plugins` lists them)')
    config = ExperimentConfig.from_dict({**data, **{k: v for k, v in overrides.items() if v is not None}}, source=path.name)
    return RunFile(path=path, config=config, space=space, evaluator=evaluator)


def _table(value: Any, name: str, path: Path, example: str) -> dict[str, Any]:
    if value is None:
        raise ConfigError(f"{path.name}: the [{name}] table is missing; add it, e.g. [{name}] {example}")
    if not isinstance(value, dict):
        raise ConfigError(f"{path.name}: {name} must be a table ([{name}]), got {type(value).__name__}")
    return dict(value)
