"""`nascore list` and `nascore show` read stored experiments and never change them."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import subprocess
import sys

import nascore
from nascore.evaluators import FunctionalEvaluator
from nascore.experiment import Experiment, ExperimentConfig
from nascore.nn import ModelSpace, MutableLinear
from nascore_strategies import GridSearch


class Space(ModelSpace):
    def __init__(self):
        super().__init__()
        self.fc = MutableLinear(2, nascore.choice("width", [1, 2, 3]))

    def forward(self, x):
        return self.fc(x)


def flaky(model):
    width = nascore.get_current_sample()["width"]
    if width == 2:
        raise RuntimeError("width two is cursed")
    return width / 10


def cli(*args):
    return subprocess.run([sys.executable, "-m", "nascore", *args], capture_output=True, text=True, timeout=60)


def digest(folder):
    """Every file's content but SQLite's own -wal/-shm housekeeping, plus a logical dump of each database."""
    files = {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.name.endswith(("-shm", "-wal"))
    }
    dumps = {}
    for db in folder.rglob("*.db"):
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        dumps[str(db)] = list(conn.iterdump())
        conn.close()
    return files, dumps


def test_list_and_show(tmp_path):
    exp = Experiment(Space(), FunctionalEvaluator(flaky), GridSearch(shuffle=False), ExperimentConfig(experiment_dir=tmp_path, experiment_name="demo"))
    exp.run()
    before = digest(tmp_path)

    listed = cli("list", "--experiment-dir", str(tmp_path))
    assert listed.returncode == 0, listed.stderr
    assert exp.id in listed.stdout and "DONE" in listed.stdout and "demo" in listed.stdout
    assert "3 (2 ok, 1 failed)" in listed.stdout and "0.3" in listed.stdout

    shown = cli("show", exp.id, "--experiment-dir", str(tmp_path))
    assert shown.returncode == 0, shown.stderr
    assert "status:   DONE" in shown.stdout and "trial 3: 0.3" in shown.stdout
    assert "RuntimeError: width two is cursed" in shown.stdout

    as_json = json.loads(cli("show", exp.id, "--experiment-dir", str(tmp_path), "--json").stdout)
    assert [t["status"] for t in as_json["trials"]] == ["SUCCEEDED", "FAILED", "SUCCEEDED"]
    assert as_json["best"][0]["sample"] == {"width": 3}
    assert json.loads(cli("list", "--experiment-dir", str(tmp_path), "--json").stdout)[0]["id"] == exp.id

    assert digest(tmp_path) == before  # read-only: nothing written


def test_show_unknown_experiment_is_a_clear_error(tmp_path):
    result = cli("show", "nope", "--experiment-dir", str(tmp_path))
    assert result.returncode == 2
    assert "no experiment 'nope'" in result.stderr and "Traceback" not in result.stderr
    missing = cli("list", "--experiment-dir", str(tmp_path / "empty"))
    assert missing.returncode == 2 and f"no such folder: {tmp_path / 'empty'}" in missing.stderr
    assert cli("list", "--experiment-dir", str(tmp_path)).stdout.strip() == f"no experiments in {tmp_path}"


def _every_file(folder):
    """Every file, SQLite's -wal/-shm included, with its bytes and modification time."""
    return {
        str(p.relative_to(folder)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*")) if p.is_file()
    }


def test_list_and_show_work_on_read_only_media_and_change_no_file(tmp_path, mounts):
    exp = Experiment(Space(), FunctionalEvaluator(flaky), GridSearch(shuffle=False), ExperimentConfig(experiment_dir=tmp_path))
    exp.run()
    before = _every_file(tmp_path)
    mounts.read_only(tmp_path)
    listed = cli("list", "--experiment-dir", str(tmp_path))
    shown = cli("show", exp.id, "--experiment-dir", str(tmp_path))
    assert listed.returncode == 0 and "DONE" in listed.stdout, listed.stderr
    assert shown.returncode == 0 and "trial 3: 0.3" in shown.stdout, shown.stderr
    view = Experiment.view(exp.id, experiment_dir=tmp_path)
    assert view.export_top_models() == [{"width": 3}]
    view.close()
    assert _every_file(tmp_path) == before


def test_a_damaged_store_is_refused_clearly_and_never_written(tmp_path):
    good = Experiment(Space(), FunctionalEvaluator(flaky), "grid", ExperimentConfig(experiment_dir=tmp_path), id="good")
    good.run()
    bad = Experiment(Space(), FunctionalEvaluator(flaky), "grid", ExperimentConfig(experiment_dir=tmp_path), id="bad")
    bad.run()
    conn = sqlite3.connect(tmp_path / "bad" / "experiment.db")
    conn.execute("UPDATE trials SET sample='{\"width\": ' WHERE id=2")
    conn.commit()
    conn.close()
    before = _every_file(tmp_path)

    listed = cli("list", "--experiment-dir", str(tmp_path))
    assert listed.returncode == 0 and "Traceback" not in listed.stderr
    rows = {line.split()[0]: line for line in listed.stdout.splitlines()[1:]}
    assert "DONE" in rows["good"] and "DAMAGED" in rows["bad"] and "trials row id=2" in rows["bad"]
    shown = cli("show", "bad", "--experiment-dir", str(tmp_path))
    assert shown.returncode == 2 and "Traceback" not in shown.stderr
    assert "is damaged: trials row id=2, column sample is not valid JSON" in shown.stderr
    resumed = subprocess.run(
        [sys.executable, "-c", f"from nascore.experiment import Experiment; Experiment.resume('bad', experiment_dir={str(tmp_path)!r}).run()"],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )
    assert resumed.returncode != 0 and "StoreDamagedError" in resumed.stderr and "will not write" in resumed.stderr
    assert _every_file(tmp_path) == before
