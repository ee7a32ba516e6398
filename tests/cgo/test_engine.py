"""The CGO middleware: batching, merged trials split back per model, fallback, and clear config errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import nascore
from nascore.engine import EngineContext, TrialEvent, TrialStatus, TrialSubmission
from nascore.errors import ConfigError
from nascore.evaluator import Evaluator
from nascore.evaluators import FunctionalEvaluator
from nascore.experiment import Experiment, ExperimentConfig
from nascore.experiment.config import create_engine_for, trial_resources
from nascore.testing.fakes import RecordingSink
from nascore_cgo import CGOEngine, CGOOptions, DedupInputOptimizer
from nascore_engines.sequential import SequentialEngine


def engine_on(tmp_path, options=None):
    """A CGO engine around the in-process sequential engine, started with a recording sink."""
    engine = CGOEngine(SequentialEngine(), options or CGOOptions(max_concurrency_cgo=3, batch_waiting_time=0.05),
                       [DedupInputOptimizer()])
    sink = RecordingSink()
    engine.start(EngineContext("exp", tmp_path, trial_resources(ExperimentConfig(format="graph", experiment_dir=tmp_path)), sink))
    return engine, sink


def submit_all(engine, models, evaluator, tmp_path):
    for i, model in enumerate(models, start=1):
        engine.submit(TrialSubmission(i, model, evaluator, tmp_path / f"t{i}", dict(model.sample)))


def drain(engine):
    while engine.running():
        engine.wait()


def test_models_sharing_data_run_as_one_trial_and_results_come_back_per_model(job, graph_models, tmp_path):
    samples = [{"width": 4, "act": "relu"}, {"width": 8, "act": "tanh"}, {"width": 8, "act": "relu"}]
    engine, sink = engine_on(tmp_path)
    submit_all(engine, graph_models(job.Space(), samples), job.evaluator(max_epochs=1), tmp_path)
    drain(engine)
    assert engine.merged_trials == 1 and engine.fallbacks == 0
    assert (tmp_path / "cgo" / "merged-0").is_dir()  # the merged trial's log folder
    assert "trained together with trials [1, 2, 3]" in (tmp_path / "t2" / "trial.log").read_text()
    for trial_id in (1, 2, 3):
        events = sink.of(trial_id)
        assert [e.status for e in events if e.kind == "status"] == [TrialStatus.RUNNING, TrialStatus.SUCCEEDED]
        [final] = [e for e in events if e.kind == "final"]
        assert "cgo" not in final.metric and final.value == final.metric["val_acc"]
    assert {e.trial_id for e in sink.events} == {1, 2, 3}
    engine.shutdown()


def test_a_broken_model_makes_the_trial_fall_back_and_every_good_model_keeps_its_result(job, graph_models, tmp_path):
    samples = [{"width": 4, "act": "relu"}, {"width": 4, "act": "broken"}, {"width": 8, "act": "tanh"}]
    engine, sink = engine_on(tmp_path)
    submit_all(engine, graph_models(job.Space(), samples), job.evaluator(max_epochs=1), tmp_path)
    drain(engine)
    assert engine.merged_trials == 1 and engine.fallbacks == 1
    for trial_id in (1, 2, 3):
        assert [e.kind for e in sink.of(trial_id)].count("retry") == 1
    assert sink.of(1)[-1].status is TrialStatus.SUCCEEDED and sink.of(3)[-1].status is TrialStatus.SUCCEEDED
    assert sink.of(2)[-1].status is TrialStatus.FAILED and "mat1 and mat2" in sink.of(2)[-1].error
    for trial_id in (1, 3):  # after the retry, exactly one final result
        after_retry = sink.of(trial_id)[[e.kind for e in sink.of(trial_id)].index("retry"):]
        assert [e.kind for e in after_retry].count("final") == 1
    engine.shutdown()


def test_a_partial_batch_goes_at_once_when_the_strategy_waits_with_a_free_trial_slot(job, graph_models, tmp_path):
    """The strategy has nothing more to submit (budget spent): the window of 600 s is not waited out."""
    engine, sink = engine_on(tmp_path, CGOOptions(max_concurrency_cgo=4, batch_waiting_time=600))
    submit_all(engine, graph_models(job.Space(), [{"width": 4, "act": "relu"}, {"width": 8, "act": "relu"}]),
               job.evaluator(max_epochs=1), tmp_path)
    engine.wait(timeout=0.0)  # one look: the batch is sent before any waiting
    assert engine.merged_trials == 1
    drain(engine)
    assert all(sink.of(i)[-1].status is TrialStatus.SUCCEEDED for i in (1, 2))
    engine.shutdown()


def test_results_go_back_before_a_partial_batch_is_sent_so_the_strategy_can_fill_it(job, graph_models, tmp_path):
    engine, sink = engine_on(tmp_path, CGOOptions(max_concurrency_cgo=4, batch_waiting_time=600))
    samples = [{"width": w, "act": a} for w in (4, 8) for a in ("relu", "tanh")]
    models = graph_models(job.Space(), samples + samples)
    evaluator = job.evaluator(max_epochs=1)
    for i, model in enumerate(models[:6], start=1):  # a full batch (one merged trial, the engine busy), then two
        engine.submit(TrialSubmission(i, model, evaluator, tmp_path / f"t{i}", dict(model.sample)))
    assert engine.merged_trials == 1
    engine.wait()  # the first merged trial's results come back; the two pending models stay pending
    assert engine.merged_trials == 1 and {e.trial_id for e in sink.events if e.kind == "final"} == {1, 2, 3, 4}
    for i, model in enumerate(models[6:], start=7):  # the strategy fills the batch
        engine.submit(TrialSubmission(i, model, evaluator, tmp_path / f"t{i}", dict(model.sample)))
    drain(engine)
    assert engine.merged_trials == 2  # 4 + 4, not 4 + 2 + 2
    assert {e.trial_id for e in sink.events if e.kind == "final"} == set(range(1, 9))
    engine.shutdown()


class BusyEngine(SequentialEngine):
    """Reports no free trial slot, like a training service whose workers are all busy."""

    def idle_slots(self) -> int:
        return 0


def test_fewer_models_than_max_concurrency_are_submitted_after_batch_waiting_time(job, graph_models, tmp_path):
    engine = CGOEngine(BusyEngine(), CGOOptions(max_concurrency_cgo=4, batch_waiting_time=0.2), [DedupInputOptimizer()])
    sink = RecordingSink()
    engine.start(EngineContext("exp", tmp_path, trial_resources(ExperimentConfig(format="graph", experiment_dir=tmp_path)), sink))
    submit_all(engine, graph_models(job.Space(), [{"width": 4, "act": "relu"}, {"width": 8, "act": "relu"}]),
               job.evaluator(max_epochs=1), tmp_path)
    engine.wait(timeout=0.05)  # within the window, no slot free: the models wait for more to join them
    assert engine.merged_trials == 0
    drain(engine)
    assert engine.merged_trials == 1
    assert all(sink.of(i)[-1].status is TrialStatus.SUCCEEDED for i in (1, 2))
    engine.shutdown()


def test_a_strategy_sees_exactly_one_result_per_model(job, tmp_path, monkeypatch):
    config = ExperimentConfig(engine="cgo", format="graph", experiment_dir=tmp_path,
                              engine_options={"max_concurrency_cgo": 3, "batch_waiting_time": 0.1})
    # The registered 'cgo' engine, its inner engine swapped for in-process trials to keep the test fast.
    create = CGOEngine.create.__func__

    def in_process(cls, options, resources):
        engine = create(cls, options, resources)
        return cls(SequentialEngine(), engine.options, engine.optimizers)

    monkeypatch.setattr(CGOEngine, "create", classmethod(in_process))
    exp = Experiment(job.Space(), job.evaluator(max_epochs=1), job.Every(), config)
    exp.run()
    records = exp.trials()
    assert len(records) == 6 == len({tuple(sorted(r.sample.items())) for r in records})
    for record in records:
        if record.sample["act"] == "broken":
            assert record.status is TrialStatus.FAILED
        else:
            assert record.status is TrialStatus.SUCCEEDED and record.metric is not None


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_concurrency_cgo": 0}, "config.engine_options.max_concurrency_cgo: must be an integer >= 1"),
        ({"max_concurrency_cgo": "4"}, r"config.engine_options.max_concurrency_cgo: expected an int, got '4' \(str\)"),
        ({"batch_waiting_time": -1}, "config.engine_options.batch_waiting_time: a duration must be positive"),
        ({"batch_waiting_time": "soon"}, "config.engine_options.batch_waiting_time: expected a duration"),
        ({"optimizers": "dedup-input"}, "config.engine_options.optimizers"),
        ({"optimizers": ["no-such"]}, "config.engine_options.optimizers: unknown optimizer 'no-such'"),
        ({"placement": "scatter"}, "config.engine_options.placement: must be one of"),
        ({"max_concurency_cgo": 2}, "config.engine_options: unknown setting 'max_concurency_cgo': did you mean "
                                    "'max_concurrency_cgo'\\?"),
    ],
)
def test_bad_engine_options_are_clear_config_errors(options, message):
    config = ExperimentConfig(engine="cgo", format="graph", engine_options=options)
    with pytest.raises(ConfigError, match=message):
        create_engine_for(config)


def test_cgo_with_a_non_graph_format_is_a_clear_error(job, tmp_path):
    config = ExperimentConfig(engine="cgo", format="simplified", experiment_dir=tmp_path)
    with pytest.raises(ConfigError, match="the space is in another format \\(SimplifiedSpace\\); set format = \"graph\""):
        Experiment(job.Space(), job.evaluator(), job.Every(), config).run()


def test_cgo_needs_a_multi_model_evaluator(job, tmp_path):
    config = ExperimentConfig(engine="cgo", format="graph", experiment_dir=tmp_path)
    with pytest.raises(ConfigError, match=r"which FunctionalEvaluator cannot \(its merge_key\(\) is None\); use nascore.evaluators.Classification"):
        create_engine_for(config).check(FunctionalEvaluator(print))


def test_a_model_in_another_format_is_refused_at_submit(job, tmp_path):
    from nascore.plugin import get_plugins

    engine, _ = engine_on(tmp_path)
    model = get_plugins().formats.get("simplified")().build(job.Space()).freeze({"width": 4, "act": "relu"})
    with pytest.raises(ConfigError, match="in format 'simplified'"):
        engine.submit(TrialSubmission(1, model, job.evaluator(), Path(tmp_path)))
    engine.shutdown()


class InitialWeights(Evaluator):
    """A multi-model evaluator: each model's initial weights, and what torch draws once they are built."""

    def merge_key(self):
        return "all"

    def evaluate_group(self, group):
        sums = [sum(p.sum().item() for p in member.build().parameters()) for member in group.members]
        after = torch.rand(1).item()
        for index, total in enumerate(sums):
            nascore.report_final_result({"default": total, "after": after}, member=index)

    def evaluate_module(self, module):
        return {"default": sum(p.sum().item() for p in module.parameters()), "after": torch.rand(1).item()}


