"""The engine conformance suite (nascore.testing.engines) passes correct engines and fails broken ones, saying
what is wrong.

Core only: the engines here are toys defined in this file (no plugin is installed in the core session) that
run trials in this process with run_trial, registered for each test in a process-wide plugin host that loads
no installed plugin. ``toy-threads`` runs each trial in a thread of its own and ``toy-inline`` runs them
inside ``wait()``, as the sequential engine does; each broken toy changes one thing of ``toy-threads``.
"""

from __future__ import annotations

import collections
import inspect
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from nascore.engine import (
    EngineContext,
    ExecutionEngine,
    TrialEvent,
    TrialResources,
    TrialStatus,
    TrialSubmission,
)
from nascore.plugin import create_engine, get_plugins, hookimpl, reset_plugins
from nascore.testing.engines import EngineConformance
from nascore.testing.fakes import SampleModel
from nascore.trial import run_trial

pytest_plugins = ["pytester"]

SHUTDOWN_WHILE_RUNNING = "test_shutdown_while_trials_run_returns_promptly_and_nothing_is_emitted_after"


# --- correct engines ------------------------------------------------------------------------------------


class ThreadToy(ExecutionEngine):
    """Each trial in a thread of its own, up to trial_concurrency at once; a trial that outruns trial_timeout
    ends FAILED (its thread is abandoned: nothing it emits is passed on); shutdown() passes nothing on."""

    name = "toy-threads"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._queue: collections.deque[TrialSubmission] = collections.deque()
        self._running: dict[int, TrialSubmission] = {}
        self._stopped: set[int] = set()
        self._events = 0
        self._seen = 0
        self._closed = False
        self._context: EngineContext | None = None

    def start(self, context: EngineContext) -> None:
        self._context = context

    def submit(self, submission: TrialSubmission) -> None:
        with self._changed:
            self._queue.append(submission)
            self._dispatch()

    def idle_slots(self) -> int:
        with self._lock:
            return max(0, self.resources.trial_concurrency - len(self._running) - len(self._queue))

    def running(self) -> int:
        with self._lock:
            return len(self._running) + len(self._queue)

    def wait(self, timeout: float | None = None) -> None:
        with self._changed:
            self._changed.wait_for(lambda: self._events != self._seen, timeout=timeout)
            self._seen = self._events

    def shutdown(self) -> None:
        with self._lock:
            self._closed = True
            self._queue.clear()
            self._running.clear()

    def _dispatch(self) -> None:  # with the lock held
        while self._queue and len(self._running) < self.resources.trial_concurrency:
            submission = self._queue.popleft()
            self._running[submission.trial_id] = submission
            threading.Thread(target=self._run, args=(submission,), daemon=True).start()
            if self.resources.trial_timeout is not None:
                timer = threading.Timer(self.resources.trial_timeout, self._time_out, (submission.trial_id,))
                timer.daemon = True
                timer.start()

    def _run(self, submission: TrialSubmission) -> None:
        assert self._context is not None
        run_trial(submission.trial_id, submission.model, submission.evaluator,
                  lambda event: self._emit(submission.trial_id, event), self._context.experiment_id, seed=submission.seed)

    def _emit(self, trial_id: int, event: TrialEvent) -> None:
        with self._changed:
            if self._closed or trial_id in self._stopped:
                return
            if event.ends_trial:
                self._running.pop(trial_id, None)
                self._dispatch()
            self._pass_on(event)

    def _pass_on(self, event: TrialEvent) -> None:  # with the lock held
        assert self._context is not None
        self._context.sink.emit(event)
        self._events += 1
        self._changed.notify_all()

    def _time_out(self, trial_id: int) -> None:
        with self._changed:
            if self._closed or trial_id not in self._running:
                return
            self._stopped.add(trial_id)
            del self._running[trial_id]
            self._pass_on(TrialEvent.failed(trial_id, f"trial {trial_id} timed out after {self.resources.trial_timeout} s"))
            self._dispatch()


class InlineToy(ExecutionEngine):
    """Trials run inside wait(), one at a time, as the sequential engine runs them."""

    name = "toy-inline"

    def __init__(self) -> None:
        self._queue: collections.deque[TrialSubmission] = collections.deque()
        self._context: EngineContext | None = None

    def start(self, context: EngineContext) -> None:
        self._context = context

    def submit(self, submission: TrialSubmission) -> None:
        self._queue.append(submission)

    def idle_slots(self) -> int:
        return 0 if self._queue else 1

    def running(self) -> int:
        return len(self._queue)

    def wait(self, timeout: float | None = None) -> None:
        if self._queue and self._context is not None:
            s = self._queue.popleft()
            run_trial(s.trial_id, s.model, s.evaluator, self._context.sink.emit, self._context.experiment_id, seed=s.seed)

    def shutdown(self) -> None:
        self._queue.clear()


