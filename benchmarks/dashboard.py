"""The dashboard on a 10,000-trial experiment: time to first paint and to a refresh, in headless Chromium.

Builds the store directly through the store API (no trial runs): 10,000 trials over three decisions,
each with 5 intermediate results and two metrics, 5% failed. The writer stays open (the experiment looks
RUNNING, so the dashboard reads it live), the dashboard serves it, and Chromium (Debian's ``chromium``
and ``chromium-driver``, driven by selenium with the driver's path given: nothing is downloaded) opens
the trial table. Then 20 more trials are written and the page is timed until it shows them.

    python benchmarks/dashboard.py [--trials 10000] [--poll 1.0] [--screenshot docs/dashboard.png]

Prints: building the store; the server's answers (everything, and an incremental refresh); the page's
navigation timing, first contentful paint, the table rendered with every trial, the history chart
drawn; the refresh as the user sees it (including up to one polling interval) and what it cost the
page (fetch and render of the changes).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

from nascore.dashboard.data import DashboardData
from nascore.dashboard.server import DashboardServer
from nascore.engine import TrialStatus
from nascore.experiment.store import ExperimentStore

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
WIDTHS, OPS, DEPTHS = [16, 32, 64, 128], ["conv3x3", "conv5x5", "maxpool", "skip", "sepconv"], [1, 2, 3, 4]


def add_trials(store: ExperimentStore, count: int, rng: random.Random) -> None:
    for _ in range(count):
        sample = {"width": rng.choice(WIDTHS), "op": rng.choice(OPS), "depth": rng.choice(DEPTHS)}
        trial = store.add_trial(sample)
        store.set_status(trial, TrialStatus.RUNNING)
        quality = sample["width"] / 128 * 0.3 + OPS.index(sample["op"]) * 0.05 + sample["depth"] * 0.04
        for step in range(1, 6):
            store.add_metric(trial, "intermediate", quality * step / 5 + rng.gauss(0, 0.02), {"default": 0})
        if rng.random() < 0.05:
            store.set_status(trial, TrialStatus.FAILED, error="RuntimeError: CUDA out of memory (simulated)\n\nTraceback ...")
            continue
        metric = quality + rng.gauss(0, 0.03)
        store.add_metric(trial, "final", metric, {"default": metric, "latency_ms": sample["width"] * sample["depth"] * 0.1})
        store.set_status(trial, TrialStatus.SUCCEEDED)


def build(folder: Path, trials: int) -> ExperimentStore:
    store = ExperimentStore.create(folder, "bench", {
        "config": {"max_trials": trials + 100, "optimize_mode": "maximize", "format": "simplified", "engine": "sequential"},
        "strategy": {"name": "random"}, "status": "RUNNING", "experiment_name": "10k trials",
        "space": [["width", json.dumps(WIDTHS)], ["op", json.dumps(OPS)], ["depth", json.dumps(DEPTHS)]],
    })
    store._conn.execute("PRAGMA synchronous=OFF")  # a benchmark's throwaway store: no fsync per trial
    add_trials(store, trials, random.Random(0))
    return store


def browser():  # type: ignore[no-untyped-def]
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1400,1000"):
        options.add_argument(argument)
    return webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)


def wait(driver, script: str, timeout: float = 120.0) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    while not driver.execute_script(script):
        if time.perf_counter() - start > timeout:
            raise SystemExit(f"timed out waiting for: {script}")
        time.sleep(0.01)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--poll", type=float, default=1.0, help="the page's polling interval in seconds (default 1)")
    parser.add_argument("--screenshot", type=Path, default=None, help="save a screenshot of the history view there")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="nascore-dashboard-bench-") as tmp:
        folder = Path(tmp)
        start = time.perf_counter()
        store = build(folder, args.trials)
        print(f"store: {args.trials} trials, {args.trials * 6:,} metric rows written in {time.perf_counter() - start:.1f} s "
              f"({(folder / 'bench' / 'experiment.db').stat().st_size / 1e6:.1f} MB + WAL)")
        try:
            data = DashboardData(folder)
            start = time.perf_counter()
            everything = data.changes("bench")
            full = time.perf_counter() - start
            size = len(json.dumps(everything))
            cursor = everything["cursor"]
            start = time.perf_counter()
            data.changes("bench", cursor["trial"], cursor["metric"], [])
            empty = time.perf_counter() - start
            print(f"server: every trial {full * 1000:.0f} ms ({size / 1e6:.1f} MB of JSON before gzip); "
                  f"a refresh with nothing new {empty * 1000:.1f} ms")
            with DashboardServer(folder, "bench", port=0, poll_ms=int(args.poll * 1000)) as server:
                driver = browser()
                try:
                    start = time.perf_counter()
                    driver.get(server.url + "#/exp/bench/trials")
                    wait(driver, f"return document.body.dataset.ready === '1' && document.body.dataset.trials === '{args.trials}'"
                                 " && document.querySelectorAll('#trials-table tbody tr').length > 0")
                    table = time.perf_counter() - start
                    timing = driver.execute_script(
                        "const n = performance.getEntriesByType('navigation')[0];"
                        "const p = performance.getEntriesByName('first-contentful-paint')[0];"
                        "return {dom: n.domContentLoadedEventEnd, load: n.loadEventEnd, fcp: p ? p.startTime : null,"
                        " rendered: window.NASCORE_TIMING.rendered_ms, fetch: window.NASCORE_TIMING.first_fetch_ms};")
                    print(f"page: DOM ready {timing['dom']:.0f} ms, first contentful paint {timing['fcp']:.0f} ms, "
                          f"trial table with {args.trials} trials rendered at {timing['rendered']:.0f} ms "
                          f"(its data fetched in {timing['fetch']:.0f} ms); {table:.2f} s from the request in all")
                    start = time.perf_counter()
                    driver.execute_script("location.hash = '#/exp/bench/history'")
                    wait(driver, f"const c = document.querySelector('#history-chart'); return c && c.dataset.points === '{args.trials}'")
                    print(f"page: history chart of {args.trials} trials drawn in {time.perf_counter() - start:.2f} s")
                    if args.screenshot is not None:
                        args.screenshot.parent.mkdir(parents=True, exist_ok=True)
                        time.sleep(0.5)
                        driver.save_screenshot(str(args.screenshot))
                        print(f"screenshot: {args.screenshot}")
                    driver.execute_script("location.hash = '#/exp/bench/trials'")
                    wait(driver, "return document.body.dataset.view === 'trials'")
                    start = time.perf_counter()
                    add_trials(store, 20, random.Random(1))
                    written = time.perf_counter()
                    wait(driver, f"return document.body.dataset.trials === '{args.trials + 20}'")
                    seen = time.perf_counter() - written
                    cost = driver.execute_script("return window.NASCORE_TIMING")
                    print(f"refresh: 20 new trials written in {written - start:.2f} s, on the page {seen:.2f} s later "
                          f"(polling every {args.poll:g} s); the refresh cost the page {cost['refresh_fetch_ms']:.0f} ms "
                          f"to fetch ({cost['refresh_trials']} trials) and {cost['refresh_render_ms']:.0f} ms to redraw")
                finally:
                    driver.quit()
            data.close()
        finally:
            store.close()


if __name__ == "__main__":
    sys.exit(main())