def test_a_model_starts_from_its_trials_seed_merged_alone_or_without_cgo(job, graph_models, tmp_path):
    samples = [{"width": 4, "act": "relu"}, {"width": 8, "act": "tanh"}, {"width": 4, "act": "tanh"}]
    seeds = {1: 11, 2: 22, 3: 33}
    engines = {
        "merged": CGOEngine(SequentialEngine(), CGOOptions(max_concurrency_cgo=3, batch_waiting_time=0.05), [DedupInputOptimizer()]),
        "alone": CGOEngine(SequentialEngine(), CGOOptions(max_concurrency_cgo=1), [DedupInputOptimizer()]),
        "sequential": SequentialEngine(),
    }
    results = {}
    for name, engine in engines.items():
        sink = RecordingSink()
        folder = tmp_path / name
        engine.start(EngineContext("exp", folder, trial_resources(ExperimentConfig(format="graph", experiment_dir=folder)), sink))
        for (trial_id, seed), model in zip(seeds.items(), graph_models(job.Space(), samples)):
            engine.submit(TrialSubmission(trial_id, model, InitialWeights(), folder / f"t{trial_id}", model.sample, seed))
        drain(engine)
        engine.shutdown()
        results[name] = {i: next(e.metric for e in sink.of(i) if e.kind == "final") for i in seeds}
    assert engines["merged"].merged_trials == 1 and engines["alone"].merged_trials == 0
    assert results["alone"] == results["sequential"]
    assert {i: r["default"] for i, r in results["merged"].items()} == {i: r["default"] for i, r in results["sequential"].items()}
    # The merged training goes on from the random state the first model's own trial trains from.
    assert {r["after"] for r in results["merged"].values()} == {results["sequential"][1]["after"]}


