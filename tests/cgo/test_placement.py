"""Placement of a merged trial's models: packed on the trial's device, or spread over its devices."""

from __future__ import annotations

import logging

import pytest
import pytorch_lightning as pl
import torch
import torch.nn as nn

import nascore.evaluators.lightning as core_lightning
import nascore.evaluators.multimodel as multimodel
from nascore.errors import ConfigError, EvaluatorError
from nascore.evaluators import Classification
from nascore.evaluators import Lightning as MultiModelLightning
from nascore.evaluators.multimodel import MultiModelSupervisedLearningModule, _optimizer_state_to_params
from nascore.evaluators.placement import assign_devices, check_placement, distinct_devices, trial_devices
from nascore.experiment import ExperimentConfig
from nascore.experiment.config import create_engine_for
from nascore.group import ModelGroup
from nascore.trial import run_trial
from nascore_cgo import CGOOptions

from .test_engine import drain, engine_on, submit_all

SAMPLES = [{"width": 4, "act": "relu"}, {"width": 8, "act": "tanh"}, {"width": 8, "act": "relu"}, {"width": 4, "act": "tanh"}]
CPU = torch.device("cpu")
#: A second CPU "device": ``torch.device("cpu:0") != torch.device("cpu")``, but tensors moved there
#: live on the CPU, so a merged trial can really be spread over two devices on a machine without GPUs.
CPU0 = torch.device("cpu", 0)


def cuda(i):
    return torch.device("cuda", i)


# --- the device mapping -----------------------------------------------------------------------


def test_pack_puts_every_model_on_the_first_device():
    assert assign_devices(4, ["cpu"], "pack") == [CPU] * 4
    assert assign_devices(4, ["cuda:0", "cuda:1"], "pack") == [cuda(0)] * 4
    assert assign_devices(0, ["cpu"], "pack") == []


@pytest.mark.parametrize(
    ("devices", "expected"),
    [
        (["cuda:0"], [0, 0, 0, 0]),
        (["cuda:0", "cuda:1"], [0, 1, 0, 1]),
        (["cuda:0", "cuda:1", "cuda:2"], [0, 1, 2, 0]),
    ],
)
def test_spread_puts_model_i_on_device_i_mod_n(devices, expected):
    assert assign_devices(4, devices, "spread") == [cuda(i) for i in expected]


def test_spread_on_a_cpu_only_trial_is_pack():
    devices = trial_devices("cpu")
    assert devices == [CPU]
    assert assign_devices(4, devices, "spread") == assign_devices(4, devices, "pack") == [CPU] * 4


def test_the_devices_of_a_cuda_trial_are_its_visible_devices_main_first(monkeypatch):
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 3)
    assert trial_devices("cuda:0") == [cuda(0), cuda(1), cuda(2)]
    assert trial_devices(cuda(1)) == [cuda(1), cuda(0), cuda(2)]  # model 0 stays on Lightning's device
    assert assign_devices(4, trial_devices("cuda:0"), "spread") == [cuda(0), cuda(1), cuda(2), cuda(0)]


def test_mapping_errors_name_what_is_wrong():
    with pytest.raises(ValueError, match="placement must be one of 'pack' .*'spread'.*got 'diagonal'"):
        assign_devices(2, ["cpu"], "diagonal")
    with pytest.raises(ValueError, match="at least one device"):
        assign_devices(2, [], "spread")
    assert check_placement("spread", "x") == "spread"


def test_distinct_devices_keep_first_seen_order():
    assert distinct_devices(["cuda:1", "cuda:0", "cuda:1", "cpu"]) == [cuda(1), cuda(0), CPU]


# --- the multi-model module -------------------------------------------------------------------


def recipe(**kwargs):
    return MultiModelSupervisedLearningModule(
        nn.CrossEntropyLoss(), {"acc": core_lightning.accuracy}, learning_rate=0.05, metric_name="val_acc",
        num_outputs=3, **kwargs,
    )


def built(job, graph_models, samples=SAMPLES):
    models = []
    for model in graph_models(job.Space(), samples):
        torch.manual_seed(0)
        models.append(model.build())
    return models


def fit(module, job):
    pl.seed_everything(0, verbose=False)
    train, val = job.loaders()
    trainer = pl.Trainer(max_epochs=2, num_sanity_val_steps=0, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, accelerator="cpu", devices=1)
    with core_lightning.quiet_lightning():
        trainer.fit(module, train_dataloaders=train, val_dataloaders=val)
    return {name: float(value) for name, value in trainer.callback_metrics.items()}


