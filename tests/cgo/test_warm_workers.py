"""CGO trials on a warm worker of the training service: each, merged or alone, starts from the evaluator
as submitted, so a model scores the same whatever trial ran before it in the same worker."""

from __future__ import annotations

import pytest

from nascore.engine import EngineContext, TrialSubmission
from nascore.experiment import ExperimentConfig
from nascore.experiment.config import trial_resources
from nascore.testing.fakes import RecordingSink
from nascore.trial import trial_seed
from nascore_cgo import CGOEngine, CGOOptions, DedupInputOptimizer
from nascore_engines import TrainingServiceEngine


@pytest.mark.parametrize("max_concurrency_cgo", [1, 2])
def test_a_model_scores_the_same_whichever_trial_ran_before_it_in_the_worker(job, graph_models, tmp_path, max_concurrency_cgo):
    """Trials 1+2 and 3+4 are the same two models (separate, or merged in pairs), one after the other on one
    worker; the training data shuffles with a torch.Generator of its own."""
    config = ExperimentConfig(format="graph", engine="cgo", trial_concurrency=1, experiment_dir=tmp_path)
    engine = CGOEngine(TrainingServiceEngine(None, trial_resources(config)),
                       CGOOptions(max_concurrency_cgo=max_concurrency_cgo, batch_waiting_time=0.05), [DedupInputOptimizer()])
    evaluator = job.evaluator(shuffle_seed=0, max_epochs=1, num_sanity_val_steps=0)
    engine.check(evaluator)
    sink = RecordingSink()
    engine.start(EngineContext("exp", tmp_path, trial_resources(config), sink))
    samples = [{"width": 4, "act": "relu"}, {"width": 8, "act": "tanh"}] * 2
    try:
        for trial_id, model in enumerate(graph_models(job.Space(broken=False), samples), start=1):
            engine.submit(TrialSubmission(trial_id, model, evaluator, tmp_path / "trials" / str(trial_id), model.sample,
                                          trial_seed(0, model.sample)))
        while engine.running():
            engine.wait()
        assert len(engine.inner.service.pool.pids) == 1  # one worker ran them all
    finally:
        engine.shutdown()
    assert engine.merged_trials == (2 if max_concurrency_cgo == 2 else 0)
    values = [next(e.value for e in sink.of(trial_id) if e.kind == "final") for trial_id in (1, 2, 3, 4)]
    assert values[2:] == values[:2]