class AbortingEngine(SequentialEngine):
    """Its trials cannot run where it would run them: every one gets an abort event."""

    def wait(self, timeout=None):
        if self._queue:
            submission = self._queue.popleft()
            self._context.sink.emit(TrialEvent.abort(submission.trial_id, f"cannot write trial {submission.trial_id}'s folder"))


def test_an_aborted_merged_trial_aborts_each_of_its_models(job, graph_models, tmp_path):
    engine = CGOEngine(AbortingEngine(), CGOOptions(max_concurrency_cgo=2, batch_waiting_time=0.05), [DedupInputOptimizer()])
    sink = RecordingSink()
    engine.start(EngineContext("exp", tmp_path, trial_resources(ExperimentConfig(format="graph", experiment_dir=tmp_path)), sink))
    submit_all(engine, graph_models(job.Space(), [{"width": 4, "act": "relu"}, {"width": 8, "act": "relu"}]),
               job.evaluator(max_epochs=1), tmp_path)
    drain(engine)  # returns: the aborted models no longer count as running
    assert engine.merged_trials == 1
    for trial_id in (1, 2):
        [abort] = sink.of(trial_id)
        assert abort.kind == "abort" and "cannot write trial 1000000000's folder" in abort.error
    engine.shutdown()


def test_trial_folders_that_cannot_be_written_abort_the_models_of_a_merged_trial(job, graph_models, tmp_path, mounts):
    engine, sink = engine_on(tmp_path, CGOOptions(max_concurrency_cgo=2, batch_waiting_time=0.05))
    (tmp_path / "cgo").mkdir()
    mounts.read_only(tmp_path / "cgo")
    submit_all(engine, graph_models(job.Space(), [{"width": 4, "act": "relu"}, {"width": 8, "act": "relu"}]),
               job.evaluator(max_epochs=1), tmp_path)  # no OSError out of submit
    drain(engine)
    for trial_id in (1, 2):
        [abort] = sink.of(trial_id)
        assert abort.kind == "abort"
        assert abort.error.startswith(f"cannot write trial {trial_id}'s folder {tmp_path / 'cgo' / 'merged-0'}: ")
    engine.shutdown()


