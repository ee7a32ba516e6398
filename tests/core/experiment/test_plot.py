"""The history plot: an SVG of every trial and the best so far, readable without a plotting library."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from nascore.experiment.plot import best_so_far, history_svg

SVG = "{http://www.w3.org/2000/svg}"


def trials():
    metrics = [0.3, 0.5, None, 0.4, 0.7, 0.6]
    return [{"id": i, "status": "FAILED" if m is None else "SUCCEEDED", "metric": m} for i, m in enumerate(metrics, 1)]


def test_best_so_far_follows_the_direction():
    points = [(1, 0.3), (2, 0.5), (4, 0.4), (5, 0.7)]
    assert best_so_far(points) == [(1, 0.3), (2, 0.5), (4, 0.5), (5, 0.7)]
    assert best_so_far(points, maximize=False) == [(1, 0.3), (2, 0.3), (4, 0.3), (5, 0.3)]


def test_the_svg_draws_each_trial_the_best_line_and_the_failures():
    root = ET.fromstring(history_svg(trials(), title="Experiment x <1>"))
    circles = [c for c in root.iter(f"{SVG}circle") if c.get("class") == "trial"]
    assert len(circles) == 5  # the successful trials
    assert [c.find(f"{SVG}title").text for c in circles][-1] == "trial 6: 0.6"
    (best,) = [p for p in root.iter(f"{SVG}path") if p.get("class") == "best"]
    assert best.get("d").startswith("M") and best.get("d").count("V") == 2  # it rises at 0.5 and 0.7, not at 0.4 or 0.6
    failed = [t for t in root.iter(f"{SVG}text") if t.get("class") == "failed"]
    assert [t.find(f"{SVG}title").text for t in failed] == ["trial 3 failed"]
    assert any(t.text == "Experiment x <1>" for t in root.iter(f"{SVG}text"))  # escaped, still valid XML


def test_an_experiment_without_results_still_draws():
    root = ET.fromstring(history_svg([{"id": 1, "status": "FAILED", "metric": None}], title="nothing yet"))
    assert not [c for c in root.iter(f"{SVG}circle") if c.get("class") == "trial"]
