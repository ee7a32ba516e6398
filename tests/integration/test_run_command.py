"""A search started from the shell: `nascore run CONFIG.toml` shows its progress, Ctrl-C stops it cleanly,
`nascore resume` continues it with a larger budget; and a script's search shows progress with no set-up."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest
import torch.nn as nn

import nascore
from nascore.errors import ConfigError
from nascore.evaluators import FunctionalEvaluator
from nascore.experiment import Experiment, ExperimentConfig
from nascore.experiment.runfile import load_run_file
from nascore.nn import LayerChoice, ModelSpace, MutableLinear

SPACE_MODULE = '''
import os
import time

import nascore
import torch.nn as nn
from nascore.nn import LayerChoice, ModelSpace, MutableLinear


class Net(ModelSpace):
    def __init__(self, inputs=3):
        super().__init__()
        self.fc = MutableLinear(inputs, nascore.choice("width", [1, 2, 3, 4, 5, 6, 7, 8]))
        self.act = LayerChoice([nn.ReLU(), nn.Sigmoid()], label="act")

    def forward(self, x):
        return self.act(self.fc(x))


def train(model, scale=1.0, hold_after=None):
    sample = nascore.get_current_sample()
    if hold_after is not None and nascore.trial.get_current_trial().trial_id > hold_after:
        time.sleep(60)  # the test interrupts the run while this trial runs
    return sample["width"] * scale
'''


def write_search(tmp_path, **evaluator_kwargs):
    (tmp_path / "my_search.py").write_text(SPACE_MODULE)
    kwargs = ", ".join(f"{k} = {json.dumps(v)}" for k, v in {"scale": 0.5, **evaluator_kwargs}.items())
    (tmp_path / "search.toml").write_text(textwrap.dedent(f'''
        strategy = "grid"
        max_trials = 6
        experiment_dir = "{tmp_path / 'exps'}"

        [space]
        class = "my_search:Net"
        kwargs = {{ inputs = 3 }}

        [evaluator]
        function = "my_search:train"
        kwargs = {{ {kwargs} }}
    '''))
    return tmp_path / "search.toml"


def nascore_cli(*args, cwd, **kwargs):
    env = {**os.environ, "NASCORE_PROGRESS": "lines"}
    return subprocess.Popen([sys.executable, "-m", "nascore", *args], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)


def test_run_then_resume_with_a_larger_budget(tmp_path):
    path = write_search(tmp_path)
    run = nascore_cli("run", str(path), cwd="/")  # the space module is found beside the run file
    out, err = run.communicate(timeout=120)
    assert run.returncode == 0, err
    result = json.loads(out)
    assert result["status"] == "DONE"
    first = Experiment.view(result["experiment"], experiment_dir=tmp_path / "exps").trials()
    assert len(first) == 6 and result["metric"] == max(t.metric for t in first)
    assert "[6/6] trial 6" in err and f"nascore show {result['experiment']}" in err
    resume = nascore_cli("resume", result["experiment"], "--experiment-dir", str(tmp_path / "exps"), "--max-trials",
                         "10", cwd=tmp_path)
    out, err = resume.communicate(timeout=120)
    assert resume.returncode == 0, err
    assert "[10/10] trial 10" in err and "[5/10]" not in err  # the first six are kept, not rerun
    exp = Experiment.view(result["experiment"], experiment_dir=tmp_path / "exps")
    assert len(exp.trials()) == 10 and exp.config.max_trials == 10  # the new budget is stored
    assert json.loads(out)["metric"] == max(t.metric for t in exp.trials())


def test_ctrl_c_stops_cleanly_and_resume_continues(tmp_path):
    path = write_search(tmp_path, hold_after=3)
    run = nascore_cli("run", str(path), cwd=tmp_path, start_new_session=True)
    lines = []
    for line in run.stderr:  # wait for the third trial to finish: trial 4 then holds
        lines.append(line)
        if line.startswith("[3/6]"):
            break
    os.killpg(run.pid, signal.SIGINT)
    _, rest = run.communicate(timeout=60)
    err = "".join(lines) + rest
    assert run.returncode == 130, err
    exp_id = next(line.split()[1] for line in lines if line.startswith("experiment "))
    assert f"nascore resume {exp_id}" in err and "INTERRUPTED" in err
    # resume without the hold: the interrupted trial runs again, nothing finished is rerun
    (tmp_path / "search.toml").write_text((tmp_path / "search.toml").read_text().replace(", hold_after = 3", ""))
    exp = Experiment.view(exp_id, experiment_dir=tmp_path / "exps")
    assert [t.status.value for t in exp.trials()][:3] == ["SUCCEEDED"] * 3
    (tmp_path / "my_search.py").write_text(SPACE_MODULE.replace("hold_after is not None and", "False and"))
    resume = nascore_cli("resume", exp_id, "--experiment-dir", str(tmp_path / "exps"), cwd=tmp_path)
    out, err = resume.communicate(timeout=120)
    assert resume.returncode == 0, err
    trials = Experiment.view(exp_id, experiment_dir=tmp_path / "exps").trials()
    assert len(trials) == 6 and all(t.succeeded for t in trials)


def test_run_file_mistakes_name_the_file_and_the_key(tmp_path):
    path = write_search(tmp_path)
    text = path.read_text()
    path.write_text(text.replace('class = "my_search:Net"', 'class = "my_search:Nett"'))
    with pytest.raises(ConfigError, match=r"search.toml: \[space\] class 'my_search:Nett' cannot be imported"):
        load_run_file(path).build_space()
    path.write_text(text.replace("[evaluator]", "[evaluator]\nname = \"nasbench201\""))
    with pytest.raises(ConfigError, match=r"exactly one of name / function / factory"):
        load_run_file(path)
    path.write_text(text.replace("max_trials = 6", "max_trials = -1"))
    with pytest.raises(ConfigError, match=r"search.toml.max_trials: must be positive"):
        load_run_file(path)
    path.write_text(text.replace("[space]", "[spaces]"))
    with pytest.raises(ConfigError, match=r"the \[space\] table is missing"):
        load_run_file(path)
    run = nascore_cli("run", str(tmp_path / "missing.toml"), cwd=tmp_path)
    _, err = run.communicate(timeout=60)
    assert run.returncode == 2 and "error: cannot read the run file" in err


class Space(ModelSpace):
    def __init__(self):
        super().__init__()
        self.fc = MutableLinear(3, nascore.choice("width", [2, 4, 8]))
        self.act = LayerChoice([nn.ReLU(), nn.Sigmoid()], label="act")

    def forward(self, x):
        return self.act(self.fc(x))


def score(model):
    sample = nascore.get_current_sample()
    if sample["width"] == 2 and sample["act"] == 1:
        raise RuntimeError("width 2 with a sigmoid is not allowed here")
    return sample["width"] / 8


def test_a_script_shows_progress_without_set_up(tmp_path, capfd, monkeypatch):
    monkeypatch.delenv("NASCORE_PROGRESS", raising=False)
    Experiment(Space(), FunctionalEvaluator(score), "grid", ExperimentConfig(max_trials=6, experiment_dir=tmp_path)).run()
    lines = capfd.readouterr().err.splitlines()
    trial_lines = [line for line in lines if line.startswith("[")]
    assert [line.split("]")[0] for line in trial_lines] == [f"[{i}/6" for i in range(1, 7)]  # not a terminal
    failed = next(line for line in trial_lines if "FAILED" in line)
    assert "width 2 with a sigmoid" in failed and "1 failed" in failed
    assert lines[-1].startswith("DONE: 6/6 trials | 1 failed | best 1 (trial ") and "width=8" in lines[-1]
    Experiment(Space(), FunctionalEvaluator(score), "grid",
               ExperimentConfig(max_trials=3, experiment_dir=tmp_path, progress="off")).run()
    assert "trials" not in capfd.readouterr().err


def test_show_lists_every_metric_and_plots_the_history(tmp_path):
    from nascore_hub.benchmarks import NasBench201Benchmark
    from nascore_hub.spaces import NasBench201

    config = ExperimentConfig(max_trials=12, seed=0, experiment_dir=tmp_path / "exps", format="raw", progress="off")
    exp = Experiment(NasBench201(stem_out_channels=4, num_modules_per_stack=1), NasBench201Benchmark(), "random", config)
    exp.run()
    show = subprocess.run([sys.executable, "-m", "nascore", "show", exp.id, "--experiment-dir", str(tmp_path / "exps"),
                           "--plot", str(tmp_path / "history.svg")], capture_output=True, text=True, timeout=60)
    assert show.returncode == 0, show.stderr
    header = next(line for line in show.stdout.splitlines() if line.startswith("ID "))
    assert header.split()[:7] == ["ID", "STATUS", "METRIC", "VAL_ACC", "TRAIN_TIME", "LATENCY", "MODEL_SIZE"]
    best = exp.best_trial()
    assert f"trial {best.id}: {best.metric:.6g}" in show.stdout and "train_time=" in show.stdout
    svg = (tmp_path / "history.svg").read_text()
    assert svg.count('class="trial"') == 12 and 'class="best"' in svg
    bad = subprocess.run([sys.executable, "-m", "nascore", "show", exp.id, "--experiment-dir", str(tmp_path / "exps"),
                          "--plot", str(tmp_path / "history.png")], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "give a name ending in .svg" in bad.stderr
