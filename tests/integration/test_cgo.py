"""End to end: CGO searches on the local training service, merged trials running in worker processes."""

from __future__ import annotations

import collections
import importlib
import shutil
import sys
from pathlib import Path

import attrs
import pytest

from nascore.engine import TrialStatus
from nascore.experiment import Experiment, ExperimentConfig
from nascore_cgo import CGOOptions
from nascore_engines.training_service import RemoteMachine, TrainingServiceOptions

from ..engines.training_service.conftest import sshd_factory, user_keys  # noqa: F401 - fixtures

JOB_DIR = Path(__file__).parents[1] / "cgo"


@pytest.fixture
def job(monkeypatch):
    monkeypatch.syspath_prepend(str(JOB_DIR))
    return importlib.import_module("cgo_job")




def config(tmp_path, **options):
    return ExperimentConfig(engine="cgo", format="graph", trial_concurrency=1, experiment_dir=tmp_path,
                            engine_options={"batch_waiting_time": 30, **options})


def test_four_models_train_in_one_trial_loading_each_batch_once(job, tmp_path, monkeypatch):
    loads = tmp_path / "loads.txt"
    monkeypatch.setenv("CGO_LOAD_LOG", str(loads))
    exp = Experiment(job.Space(broken=False), job.evaluator(max_epochs=2, num_sanity_val_steps=0), job.Every(),
                     config(tmp_path, max_concurrency_cgo=4))
    exp.run()
    records = exp.trials()
    assert len(records) == 4
    assert all(r.status is TrialStatus.SUCCEEDED and r.metric is not None for r in records)
    assert len(list(exp_dir(tmp_path).glob("cgo/merged-*"))) == 1  # one trial for all four models
    counts = collections.Counter(line.split()[0] for line in loads.read_text().splitlines())
    # 2 epochs: every training and validation sample loaded twice in all, not once per model.
    assert counts == {"train": 64 * 2, "val": 32 * 2}


def test_spread_placement_on_the_local_service_gives_the_results_of_pack(job, tmp_path, monkeypatch):
    metrics = {}
    for placement in ("pack", "spread"):
        loads = tmp_path / f"{placement}-loads.txt"
        monkeypatch.setenv("CGO_LOAD_LOG", str(loads))
        root = tmp_path / placement
        exp = Experiment(job.Space(broken=False), job.evaluator(max_epochs=1, num_sanity_val_steps=0), job.Every(),
                         config(root, max_concurrency_cgo=4, placement=placement))
        exp.run()
        records = exp.trials()
        assert len(records) == 4 and all(r.status is TrialStatus.SUCCEEDED for r in records)
        assert len(list(exp_dir(root).glob("cgo/merged-*"))) == 1
        counts = collections.Counter(line.split()[0] for line in loads.read_text().splitlines())
        assert counts == {"train": 64, "val": 32}  # still loaded once for all four models
        metrics[placement] = {tuple(sorted(r.sample.items())): r.metric for r in records}
    # Without GPUs a trial has one device, so spread packs: the same training, the same results.
    assert metrics["spread"] == pytest.approx(metrics["pack"], abs=1e-6)


def test_a_broken_model_falls_back_on_workers_and_the_others_keep_their_results(job, tmp_path):
    exp = Experiment(job.Space(), job.evaluator(max_epochs=1), job.Every(), config(tmp_path, max_concurrency_cgo=3))
    exp.run()
    records = exp.trials()
    assert len(records) == 6
    for record in records:
        if record.sample["act"] == "broken":
            assert record.status is TrialStatus.FAILED and "mat1 and mat2" in record.error
        else:
            assert record.status is TrialStatus.SUCCEEDED and record.metric is not None
    assert len(list(exp_dir(tmp_path).glob("cgo/merged-*"))) == 2


def exp_dir(root: Path) -> Path:
    [folder] = [p for p in root.iterdir() if p.is_dir()]
    return folder


@pytest.mark.parametrize("placement", [None, "spread"])
def test_merged_trial_runs_on_a_remote_machine(job, tmp_path, sshd_factory, user_keys, placement):  # noqa: F811
    code = tmp_path / "code"
    code.mkdir()
    shutil.copy(JOB_DIR / "cgo_job.py", code / "cgo_job.py")
    machine = sshd_factory("a")
    (tmp_path / "known_hosts").write_text(machine.known_hosts_line)
    settings = TrainingServiceOptions(
        platform="remote", known_hosts=tmp_path / "known_hosts", code_dir=code,
        machines=[RemoteMachine(host="127.0.0.1", port=machine.port, key_file=user_keys[0], python=sys.executable,
                                workdir=str(tmp_path / "remote-a"), name="a", max_trials=1)],
    )
    config = ExperimentConfig(engine="cgo", format="graph", trial_concurrency=1, experiment_dir=tmp_path / "exps",
                              engine_options=CGOOptions(**attrs.asdict(settings, recurse=False), max_concurrency_cgo=4,
                                                        **({"placement": placement} if placement else {})))
    exp = Experiment(job.Space(broken=False), job.evaluator(max_epochs=1), job.Every(), config)
    assert exp.run() == "DONE"
    records = exp.trials()
    assert len(records) == 4 and all(r.status is TrialStatus.SUCCEEDED and r.metric is not None for r in records)
    assert len(list(exp.path.glob("cgo/merged-*"))) == 1
