"""The built-in engines pass nascore's engine conformance suite (nascore.testing.engines).

``sequential`` runs trials inside ``wait()``, one at a time, in the caller's thread: ``trial_concurrency``
and ``trial_timeout`` do not apply to it (it warns about them in ``check()``), and ``shutdown()`` cannot be
called while a trial runs. ``training-service`` runs them in warm worker processes on this machine; the
same engine on remote machines over SSH is checked in training_service/test_conformance_remote.py.
"""

from __future__ import annotations

from nascore.testing.engines import EngineConformance


class TestSequential(EngineConformance):
    engine_name = "sequential"
    max_concurrency = 1
    honours_timeout = False
    not_applicable = {
        "test_shutdown_while_trials_run_returns_promptly_and_nothing_is_emitted_after": (
            "trials run inside wait(), in the caller's thread, so shutdown() is never called while one runs; "
            "test_an_engine_that_ran_nothing_shuts_down_promptly covers its shutdown"
        ),
    }


class TestTrainingServiceLocal(EngineConformance):
    engine_name = "training-service"
