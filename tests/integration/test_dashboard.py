"""The dashboard end to end: a real browser (headless Chromium driven by selenium) on a running experiment,
the HTML report, graph-format code, one-shot architecture weights, and the store left untouched.

The browser tests need Debian's ``chromium`` and ``chromium-driver`` (``apt-get install -y chromium
chromium-driver``) and selenium; they are skipped, saying so, only when those are absent. Screenshots of
every view go to the test's folder, and to ``$NASCORE_DASHBOARD_SCREENSHOTS`` when it is set
(e.g. ``benchmarks/results/dashboard``).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest

from nascore.cli import main as cli
from nascore.experiment import Experiment, ExperimentConfig

pytest.importorskip("starlette", reason="the dashboard extra is not installed: pip install 'nascore[dashboard]'")
pytest.importorskip("uvicorn", reason="the dashboard extra is not installed: pip install 'nascore[dashboard]'")

from nascore.dashboard.server import DashboardServer  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
#: The grid in its order (4/relu, 4/tanh, 4/id, 8/relu, 8/tanh, ...): the 5th trial is the one that fails.
GRID_IN_ORDER = {"shuffle": False}

JOB = textwrap.dedent(
    '''
    """A small importable search job with slow trials, one of which fails."""
    import time

    import torch.nn as nn

    import nascore
    from nascore.evaluators import FunctionalEvaluator
    from nascore.nn import LayerChoice, ModelSpace, MutableLinear


    class Space(ModelSpace):
        def __init__(self, features=4):
            super().__init__()
            width = nascore.choice("width", [4, 8, 16])
            self.inp = MutableLinear(features, width)
            self.act = LayerChoice({"relu": nn.ReLU(), "tanh": nn.Tanh(), "id": nn.Identity()}, label="act")
            self.out = MutableLinear(width, 2)

        def forward(self, x):
            return self.out(self.act(self.inp(x)))


    def score(model, delay=0.0):
        sample = nascore.get_current_sample()
        value = sample["width"] / 16 + (sample["act"] == "relu") * 0.1
        for step in range(3):
            time.sleep(delay / 3)
            nascore.report_intermediate_result(value * (step + 1) / 3)
        if sample["width"] == 8 and sample["act"] == "tanh":
            raise RuntimeError("width 8 with tanh is cursed")
        return {"default": value, "params": sum(p.numel() for p in model.parameters())}


    def evaluator(delay=0.0):
        return FunctionalEvaluator(score, delay=delay)
    '''
)


@pytest.fixture
def dashjob(tmp_path):
    (tmp_path / "dashjob.py").write_text(JOB)
    sys.path.insert(0, str(tmp_path))
    import dashjob

    yield dashjob
    sys.path.remove(str(tmp_path))
    sys.modules.pop("dashjob", None)


@pytest.fixture
def screenshots(tmp_path):
    """``shoot(browser, name)`` saves a screenshot in the test's folder (and in $NASCORE_DASHBOARD_SCREENSHOTS)."""
    folder = tmp_path / "screenshots"
    folder.mkdir()
    extra = os.environ.get("NASCORE_DASHBOARD_SCREENSHOTS")

    def shoot(browser, name):
        path = folder / f"{name}.png"
        browser.save_screenshot(str(path))
        if extra:
            Path(extra).mkdir(parents=True, exist_ok=True)
            shutil.copy(path, Path(extra) / path.name)
        return path

    return shoot


@pytest.fixture
def browser(monkeypatch):
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip("headless browser tests need Debian's chromium and chromium-driver: apt-get install -y chromium chromium-driver")
    webdriver = pytest.importorskip("selenium.webdriver", reason="the browser tests need selenium: pip install selenium")
    from selenium.webdriver.chrome.service import Service

    monkeypatch.setenv("SE_OFFLINE", "true")  # selenium-manager must never download a browser or a driver
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1400,1000"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def wait_for(condition, timeout=60.0, what="the condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.1)


def css(browser, selector):
    from selenium.webdriver.common.by import By

    return browser.find_elements(By.CSS_SELECTOR, selector)


def go(browser, hash_, ready_selector):
    browser.execute_script("location.hash = arguments[0]", hash_)
    return wait_for(lambda: css(browser, ready_selector), 30, ready_selector)


def rows(browser):
    """``[(id, status)]`` of the table's rows, read in one go (the page redraws the table as trials change)."""
    return [tuple(r) for r in browser.execute_script(
        "return Array.from(document.querySelectorAll('#trials-table tbody tr')).map(r => [Number(r.dataset.id), r.dataset.status])")]


