"""The wire format between the engine, remote agents and worker processes: one JSON object per line.

Every message is a JSON object with an ``"op"`` key, written as one line of UTF-8 text. Large
shipments (a cloudpickled evaluator) are base64 text inside the JSON, so nothing limits a message's
size. Worker processes read messages on a private copy of their stdin and write them on a private
copy of their stdout; remote agents use the SSH channel's stdin and stdout. :class:`Outbox` sends
from a thread of its own so that no caller blocks on a full pipe.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from typing import IO, Any

from nascore.engine import TrialEvent, TrialStatus
from nascore.errors import EngineError

__all__ = ["PROTOCOL_VERSION", "encode", "decode", "event_to_dict", "event_from_dict", "Outbox"]

_log = logging.getLogger(__name__)

#: Bumped when messages change incompatibly; the agent refuses an engine speaking another version.
#: 2: ``run`` carries the trial's ``seed``, and ``event`` may be an ``abort`` (a seat freed without an end).
PROTOCOL_VERSION = 2


def _default(value: Any) -> Any:
    if hasattr(value, "item") and callable(value.item):
        return value.item()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return repr(value)


def encode(message: dict[str, Any]) -> bytes:
    """One message as a line of JSON (NaN and infinities allowed, as Python's json writes them)."""
    return (json.dumps(message, default=_default, separators=(",", ":")) + "\n").encode("utf-8")


def decode(line: bytes) -> dict[str, Any]:
    """The message of one line; :class:`EngineError` if it is not a JSON object with an ``op``."""
    try:
        message = json.loads(line)
    except ValueError as exc:
        raise EngineError(f"unreadable message from a worker or agent ({exc}): {line[:200]!r}") from None
    if not isinstance(message, dict) or "op" not in message:
        raise EngineError(f"malformed message from a worker or agent: {line[:200]!r}")
    return message


def event_to_dict(event: TrialEvent) -> dict[str, Any]:
    return {
        "trial_id": event.trial_id,
        "kind": event.kind,
        "status": None if event.status is None else event.status.value,
        "value": event.value,
        "metric": event.metric,
        "error": event.error,
        "time": event.time,
    }


def event_from_dict(data: dict[str, Any]) -> TrialEvent:
    value = data.get("value")
    extra = {"time": float(data["time"])} if data.get("time") is not None else {}
    return TrialEvent(
        int(data["trial_id"]),
        str(data["kind"]),
        status=None if data.get("status") is None else TrialStatus(data["status"]),
        value=None if value is None else float(value),
        metric=data.get("metric"),
        error=data.get("error"),
        **extra,
    )


class Outbox:
    """Writes messages to a stream from a thread of its own, in order.

    ``send`` never blocks on the reader. When writing fails (the other side is gone),
    ``on_broken`` is called once with the error and later messages are dropped.
    """

    def __init__(self, stream: IO[bytes], name: str, on_broken: Any = None) -> None:
        self._stream = stream
        self._queue: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._on_broken = on_broken
        self.broken: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"nascore-outbox-{name}", daemon=True)
        self._thread.start()

    def send(self, message: dict[str, Any]) -> None:
        self._queue.put(encode(message))

    def close(self, timeout: float | None = 5.0) -> None:
        """Send what is queued, then close the stream."""
        self._queue.put(None)
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            data = self._queue.get()
            if data is None:
                break
            if self.broken is not None:
                continue
            try:
                self._stream.write(data)
                while not self._queue.empty():  # batch what is already waiting into one flush
                    more = self._queue.get()
                    if more is None:
                        self._queue.put(None)
                        break
                    self._stream.write(more)
                self._stream.flush()
            except (OSError, ValueError, EOFError) as exc:  # ValueError: write to a closed file
                self.broken = exc
                _log.debug("Outbox %s: the other side is gone: %s", self._thread.name, exc)
                if self._on_broken is not None:
                    self._on_broken(exc)
        try:
            self._stream.close()
        except (OSError, ValueError, EOFError):
            pass
