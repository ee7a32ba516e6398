"""Experiment configuration: :class:`ExperimentConfig`, loaded from and saved to TOML or JSON.

Built with attrs and (de)serialized with cattrs. Unknown fields, wrong types and bad values are
:class:`~nascore.errors.ConfigError` naming the field path (``config.max_trials``) and what to give
instead, whether the config is built in Python, changed (``attrs.evolve``, assignment) or loaded
from a file; never silently ignored.
"""

from __future__ import annotations

import json
import numbers
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import cattrs
import cattrs.gen

from nascore.engine import ExecutionEngine, TrialResources
from nascore.errors import ConfigError
from nascore.options import describe, unstructure_options, validation_problems, without_none
from nascore.units import parse_duration, parse_size

try:  # Python 3.11+
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

__all__ = [
    "ExperimentConfig",
    "create_engine_for",
    "trial_resources",
    "default_experiment_dir",
    "parse_duration",
    "parse_size",
]

def default_experiment_dir() -> Path:
    """``$NASCORE_EXPERIMENT_DIR``, or ``~/nascore-experiments``."""
    env = os.environ.get("NASCORE_EXPERIMENT_DIR")
    return Path(env).expanduser() if env else Path.home() / "nascore-experiments"


# --- the checks of ExperimentConfig's fields ----------------------------------------------------
# Every field of ExperimentConfig checks its value with one of these, whether the config is built in
# Python, changed with attrs.evolve or by assignment, or loaded from a file (from_dict runs the same
# checks field by field), so that a mistake reads the same everywhere:
# ``config.<field>: <what is wrong>; <what to do>``.


def _field_error(field: str, problem: str) -> ConfigError:
    """``config.<field>: <problem>``; keeps ``field`` and ``problem`` so that ``from_dict`` can root the
    path at its source (a file's name) instead of ``config``."""
    error = ConfigError(f"config.{field}: {problem}")
    error.field, error.problem = field, problem  # type: ignore[attr-defined]
    return error


def _whole(*, minimum: int, optional: bool, hint: str) -> attrs.Converter:
    """Accept an int >= ``minimum`` (numpy's too, stored as a plain int), or ``None`` when ``optional``."""

    def convert(value: Any, field: attrs.Attribute) -> int | None:
        if value is None and optional:
            return None
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            expected = "an int or None" if optional else "an int"
            raise _field_error(field.name, f"expected {expected}, got {describe(value)}; {hint}")
        if value < minimum:
            bound = "be positive" if minimum == 1 else "not be negative" if minimum == 0 else f"be >= {minimum}"
            raise _field_error(field.name, f"must {bound}, got {value!r}; {hint}")
        return int(value)

    return attrs.Converter(convert, takes_field=True)


def _parsed(parse: Callable[[Any], Any], hint: str) -> attrs.Converter:
    """Accept what ``parse`` (:func:`parse_duration`, :func:`parse_size`) accepts, as it returns it."""

    def convert(value: Any, field: attrs.Attribute) -> Any:
        try:
            return parse(value)
        except ValueError as exc:
            raise _field_error(field.name, f"{exc}; {hint}") from None

    return attrs.Converter(convert, takes_field=True)


def _folder(value: Any, field: attrs.Attribute) -> Path:
    """Accept a folder path (``str`` or :class:`~pathlib.Path`), with ``~`` expanded."""
    hint = "give the folder that experiments are stored in, e.g. '~/nascore-experiments'"
    if not isinstance(value, (str, os.PathLike)) or not isinstance(os.fspath(value), str):
        raise _field_error(field.name, f"expected a folder path (a str or pathlib.Path), got {describe(value)}; {hint}")
    if not os.fspath(value).strip():
        raise _field_error(field.name, f"the folder path is empty; {hint}")
    return Path(value).expanduser()


