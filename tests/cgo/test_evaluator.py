"""Multi-model training: a group trial gives each model what it would get alone, reported for its own trial."""

from __future__ import annotations

import pytest
import torch

from nascore.errors import EvaluatorError
from nascore.evaluators import Classification, Regression
from nascore.group import ModelGroup
from nascore.trial import run_trial

SAMPLES = [{"width": 4, "act": "relu"}, {"width": 8, "act": "tanh"}, {"width": 8, "act": "relu"}]


def run(model, evaluator):
    events = []
    run_trial(7, model, evaluator, events.append)
    return events


def finals(events):
    return [e for e in events if e.kind == "final"]


def test_merged_training_equals_separate_training(job, graph_models):
    evaluator = job.evaluator()
    models = graph_models(job.Space(), SAMPLES)
    alone = [finals(run(model, evaluator))[0].metric for model in models]
    merged_events = run(ModelGroup(models, [1, 2, 3]), evaluator)
    together = {e.trial_id: e.metric for e in finals(merged_events)}
    assert sorted(together) == [1, 2, 3]  # each model's result is an event of its own trial
    for separate, trial_id in zip(alone, [1, 2, 3]):
        assert together[trial_id]["default"] == pytest.approx(separate["default"], abs=1e-6)
        assert together[trial_id]["val_loss"] == pytest.approx(separate["val_loss"], rel=1e-4)
    intermediates = [e for e in merged_events if e.kind == "intermediate"]
    assert sorted(e.trial_id for e in intermediates) == [1, 1, 2, 2, 3, 3]  # 2 epochs each
    assert [(e.trial_id, e.kind) for e in merged_events if e.kind == "status"] == [(7, "status")] * 2
    assert merged_events[-1].trial_id == 7 and merged_events[-1].status.value == "SUCCEEDED"


def test_a_group_must_report_every_member(job, graph_models):
    class OnlyFirst(type(job.evaluator())):
        def evaluate_group(self, group):
            list(group.members)
            import nascore

            nascore.report_final_result(1.0, member=0)

    models = graph_models(job.Space(), SAMPLES[:2])
    train, val = job.loaders()
    events = run(ModelGroup(models, [1, 2]), OnlyFirst(train_dataloaders=train, val_dataloaders=val, max_epochs=1))
    assert finals(events) == [] and events[-1].status.value == "FAILED"
    assert "reported no final result for trial(s) [2]" in events[-1].error


def test_each_model_has_its_own_optimizer(job, graph_models):
    evaluator = job.evaluator(max_epochs=1)
    models = [m.build() for m in graph_models(job.Space(), SAMPLES[:2])]
    fresh = evaluator.group_recipe()  # the multi-model recipe of the evaluator's (single-model) recipe
    fresh.set_models(models)
    optimizers = fresh.configure_optimizers()
    assert len(optimizers) == 2
    owned = [{id(p) for group in o.param_groups for p in group["params"]} for o in optimizers]
    assert owned[0] == {id(p) for p in models[0].parameters()}
    assert owned[1] == {id(p) for p in models[1].parameters()}


def test_a_shape_error_in_one_model_fails_the_merged_trial(job, graph_models):
    models = graph_models(job.Space(), [SAMPLES[0], {"width": 4, "act": "broken"}])
    events = run(ModelGroup(models, [1, 2]), job.evaluator(max_epochs=1))
    assert events[-1].status.value == "FAILED" and "mat1 and mat2" in events[-1].error
    assert finals(events) == []


def test_regression_reports_mse_per_model(job, graph_models):
    from torch.utils.data import DataLoader, TensorDataset

    generator = torch.Generator().manual_seed(0)
    x = torch.randn(32, 6, generator=generator)
    data = DataLoader(TensorDataset(x, x[:, :3] * 2), batch_size=8)
    evaluator = Regression(train_dataloaders=data, val_dataloaders=data, max_epochs=1, seed=0)
    models = graph_models(job.Space(), SAMPLES[:2])
    records = [e.metric for e in finals(run(ModelGroup(models, [1, 2]), evaluator))]
    assert [sorted(r) for r in records] == [["default", "val_loss", "val_mse"]] * 2
    assert all(r["default"] == r["val_mse"] > 0 for r in records)


def test_an_ordinary_model_reports_an_ordinary_metric(job, graph_models):
    [model] = graph_models(job.Space(), SAMPLES[:1])
    [final] = finals(run(model, job.evaluator(max_epochs=1)))
    assert "cgo" not in final.metric and final.value == final.metric["val_acc"]


def test_evaluator_arguments_are_checked(job):
    train, val = job.loaders()
    with pytest.raises(EvaluatorError, match="val_dataloaders"):
        Classification(train_dataloaders=train)
    with pytest.raises(EvaluatorError, match="LightningModule"):
        from nascore.evaluators import Lightning

        Lightning(torch.nn.Linear(1, 1), train, val)


def test_merge_key_is_shared_by_evaluators_reading_the_same_data(job):
    train, val = job.loaders()
    first = Classification(train_dataloaders=train, val_dataloaders=val, max_epochs=1)
    assert first.merge_key() == Classification(train_dataloaders=train, val_dataloaders=val, max_epochs=1).merge_key()
    assert first.merge_key() != Classification(train_dataloaders=train, val_dataloaders=val, max_epochs=2).merge_key()
    assert first.merge_key() != Classification(train_dataloaders=job.loaders()[0], val_dataloaders=val, max_epochs=1).merge_key()


def test_the_evaluators_know_which_way_their_metric_is_better(job):
    from nascore.evaluators import Lightning
    from nascore.evaluators.multimodel import MultiModelSupervisedLearningModule

    train, val = job.loaders()
    assert Regression(train_dataloaders=train, val_dataloaders=val).optimize_mode == "minimize"
    assert Classification(train_dataloaders=train, val_dataloaders=val).optimize_mode == "maximize"
    unsaid = MultiModelSupervisedLearningModule(torch.nn.MSELoss(), {}, metric_name="val_loss")
    assert Lightning(unsaid, train, val).optimize_mode is None


def test_a_valid_evaluator_passes_the_check(job):
    job.evaluator().check()
    train, val = job.loaders()
    Regression(train_dataloaders=train, val_dataloaders=val, max_epochs=1, seed=3, placement="spread").check()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"max_epoch": 1}, r"unknown Trainer argument 'max_epoch'; did you mean 'max_epochs'\? \(pytorch_lightning.Trainer accepts: "),
        ({"limit_val_batches": 0}, "Trainer argument limit_val_batches=0, so no validation epoch would run"),
        ({"learning_rate": 0}, "learning_rate must be a positive number, got 0"),
        ({"weight_decay": -1}, "weight_decay must be a number >= 0, got -1"),
        ({"optimizer": "sgd"}, "optimizer must be a torch.optim.Optimizer subclass .* got 'sgd'"),
        ({"seed": "0"}, "seed must be an integer .* got '0'"),
    ],
    ids=["trainer-typo", "no-validation", "learning-rate", "weight-decay", "optimizer", "seed"],
)
def test_setup_mistakes_are_named_before_the_first_trial(job, arguments, message):
    with pytest.raises(EvaluatorError, match=f"^Classification: {message}"):
        job.evaluator(**arguments).check()


def test_data_a_second_trial_could_not_read_again_is_named(job):
    train, val = job.loaders()
    with pytest.raises(EvaluatorError, match="^Regression: val_dataloaders is an iterator .* which the first trial would use up"):
        Regression(train_dataloaders=train, val_dataloaders=iter(val), max_epochs=1).check()