def test_spread_over_several_devices_trains_like_pack_copying_each_batch_once_per_device(job, graph_models):
    packed = recipe()
    packed.set_models(built(job, graph_models))
    packed_metrics = fit(packed, job)

    spread = recipe(placement="spread", devices=["cpu", "cpu:0"])
    spread.set_models(built(job, graph_models))
    spread_metrics = fit(spread, job)

    assert spread.model_devices == [CPU, CPU0, CPU, CPU0]
    assert packed.model_devices == [CPU] * 4 and packed.batch_copies == 0
    # 2 epochs of 4 training and 2 validation batches: one copy per batch for the second device, not one per model.
    assert spread.batch_copies == 2 * (4 + 2)
    assert sorted(spread_metrics) == sorted(packed_metrics) and len(packed_metrics) == 4 * 2
    for name, value in packed_metrics.items():
        assert spread_metrics[name] == pytest.approx(value, rel=1e-5, abs=1e-6), name
    for a, b in zip(packed.models.parameters(), spread.models.parameters()):
        torch.testing.assert_close(a, b)


def test_the_test_loop_scores_every_model_on_its_device(job, graph_models):
    spread = recipe(placement="spread", devices=["cpu", "cpu:0"])
    spread.set_models(built(job, graph_models, SAMPLES[:3]))
    _, val = job.loaders()
    trainer = pl.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False, accelerator="cpu")
    with core_lightning.quiet_lightning():
        [results] = trainer.test(spread, dataloaders=val, verbose=False)
    assert sorted(results) == sorted(f"test_{m}/{i}" for m in ("loss", "acc") for i in range(3))
    assert spread.model_devices == [CPU, CPU0, CPU] and spread.batch_copies == 2


def test_a_batch_is_copied_once_per_distinct_device_not_per_model(monkeypatch):
    copies = []
    monkeypatch.setattr(multimodel, "_copy_to", lambda batch, device: copies.append(device) or (device, batch))
    module = recipe(placement="spread", devices=["cpu", "cuda:0", "cuda:1"])
    module.set_models([nn.Linear(1, 1) for _ in range(5)])
    module._model_devices = assign_devices(5, module.devices, "spread")  # what place_models computes on GPUs
    batches = module.batches_on_devices("batch")
    assert copies == [cuda(0), cuda(1)] and module.batch_copies == 2
    assert batches == {CPU: "batch", cuda(0): (cuda(0), "batch"), cuda(1): (cuda(1), "batch")}


def test_pack_moves_nothing_and_spread_moves_each_model(job, graph_models):
    packed = recipe(placement="pack")
    packed.set_models(built(job, graph_models, SAMPLES[:2]))
    assert packed.place_models() == [CPU, CPU] and packed.batches_on_devices("b") == {CPU: "b"}
    assert all(p.device == CPU for p in packed.parameters())
    # "meta" stands in for a second device: parameters moved there are visibly elsewhere.
    spread = recipe(placement="spread", devices=["cpu", "meta"])
    spread.set_models(built(job, graph_models, SAMPLES[:3]))
    optimizers = spread.configure_optimizers()  # places the models first, then builds one optimizer per model
    assert spread.model_devices == [CPU, torch.device("meta"), CPU]
    for model, optimizer, kind in zip(spread.models, optimizers, ["cpu", "meta", "cpu"]):
        assert {p.device.type for p in model.parameters()} == {kind}
        assert {p.device.type for group in optimizer.param_groups for p in group["params"]} == {kind}
    assert spread.place_models() == [CPU, torch.device("meta"), CPU]  # idempotent


def test_optimizer_state_follows_its_parameters():
    param = nn.Parameter(torch.zeros(3, device="meta"))
    optimizer = torch.optim.SGD([param], lr=0.1)
    optimizer.state[param] = {"momentum_buffer": torch.zeros(3), "step": torch.tensor(1.0)}
    _optimizer_state_to_params(optimizer)
    assert optimizer.state[param]["momentum_buffer"].device.type == "meta"
    assert optimizer.state[param]["step"].device.type == "cpu"  # step counters stay where torch keeps them


def test_a_criterion_with_tensors_is_copied_to_each_device_once():
    module = MultiModelSupervisedLearningModule(nn.CrossEntropyLoss(weight=torch.ones(3)), {}, metric_name="val_loss")
    assert module.criterion_on(CPU) is module.criterion
    other = module.criterion_on(CPU0)
    assert other is not module.criterion and other is module.criterion_on(CPU0)
    assert torch.equal(other.weight, module.criterion.weight)


