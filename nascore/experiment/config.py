"""Experiment configuration: :class:`ExperimentConfig`, loaded from and saved to TOML or JSON.

Built with attrs and (de)serialized with cattrs. Unknown fields, wrong types and bad values are
:class:`~nascore.errors.ConfigError` naming the field path (``config.max_trials``) and what to give
instead, whether the config is built in Python, changed (``attrs.evolve``, assignment) or loaded
from a file; never silently ignored.
"""

from __future__ import annotations

import difflib
import json
import math
import numbers
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import cattrs
import cattrs.gen

from nascore.errors import ConfigError

try:  # Python 3.11+
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

__all__ = [
    "ExperimentConfig",
    "TrainingServiceConfig",
    "RemoteMachine",
    "default_experiment_dir",
    "parse_duration",
    "parse_size",
]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)\s*$", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}


def parse_duration(value: Any) -> float | None:
    """Seconds from a number or a string such as ``"90s"``, ``"10m"``, ``"1.5h"``, ``"2d"``."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"expected a duration, got {value!r}")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION.match(value)):
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    else:
        raise ValueError(f"expected a duration such as 600, '90s', '10m' or '2h', got {value!r}")
    if not math.isfinite(seconds):
        raise ValueError(f"a duration must be a finite number, got {value!r}")
    if seconds <= 0:
        raise ValueError(f"a duration must be positive, got {value!r}")
    return seconds


def parse_size(value: Any) -> int | None:
    """Bytes from a number of bytes or a string such as ``"512MB"``, ``"4GiB"``, ``"2g"`` (powers of 1024)."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"expected a memory size, got {value!r}")
    if isinstance(value, (int, float)):
        size = float(value)
    elif isinstance(value, str) and (match := _SIZE.match(value)):
        size = float(match.group(1)) * _SIZE_UNITS[match.group(2).lower()]
    else:
        raise ValueError(f"expected a memory size such as 2147483648, '512MB' or '4GB', got {value!r}")
    if not math.isfinite(size):
        raise ValueError(f"a memory size must be a finite number, got {value!r}")
    if size <= 0:
        raise ValueError(f"a memory size must be positive, got {value!r}")
    return int(size)


def default_experiment_dir() -> Path:
    """``$NASCORE_EXPERIMENT_DIR``, or ``~/nascore-experiments``."""
    env = os.environ.get("NASCORE_EXPERIMENT_DIR")
    return Path(env).expanduser() if env else Path.home() / "nascore-experiments"