# --- broken engines, one fault each ------------------------------------------------------------------------


class EndsTwice(ThreadToy):
    """Sends every trial's end twice."""

    name = "toy-ends-twice"

    def _pass_on(self, event: TrialEvent) -> None:
        super()._pass_on(event)
        if event.ends_trial:
            super()._pass_on(event)


class NoRunning(ThreadToy):
    """Never sends RUNNING."""

    name = "toy-no-running"

    def _pass_on(self, event: TrialEvent) -> None:
        if event.status is not TrialStatus.RUNNING:
            super()._pass_on(event)


class IgnoresSeed(ThreadToy):
    """Runs trials without their seed."""

    name = "toy-ignores-seed"

    def _run(self, submission: TrialSubmission) -> None:
        super()._run(attrs.evolve(submission, seed=None))


class EmitsAfterShutdown(ThreadToy):
    """Fails the trials it stops, a moment after shutdown() returned."""

    name = "toy-emits-after-shutdown"

    def shutdown(self) -> None:
        stopped = list(self._running)
        super().shutdown()
        assert self._context is not None
        sink = self._context.sink
        timer = threading.Timer(0.1, lambda: [sink.emit(TrialEvent.failed(t, "interrupted")) for t in stopped])
        timer.daemon = True
        timer.start()


class NegativeIdle(ThreadToy):
    """Counts each running trial twice in idle_slots()."""

    name = "toy-negative-idle"

    def idle_slots(self) -> int:
        return self.resources.trial_concurrency - 2 * self.running()


class SwallowsFailures(ThreadToy):
    """Ends failed trials SUCCEEDED."""

    name = "toy-swallows-failures"

    def _pass_on(self, event: TrialEvent) -> None:
        if event.status is TrialStatus.FAILED:
            event = attrs.evolve(event, status=TrialStatus.SUCCEEDED, error=None)
        super()._pass_on(event)


class SlowShutdown(ThreadToy):
    """Takes a second to shut down."""

    name = "toy-slow-shutdown"

    def shutdown(self) -> None:
        time.sleep(1.0)
        super().shutdown()


class CountsEnded(ThreadToy):
    """running() goes on counting trials that ended."""

    name = "toy-counts-ended"

    def _pass_on(self, event: TrialEvent) -> None:
        if event.ends_trial:
            self.ended = getattr(self, "ended", 0) + 1
        super()._pass_on(event)

    def running(self) -> int:
        return super().running() + getattr(self, "ended", 0)


class LosesSample(ThreadToy):
    """Runs the model of a sample that lost its label 'skip'."""

    name = "toy-loses-sample"

    def _run(self, submission: TrialSubmission) -> None:
        model = SampleModel({k: v for k, v in submission.model.sample.items() if k != "skip"})
        super()._run(attrs.evolve(submission, model=model))


class IgnoresConcurrency(ThreadToy):
    """Runs every trial at once, whatever trial_concurrency says."""

    name = "toy-ignores-concurrency"

    def idle_slots(self) -> int:
        return 8

    def _dispatch(self) -> None:
        concurrency = self.resources.trial_concurrency
        self.resources = attrs.evolve(self.resources, trial_concurrency=100)
        try:
            super()._dispatch()
        finally:
            self.resources = attrs.evolve(self.resources, trial_concurrency=concurrency)


class IgnoresTimeout(ThreadToy):
    """Lets trials run past trial_timeout."""

    name = "toy-ignores-timeout"

    def _time_out(self, trial_id: int) -> None:
        pass


class MisnamedEngine(ThreadToy):
    """Registered as "toy-misnamed", but its name says "toy-threads"."""

    name = "toy-threads"


class NotAttrsOptions:
    def __init__(self, workers: int = 1) -> None:
        self.workers = workers


class PlainOptionsEngine(ThreadToy):
    """Its options_class is a plain class, not an attrs class."""

    name = "toy-plain-options"
    options_class = NotAttrsOptions


class UnregisteredEngine(ThreadToy):
    name = "toy-unregistered"


