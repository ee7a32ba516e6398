"""CGO on the graph IR: a merged trial trains one generated module, the members' graphs merged with the input read once."""

from __future__ import annotations

import pytest
import pytorch_lightning as pl

from nascore.group import ModelGroup
from nascore.optimizer import LogicalOptimizer
from nascore.serialization import load_shipped_model, ship_model
from nascore.trial import run_trial
from nascore_cgo import LogicalPlan
from nascore_formats.graph import GraphModel
from nascore_formats.graph.merge import member_samples

from .test_engine import drain, engine_on, submit_all

SAMPLES = [{"width": 4, "act": "relu"}, {"width": 8, "act": "tanh"}, {"width": 8, "act": "relu"}]


class SeeCombined(pl.Callback):
    seen: list = []

    def on_fit_start(self, trainer, pl_module):
        combined = getattr(pl_module, "combined", None)
        type(self).seen.append(None if combined is None else type(combined).__name__)


def finals(model, evaluator):
    events = []
    run_trial(7, model, evaluator, events.append)
    return {e.trial_id: e.metric for e in events if e.kind == "final"}


def test_the_engine_submits_the_members_graphs_merged_into_one(job, graph_models, tmp_path):
    engine, _ = engine_on(tmp_path)
    submitted = []
    real_submit = engine.inner.submit
    engine.inner.submit = lambda submission: submitted.append(submission) or real_submit(submission)
    models = graph_models(job.Space(), SAMPLES)
    submit_all(engine, models, job.evaluator(max_epochs=1), tmp_path)
    drain(engine)
    engine.shutdown()
    [merged] = [s.model for s in submitted if isinstance(s.model, ModelGroup)]
    assert isinstance(merged.combined, GraphModel)
    assert member_samples(merged.combined) == [m.sample for m in models]
    code = merged.combined.to_code()
    assert "self.model_0" in code and "self.model_2" in code and code.count("def forward(self, x)") == 1
    shipped = ship_model(merged)
    assert shipped["combined"]["kind"] == "payload" and shipped["combined"]["payload"]["format"] == "graph"
    assert isinstance(load_shipped_model(shipped).combined, GraphModel)


def test_the_merged_module_trains_and_each_model_scores_as_alone(job, graph_models, monkeypatch):
    from nascore_formats.graph.merge import merge_models

    monkeypatch.setattr(SeeCombined, "seen", [])
    evaluator = job.evaluator(callbacks=[SeeCombined()])
    models = graph_models(job.Space(), SAMPLES)
    alone = [finals(model, evaluator)[7] for model in models]
    together = finals(ModelGroup(models, [1, 2, 3], combined=merge_models(models)), evaluator)
    assert SeeCombined.seen == [None, None, None, "Merged"]  # three trials alone, then one generated module
    for trial_id, separate in zip([1, 2, 3], alone):
        assert together[trial_id]["default"] == pytest.approx(separate["default"], abs=1e-6)
        assert together[trial_id]["val_loss"] == pytest.approx(separate["val_loss"], rel=1e-4)


def test_spread_placement_trains_the_members_side_by_side(job, graph_models, monkeypatch):
    from nascore_formats.graph.merge import merge_models

    monkeypatch.setattr(SeeCombined, "seen", [])
    models = graph_models(job.Space(), SAMPLES[:2])
    group = ModelGroup(models, [1, 2], settings={"placement": "spread"}, combined=merge_models(models))
    assert sorted(finals(group, job.evaluator(max_epochs=1, callbacks=[SeeCombined()]))) == [1, 2]
    assert SeeCombined.seen == [None]  # one module on one device cannot spread: the members train apart


class SideBySide(LogicalOptimizer):
    """Groups every model together without claiming they read the same inputs."""

    def convert(self, plan):
        return LogicalPlan(plan.submissions, plan.max_group_size, [list(range(len(plan.submissions)))], [False])


def test_models_grouped_without_shared_inputs_are_not_merged_into_one_graph(job, graph_models, tmp_path):
    from nascore_cgo import CGOEngine, CGOOptions

    engine, _ = engine_on(tmp_path)
    engine = CGOEngine(engine.inner, CGOOptions(max_concurrency_cgo=3, batch_waiting_time=0.05), [SideBySide()])
    engine.start(engine.inner._context)
    submitted = []
    real_submit = engine.inner.submit
    engine.inner.submit = lambda submission: submitted.append(submission) or real_submit(submission)
    submit_all(engine, graph_models(job.Space(), SAMPLES), job.evaluator(max_epochs=1), tmp_path)
    drain(engine)
    engine.shutdown()
    [merged] = [s.model for s in submitted if isinstance(s.model, ModelGroup)]
    assert merged.combined is None and len(merged) == 3
