"""A throwaway OpenSSH server on loopback, for the remote training-service tests.

Each :class:`SSHServer` is a real ``sshd`` (Debian's ``openssh-server``) with its own host key,
config and authorized_keys in a temporary folder, listening on a free port of 127.0.0.1: one
"remote machine". :meth:`SSHServer.kill` kills it with everything it started (sessions, the
agent, its workers), which is what a machine that dies looks like from the experiment.
"""

from __future__ import annotations

import collections
import os
import shutil
import signal
import socket
import subprocess
import threading
from pathlib import Path

INSTALL_HINT = (
    "the remote training-service tests run a real OpenSSH server on loopback, but `sshd` was not found; "
    "install it with: apt-get update && apt-get install -y openssh-server"
)


def sshd_path() -> str:
    """The sshd binary; raises AssertionError with the install line when it is missing (never skip)."""
    found = shutil.which("sshd") or next((p for p in ("/usr/sbin/sshd", "/usr/local/sbin/sshd") if os.path.exists(p)), None)
    if found is None:
        raise AssertionError(INSTALL_HINT)
    return found


def keygen(path: Path) -> Path:
    """A new ed25519 key pair at ``path`` (and ``path.pub``), no passphrase."""
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", path.name, "-f", str(path)], check=True)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (from /proc)."""
    children: dict[int, list[int]] = collections.defaultdict(list)
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        children[ppid].append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


class SSHServer:
    """One sshd on 127.0.0.1:<free port>, accepting ``authorized_key`` for the current user."""

    def __init__(self, root: Path, authorized_key: Path, port: int | None = None) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.host_key = self.root / "host_ed25519"
        if not self.host_key.exists():
            keygen(self.host_key)
        (self.root / "authorized_keys").write_text(Path(f"{authorized_key}.pub").read_text())
        self.config = self.root / "sshd_config"
        self.config.write_text(
            "\n".join([
                f"Port {self.port}",
                "ListenAddress 127.0.0.1",
                f"HostKey {self.host_key}",
                f"PidFile {self.root / 'sshd.pid'}",
                f"AuthorizedKeysFile {self.root / 'authorized_keys'}",
                "PubkeyAuthentication yes",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "UsePAM no",
                "StrictModes no",
                "PermitRootLogin prohibit-password",
                "UseDNS no",
                "PrintMotd no",
                "MaxStartups 50",
                "MaxSessions 50",
                "Subsystem sftp internal-sftp",
                "LogLevel INFO",
                "",
            ])
        )
        self.proc: subprocess.Popen[str] | None = None
        self.log: collections.deque[str] = collections.deque(maxlen=200)

    @property
    def known_hosts_line(self) -> str:
        kind, key = Path(f"{self.host_key}.pub").read_text().split()[:2]
        return f"[127.0.0.1]:{self.port} {kind} {key}\n"

    def start(self) -> SSHServer:
        if os.geteuid() == 0:
            os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege separation folder
        self.proc = subprocess.Popen(
            [sshd_path(), "-D", "-e", "-f", str(self.config)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            start_new_session=True,
        )
        assert self.proc.stderr is not None
        for line in self.proc.stderr:  # sshd says when it listens: no polling, no sleeping
            self.log.append(line.rstrip())
            if "Server listening on 127.0.0.1" in line:
                break
        else:
            code = self.proc.wait()
            raise AssertionError(f"sshd exited with code {code} before listening:\n" + "\n".join(self.log))
        threading.Thread(target=self._drain, daemon=True).start()
        return self

    def _drain(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        for line in self.proc.stderr:
            self.log.append(line.rstrip())

    def processes(self) -> list[int]:
        """sshd's sessions and whatever runs in them."""
        return [] if self.proc is None else descendants(self.proc.pid)

    def kill(self) -> None:
        """The machine dies: sshd and every process it started are SIGKILLed at once."""
        if self.proc is None:
            return
        seen: set[int] = set()
        while True:  # stop first, so nothing forks or gets reparented while we collect
            tree = [self.proc.pid, *descendants(self.proc.pid)]
            new = [p for p in tree if p not in seen]
            if not new:
                break
            for pid in new:
                seen.add(pid)
                try:
                    os.kill(pid, signal.SIGSTOP)
                except ProcessLookupError:
                    pass
        for pid in seen:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait()
        self.proc = None
