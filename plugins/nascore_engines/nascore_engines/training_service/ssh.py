"""SSH connections to remote machines (paramiko): host-key verification, login, commands, clear errors.

Host keys are checked against a known_hosts file (default ``~/.ssh/known_hosts``). A host missing
from it is refused unless ``engine_options.trust_unknown_hosts`` is set, and a host whose key
differs from the recorded one is always refused. Every error names the machine and says what to do.

The login uses the machine's ``key_file``; the keys of the SSH agent are offered only to machines
with ``use_agent = true`` (off by default, so a host never sees keys the user did not mean for it),
and keys lying in ``~/.ssh`` are never tried on their own.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import threading
from pathlib import Path
from typing import Any

from nascore.errors import EngineError, MissingDependencyError
from nascore_engines.training_service.options import RemoteMachine, TrainingServiceOptions

__all__ = [
    "import_paramiko",
    "fingerprint",
    "HostKeys",
    "SSHError",
    "HostKeyError",
    "AuthenticationError",
    "ConnectError",
    "connect",
    "run_command",
]

_log = logging.getLogger(__name__)

PIP_LINE = "pip install 'nascore-engines[remote]'"


def import_paramiko() -> Any:
    """The paramiko module, or :class:`MissingDependencyError` naming the pip line."""
    try:
        import paramiko
    except ImportError as exc:
        raise MissingDependencyError(
            f"the remote training service needs paramiko, which is not installed ({exc}); run: {PIP_LINE}"
        ) from None
    return paramiko


class SSHError(EngineError):
    """A remote machine cannot be used. ``permanent`` errors (keys, login) are not retried by reconnecting."""

    permanent = False

    def __init__(self, message: str, machine: str) -> None:
        super().__init__(message)
        self.machine = machine


class HostKeyError(SSHError):
    """The machine's host key is unknown (and not trusted) or differs from the one in known_hosts."""

    permanent = True


class AuthenticationError(SSHError):
    """The machine refused the login (wrong user or key)."""

    permanent = True


class ConnectError(SSHError):
    """The machine cannot be reached (down, wrong address or port, timeout)."""


