"""The ``cgo`` engine passes nascore's engine conformance suite (nascore.testing.engines).

CGO merges graph-format models and trains a merged trial with the evaluator's ``evaluate_group``, so its
check() refuses the suite's default space and evaluators (a DictSpace, FunctionalEvaluator with no
``merge_key``): the suite runs here on graph-format models of the CGO job's space (tests/cgo/cgo_job.py)
with :class:`~nascore.testing.engines.GroupEvaluator`, the suite's behaviours for one model or a group.
With ``max_concurrency_cgo = 2`` the models of two submissions train together in one trial of the
wrapped training service (local workers), so with ``trial_concurrency = 2`` up to 4 models run at once.
Every check of the suite applies.
"""

from __future__ import annotations

import pytest

from nascore.plugin import get_plugins
from nascore.testing.engines import EngineConformance, GroupEvaluator


class TestCGO(EngineConformance):
    engine_name = "cgo"
    max_concurrency = 4  # trial_concurrency (2) merged trials of max_concurrency_cgo (2) models

    @pytest.fixture(autouse=True)
    def _job(self, job):
        self.job = job  # cgo_job is on sys.path here and in the workers, which import the space's module

    @pytest.fixture
    def engine_options(self):
        return {"max_concurrency_cgo": 2, "batch_waiting_time": 0.05}

    def make_space(self):
        return get_plugins().formats.get("graph")().build(self.job.Space(broken=False))

    def make_evaluator(self, behaviour, **arguments):
        return GroupEvaluator(behaviour, **arguments)

    def test_the_suites_trials_run_merged(self, make_engine, tmp_path):
        """The checks above see merged trials, not only models run alone: results come back per model."""
        evaluator = self.make_evaluator("report_steps", steps=3)
        with self.started(make_engine, tmp_path, [evaluator], self.resources(trial_concurrency=2)) as run:
            samples = self.samples(run.space, 4)
            ids = run.run([(sample, evaluator, None) for sample in samples])
            finals = [run.succeeded(trial_id, "it reports 3 intermediate results and a final one") for trial_id in ids]
            assert run.engine.merged_trials == 2 and run.engine.fallbacks == 0
        assert [final.metric for final in finals] == [{"default": final.value, "steps": 3} for final in finals]
