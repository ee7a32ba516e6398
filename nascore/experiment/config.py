"""Experiment configuration: :class:`ExperimentConfig`, loaded from and saved to TOML or JSON.

Built with attrs and (de)serialized with cattrs. Unknown fields and wrong types are errors that
name the field path (``config.max_trials``), never silently ignored.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import attrs
import cattrs

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


def _one_of(*choices: str) -> Any:
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
    :param key_file: private key file to log in with; ``None``: the keys of the SSH agent only.
    :param use_agent: also offer the keys of the SSH agent (``$SSH_AUTH_SOCK``).
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
    use_agent: bool = True
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
    :param code_dir: the folder copied to remote machines (default: the current working directory);
        only files that changed are copied again.
    :param code_exclude: glob patterns of paths not to copy, besides ``.git``, ``__pycache__``,
        virtual environments and the experiment directory.
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
    :param optimize_mode: ``"maximize"`` or ``"minimize"`` the final metric.
    :param seed: seed for the strategy's random decisions (the strategy's own seed wins).
    :param experiment_dir: where experiments are stored; each gets ``<experiment_dir>/<id>/``.
    :param experiment_name: a free-form name shown by ``nascore list``.
    :param engine_options: extra settings read by the engine plugin.
    :param format_options: extra settings read by the format plugin.
    """

    engine: str = attrs.field(default="sequential", validator=_name)
    format: str = attrs.field(default="simplified", validator=_name)
    max_trials: int | None = attrs.field(default=None, validator=_positive)
    max_duration: float | str | None = attrs.field(default=None, converter=parse_duration)
    trial_concurrency: int = attrs.field(default=1, validator=_positive)
    trial_gpu_number: int = attrs.field(default=0, validator=_non_negative)
    trial_timeout: float | str | None = attrs.field(default=None, converter=parse_duration)
    trial_memory_limit: int | str | None = attrs.field(default=None, converter=parse_size)
    training_service: TrainingServiceConfig = attrs.field(factory=TrainingServiceConfig)
    optimize_mode: str = attrs.field(default="maximize", validator=_one_of("maximize", "minimize"))
    seed: int | None = None
    experiment_dir: Path = attrs.field(factory=default_experiment_dir, converter=lambda p: Path(p).expanduser())
    experiment_name: str | None = None
    engine_options: dict[str, Any] = attrs.field(factory=dict)
    format_options: dict[str, Any] = attrs.field(factory=dict)

    # --- (de)serialization ------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Plain data (TOML/JSON-able); ``None`` values are left out, and so are default training-service settings."""
        data = _without_none(_converter.unstructure(self))
        if self.training_service == TrainingServiceConfig():
            data.pop("training_service")
        return data

    @classmethod
    def from_dict(cls, data: Any, source: str = "config") -> ExperimentConfig:
        """Build a config from plain data; errors name the field path, e.g. ``config.max_trials``."""
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: expected a table of settings, got {type(data).__name__}")
        try:
            return _converter.structure(data, cls)
        except cattrs.ClassValidationError as exc:
            problems = cattrs.transform_error(exc, path=source, format_exception=_format_exception)
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


def _make_converter() -> cattrs.Converter:
    converter = cattrs.Converter(forbid_extra_keys=True)
    converter.register_unstructure_hook(Path, str)
    converter.register_structure_hook(Path, lambda value, _: _path(value))

    def strict(kind: type) -> Any:
        def hook(value: Any, _: Any) -> Any:
            if kind is float and isinstance(value, int) and not isinstance(value, bool):
                return float(value)
            if (isinstance(value, bool) and kind is not bool) or not isinstance(value, kind):
                raise TypeError(f"expected {kind.__name__}, got {value!r}")
            return value

        return hook

    for kind in (int, str, float, bool):
        converter.register_structure_hook(kind, strict(kind))
    converter.register_structure_hook_func(lambda t: t == (float | str | None), lambda v, _: parse_duration(v))
    converter.register_structure_hook_func(lambda t: t == (float | str), lambda v, _: parse_duration(v))
    converter.register_structure_hook_func(lambda t: t == (int | str | None), lambda v, _: parse_size(v))
    return converter


def _format_exception(exc: BaseException, type_: Any) -> str:
    if isinstance(exc, (ValueError, TypeError)) and not isinstance(exc, cattrs.ForbiddenExtraKeysError):
        return str(exc)
    return cattrs.v.format_exception(exc, type_)


def _path(value: Any) -> Path:
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"expected a path, got {value!r}")
    return Path(value)


_converter = _make_converter()