TOY_ENGINES: dict[str, type[ExecutionEngine]] = {
    engine.name: engine
    for engine in (
        ThreadToy, InlineToy, EndsTwice, NoRunning, IgnoresSeed, EmitsAfterShutdown, NegativeIdle, SwallowsFailures,
        SlowShutdown, CountsEnded, LosesSample, IgnoresConcurrency, IgnoresTimeout, PlainOptionsEngine,
    )
}
TOY_ENGINES["toy-misnamed"] = MisnamedEngine


class ToyEngines:
    @staticmethod
    @hookimpl
    def nascore_register_engines(register: Any) -> None:
        for name, engine in TOY_ENGINES.items():
            register(name, engine)


def register_toy_engines(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A process-wide plugin host with the toy engines and no installed plugin, for one test."""
    monkeypatch.setenv("NASCORE_LOAD_PLUGINS", "")
    reset_plugins()
    get_plugins().register_plugin(ToyEngines, name="toy-engines", distribution="toy-engines")
    yield
    reset_plugins()


@pytest.fixture(autouse=True)
def toy_engines(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    yield from register_toy_engines(monkeypatch)


# --- running the suite's checks ----------------------------------------------------------------------------

CHECKS = sorted(name for name in dir(EngineConformance) if name.startswith("test_"))
#: What the suite's attributes are for an engine that runs its trials inside wait(), one at a time.
INLINE = {
    "max_concurrency": 1,
    "honours_timeout": False,
    "not_applicable": {SHUTDOWN_WHILE_RUNNING: "trials run inside wait()"},
}


def suite_for(engine_name: str, **attributes: Any) -> EngineConformance:
    """An instance of an EngineConformance subclass for ``engine_name``, with short time limits."""
    attributes = {"trial_timeout": 0.3, "trial_deadline": 20.0, "quiet_period": 0.3, **attributes}
    return type("ToySuite", (EngineConformance,), {"engine_name": engine_name, **attributes})()


def run_check(suite: EngineConformance, check: str, tmp_path: Path,
              make_engine: Callable[[TrialResources], ExecutionEngine] | None = None) -> None:
    """Call the check as pytest would, with its fixture values."""
    if make_engine is None:
        name = suite.engine_name
        make_engine = lambda resources: create_engine(name, None, resources)  # noqa: E731
    method = getattr(suite, check)
    arguments = {"make_engine": make_engine, "tmp_path": tmp_path / check}
    method(**{name: arguments[name] for name in inspect.signature(method).parameters})


def failure(engine_name: str, check: str, tmp_path: Path, **attributes: Any) -> str:
    """The message of the check's failure for the engine (the check must fail)."""
    suite = suite_for(engine_name, **attributes)
    with pytest.raises(AssertionError) as info:
        run_check(suite, check, tmp_path)
    message = str(info.value)
    assert message.startswith(f"engine {engine_name!r}: "), f"the message must name the engine first: {message}"
    return message


def passes(engine_name: str, tmp_path: Path, **attributes: Any) -> None:
    """Every check that applies passes for the engine."""
    suite = suite_for(engine_name, **attributes)
    for check in CHECKS:
        if check not in suite.not_applicable:
            run_check(suite, check, tmp_path)


# --- the tests -----------------------------------------------------------------------------------------------


def test_the_suite_has_the_checks_of_the_contract():
    assert CHECKS == [
        "test_a_failing_trial_fails_with_its_error_and_later_trials_succeed",
        "test_a_model_arrives_with_its_sample",
        "test_an_engine_that_ran_nothing_shuts_down_promptly",
        "test_at_most_the_concurrency_runs_at_once",
        "test_every_trial_ends_once_after_running_with_its_results_in_order",
        SHUTDOWN_WHILE_RUNNING,
        "test_the_engine_is_registered_under_its_name",
        "test_the_seed_of_a_trial_is_honoured",
        "test_trial_timeout_stops_and_fails_a_trial",
    ]


def test_a_correct_engine_with_threads_passes_every_check(tmp_path):
    passes("toy-threads", tmp_path)


def test_a_correct_engine_running_trials_inside_wait_passes_what_applies(tmp_path):
    passes("toy-inline", tmp_path, **INLINE)


def test_an_engine_that_cannot_shut_down_while_a_trial_runs_is_told_to_say_so(tmp_path):
    message = failure("toy-inline", SHUTDOWN_WHILE_RUNNING, tmp_path, **{**INLINE, "not_applicable": {}},
                      shutdown_limit=0.1)
    assert "trial 1 (it waits 2.1 s) ended before the suite could shut the engine down while it ran" in message
    assert "the engine runs trials inside wait(), in the caller's thread; declare this check in not_applicable" in message


def test_a_trial_ended_twice_is_reported(tmp_path):
    message = failure("toy-ends-twice", "test_every_trial_ends_once_after_running_with_its_results_in_order", tmp_path)
    assert "trial 1 ended 2 times (status SUCCEEDED, status SUCCEEDED); every trial must end exactly once" in message


def test_a_trial_without_running_is_reported(tmp_path):
    message = failure("toy-no-running", "test_every_trial_ends_once_after_running_with_its_results_in_order", tmp_path)
    assert "trial 1's first event is intermediate 0.0" in message
    assert "a trial must report RUNNING before anything else, its end included" in message


def test_an_ignored_seed_is_reported(tmp_path):
    message = failure("toy-ignores-seed", "test_the_seed_of_a_trial_is_honoured", tmp_path)
    assert "trials 1 and 3 had the same seed 5 (and the same model and evaluator) but drew torch.rand(1) = " in message
    assert "a trial must start from its submission's seed" in message


def test_an_event_after_shutdown_is_reported(tmp_path):
    message = failure("toy-emits-after-shutdown", SHUTDOWN_WHILE_RUNNING, tmp_path)
    assert "after shutdown() returned, the engine emitted [status FAILED (interrupted)]" in message
    assert "nothing may be emitted after shutdown()" in message


def test_a_negative_idle_slots_is_reported(tmp_path):
    message = failure("toy-negative-idle", SHUTDOWN_WHILE_RUNNING, tmp_path)  # its trial runs until the check ends
    assert "idle_slots() returned -1 right after trial 1 was submitted; it must never be negative" in message


def test_a_failure_ended_as_success_is_reported(tmp_path):
    message = failure("toy-swallows-failures", "test_a_failing_trial_fails_with_its_error_and_later_trials_succeed", tmp_path)
    assert "trial 1's evaluator raised RuntimeError(\"the conformance suite's evaluator failed on purpose\"), " in message
    assert "but trial 1 ended SUCCEEDED; it must end FAILED" in message


def test_a_slow_shutdown_is_reported(tmp_path):
    message = failure("toy-slow-shutdown", "test_an_engine_that_ran_nothing_shuts_down_promptly", tmp_path,
                      shutdown_limit=0.5)
    assert re.search(r"shutdown\(\) took 1\.\d s with no trial ever submitted; it must return promptly \(within 0\.5 s", message)


def test_running_that_never_returns_to_zero_is_reported(tmp_path):
    message = failure("toy-counts-ended", "test_a_model_arrives_with_its_sample", tmp_path)
    assert "running() is 3 although every submitted trial ([1, 2, 3]) ended" in message


def test_a_lost_sample_is_reported(tmp_path):
    message = failure("toy-loses-sample", "test_a_model_arrives_with_its_sample", tmp_path)
    assert "trial 1 was submitted with a model of the sample {" in message
    assert "the model must arrive with its sample" in message


def test_too_many_trials_at_once_are_reported(tmp_path):
    message = failure("toy-ignores-concurrency", "test_at_most_the_concurrency_runs_at_once", tmp_path)
    assert re.search(r"[34] trials ran at once with trial_concurrency=2 \(max_concurrency is 2\); an engine must run at most", message)


def test_an_ignored_timeout_is_reported(tmp_path):
    message = failure("toy-ignores-timeout", "test_trial_timeout_stops_and_fails_a_trial", tmp_path)
    assert "trial 1 ran past trial_timeout=0.3 s (its evaluator waits 2.6 s) and ended SUCCEEDED" in message
    assert "(or declare honours_timeout = False)" in message


def test_a_timeout_that_the_suite_does_not_expect_is_reported(tmp_path):
    message = failure("toy-threads", "test_trial_timeout_stops_and_fails_a_trial", tmp_path, honours_timeout=False)
    assert "trial 1 ran 0.8 s with trial_timeout=0.3 and ended FAILED" in message
    assert "honours_timeout is False, so the engine must leave it alone (or set honours_timeout = True)" in message


def test_registration_problems_are_reported(tmp_path):
    check = "test_the_engine_is_registered_under_its_name"
    message = failure("toy-unregistered", check, tmp_path)
    assert "no engine is registered under this name (registered: toy-counts-ended, toy-emits-after-shutdown," in message
    message = failure("toy-misnamed", check, tmp_path)
    assert "MisnamedEngine.name is 'toy-threads'; it must be the name the engine is registered under" in message
    message = failure("toy-plain-options", check, tmp_path)
    assert "PlainOptionsEngine.options_class is <class" in message and "it must be None (no settings) or an attrs class" in message
    suite = suite_for("toy-threads")
    with pytest.raises(AssertionError, match="making the engine gave a InlineToy, not an instance of the registered class ThreadToy"):
        run_check(suite, check, tmp_path, make_engine=lambda resources: InlineToy())


def test_an_engine_that_refuses_the_suites_evaluator_is_told_what_to_override(tmp_path):
    class Picky(ThreadToy):
        def check(self, evaluator, space=None):
            raise ValueError("only my own evaluators")

    suite = suite_for("toy-threads")
    with pytest.raises(AssertionError) as info:
        run_check(suite, "test_a_model_arrives_with_its_sample", tmp_path, make_engine=lambda resources: Picky())
    message = str(info.value)
    assert message.startswith("engine 'toy-threads': check(FunctionalEvaluator(echo_sample, {})) of the suite's evaluator")
    assert "overrides make_evaluator and make_space" in message and "raised ValueError: only my own evaluators" in message


def test_a_subclass_without_engine_name_is_told_what_to_set(pytester: pytest.Pytester):
    pytester.makepyfile(
        """
        from nascore.testing.engines import EngineConformance

        class TestNothing(EngineConformance):
            pass
        """
    )
    result = pytester.runpytest("-q", "-k", "registered", "-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*an EngineConformance subclass must set engine_name*"])


