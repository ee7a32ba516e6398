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
    assert cli("list", "--experiment-dir", str(tmp_path / "empty")).stdout.strip() == "no experiments"