def test_spread_with_a_data_parallel_trainer_is_refused(job, graph_models):
    module = recipe(placement="spread", devices=["cpu", "cpu:0"])
    module.set_models(built(job, graph_models, SAMPLES[:2]))

    class Trainer:
        num_devices = 2
        optimizers = []

    module._trainer = Trainer()
    with pytest.raises(EvaluatorError, match="Trainer runs on 2 devices"):
        module.place_models()


# --- evaluators and the engine ----------------------------------------------------------------


class SeePlacement(pl.Callback):
    """Records (placement, number of models, Trainer devices) of every fit; deep copies share the list."""

    seen: list = []

    def on_fit_start(self, trainer, pl_module):
        type(self).seen.append((pl_module.placement, pl_module.model_devices, trainer.num_devices))


def finals(model, evaluator):
    """The final metric of a one-model trial, or the list of each member's for a group."""
    events = []
    run_trial(7, model, evaluator, events.append)
    metrics = [e.metric for e in events if e.kind == "final"]
    assert metrics, events[-1].error
    return metrics if isinstance(model, ModelGroup) else metrics[0]


def test_a_spread_evaluator_gives_the_results_of_pack(job, graph_models, monkeypatch):
    monkeypatch.setattr(SeePlacement, "seen", [])
    models = graph_models(job.Space(), SAMPLES[:3])
    merged = ModelGroup(models, [1, 2, 3])
    packed = finals(merged, job.evaluator())
    train, val = job.loaders()
    module = recipe(placement="spread", devices=["cpu", "cpu:0"])
    evaluator = MultiModelLightning(module, train, val, seed=0, max_epochs=2, callbacks=[SeePlacement()])
    spread = finals(merged, evaluator)
    assert SeePlacement.seen == [("spread", [CPU, CPU0, CPU], 1)]
    for a, b in zip(packed, spread):
        assert b["val_acc"] == pytest.approx(a["val_acc"], abs=1e-6)
        assert b["val_loss"] == pytest.approx(a["val_loss"], rel=1e-5)


def test_spread_on_a_cpu_trial_packs_and_says_so_once(job, graph_models, monkeypatch, caplog):
    monkeypatch.setattr(SeePlacement, "seen", [])
    monkeypatch.setattr(multimodel, "_LOGGED_ONCE", set())
    models = graph_models(job.Space(), SAMPLES[:2])
    merged = ModelGroup(models, [1, 2])
    evaluator = job.evaluator(max_epochs=1, placement="spread", callbacks=[SeePlacement()], accelerator="cpu")
    with caplog.at_level(logging.INFO, logger="nascore.evaluators.multimodel"):
        finals(merged, evaluator)
        finals(merged, evaluator)
    assert SeePlacement.seen == [("spread", [CPU, CPU], 1)] * 2
    notes = [r for r in caplog.records if "its models are packed" in r.getMessage()]
    assert len(notes) == 1 and notes[0].levelno == logging.INFO and "trial_gpu_number" in notes[0].getMessage()


def test_the_engine_placement_reaches_merged_trials(job, graph_models, tmp_path, monkeypatch):
    monkeypatch.setattr(SeePlacement, "seen", [])
    engine, sink = engine_on(tmp_path, CGOOptions(max_concurrency_cgo=3, batch_waiting_time=0.05, placement="spread"))
    submit_all(engine, graph_models(job.Space(), SAMPLES[:3]), job.evaluator(max_epochs=1, callbacks=[SeePlacement()]), tmp_path)
    drain(engine)
    engine.shutdown()
    assert engine.merged_trials == 1 and engine.fallbacks == 0
    assert SeePlacement.seen == [("spread", [CPU] * 3, 1)]
    assert len([e for e in sink.events if e.kind == "final"]) == 3


def test_an_evaluator_without_placement_packs(job, graph_models, monkeypatch):
    monkeypatch.setattr(SeePlacement, "seen", [])
    models = graph_models(job.Space(), SAMPLES[:2])
    finals(ModelGroup(models, [1, 2]), job.evaluator(max_epochs=1, callbacks=[SeePlacement()]))
    assert SeePlacement.seen == [("pack", [CPU, CPU], 1)]


@pytest.mark.parametrize(("value", "problem"), [
    ("diagonal", r"must be one of 'pack' \(.*\), 'spread' \(.*\); got 'diagonal'"),
    ("Spread", r"must be one of 'pack' \(.*\), 'spread' \(.*\); got 'Spread'"),
    (2, r"expected a str, got 2 \(int\)"),
    (["pack"], r"expected a str, got \['pack'\] \(list\)"),
])
def test_a_bad_engine_placement_is_a_config_error_naming_the_field(value, problem):
    config = ExperimentConfig(engine="cgo", format="graph", engine_options={"placement": value})
    with pytest.raises(ConfigError, match=r"config\.engine_options\.placement: " + problem):
        create_engine_for(config)