def fingerprint(key: Any) -> str:
    """``SHA256:...``, as ``ssh-keygen -l`` prints it."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


class HostKeys:
    """Host keys accepted in this session: known_hosts, plus unknown hosts when they are trusted."""

    def __init__(self, settings: TrainingServiceOptions) -> None:
        self.path = settings.known_hosts or Path("~/.ssh/known_hosts").expanduser()
        self.trust_unknown = settings.trust_unknown_hosts
        self._trusted: dict[str, tuple[str, Any]] = {}
        self._lock = threading.Lock()

    def install(self, client: Any, machine: RemoteMachine) -> None:
        paramiko = import_paramiko()
        if self.path.is_file():
            client.load_system_host_keys(str(self.path))
        with self._lock:
            for name, (kind, key) in self._trusted.items():
                client.get_host_keys().add(name, kind, key)
        keys = self

        class Policy(paramiko.MissingHostKeyPolicy):
            def missing_host_key(self, client: Any, hostname: str, key: Any) -> None:
                if not keys.trust_unknown:
                    raise HostKeyError(
                        f"machine {machine.label}: host {hostname} is not in {keys.path} (its {key.get_name()} key "
                        f"is {fingerprint(key)}); refusing to connect. Check the fingerprint with the machine's "
                        f"administrator, then add it with `ssh-keyscan -p {machine.port} {machine.host} >> {keys.path}`, "
                        "or set engine_options.trust_unknown_hosts = true to accept unknown hosts",
                        machine.label,
                    )
                _log.warning(
                    "Trusting the unknown host %s (machine %s): its %s key is %s (engine_options.trust_unknown_hosts)",
                    hostname, machine.label, key.get_name(), fingerprint(key),
                )
                with keys._lock:
                    keys._trusted[hostname] = (key.get_name(), key)
                client.get_host_keys().add(hostname, key.get_name(), key)

        client.set_missing_host_key_policy(Policy())


def connect(machine: RemoteMachine, settings: TrainingServiceOptions, host_keys: HostKeys, index: int = 0) -> Any:
    """A connected, authenticated ``paramiko.SSHClient`` for ``machine``.

    :raises HostKeyError: unknown or changed host key.
    :raises AuthenticationError: the login was refused.
    :raises ConnectError: the machine cannot be reached.
    """
    paramiko = import_paramiko()
    field = f"engine_options.machines[{index}]"
    client = paramiko.SSHClient()
    host_keys.install(client, machine)
    timeout = float(settings.connect_timeout)  # type: ignore[arg-type]
    user = machine.login.split("@", 1)[0]
    try:
        client.connect(
            machine.host,
            port=machine.port,
            username=user,
            key_filename=str(machine.key_file) if machine.key_file else None,
            allow_agent=machine.use_agent,
            look_for_keys=False,
            timeout=timeout,
            banner_timeout=timeout,
            auth_timeout=timeout,
        )
    except SSHError:
        client.close()
        raise
    except paramiko.BadHostKeyException as exc:
        client.close()
        raise HostKeyError(
            f"machine {machine.label}: the host key of {machine.host}:{machine.port} ({exc.key.get_name()} "
            f"{fingerprint(exc.key)}) differs from the one in {host_keys.path} ({fingerprint(exc.expected_key)}). "
            "Someone may be intercepting the connection, or the machine was reinstalled: check with its "
            f"administrator, then remove the old entry with `ssh-keygen -R '[{machine.host}]:{machine.port}' -f {host_keys.path}`",
            machine.label,
        ) from None
    except paramiko.PasswordRequiredException:
        client.close()
        raise AuthenticationError(
            f"machine {machine.label}: the key file {machine.key_file} is encrypted; load it into the SSH agent "
            f"(`ssh-add {machine.key_file}`) and set {field}.use_agent = true without key_file",
            machine.label,
        ) from None
    except paramiko.AuthenticationException as exc:
        client.close()
        how = f"the key file {machine.key_file}" if machine.key_file else "the keys of the SSH agent"
        if machine.key_file and machine.use_agent:
            how += " and the SSH agent"
        raise AuthenticationError(
            f"authentication failed on machine {machine.label}: {machine.host}:{machine.port} refused user "
            f"{user!r} with {how} ({exc}). Check {field}.user and {field}.key_file, and that the public key is "
            f"in ~{user}/.ssh/authorized_keys on {machine.host}",
            machine.label,
        ) from None
    except (OSError, EOFError, paramiko.SSHException) as exc:  # socket errors, timeouts, protocol failures
        client.close()
        raise ConnectError(
            f"cannot connect to machine {machine.label} ({machine.host}:{machine.port}): {type(exc).__name__}: {exc}. "
            f"Check that it is up and that {field}.host and .port are right",
            machine.label,
        ) from None
    transport = client.get_transport()
    if transport is not None:
        transport.set_keepalive(max(5, int(float(settings.heartbeat) / 2)))  # type: ignore[arg-type]
    return client


def run_command(client: Any, command: str, timeout: float, machine: str) -> tuple[int, str, str]:
    """Run ``command`` on the machine; returns (exit status, stdout, stderr)."""
    try:
        _, stdout, stderr = client.exec_command(command, timeout=timeout)
        out = stdout.read().decode("utf-8", "replace")
        err = stderr.read().decode("utf-8", "replace")
        status = stdout.channel.recv_exit_status()
    except (TimeoutError, OSError, EOFError) as exc:
        raise ConnectError(f"machine {machine}: running {command.split()[0]!r} failed: {exc}", machine) from None
    except Exception as exc:
        paramiko = import_paramiko()
        if isinstance(exc, paramiko.SSHException):
            raise ConnectError(f"machine {machine}: running {command.split()[0]!r} failed: {exc}", machine) from None
        raise
    return status, out, err
