"""Driving a training-service engine directly in tests: a recording sink and a run-to-completion loop."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from nascore.engine import EngineContext, TrialEvent, TrialSubmission
from nascore.space import Categorical
from nascore.testing.fakes import DictSpace


class Recorder:
    """A thread-safe sink that remembers every event and lets a test wait for one (no sleeping)."""

    def __init__(self) -> None:
        self.events: list[TrialEvent] = []
        self._changed = threading.Condition()

    def emit(self, event: TrialEvent) -> None:
        with self._changed:
            self.events.append(event)
            self._changed.notify_all()

    def wait_for(self, predicate, timeout: float = 120.0, what: str = "an event") -> None:
        with self._changed:
            if not self._changed.wait_for(lambda: predicate(self.events), timeout=timeout):
                raise AssertionError(f"timed out waiting for {what}; events so far: {self.events}")

    def of(self, trial_id: int) -> list[TrialEvent]:
        with self._changed:
            return [e for e in self.events if e.trial_id == trial_id]

    def end(self, trial_id: int) -> TrialEvent:
        ends = [e for e in self.of(trial_id) if e.ends_trial]
        assert len(ends) == 1, f"trial {trial_id} ended {len(ends)} times: {self.of(trial_id)}"
        return ends[0]

    def intermediates(self, trial_id: int) -> list[dict]:
        return [e.metric for e in self.of(trial_id) if e.kind == "intermediate"]


def space(label: str, values: list) -> DictSpace:
    return DictSpace([Categorical(values, label=label)])


def start(engine, config, tmp_path: Path, sink: Recorder, dict_space: DictSpace | None = None) -> None:
    engine.start(EngineContext("test-exp", tmp_path, config, sink, space=dict_space))


def run_all(engine, dict_space: DictSpace, evaluator, samples: list[dict], tmp_path: Path, first_id: int = 1,
            deadline: float = 180.0) -> list[int]:
    """Submit ``samples`` as slots free up and wait until every trial ended; returns their ids."""
    ids = []
    limit = time.monotonic() + deadline
    pending = list(samples)
    trial_id = first_id
    while pending or engine.running():
        assert time.monotonic() < limit, "the engine did not finish the trials in time"
        while pending and engine.idle_slots() > 0:
            model = dict_space.freeze(pending.pop(0))
            engine.submit(TrialSubmission(trial_id, model, evaluator, tmp_path / "trials" / str(trial_id), model.sample))
            ids.append(trial_id)
            trial_id += 1
        if engine.running():
            engine.wait(timeout=1.0)
    return ids