def _text(*, optional: bool, empty: bool, hint: str) -> Any:
    """A validator: a ``str`` (non-empty unless ``empty``), or ``None`` when ``optional``."""

    def check(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
        if value is None and optional:
            return
        if not isinstance(value, str):
            expected = "a str or None" if optional else "a str"
            raise _field_error(attribute.name, f"expected {expected}, got {describe(value)}; {hint}")
        if not empty and not value.strip():
            raise _field_error(attribute.name, f"must not be empty, got {value!r}; {hint}")

    return check


def _choice(*choices: str | None, hint: str) -> Any:
    """A validator: one of ``choices``."""
    names = [repr(c) if c is not None else "None" for c in choices]
    allowed = ", ".join(names[:-1]) + f" or {names[-1]}"

    def check(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
        if isinstance(value, bool) or value not in choices:
            raise _field_error(attribute.name, f"must be {allowed}, got {describe(value)}; {hint}")

    return check


def _instance(kind: type, hint: str) -> Any:
    """A validator: an instance of ``kind``."""

    def check(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
        if not isinstance(value, kind):
            raise _field_error(attribute.name, f"expected a {kind.__name__}, got {describe(value)}; {hint}")

    return check


def _settings(hint: str, objects: bool = True) -> Any:
    """A validator: a dict of settings with ``str`` keys (a table in TOML), or (``objects``) an attrs options object."""

    def check(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
        if objects and attrs.has(type(value)):
            return
        if not isinstance(value, dict):
            raise _field_error(attribute.name, f"expected a dict (a table in TOML), got {describe(value)}; {hint}")
        for key in value:
            if not isinstance(key, str):
                raise _field_error(attribute.name, f"setting names must be str, got {describe(key)}; {hint}")

    return check


def _progress_default() -> str:
    from nascore.experiment.progress import default_progress

    return default_progress()


def _progress_mode(value: Any, field: attrs.Attribute) -> str:
    """Accept a progress mode, or a bool (``True``: ``"auto"``, ``False``: ``"off"``)."""
    from nascore.experiment.progress import PROGRESS_MODES

    if isinstance(value, bool):
        return "auto" if value else "off"
    if value not in PROGRESS_MODES:
        modes = ", ".join(map(repr, PROGRESS_MODES))
        raise _field_error(field.name, f"must be one of {modes} or a bool, got {describe(value)}; 'off' silences it")
    return value


def read_settings(path: Path, what: str) -> Any:
    """The parsed content of a ``.toml`` or ``.json`` file (``what`` names it in errors)."""
    if path.suffix not in (".json", ".toml"):
        raise ConfigError(f"{path}: a {what} must end in .toml or .json")
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read the {what} {str(path)!r}: {exc.strerror}") from exc
    try:
        return json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path} is not valid {path.suffix[1:].upper()}: {exc}") from exc


def _checked(field: attrs.Attribute, value: Any) -> Any:
    """``value`` as :class:`ExperimentConfig` would hold it in ``field``, after that field's own checks."""
    if isinstance(field.converter, attrs.Converter):
        value = field.converter.converter(value, field)  # type: ignore[call-arg]
    if field.validator is not None:
        field.validator(None, field, value)
    return value


@attrs.define(kw_only=True)
class ExperimentConfig:
    """How an experiment runs.

    :param engine: execution engine name (``"sequential"``, ``"training-service"``, ``"cgo"``, or a plugin's).
    :param format: model format name (``"simplified"``, ``"raw"``, ``"graph"``, or a plugin's).
    :param max_trials: stop after this many trials (``None``: until the strategy is done).
    :param max_duration: stop submitting after this long: seconds, or ``"10m"``, ``"2h"``.
    :param trial_concurrency: how many trials run at once (engines that run several).
    :param trial_gpu_number: GPUs each trial needs (engines that place trials on GPUs).
    :param trial_timeout: a trial running longer is stopped and recorded FAILED (engines that can).
    :param trial_memory_limit: memory one trial may allocate, in bytes or ``"512MB"``, ``"4GB"``; a
        trial allocating more fails with an out-of-memory error (engines that can: training-service).
    :param optimize_mode: ``"maximize"`` or ``"minimize"`` the final metric; ``None`` (the default):
        the evaluator's own direction (e.g. ``"minimize"`` for a regression error), else ``"maximize"``.
        A mode that contradicts the evaluator's is an error before the first trial.
    :param seed: seed for the strategy's random decisions (the strategy's own seed wins), and for every
        trial: each trial builds its model and runs its evaluator from a seed derived from this one and
        its sample, so the same sample starts from the same random state on every engine and worker.
    :param fail_fast: if the first ``fail_fast`` trials that end all fail with the same error (a setup
        mistake, such as a misspelled Trainer argument), stop the experiment with that error; the trials
        rerun after the fix when it is resumed. ``0`` turns this off.
    :param progress: what a run shows on standard error: ``"auto"`` (a live line on a terminal, one
        line per finished trial otherwise), ``"bar"``, ``"lines"`` or ``"off"`` (``True`` / ``False``
        mean ``"auto"`` / ``"off"``). Default: ``$NASCORE_PROGRESS``, else ``"auto"``.
    :param experiment_dir: where experiments are stored; each gets ``<experiment_dir>/<id>/``.
    :param experiment_name: a free-form name shown by ``nascore list``.
    :param strategy: the strategy's registered name (``"evolution"``), used when ``Experiment`` is given
        no strategy; ``None``: the strategy is given to ``Experiment``.
    :param strategy_options: the named strategy's arguments (``{"population_size": 20}``), checked
        against its constructor when the experiment runs (``config.strategy_options.<name>`` in errors).
    :param engine_options: the engine's settings: a dict (a table in TOML) or the engine's own options
        object (e.g. ``nascore_engines.TrainingServiceOptions``); checked against the engine's declared
        options class when the experiment runs (``config.engine_options.<name>`` in errors).
    :param format_options: the format's settings, checked the same way against the format's options class.
    """

    engine: str = attrs.field(default="sequential", validator=_text(
        optional=False, empty=False,
        hint="give an engine's name, e.g. 'sequential' or 'training-service' (`nascore plugins` lists them)",
    ))
    format: str = attrs.field(default="simplified", validator=_text(
        optional=False, empty=False,
        hint="give a format's name, e.g. 'simplified', 'raw' or 'graph' (`nascore plugins` lists them)",
    ))
    max_trials: int | None = attrs.field(default=None, converter=_whole(
        minimum=1, optional=True, hint="give a number of trials such as 10, or None to run until the strategy is done",
    ))
    max_duration: float | str | None = attrs.field(default=None, converter=_parsed(
        parse_duration, hint="give seconds (600) or a string such as '90s', '10m', '2h', or None for no time limit",
    ))
    trial_concurrency: int = attrs.field(default=1, converter=_whole(
        minimum=1, optional=False, hint="give how many trials may run at once, e.g. 1 or 4",
    ))
    trial_gpu_number: int = attrs.field(default=0, converter=_whole(
        minimum=0, optional=False, hint="give how many GPUs each trial needs; 0 for none",
    ))
    trial_timeout: float | str | None = attrs.field(default=None, converter=_parsed(
        parse_duration, hint="give seconds (600) or a string such as '90s', '10m', '2h', or None for no timeout",
    ))
    trial_memory_limit: int | str | None = attrs.field(default=None, converter=_parsed(
        parse_size, hint="give bytes or a string such as '512MB' or '4GB', or None for no limit",
    ))
    optimize_mode: str | None = attrs.field(default=None, validator=_choice(
        "maximize", "minimize", None, hint="None follows the evaluator's direction (else maximize)",
    ))
    seed: int | None = attrs.field(default=None, converter=_whole(
        minimum=0, optional=True, hint="give a whole number such as 0, or None for a random seed",
    ))
    fail_fast: int = attrs.field(default=3, converter=_whole(
        minimum=0, optional=False,
        hint="give how many first trials failing with the same error stop the experiment (default 3); 0 turns this off",
    ))
    progress: str = attrs.field(factory=lambda: _progress_default(), converter=attrs.Converter(
        lambda value, field: _progress_mode(value, field), takes_field=True))
    experiment_dir: Path = attrs.field(factory=default_experiment_dir, converter=attrs.Converter(_folder, takes_field=True))
    experiment_name: str | None = attrs.field(default=None, validator=_text(
        optional=True, empty=True, hint="give a free-form name such as 'resnet-search', or None",
    ))
    strategy: str | None = attrs.field(default=None, validator=_text(
        optional=True, empty=False,
        hint="give a strategy's name, e.g. 'random' or 'evolution' (`nascore plugins` lists them), or None",
    ))
    strategy_options: dict[str, Any] = attrs.field(factory=dict, validator=_settings(
        hint="give the strategy's arguments by name, e.g. {'population_size': 20}", objects=False,
    ))
    engine_options: Any = attrs.field(factory=dict, validator=_settings(
        hint="give the engine's settings by name, e.g. {'max_concurrency_cgo': 4}, or the engine's options object",
    ))
    format_options: Any = attrs.field(factory=dict, validator=_settings(
        hint="give the format's settings by name, or the format's options object",
    ))

    # --- (de)serialization ------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Plain data (TOML/JSON-able); ``None`` values and empty option tables are left out."""
        data = without_none(_converter.unstructure(self))
        for name in ("engine_options", "format_options", "strategy_options"):
            if attrs.has(type(getattr(self, name))):
                data[name] = unstructure_options(getattr(self, name))
            if not data.get(name):
                data.pop(name, None)
        return data

    @classmethod
    def from_dict(cls, data: Any, source: str = "config") -> ExperimentConfig:
        """Build a config from plain data (a parsed TOML or JSON file).

        Every field is checked as in ``ExperimentConfig(...)``, and every problem is reported at once,
        each with its path rooted at ``source`` (``bad.toml.max_trials: expected an int ...``). A table
        an engine declares as an older spelling of its options (``[training_service]`` for
        ``training-service`` and ``cgo``: ``ExecutionEngine.config_aliases``) is read into
        ``engine_options``.
        """
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: expected a table of settings, got {type(data).__name__}")
        data = _merge_engine_tables(data, source)
        try:
            return _converter.structure(data, cls)
        except cattrs.BaseValidationError as exc:
            problems = validation_problems(exc, source)
            raise ConfigError(
                f"invalid experiment configuration ({len(problems)} problem{'s' if len(problems) > 1 else ''}):\n  "
                + "\n  ".join(problems)
            ) from None

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ExperimentConfig:
        """Load from a ``.toml`` or ``.json`` file."""
        path = Path(path)
        return cls.from_dict(read_settings(path, "configuration file"), source=path.name)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write to a ``.toml`` or ``.json`` file (chosen by the suffix)."""
        import tomli_w

        path = Path(path)
        data = self.to_dict()
        if path.suffix == ".json":
            path.write_text(json.dumps(data, indent=2) + "\n")
        elif path.suffix == ".toml":
            path.write_text(tomli_w.dumps(data))
        else:
            raise ConfigError(f"{path}: a configuration file must end in .toml or .json")
        return path


def trial_resources(config: ExperimentConfig) -> TrialResources:
    """What each trial may use under ``config``: the part of the configuration an engine sees."""
    return TrialResources(
        trial_concurrency=config.trial_concurrency,
        trial_gpu_number=config.trial_gpu_number,
        trial_timeout=config.trial_timeout,  # type: ignore[arg-type]
        trial_memory_limit=config.trial_memory_limit,  # type: ignore[arg-type]
    )


def create_engine_for(config: ExperimentConfig) -> ExecutionEngine:
    """The engine ``config`` names, made with its ``engine_options`` and :func:`trial_resources`."""
    from nascore.plugin import create_engine

    return create_engine(config.engine, config.engine_options, trial_resources(config))


def _merge_engine_tables(data: dict[str, Any], source: str) -> dict[str, Any]:
    """Move tables that the chosen engine reads as an older spelling of its options into ``engine_options``."""
    known = {field.name for field in attrs.fields(ExperimentConfig)}
    extra = [key for key in data if key not in known and isinstance(data[key], dict)]
    if not extra:
        return data
    from nascore.plugin.factory import engines_reading_table

    data = dict(data)
    engine = data.get("engine", "sequential")
    for key in extra:
        readers = sorted(engines_reading_table(key), key=lambda name: name.replace("-", "_") != key)  # its namesake first
        if not readers:
            continue  # an unknown setting: reported with the others
        if engine not in readers:
            raise ConfigError(
                f"{source}.{key}: the [{key}] table holds settings of engine {' / '.join(map(repr, readers))}, but "
                f"engine is {engine!r}; remove the table, or set engine = {readers[0]!r}"
            )
        table, options = data.pop(key), data.get("engine_options", {})
        if not isinstance(options, dict):
            raise ConfigError(f"{source}.engine_options: expected a table of settings, got {describe(options)}")
        twice = sorted(set(table) & set(options))
        if twice:
            raise ConfigError(
                f"{source}: {', '.join(twice)} set both in [{key}] and in [engine_options]; keep one (engine_options)"
            )
        data["engine_options"] = {**table, **options}
    return data


def _make_converter() -> cattrs.Converter:
    # ExperimentConfig's own fields are checked by the same code as ExperimentConfig(...) (see
    # _checked), so a file and a Python call get the same message; option tables stay plain data
    # here and are structured into the plugin's options class when the experiment runs.
    converter = cattrs.Converter(forbid_extra_keys=True)
    converter.register_unstructure_hook(Path, str)
    overrides = {field.name: cattrs.gen.override(struct_hook=_checking(field)) for field in attrs.fields(ExperimentConfig)}
    converter.register_structure_hook(
        ExperimentConfig, cattrs.gen.make_dict_structure_fn(ExperimentConfig, converter, **overrides)
    )
    return converter


def _checking(field: attrs.Attribute) -> Callable[[Any, Any], Any]:
    return lambda value, _: _checked(field, value)


_converter = _make_converter()
