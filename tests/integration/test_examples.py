"""The examples run end to end: ``examples/digits_search.py`` with a few trials."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_digits_search_runs_and_names_the_best_architecture(tmp_path: Path) -> None:
    script = EXAMPLES / "digits_search.py"
    proc = subprocess.run(
        [sys.executable, str(script), "--trials", "3", "--epochs", "2", "--experiment-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=120,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-3000:]
    best = re.search(r"^Best architecture \(trial \d+\): (\{.*\})$", proc.stdout, re.MULTILINE)
    assert best, output[-3000:]
    sample = json.loads(best.group(1))
    assert {"width", "depth", "activation", "dropout", "block0/op"} <= set(sample)
    accuracy = re.search(r"^Best validation accuracy: ([0-9.]+)", proc.stdout, re.MULTILINE)
    assert accuracy and 0.0 <= float(accuracy.group(1)) <= 1.0, output[-3000:]
    assert "nascore.fixed_arch" in proc.stdout
    assert len(list(tmp_path.glob("*/best_arch.json"))) == 1
