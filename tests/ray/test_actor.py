"""The trial actor's batches, in this process (no cluster): what one call returns, and in which order.

The driver follows a trial with ``start`` and then ``poll`` until a batch is ``done``; these tests drive a
:class:`~nascore_ray.actor.TrialActor` the same way and check that a short trial comes back in one call,
that a running trial's events come before its end, and that all of its output, cut into chunks, comes back
whole and before its end.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

import nascore
from nascore.engine import TrialStatus
from nascore.evaluators import FunctionalEvaluator
from nascore.serialization import ship_evaluator, ship_model
from nascore.space import Categorical
from nascore.testing.fakes import DictSpace
from nascore_engines.training_service import protocol
from nascore_engines.training_service.pool import PoolTrial
from nascore_ray import actor as actor_module
from nascore_ray.actor import TrialActor, pack, store_shipment, unpack

from .conftest import ray  # noqa: F401 - skips this module where Ray is not installed

TEXT = "héllo wörld – ünïcode ✓\n" * 40  # multi-byte characters: chunks cut through them


def quick(model):
    nascore.report_intermediate_result(0.5)
    return 1.0


def printing(model):
    os.write(1, TEXT.encode())  # file descriptor 1, as print() in a Ray worker (pytest holds sys.stdout here)
    return 2.0


def held(model, gate: str):
    nascore.report_intermediate_result(0.25)
    while not os.path.exists(gate):
        time.sleep(0.01)
    return 3.0


def follow(actor: TrialActor, evaluator, trial_id: int, folder: Path, in_place: bool = False) -> list[dict]:
    """Start a trial on ``actor`` as the driver does; the batches until the one that is done.

    With ``in_place``, the driver says that the actor shares its files (the trial's output goes into its log).
    """
    space = DictSpace([Categorical([1, 2], label="x")])
    model = space.freeze({"x": 1})
    shipment = ship_evaluator(evaluator)
    key = f"evaluator-{id(evaluator):x}"
    actor.shipments[key] = store_shipment(shipment)
    trial = PoolTrial(trial_id, ship_model(model), key, shipment, folder / str(trial_id) / "trial.log", "exp")
    batches = [unpack(actor.start(pack({**trial.message(False, None, None), "log_in_place": in_place}), [None]))]
    while not batches[-1]["done"]:
        assert len(batches) < 1000
        batches.append(unpack(actor.poll(trial_id)))
    return batches


def kinds(batch: dict) -> list[str]:
    return [protocol.event_from_dict(item).kind for item in batch["events"]]


def test_a_short_trial_comes_back_in_one_call(tmp_path):
    batches = follow(TrialActor("t"), FunctionalEvaluator(quick), 1, tmp_path)
    assert len(batches) == 1
    events = [protocol.event_from_dict(item) for item in batches[0]["events"]]
    assert events[0].status is TrialStatus.RUNNING
    assert [e.kind for e in events[1:]] == ["intermediate", "final", "status"]
    assert events[-1].status is TrialStatus.SUCCEEDED and events[-1].ends_trial


def test_a_running_trials_events_come_before_its_end(tmp_path):
    gate = tmp_path / "gate"
    actor = TrialActor("t")
    opened = threading.Timer(0.5, gate.write_text, args=("open",))
    opened.start()
    try:
        batches = follow(actor, FunctionalEvaluator(held, gate=str(gate)), 2, tmp_path)
    finally:
        opened.cancel()
    assert len(batches) >= 2
    first = [protocol.event_from_dict(item) for item in batches[0]["events"]]
    assert first and first[0].status is TrialStatus.RUNNING and not any(e.ends_trial for e in first)
    every = [protocol.event_from_dict(item) for batch in batches for item in batch["events"]]
    assert [e.kind for e in every] == ["status", "intermediate", "final", "status"]
    assert every[-1].ends_trial and every[-1].status is TrialStatus.SUCCEEDED
    # The same actor runs the next trial once this one is done.
    assert follow(actor, FunctionalEvaluator(quick), 3, tmp_path)[-1]["done"]


def test_all_output_comes_back_whole_and_before_the_end(tmp_path, monkeypatch):
    monkeypatch.setattr(actor_module, "LOG_CHUNK", 7)  # chunks that cut through multi-byte characters
    batches = follow(TrialActor("t"), FunctionalEvaluator(printing), 4, tmp_path)
    assert "".join(batch["log"] for batch in batches) == TEXT
    ends = [i for i, batch in enumerate(batches) for item in batch["events"]
            if protocol.event_from_dict(item).ends_trial]
    assert ends == [len(batches) - 1]  # the end comes once, in the last batch, after every chunk of output
    assert len(batches) > len(TEXT.encode()) // 7


def test_an_actor_that_shares_the_drivers_files_writes_the_output_into_the_trials_log(tmp_path):
    batches = follow(TrialActor("t"), FunctionalEvaluator(printing), 4, tmp_path, in_place=True)
    assert len(batches) == 1 and batches[0]["log"] == ""  # nothing to send: it is where the driver wants it
    assert (tmp_path / "4" / "trial.log").read_text(encoding="utf-8") == TEXT


def test_a_trial_log_that_cannot_be_written_in_place_is_sent_back_instead(tmp_path):
    (tmp_path / "4").write_text("a file where the trial's folder should be")
    batches = follow(TrialActor("t"), FunctionalEvaluator(printing), 4, tmp_path, in_place=True)
    assert "".join(batch["log"] for batch in batches) == TEXT  # the driver writes it, or says why it cannot


def test_the_probe_says_whether_an_actor_shares_the_drivers_files(tmp_path):
    probe = tmp_path / ".probe"
    probe.write_text("token-1")
    assert actor_module._reads((str(probe), "token-1")) is True
    assert actor_module._reads((str(probe), "token-2")) is False  # the same path, another machine's file
    assert actor_module._reads((str(tmp_path / "missing"), "token-1")) is False
    assert actor_module._reads(None) is False


def test_a_second_trial_while_one_runs_is_refused(tmp_path):
    gate = tmp_path / "gate"
    actor = TrialActor("t")
    evaluator = FunctionalEvaluator(held, gate=str(gate))
    space = DictSpace([Categorical([1, 2], label="x")])
    shipment = ship_evaluator(evaluator)
    actor.shipments["e"] = store_shipment(shipment)
    message = PoolTrial(5, ship_model(space.freeze({"x": 1})), "e", shipment, tmp_path / "5" / "trial.log").message(
        False, None, None)
    first = unpack(actor.start(pack(message), [None]))
    try:
        assert not first["done"]
        with pytest.raises(RuntimeError, match="while trial 5 runs"):
            actor.start(pack({**message, "trial_id": 6}), [None])
        with pytest.raises(RuntimeError, match="runs no trial 6"):
            actor.poll(6)
    finally:
        gate.write_text("open")
    batch = first
    while not batch["done"]:
        batch = unpack(actor.poll(5))
