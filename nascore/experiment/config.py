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

__all__ = ["ExperimentConfig", "default_experiment_dir", "parse_duration"]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


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
    optimize_mode: str = attrs.field(default="maximize", validator=_one_of("maximize", "minimize"))
    seed: int | None = None
    experiment_dir: Path = attrs.field(factory=default_experiment_dir, converter=lambda p: Path(p).expanduser())
    experiment_name: str | None = None
    engine_options: dict[str, Any] = attrs.field(factory=dict)
    format_options: dict[str, Any] = attrs.field(factory=dict)

    # --- (de)serialization ------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Plain data (TOML/JSON-able); ``None`` values are left out."""
        data = _converter.unstructure(self)
        return {k: v for k, v in data.items() if v is not None}

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


def _make_converter() -> cattrs.Converter:
    converter = cattrs.Converter(forbid_extra_keys=True)
    converter.register_unstructure_hook(Path, str)
    converter.register_structure_hook(Path, lambda value, _: _path(value))

    def strict(kind: type) -> Any:
        def hook(value: Any, _: Any) -> Any:
            if kind is float and isinstance(value, int) and not isinstance(value, bool):
                return float(value)
            if isinstance(value, bool) or not isinstance(value, kind):
                raise TypeError(f"expected {kind.__name__}, got {value!r}")
            return value

        return hook

    for kind in (int, str, float):
        converter.register_structure_hook(kind, strict(kind))
    converter.register_structure_hook_func(lambda t: t == (float | str | None), lambda v, _: parse_duration(v))
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