def text_of(browser, selector):
    """The text of the first element matching ``selector``, read in one script call (a live page may redraw between a find and a read)."""
    return browser.execute_script("const e = document.querySelector(arguments[0]); return e ? e.innerText : null", selector)


def svg_marks(browser, selector):
    """The drawn marks (paths) in the SVG of the chart ``selector``."""
    return len(css(browser, f"{selector} svg path"))


def test_live_dashboard_on_a_running_experiment(dashjob, tmp_path, browser, screenshots):
    experiments = tmp_path / "exps"
    run = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import dashjob
            from nascore.experiment import Experiment, ExperimentConfig
            config = ExperimentConfig(experiment_dir={str(experiments)!r}, max_trials=6, progress="off", experiment_name="live demo",
                                      strategy_options={{"shuffle": False}})
            Experiment(dashjob.Space(), dashjob.evaluator(delay=1.2), "grid", config, id="live").run()
        """)],
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(tmp_path)}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        wait_for(lambda: (experiments / "live" / "experiment.db").exists() or run.poll() is not None, 90, "the experiment to start")
        assert run.poll() is None, run.stdout.read()
        with DashboardServer(experiments, "live", port=0, poll_ms=250) as server:
            browser.get(server.url + "#/exp/live/trials")
            go(browser, "#/exp/live/trials", "#trials-table")
            # Trials appear as they finish, while the experiment runs.
            finished = lambda: sum(status in ("SUCCEEDED", "FAILED") for _, status in rows(browser))  # noqa: E731
            seen = {finished()}
            while run.poll() is None and finished() < 6:
                seen.add(finished())
                time.sleep(0.1)
            assert len(seen) >= 3, f"the page showed {sorted(seen)} finished trials while the experiment ran"
            assert browser.execute_script("return window.NASCORE_STATE.exp.status") in ("RUNNING", "DONE")
            assert run.wait(60) == 0, run.stdout.read()
            wait_for(lambda: finished() == 6, 30, "all 6 trials in the table")
            wait_for(lambda: browser.execute_script("return window.NASCORE_STATE.exp.status") == "DONE", 30, "status DONE")
            assert sorted(rows(browser)) == [(i, s) for i, s in sorted(rows(browser))]
            failed = [i for i, s in rows(browser) if s == "FAILED"]
            assert len(failed) == 1
            columns = [th.text for th in css(browser, "#trials-table thead th")]
            assert {"Metric", "params", "Duration", "Error"} <= set(columns)
            screenshots(browser, "trials")

            # Sort by the metric (best first), then the other way.
            css(browser, '#trials-table th[data-key="metric"]')[0].click()
            metrics = [c.text for c in css(browser, "#trials-table tbody td.metric")]
            values = [float(m) for m in metrics if m != "–"]
            assert values == sorted(values, reverse=True) and len(values) == 5 and metrics[-1] == "–"
            css(browser, '#trials-table th[data-key="metric"]')[0].click()
            values = [float(c.text) for c in css(browser, "#trials-table tbody td.metric") if c.text != "–"]
            assert values == sorted(values)

            # Filter the failed trial, open its error and the end of its log.
            from selenium.webdriver.support.ui import Select

            Select(css(browser, "#status-filter")[0]).select_by_value("FAILED")
            assert [s for _, s in rows(browser)] == ["FAILED"]
            assert "width 8 with tanh is cursed" in css(browser, "#trials-table tbody td.error")[0].text
            css(browser, "#trials-table tbody tr")[0].click()
            error = wait_for(lambda: css(browser, "#trial-error"), 30, "the trial's error")[0]
            assert "RuntimeError: width 8 with tanh is cursed" in error.text and "Traceback" in error.text
            assert "cursed" in css(browser, "#trial-log")[0].text
            assert svg_marks(browser, "#trial-curve") >= 1
            screenshots(browser, "failed-trial")

            # Plots: drawn with a mark per trial, not only a page that loads.
            go(browser, "#/exp/live/history", "#history-chart svg")
            chart = css(browser, "#history-chart")[0]
            assert chart.get_attribute("data-points") == "6"  # 5 successful trials and the failed one
            assert svg_marks(browser, "#history-chart") >= 6
            screenshots(browser, "history")
            go(browser, "#/exp/live/curves", "#curves-chart svg")
            assert int(css(browser, "#curves-chart")[0].get_attribute("data-points")) == 18  # 3 results x 6 trials
            assert svg_marks(browser, "#curves-chart") >= 6
            screenshots(browser, "intermediates")
            go(browser, "#/exp/live/decisions", "#parallel-chart svg")
            assert css(browser, "#parallel-chart")[0].get_attribute("data-points") == "5"
            assert svg_marks(browser, "#parallel-chart") >= 5
            panels = css(browser, "#decision-charts .panel")
            assert sorted(p.get_attribute("data-label") for p in panels) == ["act", "width"]
            assert all(svg_marks(browser, f'#decision-charts .panel[data-label="{label}"]') >= 3 for label in ("act", "width"))
            screenshots(browser, "decisions")

            # Two trials side by side: the decisions that differ are marked.
            go(browser, "#/exp/live/trials", "#trials-table")
            Select(css(browser, "#status-filter")[0]).select_by_value("ALL")
            boxes = css(browser, "#trials-table tbody input.pick")
            boxes[0].click()
            css(browser, "#trials-table tbody input.pick")[1].click()
            css(browser, "#compare-button")[0].click()
            wait_for(lambda: css(browser, "#compare-table"), 30, "the comparison")
            assert len(css(browser, "#compare-table tr.diff")) >= 1
            screenshots(browser, "compare")

            go(browser, "#/exp/live/overview", "#exp-status")
            assert text_of(browser, "#exp-status") == "DONE" and text_of(browser, "#exp-trials") == "6 / 6"
            screenshots(browser, "overview")
            go(browser, "#/", "#experiments-table")
            assert "live demo" in text_of(browser, "#experiments-table")
            # The list is polled, but an unchanged list is not redrawn.
            browser.execute_script("document.querySelector('#experiments-table').dataset.mark = 'kept'")
            for _ in range(2):
                polled = browser.execute_script("return window.NASCORE_STATE.lastOk")
                wait_for(lambda before=polled: browser.execute_script("return window.NASCORE_STATE.lastOk") != before, 30, "a poll of the list")
            assert browser.execute_script("return document.querySelector('#experiments-table').dataset.mark") == "kept"
            screenshots(browser, "experiments")
            assert not css(browser, ".load-error")

        # The same views as one file, with no server.
        report = tmp_path / "report.html"
        assert cli(["report", "live", "--experiment-dir", str(experiments), "--html", str(report)]) == 0
        browser.get(report.as_uri() + "#/exp/live/history")
        wait_for(lambda: css(browser, "#history-chart svg"), 30, "the report's history")
        assert svg_marks(browser, "#history-chart") >= 6
        go(browser, "#/exp/live/trials", "#trials-table")
        assert len(rows(browser)) == 6
        go(browser, f"#/exp/live/trial/{failed[0]}", "#trial-error")
        assert "cursed" in css(browser, "#trial-error")[0].text and "cursed" in css(browser, "#trial-log")[0].text
        screenshots(browser, "report")
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()


def test_graph_trials_show_their_generated_code_and_its_difference(dashjob, tmp_path, browser, screenshots):
    config = ExperimentConfig(experiment_dir=tmp_path / "exps", max_trials=3, format="graph", progress="off",
                              strategy_options=GRID_IN_ORDER)
    exp = Experiment(dashjob.Space(), dashjob.evaluator(), "grid", config, id="graph")
    assert exp.run() == "DONE"
    with DashboardServer(tmp_path / "exps", "graph", port=0) as server:
        browser.get(server.url + "#/exp/graph/trial/1")
        code = wait_for(lambda: [e for e in css(browser, "#trial-code") if "def forward" in e.text], 60, "the generated code")[0]
        assert "class " in code.text and "nn.Linear" in code.text
        screenshots(browser, "graph-code")
        go(browser, "#/exp/graph/compare/1/2", "#compare-table")
        wait_for(lambda: css(browser, "#code-diff span.add") and css(browser, "#code-diff span.del"), 60, "the code's difference")
        screenshots(browser, "graph-compare")


def test_one_shot_runs_show_the_architecture_weights_over_training(tmp_path, browser, screenshots):
    import torch.nn as nn

    import nascore
    from nascore.nn import LayerChoice, ModelSpace, MutableLinear

    from .conftest import digits_classification

    class Net(ModelSpace):
        def __init__(self):
            super().__init__()
            width = nascore.choice("width", [16, 32])
            self.inp = MutableLinear(64, width)
            self.act = LayerChoice({"relu": nn.ReLU(), "tanh": nn.Tanh(), "id": nn.Identity()}, label="act")
            self.out = MutableLinear(width, 10)

        def forward(self, x):
            return self.out(self.act(self.inp(x)))

    config = ExperimentConfig(format="raw", experiment_dir=tmp_path / "exps", seed=0, progress="off",
                              strategy_options={"top_k": 2, "arc_learning_rate": 0.05})
    exp = Experiment(Net(), digits_classification(n_train=640, max_epochs=2), "darts", config, id="darts")
    assert exp.run() == "DONE"
    history = json.loads((tmp_path / "exps" / "darts" / "strategy" / "architecture_weights.json").read_text())
    assert history["strategy"] == "DARTS" and history["values"] == {"width": [16, 32], "act": ["relu", "tanh", "id"]}
    steps = [p["step"] for p in history["points"]]
    assert steps[0] == 0 and steps[-1] == 20 and steps == sorted(steps) and len(steps) >= 10  # 10 batches x 2 epochs
    assert all(abs(sum(p["probs"]["act"]) - 1) < 1e-4 for p in history["points"])
    assert history["points"][0]["probs"] != history["points"][-1]["probs"]  # the weights moved

    with DashboardServer(tmp_path / "exps", "darts", port=0) as server:
        browser.get(server.url + "#/exp/darts/oneshot")
        wait_for(lambda: len(css(browser, "#alpha-charts svg")) == 2, 30, "the architecture weights' charts")
        assert all(svg_marks(browser, f"#alpha-{i}") >= 2 for i in range(2))
        assert int(css(browser, "#alpha-1")[0].get_attribute("data-points")) == 3 * len(steps)
        exported = css(browser, "#exported-table tbody tr")
        assert len(exported) == 2 and all(r.find_elements("css selector", "a") for r in exported)
        screenshots(browser, "oneshot")
    report = tmp_path / "darts.html"
    assert cli(["report", "darts", "--experiment-dir", str(tmp_path / "exps"), "--html", str(report)]) == 0
    browser.get(report.as_uri() + "#/exp/darts/oneshot")
    wait_for(lambda: len(css(browser, "#alpha-charts svg")) == 2, 30, "the report's architecture weights")


def _every_file(folder):
    """Every file, SQLite's -wal/-shm included, with its bytes and modification time."""
    return {
        str(p.relative_to(folder)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*")) if p.is_file()
    }


def _get(url, body=None):
    request = urllib.request.Request(url, data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def _read_everything(url, experiment_id):
    api = url + "api/experiments"
    assert [e["id"] for e in _get(api)] == [experiment_id]
    _get(f"{api}/{experiment_id}")
    changes = _get(f"{api}/{experiment_id}/changes", {"trial": 0, "metric": 0, "open": []})
    for t in changes["trials"]:
        _get(f"{api}/{experiment_id}/trials/{t['id']}")
    _get(f"{api}/{experiment_id}/oneshot")
    return changes


def test_dashboard_report_and_show_leave_the_store_untouched_and_serve_read_only_media(dashjob, tmp_path, mounts):
    experiments = tmp_path / "exps"
    config = ExperimentConfig(experiment_dir=experiments, max_trials=9, progress="off", strategy_options=GRID_IN_ORDER)
    assert Experiment(dashjob.Space(), dashjob.evaluator(), "grid", config, id="done").run() == "DONE"
    before = _every_file(experiments)
    with DashboardServer(experiments, port=0) as server:
        changes = _read_everything(server.url, "done")
        assert len(changes["trials"]) == 9 and sum(t["status"] == "FAILED" for t in changes["trials"]) == 1
    assert cli(["show", "done", "--experiment-dir", str(experiments)]) == 0
    assert cli(["report", "done", "--experiment-dir", str(experiments), "--html", str(tmp_path / "r.html")]) == 0
    assert _every_file(experiments) == before

    copy = tmp_path / "read-only"
    shutil.copytree(experiments, copy)
    subprocess.run(["chmod", "-R", "a-w", str(copy)], check=True)
    mounts.read_only(copy)  # as root, permissions stop nothing: a read-only bind mount does
    try:
        frozen = _every_file(copy)
        with DashboardServer(copy, "done", port=0) as server:
            assert len(_read_everything(server.url, "done")["trials"]) == 9
        assert cli(["show", "done", "--experiment-dir", str(copy)]) == 0
        assert _every_file(copy) == frozen
    finally:
        mounts.writable(copy)
        subprocess.run(["chmod", "-R", "u+w", str(copy)], check=True)
