"""The observer hooks, called by real experiments: which calls, in what order, with what arguments.

An in-process plugin implementing the three observer hooks is registered with the process-wide
host; experiments then run with the built-in plugins (format ``simplified``, engine ``sequential``,
strategy ``grid``). ``tests/core/plugin/test_hooks_called.py`` checks the same hooks through the
``PluginHost.notify_*`` methods, without an experiment.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest
import torch.nn as nn

import nascore
from nascore.engine import TrialStatus
from nascore.evaluators import FunctionalEvaluator
from nascore.experiment import Experiment, ExperimentConfig
from nascore.nn import LayerChoice, ModelSpace, MutableLinear
from nascore.plugin import get_plugins, hookimpl, reset_plugins
from nascore.strategy import Strategy

WIDTHS = [2, 4]
ACTS = [0, 1]
ALL_SAMPLES = [{"width": width, "act": act} for width, act in itertools.product(WIDTHS, ACTS)]


class Space(ModelSpace):
    def __init__(self) -> None:
        super().__init__()
        self.fc = MutableLinear(3, nascore.choice("width", WIDTHS))
        self.act = LayerChoice([nn.ReLU(), nn.Sigmoid()], label="act")
        self.out = MutableLinear(nascore.choice("width", WIDTHS), 1)

    def forward(self, x: Any) -> Any:
        return self.out(self.act(self.fc(x)))


def score(sample: dict[str, Any]) -> float:
    return sample["width"] + sample["act"] / 10


def evaluate(model: nn.Module) -> float:
    return score(nascore.get_current_sample())


def evaluate_failing_one(model: nn.Module) -> float:
    sample = nascore.get_current_sample()
    if sample == {"width": 4, "act": 1}:
        raise ValueError("diverged")
    return score(sample)


class Observer:
    """An in-process plugin implementing every observer hook; keeps the calls in order."""

    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []

    @hookimpl
    def nascore_trial_started(self, experiment_id: str, trial_id: int, sample: dict[str, Any]) -> None:
        self.events.append(("started", experiment_id, trial_id, dict(sample)))

    @hookimpl
    def nascore_trial_finished(self, experiment_id: str, trial_id: int, status: str, metric: float | None) -> None:
        self.events.append(("finished", experiment_id, trial_id, status, metric))

    @hookimpl
    def nascore_experiment_status_changed(self, experiment_id: str, status: str) -> None:
        self.events.append(("experiment", experiment_id, status))


@pytest.fixture
def observer() -> Iterator[Observer]:
    """An :class:`Observer` registered with the process-wide host, which is dropped afterwards."""
    reset_plugins()
    plugin = Observer()
    get_plugins().register_plugin(plugin, name="observer-under-test")
    yield plugin
    reset_plugins()


def config(tmp_path: Any, **overrides: Any) -> ExperimentConfig:
    return ExperimentConfig(experiment_dir=tmp_path, format="simplified", engine="sequential", **overrides)


def expected_trial_events(experiment_id: str, trials: list[Any]) -> list[tuple[Any, ...]]:
    """What the sequential engine gives: each trial starts, then finishes, before the next starts."""
    events: list[tuple[Any, ...]] = []
    for trial in trials:
        status = trial.status.value
        events.append(("started", experiment_id, trial.id, trial.sample))
        events.append(("finished", experiment_id, trial.id, status, trial.metric if trial.succeeded else None))
    return events


def test_a_run_notifies_running_each_trial_then_done(tmp_path: Any, observer: Observer) -> None:
    exp = Experiment(Space(), FunctionalEvaluator(evaluate), "grid", config(tmp_path))
    assert exp.run() == "DONE"

    trials = exp.trials()
    assert sorted(map(str, (t.sample for t in trials))) == sorted(map(str, ALL_SAMPLES))
    assert all(t.status is TrialStatus.SUCCEEDED for t in trials)
    assert observer.events == [
        ("experiment", exp.id, "RUNNING"),
        *expected_trial_events(exp.id, trials),
        ("experiment", exp.id, "DONE"),
    ]
    # The arguments themselves, not only as the store has them.
    started = [event for event in observer.events if event[0] == "started"]
    finished = [event for event in observer.events if event[0] == "finished"]
    assert [event[2] for event in started] == [event[2] for event in finished] == [t.id for t in trials]
    assert len({event[2] for event in started}) == len(ALL_SAMPLES)  # unique trial ids
    for (_, _, _, sample), (_, _, _, status, metric) in zip(started, finished):
        assert status == "SUCCEEDED"
        assert metric == pytest.approx(score(sample))


def test_a_failed_trial_is_notified_failed_with_no_metric(tmp_path: Any, observer: Observer) -> None:
    exp = Experiment(Space(), FunctionalEvaluator(evaluate_failing_one), "grid", config(tmp_path))
    assert exp.run() == "DONE"

    trials = exp.trials()
    assert observer.events == [
        ("experiment", exp.id, "RUNNING"),
        *expected_trial_events(exp.id, trials),
        ("experiment", exp.id, "DONE"),
    ]
    finished = {event[2]: event[3:] for event in observer.events if event[0] == "finished"}
    [failed] = [t for t in trials if t.sample == {"width": 4, "act": 1}]
    assert finished[failed.id] == ("FAILED", None)
    assert sorted(status for status, _ in finished.values()) == ["FAILED", "SUCCEEDED", "SUCCEEDED", "SUCCEEDED"]


class SubmitOneThenRaise(Strategy):
    """Runs one trial to its end, then fails with ``error`` (before waiting, if ``wait`` is false)."""

    def __init__(self, error: BaseException, *, wait: bool = True) -> None:
        super().__init__()
        self.error, self.wait = error, wait

    def run(self, context: Any) -> None:
        context.submit({"width": 4, "act": 0})
        if self.wait:
            context.wait()
        raise self.error


def test_an_experiment_stopped_by_an_error_is_notified_failed(tmp_path: Any, observer: Observer) -> None:
    exp = Experiment(
        Space(), FunctionalEvaluator(evaluate), SubmitOneThenRaise(RuntimeError("strategy bug")), config(tmp_path)
    )
    with pytest.raises(RuntimeError, match="strategy bug"):
        exp.run()

    [trial] = exp.trials()
    assert observer.events == [
        ("experiment", exp.id, "RUNNING"),
        ("started", exp.id, trial.id, {"width": 4, "act": 0}),
        ("finished", exp.id, trial.id, "SUCCEEDED", pytest.approx(4.0)),
        ("experiment", exp.id, "FAILED"),
    ]


def test_an_interrupted_trial_is_not_finished_and_is_started_again_on_resume(
    tmp_path: Any, observer: Observer
) -> None:
    interrupted = SubmitOneThenRaise(KeyboardInterrupt(), wait=False)  # as Ctrl-C while the trial is queued
    exp = Experiment(Space(), FunctionalEvaluator(evaluate), interrupted, config(tmp_path))
    assert exp.run() == "INTERRUPTED"

    [trial] = exp.trials()
    assert trial.status is TrialStatus.INTERRUPTED
    assert observer.events == [
        ("experiment", exp.id, "RUNNING"),
        ("started", exp.id, trial.id, {"width": 4, "act": 0}),
        ("experiment", exp.id, "INTERRUPTED"),
    ]

    observer.events.clear()
    resumed = Experiment.resume(exp.id, Space(), FunctionalEvaluator(evaluate), "grid", experiment_dir=tmp_path)
    assert resumed.run() == "DONE"

    trials = resumed.trials()
    assert trials[0].id == trial.id and trials[0].status is TrialStatus.SUCCEEDED
    assert sorted(map(str, (t.sample for t in trials))) == sorted(map(str, ALL_SAMPLES))
    assert observer.events == [
        ("experiment", exp.id, "RUNNING"),
        *expected_trial_events(exp.id, trials),  # the interrupted trial first, under its own id
        ("experiment", exp.id, "DONE"),
    ]
