"""The dashboard's data (read-only, incremental), its HTML report and its server, on stores written by hand."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import urllib.request

import pytest

from nascore.cli import main as cli
from nascore.dashboard import DASHBOARD_EXTRA_HINT
from nascore.dashboard.data import DashboardData
from nascore.dashboard.report import report_html
from nascore.engine import TrialStatus
from nascore.errors import ExperimentNotFoundError, MissingDependencyError
from nascore.experiment.store import ExperimentStore


def finished(store, sample, metric=None, status=TrialStatus.SUCCEEDED, error=None, intermediates=()):
    trial = store.add_trial(sample)
    store.set_status(trial, TrialStatus.RUNNING)
    for value in intermediates:
        store.add_metric(trial, "intermediate", value, {"default": value})
    if metric is not None:
        store.add_metric(trial, "final", metric, {"default": metric, "params": 10 * metric})
    store.set_status(trial, status, error=error)
    return trial


@pytest.fixture
def writer(tmp_path):
    store = ExperimentStore.create(tmp_path, "exp", {
        "config": {"max_trials": 10, "optimize_mode": "maximize", "format": "simplified", "engine": "sequential"},
        "strategy": {"name": "random"}, "space": [["width", "[1, 2, 3]"]], "status": "RUNNING",
    })
    yield store
    store.close()


def test_changes_fetch_everything_then_only_what_changed(writer, tmp_path):
    finished(writer, {"width": 1}, 0.1, intermediates=[0.05, 0.08])
    failed = finished(writer, {"width": 2}, status=TrialStatus.FAILED, error="RuntimeError: cursed\n\nTraceback ...")
    running = writer.add_trial({"width": 3})
    writer.set_status(running, TrialStatus.RUNNING)
    data = DashboardData(tmp_path)

    first = data.changes("exp")
    assert [t["id"] for t in first["trials"]] == [1, 2, 3]
    assert first["trials"][1]["error"] == "RuntimeError: cursed"  # the first line: the list stays small
    assert first["intermediates"] == {"1": [0.05, 0.08]}
    assert first["experiment"]["budget"]["max_trials"] == 10 and first["experiment"]["counts"]["RUNNING"] == 1
    cursor = first["cursor"]

    nothing = data.changes("exp", cursor["trial"], cursor["metric"], [])
    assert nothing["trials"] == [] and nothing["cursor"] == cursor

    # The running trial reports, then ends; a new trial arrives. Only those two come back.
    writer.add_metric(running, "intermediate", 0.2, {"default": 0.2})
    writer.add_metric(running, "final", 0.3, {"default": 0.3})
    writer.set_status(running, TrialStatus.SUCCEEDED)
    fourth = finished(writer, {"width": 1}, 0.15)
    update = data.changes("exp", cursor["trial"], cursor["metric"], [running])
    assert [t["id"] for t in update["trials"]] == [running, fourth]
    assert update["trials"][0]["status"] == "SUCCEEDED" and update["intermediates"] == {str(running): [0.2]}
    assert update["cursor"]["trial"] == fourth

    # A trial the page holds as open that failed without a metric is sent because the page names it.
    fifth = writer.add_trial({"width": 2})
    seen = data.changes("exp", update["cursor"]["trial"], update["cursor"]["metric"], [])
    writer.set_status(fifth, TrialStatus.FAILED, error="boom")
    again = data.changes("exp", seen["cursor"]["trial"], seen["cursor"]["metric"], [fifth])
    assert [(t["id"], t["status"]) for t in again["trials"]] == [(fifth, "FAILED")]
    assert failed == 2
    data.close()


def test_trial_details_log_tail_and_no_nan(writer, tmp_path):
    trial = finished(writer, {"width": 2}, status=TrialStatus.FAILED, error="ValueError: bad\n\nTraceback: long")
    log = writer.trial_dir(trial) / "trial.log"
    log.parent.mkdir(parents=True)
    log.write_text("".join(f"line {i}\n" for i in range(100)))
    nan_trial = finished(writer, {"width": 1}, float("nan"))
    data = DashboardData(tmp_path)
    detail = data.trial("exp", trial)
    assert detail["error"].startswith("ValueError: bad\n\nTraceback")
    assert detail["log_tail"].splitlines()[-1] == "line 99" and len(detail["log_tail"].splitlines()) == 40
    assert detail["code_available"] is False
    nan = data.changes("exp")["trials"][-1]
    assert nan["id"] == nan_trial and nan["metric"] is None and nan["metrics"]["default"] is None
    json.dumps(data.changes("exp"), allow_nan=False)  # the browser's JSON has no NaN
    with pytest.raises(ExperimentNotFoundError):
        data.experiment("../exp")
    with pytest.raises(ExperimentNotFoundError):
        data.changes("nope")
    assert data.code("exp", trial)["error"].startswith("the experiment's format is 'simplified'")
    data.close()


def test_experiment_list_and_dead_status(writer, tmp_path):
    finished(writer, {"width": 3}, 0.3)
    data = DashboardData(tmp_path)
    [row] = data.experiments()
    assert row["id"] == "exp" and row["status"] == "RUNNING" and row["best"] == 0.3
    writer.close()  # recorded RUNNING, nobody holds it: killed
    assert data.experiment("exp")["status"] == "DEAD"
    assert DashboardData(tmp_path / "missing").experiments() == []


def test_report_is_one_self_contained_file(writer, tmp_path):
    finished(writer, {"width": 3}, 0.3, intermediates=[0.1])
    finished(writer, {"width": 2}, status=TrialStatus.FAILED, error="RuntimeError: cursed")
    writer.close()
    page = report_html(tmp_path, "exp")
    assert '<script src=' not in page and '<link rel="stylesheet"' not in page  # nothing loaded from elsewhere
    assert "echarts" in page and "RuntimeError: cursed" in page
    settings = json.loads(_settings_text(page))
    assert settings["mode"] == "static" and [t["id"] for t in settings["data"]["changes"]["trials"]] == [1, 2]
    assert settings["data"]["details"]["2"]["error"] == "RuntimeError: cursed"
    out = tmp_path / "report.html"
    assert cli(["report", "exp", "--experiment-dir", str(tmp_path), "--html", str(out)]) == 0
    written = json.loads(_settings_text(out.read_text()))
    assert written["mode"] == "static" and len(written["data"]["changes"]["trials"]) == 2
    assert cli(["report", "exp", "--experiment-dir", str(tmp_path), "--html", str(tmp_path / "r.txt")]) == 2


def _settings_text(page: str) -> str:
    start = page.index("window.NASCORE_SETTINGS = ") + len("window.NASCORE_SETTINGS = ")
    return page[start:page.index(";</script>", start)]


def test_the_core_imports_without_the_dashboard_extra_and_says_what_to_install(tmp_path):
    code = (
        "import sys; sys.modules['starlette'] = None; sys.modules['uvicorn'] = None\n"
        "import nascore, nascore.cli, nascore.dashboard, nascore.dashboard.data, nascore.dashboard.report\n"
        "import nascore.dashboard.server\n"
        f"raise SystemExit(nascore.cli.main(['dashboard', '--experiment-dir', {str(tmp_path)!r}]))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    assert DASHBOARD_EXTRA_HINT in result.stderr and "Traceback" not in result.stderr


def test_missing_server_library_is_a_clear_error(monkeypatch):
    from nascore.dashboard.server import require_server_dependencies

    monkeypatch.setitem(sys.modules, "uvicorn", None)
    with pytest.raises(MissingDependencyError, match=r"needs uvicorn.*nascore\[dashboard\]"):
        require_server_dependencies()


def test_server_answers_the_api_read_only(writer, tmp_path):
    pytest.importorskip("starlette")
    pytest.importorskip("uvicorn")
    from nascore.dashboard.server import DashboardServer

    finished(writer, {"width": 3}, 0.3, intermediates=[0.1, 0.2])

    def get(url, body=None, host=None):
        request = urllib.request.Request(url, data=json.dumps(body).encode() if body is not None else None,
                                         headers={"Content-Type": "application/json", **({"Host": host} if host else {})})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    with DashboardServer(tmp_path, "exp", port=0) as server:
        assert server.url.startswith("http://127.0.0.1:")
        status, page = get(server.url)
        assert status == 200 and b'"experiment": "exp"' in page and b"static/app.js" in page
        assert get(server.url + "static/vendor/echarts.min.js")[0] == 200
        assert get(server.url + "static/vendor/LICENSE-echarts.txt")[0] == 200
        status, body = get(server.url + "api/experiments")
        assert status == 200 and json.loads(body)[0]["id"] == "exp"
        status, body = get(server.url + "api/experiments/exp/changes", {"trial": 0, "metric": 0, "open": []})
        assert status == 200 and json.loads(body)["intermediates"] == {"1": [0.1, 0.2]}
        status, body = get(server.url + "api/experiments/exp/trials/1")
        assert status == 200 and json.loads(body)["sample"] == {"width": 3}
        assert get(server.url + "api/experiments/nope")[0] == 404
        assert get(server.url + "api/experiments/exp/changes", {"trial": "x"})[0] == 400
        assert get(server.url + "api/experiments", host="evil.example")[0] == 400  # DNS rebinding
        status, body = get(server.url + "api/experiments/exp/oneshot")
        assert status == 200 and json.loads(body)["history"] is None


def test_finite_replaces_nan():
    from nascore.dashboard.data import finite

    assert finite({"a": [1.0, math.inf, {"b": math.nan}]}) == {"a": [1.0, None, {"b": None}]}