class BrokenOnceSink(RecordingSink):
    """A sink whose first event raises, as a broken store would."""

    def __init__(self) -> None:
        super().__init__()
        self.raised = False

    def emit(self, event):
        if not self.raised:
            self.raised = True
            raise RuntimeError("the store broke")
        super().emit(event)


def test_a_sink_that_raises_does_not_leave_trials_running_forever(job, graph_models, tmp_path):
    engine = CGOEngine(SequentialEngine(), CGOOptions(max_concurrency_cgo=2, batch_waiting_time=0.05), [DedupInputOptimizer()])
    sink = BrokenOnceSink()
    engine.start(EngineContext("exp", tmp_path, trial_resources(ExperimentConfig(format="graph", experiment_dir=tmp_path)), sink))
    submit_all(engine, graph_models(job.Space(), [{"width": 4, "act": "relu"}, {"width": 8, "act": "relu"}]),
               job.evaluator(max_epochs=1), tmp_path)
    drain(engine)
    assert sink.raised and engine.running() == 0
    assert all(sink.of(i)[-1].status is TrialStatus.SUCCEEDED for i in (1, 2))
    engine.shutdown()


def test_nothing_counts_as_running_after_shutdown(job, graph_models, tmp_path):
    engine, _ = engine_on(tmp_path, CGOOptions(max_concurrency_cgo=3, batch_waiting_time=60))
    submit_all(engine, graph_models(job.Space(), [{"width": 4, "act": "relu"}, {"width": 8, "act": "tanh"}]),
               job.evaluator(max_epochs=1), tmp_path)
    assert engine.running() == 2  # waiting for the batch to fill
    engine.shutdown()
    assert engine.running() == 0
