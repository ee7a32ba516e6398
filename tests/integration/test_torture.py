"""benchmarks/torture.py: kill -9 and resume loses, repeats and leaves behind nothing, and the script would say so if it did."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from nascore.engine import TrialStatus
from nascore.record import TrialRecord

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "torture.py"


@pytest.fixture(scope="module")
def torture():
    spec = importlib.util.spec_from_file_location("torture_under_test", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_kills_and_resumes_lose_repeat_and_leave_nothing(tmp_path):
    """Four kills (one in the creation window) on each engine, then the final runs: every count is zero."""
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--kills", "4", "--trials", "10", "--seed", "3", "--workdir", str(tmp_path)],
        capture_output=True, text=True, timeout=240,
    )
    output = result.stdout + result.stderr
    results = {m.group(1): dict(re.findall(r"(\w+)=(\S+)", m.group(0))) for m in re.finditer(r"^RESULT engine=(\S+).*$", output, re.M)}
    assert set(results) == {"sequential", "training-service"}, output
    for engine, counts in results.items():
        assert counts["kills"] == "4" and int(counts["creation_kills"]) >= 1, (engine, output)
        for column in ("lost", "repeated", "zombie", "wrong", "errors"):
            assert counts[column] == "0", (engine, column, output)
    assert "creation-window kills: 1" in output
    assert result.returncode == 0 and output.rstrip().endswith("PASS"), output


def _trial(trial_id, sample, status, metric=None):
    return TrialRecord(id=trial_id, sample=sample, status=status, metric=metric)


def test_the_script_counts_lost_repeated_zombie_and_wrong_trials(torture, tmp_path):
    """The checks behind the zeros above do find each kind of damage."""
    a, b, c = {"width": 4}, {"width": 8}, {"width": 16}
    tracked = torture.Tracked("exp", tmp_path)
    tracked.root.mkdir()
    report = torture.Report("sequential")
    # Run 1 finished trials 1 and 2, then was killed: the snapshot records them.
    tracked.runs.append((0, frozenset()))
    torture.check_recorded(tracked, torture.Snapshot("RUNNING", [_trial(1, a, TrialStatus.SUCCEEDED, 0.5),
                                                                _trial(2, b, TrialStatus.SUCCEEDED, torture.expected_metric(b))]), report)
    assert set(tracked.recorded) == {1, 2} and not report.lost

    # Run 2 evaluated trial 1 again (recorded finished: a repeat), trial 3 twice, and trial 9 the store never got.
    tracked.runs.append((2, frozenset(tracked.recorded)))
    tracked.log.write_text("".join(f"{i} {torture.canonical(s)}\n" for i, s in [(1, a), (2, b), (1, a), (3, c), (3, c), (9, a)]))
    final = torture.Snapshot("RUNNING", [
        _trial(1, a, TrialStatus.RUNNING),  # was SUCCEEDED before the kill: lost, and now a zombie too
        _trial(2, b, TrialStatus.SUCCEEDED, torture.expected_metric(b)),
        _trial(3, c, TrialStatus.SUCCEEDED, 0.123),  # not what the evaluator returned for c
        _trial(4, b, TrialStatus.SUCCEEDED, torture.expected_metric(b)),  # never evaluated, and a duplicate of 2
    ], {"status": "RUNNING"})
    torture.final_check(tracked, final, report, max_trials=3, fail_every=0)

    assert any("trial 1" in item and "is RUNNING again" in item for item in report.lost)
    assert any("trial 9" in item and "no such trial" in item for item in report.lost)
    assert any("trial 1 ran again in run 2" in item for item in report.repeated)
    assert any("trial 3 ran twice in run 2" in item for item in report.repeated)
    assert any("stored 2 times" in item for item in report.repeated)
    assert any("max_trials is 3" in item for item in report.repeated)
    assert any("trial 1 is still RUNNING" in item for item in report.zombie_trials)
    assert report.zombie_experiments == ["exp is recorded RUNNING after its last run ended"]
    assert any("trial 3" in item for item in report.wrong) and any("trial 4" in item and "never completed" in item for item in report.wrong)
    assert not report.passed


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="leftover processes are found through /proc")
def test_the_script_finds_and_ends_a_leftover_process(torture):
    """A process carrying a run's marker that outlives the run is reported (and killed)."""
    marker = f"test-{os.getpid()}"
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE,
        env={**os.environ, torture.MARKER: marker}, start_new_session=True,
    )
    try:
        leftovers = torture.reap_leftovers(marker, group=-1, grace=0.0)
        assert len(leftovers) == 1 and f"pid {proc.pid}" in leftovers[0]
        assert proc.wait(timeout=30) == -9
        assert torture.reap_leftovers(marker, group=-1, grace=0.0) == []
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        proc.stdin.close()
