"""Progress by default: a live line on a terminal, a line per trial elsewhere, silenced by one setting."""

from __future__ import annotations

import io

import pytest

from nascore.engine import TrialStatus
from nascore.errors import ConfigError
from nascore.experiment import ExperimentConfig
from nascore.experiment.progress import Progress, default_progress, format_duration
from nascore.record import TrialRecord


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def record(trial_id, metric=None, sample=None, status=TrialStatus.SUCCEEDED, error=None):
    return TrialRecord(trial_id, sample or {"width": 4}, status, metric, {} if metric is None else {"default": metric},
                       error=error)


def test_the_setting_and_its_environment_variable(monkeypatch):
    monkeypatch.delenv("NASCORE_PROGRESS", raising=False)
    assert ExperimentConfig().progress == "auto"
    assert ExperimentConfig(progress=False).progress == "off" and ExperimentConfig(progress=True).progress == "auto"
    monkeypatch.setenv("NASCORE_PROGRESS", "off")
    assert ExperimentConfig().progress == "off" and default_progress() == "off"
    monkeypatch.setenv("NASCORE_PROGRESS", "lines")
    assert ExperimentConfig().progress == "lines"


def test_a_bad_setting_names_the_field():
    with pytest.raises(ConfigError, match=r"config.progress: must be one of 'auto', 'bar', 'lines', 'off' or a bool"):
        ExperimentConfig(progress="verbose")


def test_on_a_terminal_one_line_is_redrawn():
    stream, clock = Terminal(), Clock()
    progress = Progress("auto", max_trials=4, stream=stream, clock=clock)
    assert progress.mode == "bar"
    progress.trial_started()
    clock.now = 2.0
    progress.trial_finished(record(1, 0.5, {"width": 4, "act": 0}))
    progress.trial_started()
    clock.now = 4.0
    progress.trial_finished(record(2, 0.25))
    progress.close("DONE")
    out = stream.getvalue()
    assert "\n" not in out.split("DONE")[0].rstrip("\n")  # redrawn in place until the end
    last = out.split("\r")[-1]
    assert "2/4 trials | 0 running | 0 failed | best 0.5 (trial 1: width=4, act=0) | 4s elapsed, ~4s left" in last
    assert out.endswith("DONE: 2/4 trials | 0 failed | best 0.5 (trial 1: width=4, act=0) | 4s elapsed\n")


def test_minimize_and_the_time_budget():
    clock = Clock()
    progress = Progress("lines", max_duration=60.0, optimize_mode="minimize", stream=io.StringIO(), clock=clock)
    progress.trial_finished(record(1, 0.5))
    clock.now = 10.0
    progress.trial_finished(record(2, 0.2))
    progress.trial_finished(record(3, 0.9))
    assert progress.best.id == 2
    assert progress.eta() == 50.0
    line = progress.stream.getvalue().splitlines()[-1]
    assert line == "[3] trial 3: 0.9 | best 0.2 (trial 2) | 0 running, 0 failed | 10s, ~50s left"


def test_a_resumed_experiment_counts_what_ran_before():
    progress = Progress("lines", max_trials=10, stream=io.StringIO(), clock=Clock(), elapsed_before=30.0)
    for i in range(1, 5):
        progress.count_earlier(record(i, i / 10))
    progress.count_earlier(record(5, status=TrialStatus.FAILED, error="boom"))
    assert progress.stream.getvalue() == ""
    assert progress.status_text() == "5/10 trials | 0 running | 1 failed | best 0.4 (trial 4: width=4) | 30s elapsed"


def test_a_broken_stream_never_fails_the_search():
    class Broken(io.StringIO):
        def write(self, text):
            raise OSError("closed")

    progress = Progress("lines", stream=Broken())
    progress.trial_finished(record(1, 0.5))
    assert progress.mode == "off"


def test_durations():
    assert [format_duration(s) for s in (4.4, 65, 3600 * 2 + 7 * 60)] == ["4s", "1m05s", "2h07m"]
