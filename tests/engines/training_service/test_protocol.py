"""The JSON-lines protocol: events survive the trip, bad lines are errors, the outbox writes in order."""

from __future__ import annotations

import io
import math
import os
import threading

import pytest

from nascore.engine import TrialEvent, TrialStatus
from nascore.errors import EngineError
from nascore_engines.training_service.protocol import Outbox, decode, encode, event_from_dict, event_to_dict


def test_events_round_trip():
    events = [
        TrialEvent(3, "status", status=TrialStatus.RUNNING, time=12.5),
        TrialEvent.intermediate(3, 0.25, {"default": 0.25, "loss": float("inf"), "tags": ("a", "b")}),
        TrialEvent.final(3, float("nan"), {"default": float("nan")}),
        TrialEvent.failed(3, "ValueError: nope\n\ntraceback"),
        TrialEvent.retry(3, "machine a dropped"),
    ]
    back = [event_from_dict(decode(encode({"op": "event", "event": event_to_dict(e)}))["event"]) for e in events]
    assert back[0] == events[0]
    assert back[1].metric == {"default": 0.25, "loss": math.inf, "tags": ["a", "b"]}
    assert math.isnan(back[2].value)
    assert back[3].error == events[3].error and back[3].ends_trial
    assert back[4].kind == "retry" and not back[4].ends_trial


def test_a_message_is_one_line_whatever_it_holds():
    line = encode({"op": "log", "text": "two\nlines" + "x" * 100_000})
    assert line.count(b"\n") == 1 and decode(line)["text"].startswith("two\nlines")


@pytest.mark.parametrize("line", [b"not json\n", b"[1, 2]\n", b'{"no": "op"}\n'])
def test_bad_lines_are_errors(line):
    with pytest.raises(EngineError, match="message from a worker or agent"):
        decode(line)


def test_outbox_writes_in_order_and_reports_a_closed_reader():
    stream = io.BytesIO()
    stream.close = lambda: None  # keep the contents readable
    outbox = Outbox(stream, "test")
    for i in range(100):
        outbox.send({"op": "n", "i": i})
    outbox.close()
    assert [decode(line)["i"] for line in stream.getvalue().splitlines()] == list(range(100))

    read, write = os.pipe()
    os.close(read)
    broken = threading.Event()
    outbox = Outbox(os.fdopen(write, "wb"), "broken", on_broken=lambda exc: broken.set())
    outbox.send({"op": "x"})
    assert broken.wait(10) and isinstance(outbox.broken, OSError)
    outbox.close()
