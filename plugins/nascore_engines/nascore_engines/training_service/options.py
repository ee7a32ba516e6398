"""The ``training-service`` engine's options: where trials run (this machine or remote machines over SSH).

:class:`TrainingServiceOptions` is the engine's ``options_class``: ``ExperimentConfig.engine_options``
is structured into it (``config.engine_options.<field>`` in messages). In TOML, the settings go under
``[engine_options]``; the older ``[training_service]`` table is still read (the engine declares it
as a ``config_aliases`` table). In Python::

    ExperimentConfig(engine="training-service", engine_options=TrainingServiceOptions(
        platform="remote", machines=[RemoteMachine(host="gpu1", key_file="~/.ssh/id_ed25519")]))
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs

from nascore.options import OptionError
from nascore.units import parse_duration, parse_size

__all__ = ["RemoteMachine", "TrainingServiceOptions", "TrainingServiceConfig", "positive", "non_negative"]


def positive(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    """An attrs validator of options: ``None`` or a positive number (the error names the option)."""
    if value is not None and value <= 0:
        raise OptionError(attribute.name, f"must be positive, got {value!r}")


def non_negative(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    """An attrs validator of options: a number that is not negative (the error names the option)."""
    if value < 0:
        raise OptionError(attribute.name, f"must not be negative, got {value!r}")


def _one_of(*choices: str | None) -> Any:
    def check(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
        if value not in choices:
            raise OptionError(attribute.name, f"must be one of {', '.join(map(repr, choices))}, got {value!r}")

    return check


def _name(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if not isinstance(value, str) or not value:
        raise OptionError(attribute.name, f"must be a non-empty name, got {value!r}")


def _gpu_indices(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if value is None:
        return
    if any(isinstance(i, bool) or not isinstance(i, int) or i < 0 for i in value):
        raise OptionError(attribute.name, f"must list GPU indices (integers >= 0), got {value!r}")
    if len(set(value)) != len(value):
        raise OptionError(attribute.name, f"lists a GPU twice: {value!r}")


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
    port: int = attrs.field(default=22, validator=positive)
    user: str | None = None
    key_file: Path | None = attrs.field(default=None, converter=lambda p: None if p is None else Path(p).expanduser())
    use_agent: bool = False
    python: str = attrs.field(default="python3", validator=_name)
    virtualenv: str | None = None
    workdir: str = attrs.field(default=".nascore/remote", validator=_name)
    gpu_indices: list[int] | None = attrs.field(default=None, validator=_gpu_indices)
    max_trials_per_gpu: int = attrs.field(default=1, validator=positive)
    max_trials: int | None = attrs.field(default=None, validator=positive)
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
class TrainingServiceOptions:
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
    :param worker_start: how local workers start: ``"auto"`` (the default: forked from a template process
        with torch and nascore imported, milliseconds each; new processes where no template can run),
        ``"fork"`` / ``"exec"`` (one kind of template), ``"spawn"`` (new processes, a second each).
        ``$NASCORE_WORKER_START`` overrides it.
    """

    platform: str = attrs.field(default="local", validator=_one_of("local", "remote"))
    gpu_indices: list[int] | None = attrs.field(default=None, validator=_gpu_indices)
    max_trials_per_gpu: int = attrs.field(default=1, validator=positive)
    python: str | None = None
    machines: list[RemoteMachine] = attrs.field(factory=list)
    known_hosts: Path | None = attrs.field(default=None, converter=lambda p: None if p is None else Path(p).expanduser())
    trust_unknown_hosts: bool = False
    code_dir: Path | None = attrs.field(default=None, converter=lambda p: None if p is None else Path(p).expanduser())
    code_exclude: list[str] = attrs.field(factory=list)
    code_include: list[str] = attrs.field(factory=list)
    code_max_size: int | str | None = attrs.field(default=None, converter=parse_size)
    code_max_files: int | None = attrs.field(default=None, validator=positive)
    connect_timeout: float | str = attrs.field(default=15.0, converter=parse_duration)
    heartbeat: float | str = attrs.field(default=30.0, converter=parse_duration)
    retry_delay: float | str = attrs.field(default=1.0, converter=parse_duration)
    retry_max_delay: float | str = attrs.field(default=60.0, converter=parse_duration)
    max_requeues: int = attrs.field(default=3, validator=non_negative)
    all_down_timeout: float | str = attrs.field(default=600.0, converter=parse_duration)
    worker_start: str = attrs.field(default="auto", validator=_one_of("auto", "fork", "exec", "spawn"))

    def __attrs_post_init__(self) -> None:
        if self.platform == "remote" and not self.machines:
            raise OptionError("machines", "platform 'remote' needs at least one machine in engine_options.machines")
        labels = [m.label for m in self.machines]
        duplicates = sorted({label for label in labels if labels.count(label) > 1})
        if duplicates:
            raise OptionError("machines", f"engine_options.machines lists the same machine twice: {', '.join(duplicates)}; give each a distinct name")


def _local_user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):  # pragma: no cover - no passwd entry and no $USER
        return "root"


#: The name these settings had when they lived in the core's ``ExperimentConfig.training_service``.
TrainingServiceConfig = TrainingServiceOptions