def _positive(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if value is not None and value <= 0:
        raise ValueError(f"{attribute.name} must be positive, got {value!r}")


def _non_negative(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if value < 0:
        raise ValueError(f"{attribute.name} must not be negative, got {value!r}")


def _one_of(*choices: str | None) -> Any:
    def check(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
        if value not in choices:
            raise ValueError(f"{attribute.name} must be one of {', '.join(map(repr, choices))}, got {value!r}")

    return check


def _name(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{attribute.name} must be a non-empty name, got {value!r}")


def _gpu_indices(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if value is None:
        return
    if any(isinstance(i, bool) or not isinstance(i, int) or i < 0 for i in value):
        raise ValueError(f"{attribute.name} must list GPU indices (integers >= 0), got {value!r}")
    if len(set(value)) != len(value):
        raise ValueError(f"{attribute.name} lists a GPU twice: {value!r}")


@attrs.define(kw_only=True)
class RemoteMachine:
    """One machine of the ``remote`` training service, reached over SSH.

    :param host: host name or address.
    :param port: SSH port.
    :param user: login name (default: the local user name).
    :param key_file: private key file to log in with; ``None``: the keys of the SSH agent only
        (then ``use_agent`` must be true).
    :param use_agent: also offer the keys of the SSH agent (``$SSH_AUTH_SOCK``). Off by default, so
        that the agent's keys are offered only to the hosts where the user asks for it.
    :param python: the Python on the machine that has nascore and nascore-engines installed.
    :param virtualenv: a virtual environment on the machine; its ``bin/python`` is used instead of ``python``.
    :param workdir: where the code copy and trial logs go on the machine (relative: under the login's home).
    :param gpu_indices: the machine's GPUs that trials may use (default: all it has).
    :param max_trials_per_gpu: how many trials may share one GPU.
    :param max_trials: most trials at once on this machine (default: ``trial_concurrency``; with GPUs
        also limited by the GPU slots).
    :param name: a short name for messages and logs (default ``user@host:port``).
    """

    host: str = attrs.field(validator=_name)
    port: int = attrs.field(default=22, validator=_positive)
    user: str | None = None
    key_file: Path | None = attrs.field(default=None, converter=lambda p: None if p is None else Path(p).expanduser())
    use_agent: bool = False
    python: str = attrs.field(default="python3", validator=_name)
    virtualenv: str | None = None
    workdir: str = attrs.field(default=".nascore/remote", validator=_name)
    gpu_indices: list[int] | None = attrs.field(default=None, validator=_gpu_indices)
    max_trials_per_gpu: int = attrs.field(default=1, validator=_positive)
    max_trials: int | None = attrs.field(default=None, validator=_positive)
    name: str | None = None

    @property
    def login(self) -> str:
        """``user@host:port`` (the user defaults to the local user name)."""
        return f"{self.user or _local_user()}@{self.host}:{self.port}"

    @property
    def label(self) -> str:
        """The name used in messages: ``name``, else ``user@host:port``."""
        return self.name or self.login

    @property
    def python_command(self) -> str:
        """The Python to run on the machine (the virtualenv's when one is given)."""
        return f"{self.virtualenv.rstrip('/')}/bin/python" if self.virtualenv else self.python


@attrs.define(kw_only=True)
class TrainingServiceConfig:
    """Where the ``training-service`` engine runs trials: on this machine or on remote machines.

    :param platform: ``"local"`` (worker processes on this machine) or ``"remote"`` (over SSH).
    :param gpu_indices: local GPUs that trials may use (default: all this machine has).
    :param max_trials_per_gpu: how many trials may share one local GPU.
    :param python: the Python of local workers (default: the experiment's own interpreter).
    :param machines: the remote machines (``platform = "remote"``).
    :param known_hosts: the known_hosts file that verifies host keys (default ``~/.ssh/known_hosts``).
    :param trust_unknown_hosts: accept hosts missing from known_hosts (their key is logged); never
        accepts a host whose key differs from the one recorded.
    :param code_dir: the folder copied to remote machines (default: the current working directory,
        refused when that is the home folder or ``/``); only files that changed are copied again. Its
        ``.gitignore`` and ``.nascoreignore`` files (gitignore syntax) say what not to copy, besides
        ``.git``, caches, virtual environments and the experiment directory; files that look like
        secrets (``.env*``, ``.ssh/``, ``*.pem``, ``*.key``, ``id_*``) and symbolic links pointing
        outside it are never copied.
    :param code_exclude: more gitignore-style patterns (relative to ``code_dir``) of paths not to copy;
        they win over the ignore files.
    :param code_include: gitignore-style patterns of paths to copy although they look like secrets or
        are ignored (e.g. ``["configs/server.pem"]``); the only way to copy a secret-looking file.
    :param code_max_size: refuse to start when the files to copy weigh more than this, in bytes or
        ``"500MB"``, ``"2GB"`` (the error names the largest files); ``None`` (the default): 100 MB.
    :param code_max_files: refuse to start when more files than this are to be copied; ``None`` (the
        default): 10,000.
    :param connect_timeout: seconds to wait for a remote machine to answer.
    :param heartbeat: a remote machine that sends nothing for this long counts as dropped.
    :param retry_delay: first delay before reconnecting to a dropped machine; doubled after every
        failed attempt up to ``retry_max_delay``.
    :param retry_max_delay: longest delay between reconnection attempts.
    :param max_requeues: how many times a trial is re-queued after machines dropped under it before
        it is recorded FAILED.
    :param all_down_timeout: when no remote machine is reachable for this long, waiting trials fail.
    """

    platform: str = attrs.field(default="local", validator=_one_of("local", "remote"))
    gpu_indices: list[int] | None = attrs.field(default=None, validator=_gpu_indices)
    max_trials_per_gpu: int = attrs.field(default=1, validator=_positive)
    python: str | None = None
    machines: list[RemoteMachine] = attrs.field(factory=list)
    known_hosts: Path | None = attrs.field(default=None, converter=lambda p: None if p is None else Path(p).expanduser())
    trust_unknown_hosts: bool = False
    code_dir: Path | None = attrs.field(default=None, converter=lambda p: None if p is None else Path(p).expanduser())
    code_exclude: list[str] = attrs.field(factory=list)
    code_include: list[str] = attrs.field(factory=list)
    code_max_size: int | str | None = attrs.field(default=None, converter=parse_size)
    code_max_files: int | None = attrs.field(default=None, validator=_positive)
    connect_timeout: float | str = attrs.field(default=15.0, converter=parse_duration)
    heartbeat: float | str = attrs.field(default=30.0, converter=parse_duration)
    retry_delay: float | str = attrs.field(default=1.0, converter=parse_duration)
    retry_max_delay: float | str = attrs.field(default=60.0, converter=parse_duration)
    max_requeues: int = attrs.field(default=3, validator=_non_negative)
    all_down_timeout: float | str = attrs.field(default=600.0, converter=parse_duration)

    def __attrs_post_init__(self) -> None:
        if self.platform == "remote" and not self.machines:
            raise ValueError("platform 'remote' needs at least one machine in training_service.machines")
        labels = [m.label for m in self.machines]
        duplicates = sorted({label for label in labels if labels.count(label) > 1})
        if duplicates:
            raise ValueError(f"training_service.machines lists the same machine twice: {', '.join(duplicates)}; give each a distinct name")


def _local_user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):  # pragma: no cover - no passwd entry and no $USER
        return "root"


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


def _describe(value: Any) -> str:
    """``'10' (str)``: the value as given and its type, shortened when long."""
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({type(value).__name__})"


def _whole(*, minimum: int, optional: bool, hint: str) -> attrs.Converter:
    """Accept an int >= ``minimum`` (numpy's too, stored as a plain int), or ``None`` when ``optional``."""

    def convert(value: Any, field: attrs.Attribute) -> int | None:
        if value is None and optional:
            return None
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            expected = "an int or None" if optional else "an int"
            raise _field_error(field.name, f"expected {expected}, got {_describe(value)}; {hint}")
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
        raise _field_error(field.name, f"expected a folder path (a str or pathlib.Path), got {_describe(value)}; {hint}")
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
            raise _field_error(attribute.name, f"expected {expected}, got {_describe(value)}; {hint}")
        if not empty and not value.strip():
            raise _field_error(attribute.name, f"must not be empty, got {value!r}; {hint}")

    return check


def _choice(*choices: str | None, hint: str) -> Any:
    """A validator: one of ``choices``."""
    names = [repr(c) if c is not None else "None" for c in choices]
    allowed = ", ".join(names[:-1]) + f" or {names[-1]}"

    def check(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
        if isinstance(value, bool) or value not in choices:
            raise _field_error(attribute.name, f"must be {allowed}, got {_describe(value)}; {hint}")

    return check


def _instance(kind: type, hint: str) -> Any:
    """A validator: an instance of ``kind``."""

    def check(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
        if not isinstance(value, kind):
            raise _field_error(attribute.name, f"expected a {kind.__name__}, got {_describe(value)}; {hint}")

    return check


def _settings(hint: str) -> Any:
    """A validator: a dict of settings with ``str`` keys (a table in TOML)."""

    def check(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
        if not isinstance(value, dict):
            raise _field_error(attribute.name, f"expected a dict (a table in TOML), got {_describe(value)}; {hint}")
        for key in value:
            if not isinstance(key, str):
                raise _field_error(attribute.name, f"setting names must be str, got {_describe(key)}; {hint}")

    return check


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
    :param training_service: where the ``training-service`` engine runs trials (:class:`TrainingServiceConfig`).
    :param optimize_mode: ``"maximize"`` or ``"minimize"`` the final metric; ``None`` (the default):
        the evaluator's own direction (e.g. ``"minimize"`` for a regression error), else ``"maximize"``.
        A mode that contradicts the evaluator's is an error before the first trial.
    :param seed: seed for the strategy's random decisions (the strategy's own seed wins), and for every
        trial: each trial builds its model and runs its evaluator from a seed derived from this one and
        its sample, so the same sample starts from the same random state on every engine and worker.
    :param fail_fast: if the first ``fail_fast`` trials that end all fail with the same error (a setup
        mistake, such as a misspelled Trainer argument), stop the experiment with that error; the trials
        rerun after the fix when it is resumed. ``0`` turns this off.
    :param experiment_dir: where experiments are stored; each gets ``<experiment_dir>/<id>/``.
    :param experiment_name: a free-form name shown by ``nascore list``.
    :param engine_options: extra settings read by the engine plugin.
    :param format_options: extra settings read by the format plugin.
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
    training_service: TrainingServiceConfig = attrs.field(factory=TrainingServiceConfig, validator=_instance(
        TrainingServiceConfig,
        hint="build it with nascore.experiment.config.TrainingServiceConfig(...), or load the settings "
        "from a file with ExperimentConfig.load",
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
    experiment_dir: Path = attrs.field(factory=default_experiment_dir, converter=attrs.Converter(_folder, takes_field=True))
    experiment_name: str | None = attrs.field(default=None, validator=_text(
        optional=True, empty=True, hint="give a free-form name such as 'resnet-search', or None",
    ))
    engine_options: dict[str, Any] = attrs.field(factory=dict, validator=_settings(
        hint="give the engine plugin's settings by name, e.g. {'workers': 2}",
    ))
    format_options: dict[str, Any] = attrs.field(factory=dict, validator=_settings(
        hint="give the format plugin's settings by name",
    ))

    # --- (de)serialization ------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Plain data (TOML/JSON-able); ``None`` values are left out, and so are default training-service settings."""
        data = _without_none(_converter.unstructure(self))
        if self.training_service == TrainingServiceConfig():
            data.pop("training_service")
        return data

    @classmethod
    def from_dict(cls, data: Any, source: str = "config") -> ExperimentConfig:
        """Build a config from plain data (a parsed TOML or JSON file).

        Every field is checked as in ``ExperimentConfig(...)``, and every problem is reported at once,
        each with its path rooted at ``source`` (``bad.toml.max_trials: expected an int ...``).
        """
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: expected a table of settings, got {type(data).__name__}")
        try:
            return _converter.structure(data, cls)
        except cattrs.BaseValidationError as exc:
            problems = _problems(exc, source)
            raise ConfigError(
                f"invalid experiment configuration ({len(problems)} problem{'s' if len(problems) > 1 else ''}):\n  "
                + "\n  ".join(problems)
            ) from None

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ExperimentConfig:
        """Load from a ``.toml`` or ``.json`` file."""
        path = Path(path)
        if path.suffix not in (".json", ".toml"):
            raise ConfigError(f"{path}: a configuration file must end in .toml or .json")
        try:
            text = path.read_text()
        except OSError as exc:
            raise ConfigError(f"cannot read the configuration file {str(path)!r}: {exc.strerror}") from exc
        try:
            data = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
        except (ValueError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{path} is not valid {path.suffix[1:].upper()}: {exc}") from exc
        return cls.from_dict(data, source=path.name)

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


def _without_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_none(v) for v in value]
    return value


_KIND_NAMES = {int: "an int", str: "a str", float: "a number", bool: "true or false"}


def _make_converter() -> cattrs.Converter:
    converter = cattrs.Converter(forbid_extra_keys=True)
    converter.register_unstructure_hook(Path, str)
    converter.register_structure_hook(Path, lambda value, _: _path(value))

    def strict(kind: type) -> Any:
        def hook(value: Any, _: Any) -> Any:
            if kind is float and isinstance(value, int) and not isinstance(value, bool):
                return float(value)
            if (isinstance(value, bool) and kind is not bool) or not isinstance(value, kind):
                raise TypeError(f"expected {_KIND_NAMES[kind]}, got {_describe(value)}")
            return value

        return hook

    for kind in (int, str, float, bool):
        converter.register_structure_hook(kind, strict(kind))
    converter.register_structure_hook_func(lambda t: t == (float | str | None), lambda v, _: parse_duration(v))
    converter.register_structure_hook_func(lambda t: t == (float | str), lambda v, _: parse_duration(v))
    converter.register_structure_hook_func(lambda t: t == (int | str | None), lambda v, _: parse_size(v))

    # ExperimentConfig's own fields are checked by the same code as ExperimentConfig(...) (see
    # _checked), so a file and a Python call get the same message; only the nested training-service
    # table goes through the type-driven hooks above.
    def training_service(value: Any, _: Any) -> TrainingServiceConfig:
        if not isinstance(value, dict):
            raise _field_error(
                "training_service",
                f"expected a table of settings ([training_service] in TOML), got {_describe(value)}",
            )
        return converter.structure(value, TrainingServiceConfig)

    overrides = {
        field.name: cattrs.gen.override(
            struct_hook=training_service if field.name == "training_service" else _checking(field)
        )
        for field in attrs.fields(ExperimentConfig)
    }
    converter.register_structure_hook(
        ExperimentConfig, cattrs.gen.make_dict_structure_fn(ExperimentConfig, converter, **overrides)
    )
    return converter


def _checking(field: attrs.Attribute) -> Callable[[Any, Any], Any]:
    return lambda value, _: _checked(field, value)


def _problems(exc: BaseException, path: str) -> list[str]:
    """One ``path: problem`` line per problem in a failed structuring, ``path`` rooted at the source."""
    if isinstance(exc, (cattrs.ClassValidationError, cattrs.IterableValidationError)):
        with_notes, without = exc.group_exceptions()
        lines = []
        for inner, note in with_notes:
            where = f"{path}.{note.name}" if isinstance(note, cattrs.AttributeValidationNote) else f"{path}[{note.index!r}]"
            lines += _problems(inner, where)
        for inner in without:
            lines += _problems(inner, path)
        return lines
    if isinstance(exc, cattrs.ForbiddenExtraKeysError):
        known = sorted(a.name for a in attrs.fields(exc.cl)) if attrs.has(exc.cl) else []
        return [f"{path}: {_unknown_setting(key, known)}" for key in sorted(exc.extra_fields)]
    problem, field = getattr(exc, "problem", None), getattr(exc, "field", None)
    if isinstance(exc, ConfigError) and problem is not None:  # from _field_error
        # Raised while structuring the field (the path already ends in it) or by the class itself.
        where = path if path.endswith(f".{field}") else f"{path}.{field}"
        return [f"{where}: {problem}"]
    if isinstance(exc, (ValueError, TypeError)):
        return [f"{path}: {exc}"]
    return [f"{path}: {cattrs.v.format_exception(exc, None)}"]


def _unknown_setting(key: str, known: list[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1)
    if close:
        return f"unknown setting {key!r}: did you mean {close[0]!r}?"
    return f"unknown setting {key!r}; remove it or use one of: {', '.join(known)}"


def _path(value: Any) -> Path:
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"expected a path, got {_describe(value)}")
    return Path(value)


_converter = _make_converter()
