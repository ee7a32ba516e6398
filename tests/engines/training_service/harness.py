"""Driving a training-service engine directly in tests: starting it and a run-to-completion loop."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from nascore.engine import EngineContext, TrialSubmission
from nascore.experiment.config import trial_resources
from nascore.space import Categorical
from nascore.testing.fakes import DictSpace, RecordingSink


def space(label: str, values: list) -> DictSpace:
    return DictSpace([Categorical(values, label=label)])


def start(engine, config, tmp_path: Path, sink: RecordingSink, dict_space: DictSpace | None = None) -> None:
    engine.start(EngineContext("test-exp", tmp_path, trial_resources(config), sink, space=dict_space))


def run_all(engine, dict_space: DictSpace, evaluator, samples: list[dict], tmp_path: Path, first_id: int = 1,
            deadline: float = 180.0, seed: Callable[[dict], int | None] | None = None) -> list[int]:
    """Submit ``samples`` as slots free up and wait until every trial ended; returns their ids.

    ``seed(sample)`` gives each trial's seed (default: none). A trial is over when it ended or was aborted.
    """
    ids = []
    limit = time.monotonic() + deadline
    pending = list(samples)
    trial_id = first_id
    while pending or engine.running():
        assert time.monotonic() < limit, "the engine did not finish the trials in time"
        while pending and engine.idle_slots() > 0:
            model = dict_space.freeze(pending.pop(0))
            engine.submit(TrialSubmission(trial_id, model, evaluator, tmp_path / "trials" / str(trial_id), model.sample,
                                          None if seed is None else seed(model.sample)))
            ids.append(trial_id)
            trial_id += 1
        if engine.running():
            engine.wait(timeout=1.0)
    # A worker's seat is free a moment before its trial's end reaches the sink (a crashed worker's seat is
    # refilled first): wait for every end, as the experiment's driver does.
    sink = engine._context.sink
    for trial_id in ids:
        sink.wait_for(lambda events, i=trial_id: any(e.trial_id == i and (e.ends_trial or e.kind == "abort")
                                                     for e in events), what=f"the end of trial {trial_id}")
    return ids