def test_pytest_collects_the_suite_and_reports_failures_skips_and_known_failures(pytester: pytest.Pytester):
    """Subclasses in a test module are collected; not_applicable checks are not collected, known_failures are strict
    xfails, and a failing check fails with the suite's message."""
    pytester.makepyfile(
        f"""
        import importlib.util

        import pytest

        from nascore.testing.engines import EngineConformance

        spec = importlib.util.spec_from_file_location("engine_suite_toys", {str(Path(__file__))!r})
        toys = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(toys)


        @pytest.fixture(autouse=True)
        def toy_engines(monkeypatch):
            yield from toys.register_toy_engines(monkeypatch)


        class Fast(EngineConformance):
            trial_timeout = 0.3
            quiet_period = 0.3


        class TestInline(Fast):
            engine_name = "toy-inline"
            max_concurrency = 1
            honours_timeout = False
            not_applicable = {{toys.SHUTDOWN_WHILE_RUNNING: "trials run inside wait(), in the caller's thread"}}


        class TestIgnoresSeed(Fast):
            engine_name = "toy-ignores-seed"
            known_failures = {{
                "test_the_seed_of_a_trial_is_honoured": "it runs trials without their seed",
                "test_a_model_arrives_with_its_sample": "wrongly listed: this check passes",
            }}


        class TestEndsTwice(Fast):
            engine_name = "toy-ends-twice"
        """
    )
    # The checks that take a second or so (concurrency, timeout) are left out: they add nothing here.
    result = pytester.runpytest("-p", "no:cacheprovider", "-rsfxX", "-k", "not concurrency and not timeout")
    # 7 checks each: TestInline 6 pass (the 7th, not applicable, is not collected: nothing is skipped);
    # TestIgnoresSeed 5 pass, 1 xfail, 1 XPASS(strict) that fails; TestEndsTwice fails the checks that look at
    # how trials end.
    outcomes = result.parseoutcomes()
    assert "skipped" not in outcomes and outcomes["xfailed"] == 1
    assert outcomes["passed"] + outcomes["failed"] + 1 == 20
    result.stdout.fnmatch_lines_random(
        [
            "XFAIL *TestIgnoresSeed::test_the_seed_of_a_trial_is_honoured*it runs trials without their seed*",
            "FAILED *TestIgnoresSeed::test_a_model_arrives_with_its_sample*",
            "E * AssertionError: engine 'toy-ends-twice': trial 1 ended 2 times *every trial must end exactly once",
            "FAILED *TestEndsTwice::test_every_trial_ends_once_after_running_with_its_results_in_order*",
        ]
    )


def test_not_applicable_must_name_a_check_and_give_a_reason():
    with pytest.raises(TypeError, match="names 'test_no_such_check', which is not a check of the suite"):
        type("Wrong", (EngineConformance,), {"not_applicable": {"test_no_such_check": "why"}})
    with pytest.raises(TypeError, match="needs the reason the check cannot apply"):
        type("Wrong", (EngineConformance,), {"not_applicable": {SHUTDOWN_WHILE_RUNNING: ""}})
    inline = type("Inline", (EngineConformance,), {"not_applicable": {SHUTDOWN_WHILE_RUNNING: "trials run inside wait()"}})
    assert getattr(inline, SHUTDOWN_WHILE_RUNNING) is None  # not collected