def test_engine_placement_is_read_and_spread_without_gpus_warns(caplog):
    assert CGOOptions().placement is None
    config = ExperimentConfig(engine="cgo", format="graph", engine_options={"placement": "spread"})
    with caplog.at_level(logging.WARNING, logger="nascore_cgo.engine"):
        assert create_engine_for(config).options.placement == "spread"
    assert any("trial_gpu_number is 0" in r.getMessage() for r in caplog.records)
    caplog.clear()
    config = ExperimentConfig(engine="cgo", format="graph", trial_gpu_number=2, engine_options={"placement": "spread"})
    with caplog.at_level(logging.WARNING, logger="nascore_cgo.engine"):
        create_engine_for(config)
    assert not caplog.records


def test_engine_and_evaluator_placements_must_agree(job):
    config = ExperimentConfig(engine="cgo", format="graph", engine_options={"placement": "spread"})
    engine = create_engine_for(config)
    with pytest.raises(ConfigError, match="engine_options.placement is 'spread' but the evaluator was given placement='pack'"):
        engine.check(job.evaluator(placement="pack"))
    engine.check(job.evaluator(placement="spread"))
    engine.check(job.evaluator())


def test_bad_evaluator_placements_are_clear_errors(job):
    train, val = job.loaders()
    with pytest.raises(EvaluatorError, match="placement must be one of 'pack'.*'spread'.*got 'everywhere'"):
        Classification(train_dataloaders=train, val_dataloaders=val, placement="everywhere")
    with pytest.raises(EvaluatorError, match="placement must be one of"):
        MultiModelLightning(recipe(), train, val, placement="gpu")
    with pytest.raises(EvaluatorError, match="pass placement='spread' too"):
        recipe(devices=["cuda:0", "cuda:1"])
    with pytest.raises(EvaluatorError, match="devices is empty"):
        recipe(placement="spread", devices=[])
    with pytest.raises(EvaluatorError, match="devices must be torch devices"):
        recipe(placement="spread", devices=["gpu-one"])


def test_placement_is_part_of_the_merge_key(job):
    train, val = job.loaders()
    pack = Classification(train_dataloaders=train, val_dataloaders=val, placement="pack")
    spread = Classification(train_dataloaders=train, val_dataloaders=val, placement="spread")
    assert pack.merge_key() != spread.merge_key()
    assert spread.merge_key() == Classification(train_dataloaders=train, val_dataloaders=val, placement="spread").merge_key()


# --- real GPUs (skipped without two) -----------------------------------------------------------


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA devices")
def test_spread_over_two_gpus_trains_each_model_on_its_gpu_like_pack(job, graph_models, monkeypatch):
    class WhereParams(pl.Callback):
        seen: list = []

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            type(self).seen.append([next(m.parameters()).device for m in pl_module.models])

    monkeypatch.setattr(WhereParams, "seen", [])
    models = graph_models(job.Space(), SAMPLES)
    merged = ModelGroup(models, [1, 2, 3, 4])
    packed = finals(merged, job.evaluator(accelerator="cuda", devices=1))
    spread = finals(merged, job.evaluator(accelerator="cuda", placement="spread", callbacks=[WhereParams()]))
    expected = [cuda(i % torch.cuda.device_count()) for i in range(4)]
    assert WhereParams.seen and all(seen == expected for seen in WhereParams.seen)
    for a, b in zip(packed, spread):
        assert b["val_acc"] == pytest.approx(a["val_acc"], abs=0.05)
        assert b["val_loss"] == pytest.approx(a["val_loss"], rel=1e-3)


@pytest.mark.parametrize("placement", ["pack", "spread"])
def test_a_merged_trial_trains_in_one_process_not_data_parallel(job, graph_models, monkeypatch, placement):
    """With several visible GPUs Lightning's default devices="auto" would start DDP: merged trials ask for one."""
    asked = []
    real = pl.Trainer

    def trainer(*args, **kwargs):
        asked.append(kwargs.get("devices"))
        return real(*args, **kwargs)

    monkeypatch.setattr(core_lightning.pl, "Trainer", trainer)
    models = graph_models(job.Space(), SAMPLES[:2])
    finals(ModelGroup(models, [1, 2]), job.evaluator(max_epochs=1, placement=placement))
    finals(models[0], job.evaluator(max_epochs=1, placement=placement))  # one model alone: the user's settings
    assert asked == [1, None]
