"""A conformance suite for execution engines, in the style of Optuna's ``SamplerTestCase``.

An engine author subclasses :class:`EngineConformance` in a test module and names the engine as it is
registered (``nascore_register_engines``)::

    from nascore.testing.engines import EngineConformance

    class TestMyEngine(EngineConformance):
        engine_name = "my-engine"

The engine is made as the experiment makes it, with :func:`nascore.plugin.create_engine` from the
``engine_options`` fixture (default ``None``: the engine's defaults; override the fixture to give
settings) and the :class:`~nascore.engine.TrialResources` of each test; override the ``make_engine``
fixture (a factory ``make_engine(resources) -> ExecutionEngine``) to make it otherwise. pytest then
drives the engine as an experiment does (``check``, ``start``, ``submit`` while ``idle_slots()`` is
positive, ``wait``, ``shutdown``), with a :class:`~nascore.testing.fakes.RecordingSink`, a tiny space
(:meth:`EngineConformance.make_space`) and evaluators that are functions of this module wrapped in a
:class:`~nascore.evaluators.FunctionalEvaluator` (:meth:`EngineConformance.make_evaluator`), so that an
engine that ships trials to worker processes or machines imports them there. It checks that:

* every submitted trial ends exactly once, SUCCEEDED or FAILED, with RUNNING first (in its last
  attempt, when it got ``retry`` events) and nothing after its end; intermediate results arrive in
  the order they were reported, before the final result, whose value and record are the ones the
  evaluator reported; ``idle_slots()`` and ``running()`` are whole numbers, never negative, and
  ``running()`` counts a trial from its submission to its end and is back to 0 when all ended;
* an evaluator that raises ends its trial FAILED with the exception's text in the error, a NaN final
  result fails its trial too, and later trials still succeed;
* the trial's ``seed`` is honoured: two trials with the same seed draw the same ``torch.rand``, a
  third with another seed draws another;
* ``shutdown()`` while trials run returns promptly and nothing is emitted from then on (a trial it
  stops is marked INTERRUPTED by the experiment, not ended by the engine); an engine started and
  shut down without any trial shuts down promptly too;
* a model's sample arrives where the trial runs as it was submitted (``nascore.get_current_sample()``);
* with ``TrialResources(trial_concurrency=2)`` at most :attr:`~EngineConformance.max_concurrency`
  trials run at once (each records when it started and ended in a file of a folder given to its
  evaluator), and ``trial_timeout`` stops a trial that outruns it and fails it, after which the next
  trial succeeds (or, for an engine whose :attr:`~EngineConformance.honours_timeout` is ``False``, the
  trial runs to its end untouched);
* the engine is registered under its name and is an :class:`~nascore.engine.ExecutionEngine`
  subclass whose ``name`` is that name; its ``options_class`` is ``None`` or an attrs class;
  ``create_engine`` makes an instance of it.

Every failing check says what is wrong in words, beginning with ``engine '<name>'``.

Class attributes tune the suite: :attr:`~EngineConformance.max_concurrency` (trials that may run at
once with ``trial_concurrency=2``; ``None``: 2), :attr:`~EngineConformance.honours_timeout`, the time
limits (:attr:`~EngineConformance.trial_deadline`, :attr:`~EngineConformance.shutdown_limit`,
:attr:`~EngineConformance.trial_timeout`). A check that cannot apply to an engine is listed in
:attr:`~EngineConformance.not_applicable` with the reason (it is not collected for that engine: no
skipped test stands in for a check that did not run); a check the
engine is known to fail is listed in :attr:`~EngineConformance.known_failures` (a strict xfail).

An engine that cannot run a plain :class:`~nascore.evaluators.FunctionalEvaluator` on a
:class:`~nascore.testing.fakes.DictSpace` overrides :meth:`~EngineConformance.make_space` and
:meth:`~EngineConformance.make_evaluator` to give a space and evaluators it can run, which do what
the suite's do (see :data:`BEHAVIOURS`; :func:`expected_value` and :func:`recorded_time` help). An
engine that trains several models in one trial (a :class:`~nascore.group.ModelGroup`, as ``cgo``
does) can use :class:`GroupEvaluator`: the same behaviours, for one model or a group::

    class TestMyGroupingEngine(EngineConformance):
        engine_name = "my-grouping-engine"
        max_concurrency = 4                       # models at once: 2 trials of up to 2 models

        def make_space(self):
            return my_format().build(MySpace())  # the format the engine groups

        def make_evaluator(self, behaviour, **arguments):
            return GroupEvaluator(behaviour, **arguments)

Trials here run on this machine or on machines that share its file system (loopback): the timing
and gate files are written where the suite's temporary folder is. The evaluators are imported where
the trials run, with this module: pytest must be installed there too.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import time
import uuid
import zlib
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import attrs
import pytest

import nascore
from nascore.engine import (
    EngineContext,
    ExecutionEngine,
    TrialEvent,
    TrialResources,
    TrialStatus,
    TrialSubmission,
)
from nascore.evaluator import Evaluator
from nascore.evaluators import FunctionalEvaluator
from nascore.format import ExecutableSpace
from nascore.plugin import create_engine, get_plugins
from nascore.serialization import object_spec
from nascore.space import Categorical, Sample
from nascore.testing.fakes import DictSpace, RecordingSink
from nascore.trial import get_current_trial

__all__ = [
    "BEHAVIOURS",
    "EngineConformance",
    "EngineRun",
    "GroupEvaluator",
    "draw",
    "echo_sample",
    "expected_value",
    "fail",
    "hold",
    "non_finite",
    "recorded_time",
    "record_times",
    "report_steps",
]

#: Text in the error of the suite's failing evaluator; the FAILED event must hold it.
FAILURE_TEXT = "the conformance suite's evaluator failed on purpose"


# --- the evaluators: module-level, so that worker processes and remote machines import them -----------


def expected_value(sample: Sample) -> float:
    """The final result the suite's evaluators report for ``sample``: a number in [1, 2) that differs between samples."""
    text = json.dumps(sample, sort_keys=True, default=repr)
    return 1.0 + zlib.crc32(text.encode()) % 1000 / 1000


def report_steps(model: Any, steps: int = 3) -> None:
    """Report ``steps`` intermediate results ``{"default": step / 10, "step": step}``, then the final
    ``{"default": expected_value(sample), "steps": steps}``."""
    sample = nascore.get_current_sample()
    for step in range(steps):
        nascore.report_intermediate_result({"default": step / 10, "step": step})
    nascore.report_final_result({"default": expected_value(sample), "steps": steps})


def fail(model: Any, text: str = FAILURE_TEXT) -> None:
    """Raise ``RuntimeError(text)``."""
    raise RuntimeError(text)


def non_finite(model: Any) -> float:
    """Return NaN as the final result (the trial must fail)."""
    return float("nan")


def draw(model: Any) -> float:
    """Return ``torch.rand(1)``: what the trial's random state gives."""
    import torch

    return torch.rand(1).item()


def echo_sample(model: Any) -> dict[str, Any]:
    """Report the sample the trial sees (``nascore.get_current_sample()``) in the final record, under ``"sample"``."""
    sample = nascore.get_current_sample()
    return {"default": expected_value(sample), "sample": sample}


@contextlib.contextmanager
def recorded_time(folder: str | os.PathLike[str], labels: list[str]) -> Iterator[None]:
    """Write when the block started and ended (``time.time()``) in a new file of ``folder`` per label.

    A file holds ``"<start>"`` while the block runs and ``"<start> <end>"`` once it is over; the suite
    counts the files that overlap to know how many trials (or models) ran at once.
    """
    paths = [Path(folder) / f"interval-{label}-{os.getpid()}-{uuid.uuid4().hex[:8]}.txt" for label in labels]
    start = time.time()
    for path in paths:
        path.write_text(f"{start!r}\n")
    yield
    end = time.time()
    for path in paths:
        path.write_text(f"{start!r} {end!r}\n")


def record_times(model: Any, folder: str, seconds: float = 0.3) -> float:
    """Sleep ``seconds``, recording when in ``folder`` (:func:`recorded_time`); return the expected value."""
    trial = get_current_trial()
    with recorded_time(folder, [str(trial.trial_id) if trial is not None else "none"]):
        time.sleep(seconds)
    return expected_value(nascore.get_current_sample())


def hold(model: Any, gate: str, seconds: float = 30.0) -> float:
    """Wait until the file ``gate`` exists, ``seconds`` at most; return 1.0."""
    deadline = time.monotonic() + seconds
    while not Path(gate).exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    return 1.0


#: The behaviours :meth:`EngineConformance.make_evaluator` gives evaluators of, by name.
BEHAVIOURS: dict[str, Callable[..., Any]] = {
    "report_steps": report_steps,
    "fail": fail,
    "non_finite": non_finite,
    "draw": draw,
    "echo_sample": echo_sample,
    "record_times": record_times,
    "hold": hold,
}


class GroupEvaluator(Evaluator):
    """The suite's behaviours for engines that train several models in one trial (a :class:`~nascore.group.ModelGroup`).

    One model is evaluated as :data:`BEHAVIOURS` ``[behaviour](module, **arguments)`` does (as the
    :class:`~nascore.evaluators.FunctionalEvaluator` of :meth:`EngineConformance.make_evaluator` would);
    a group does the same for each member and reports each member's results for its own trial
    (``report_*_result(metric, member=i)``): ``fail`` raises once for the whole group, ``hold`` and
    ``record_times`` wait once for all members (each member's time is recorded), ``draw`` builds each
    member as it iterates ``group.members`` (so from its own trial's seed) and then draws.
    Equal behaviours with equal arguments have equal :meth:`merge_key` (their models may train together).
    It ships as data (:meth:`to_spec`).

    :param behaviour: a name of :data:`BEHAVIOURS`.
    :param arguments: its keyword arguments (JSON data).
    """

    def __init__(self, behaviour: str, **arguments: Any) -> None:
        if behaviour not in BEHAVIOURS:
            raise ValueError(f"unknown behaviour {behaviour!r}; one of {sorted(BEHAVIOURS)}")
        self.behaviour = behaviour
        self.arguments = arguments

    def merge_key(self) -> Any:
        return ("nascore.testing.engines", self.behaviour, json.dumps(self.arguments, sort_keys=True))

    def evaluate_module(self, module: Any) -> Any:
        return BEHAVIOURS[self.behaviour](module, **self.arguments)

    def evaluate_group(self, group: Any) -> None:
        members = group.members
        count = len(members)
        samples = [member.sample for member in members[:]]
        behaviour, arguments = self.behaviour, self.arguments
        finals: list[Any]
        if behaviour == "fail":
            fail(group, **arguments)  # raises: the whole group fails
        elif behaviour == "report_steps":
            steps = arguments.get("steps", 3)
            for step in range(steps):
                for i in range(count):
                    nascore.report_intermediate_result({"default": step / 10, "step": step}, member=i)
            finals = [{"default": expected_value(sample), "steps": steps} for sample in samples]
        elif behaviour == "non_finite":
            finals = [float("nan")] * count
        elif behaviour == "draw":
            finals = []
            for member in members:  # iterating seeds each member with its own trial's seed
                member.build()
                finals.append(draw(None))
        elif behaviour == "echo_sample":
            finals = [{"default": expected_value(sample), "sample": sample} for sample in samples]
        elif behaviour == "record_times":
            with recorded_time(arguments["folder"], [str(t) for t in group.trial_ids]):
                time.sleep(arguments.get("seconds", 0.3))
            finals = [expected_value(sample) for sample in samples]
        else:  # hold
            finals = [hold(group, **arguments)] * count
        for i, final in enumerate(finals):
            nascore.report_final_result(final, member=i)

    def to_spec(self) -> dict[str, Any]:
        return object_spec(GroupEvaluator, (self.behaviour,), self.arguments)

    def __repr__(self) -> str:
        return f"GroupEvaluator({self.behaviour!r}, {self.arguments!r})"


# --- helpers ------------------------------------------------------------------------------------------


def _describe(event: Any) -> str:
    if not isinstance(event, TrialEvent):
        return repr(event)
    if event.kind == "status":
        text = f"status {event.status}"
        if event.error:
            text += f" ({_first_line(event.error)})"
        return text
    if event.kind in ("intermediate", "final"):
        return f"{event.kind} {event.value!r}"
    return f"{event.kind}" + (f" ({_first_line(event.error)})" if event.error else "")


def _describe_all(events: list[Any], limit: int = 12) -> str:
    shown = ", ".join(_describe(e) for e in events[:limit])
    return f"[{shown}{f', ... ({len(events)} in all)' if len(events) > limit else ''}]"


def _first_line(text: str, limit: int = 160) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _short(text: str | None, limit: int = 400) -> str:
    text = text or ""
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _intervals(folder: Path) -> list[tuple[float, float]]:
    """The intervals :func:`recorded_time` wrote in ``folder``; one still open ends now."""
    found = []
    for path in sorted(folder.glob("interval-*.txt")):
        parts = path.read_text().split()
        if parts:
            found.append((float(parts[0]), float(parts[1]) if len(parts) > 1 else time.time()))
    return found


def _gate(tmp_path: Path) -> Path:
    """The file whose existence releases the :func:`hold` trials of a check (made when the check ends)."""
    return Path(tmp_path) / "experiment" / "gate"


def _most_at_once(intervals: list[tuple[float, float]]) -> int:
    changes = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    most = now = 0
    for _, change in changes:  # at equal times an end (-1) sorts first: touching intervals do not overlap
        now += change
        most = max(most, now)
    return most


# --- one started engine -----------------------------------------------------------------------------------


class EngineRun:
    """An engine under test, started: its sink, the trials submitted, and the checks made while driving it."""

    def __init__(
        self,
        suite: EngineConformance,
        engine: ExecutionEngine,
        sink: RecordingSink,
        space: ExecutableSpace,
        folder: Path,
        resources: TrialResources,
    ) -> None:
        self.suite = suite
        self.engine = engine
        self.sink = sink
        self.space = space
        self.folder = folder
        self.resources = resources
        self.submitted: dict[int, TrialSubmission] = {}
        self.gate = folder / "gate"  # see _gate()
        self.shut_down = False
        self._next_id = 1

    # --- the engine's counters, checked ------------------------------------------------------------

    def _count(self, method: str, when: str) -> int:
        value = self.suite.call(f"{method}() {when}", getattr(self.engine, method))
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.suite.fail(f"{method}() returned {value!r} {when}; it must return an int")
        if value < 0:
            what = "how many more trials can be submitted now" if method == "idle_slots" else "how many submitted trials have not ended"
            raise self.suite.fail(f"{method}() returned {value} {when}; it must never be negative ({what})")
        return value

    def idle_slots(self, when: str) -> int:
        return self._count("idle_slots", when)

    def running(self, when: str) -> int:
        return self._count("running", when)

    # --- trials ------------------------------------------------------------------------------------

    def ended(self, trial_id: int) -> bool:
        return any(isinstance(e, TrialEvent) and (e.ends_trial or e.kind == "abort") for e in self.sink.of(trial_id))

    def unfinished(self) -> list[int]:
        return [trial_id for trial_id in self.submitted if not self.ended(trial_id)]

    def submit(self, sample: Sample, evaluator: Evaluator, seed: int | None = None) -> int:
        """Submit a trial of ``sample``; checks that ``running()`` counts it. Returns its id."""
        trial_id = self._next_id
        self._next_id += 1
        model = self.suite.call(f"freeze({sample!r}) of the suite's space", lambda: self.space.freeze(sample))
        submission = TrialSubmission(trial_id, model, evaluator, self.folder / "trials" / str(trial_id), dict(model.sample), seed)
        self.submitted[trial_id] = submission
        self.suite.call(f"submit() of trial {trial_id}", lambda: self.engine.submit(submission))
        when = f"right after trial {trial_id} was submitted"
        self.idle_slots(when)
        if self.running(when) == 0 and not self.ended(trial_id):
            # A threaded engine may free the trial's slot a moment before its end reaches the sink.
            with contextlib.suppress(AssertionError):
                self.sink.wait_for(lambda events: self.ended(trial_id), timeout=2.0)
            if not self.ended(trial_id):
                raise self.suite.fail(
                    f"running() is 0 {when}, and the trial has not ended; running() must count every submitted "
                    "trial until it ends"
                )
        return trial_id

    def wait(self, timeout: float) -> None:
        """``wait(timeout)``; checks that it does not block far longer than ``timeout`` when nothing happens."""
        before = len(self.sink.events)
        started = time.monotonic()
        self.suite.call(f"wait(timeout={timeout})", lambda: self.engine.wait(timeout))
        took = time.monotonic() - started
        if took > timeout + self.suite.wait_grace and len(self.sink.events) == before:
            raise self.suite.fail(
                f"wait(timeout={timeout}) took {took:.1f} s and no event was emitted meanwhile; wait() must return "
                "after at most about timeout seconds when nothing happens"
            )

    def run(self, trials: list[tuple[Sample, Evaluator, int | None]]) -> list[int]:
        """Submit ``trials`` (sample, evaluator, seed) whenever ``idle_slots()`` is positive and wait until all ended.

        Checks the counters on the way, and that ``running()`` is back to 0 at the end. Returns the ids.
        """
        pending = list(trials)
        ids: list[int] = []
        deadline = time.monotonic() + self.suite.trial_deadline
        while pending or self.unfinished():
            if time.monotonic() > deadline:
                waiting = self.unfinished()
                raise self.suite.fail(
                    f"trials {waiting} did not end within {self.suite.trial_deadline:g} s (trial_deadline); their "
                    f"events: {{{', '.join(f'{i}: {_describe_all(self.sink.of(i))}' for i in waiting)}}}"
                    + (f"; {len(pending)} more could not be submitted (idle_slots() stayed 0)" if pending else "")
                )
            slots = self.idle_slots("while the suite submits trials") if pending else 0
            while pending and slots > 0:
                sample, evaluator, seed = pending.pop(0)
                ids.append(self.submit(sample, evaluator, seed))
                slots = self.idle_slots(f"after submitting trial {ids[-1]}")
            if pending and slots == 0 and not self.unfinished() and self.running("with every trial ended") == 0:
                raise self.suite.fail(
                    f"idle_slots() is 0 with nothing running and {len(pending)} trial(s) to submit; an engine "
                    "with nothing running must accept a trial"
                )
            if self.unfinished() or pending:
                self.wait(0.5)
        self.check_drained()
        return ids

    def check_drained(self) -> None:
        """Every trial ended: ``running()`` must be back to 0 (a moment's grace for threaded engines)."""
        limit = time.monotonic() + 2.0
        while True:
            running = self.running("once every submitted trial had ended")
            if running == 0:
                break
            if time.monotonic() > limit:
                raise self.suite.fail(
                    f"running() is {running} although every submitted trial ({sorted(self.submitted)}) ended; it "
                    "must count submitted trials that have not ended, and be back to 0 when all ended"
                )
            self.wait(0.1)
        slots = self.idle_slots("once every submitted trial had ended")
        if slots < 1:
            raise self.suite.fail("idle_slots() is 0 with every trial ended and nothing running; it must accept a trial")

    def shutdown(self) -> float:
        """``shutdown()``; returns how long it took."""
        started = time.monotonic()
        self.shut_down = True
        self.suite.call("shutdown()", self.engine.shutdown)
        return time.monotonic() - started

    # --- what the events say ------------------------------------------------------------------------

    def check_unknown_ids(self) -> None:
        for event in list(self.sink.events):
            if not isinstance(event, TrialEvent):
                raise self.suite.fail(f"the sink received {event!r}; engines must emit nascore.engine.TrialEvent objects")
            if event.trial_id not in self.submitted:
                raise self.suite.fail(
                    f"emitted {_describe(event)} for trial {event.trial_id}, which was never submitted "
                    f"(submitted: {sorted(self.submitted)}); events must carry the id of the trial they are about"
                )

    def end(self, trial_id: int) -> TrialEvent:
        """The one end of ``trial_id``, after checking the shape of its events; returns the end event."""
        events = self.sink.of(trial_id)
        fail = self.suite.fail
        aborts = [e for e in events if e.kind == "abort"]
        if aborts:
            raise fail(
                f"trial {trial_id} was aborted ({_short(aborts[0].error)}); the suite's trials run in a writable "
                "temporary folder and must end SUCCEEDED or FAILED"
            )
        ends = [e for e in events if e.ends_trial]
        if not ends:
            raise fail(f"trial {trial_id} never ended: no SUCCEEDED or FAILED event (its events: {_describe_all(events)})")
        if len(ends) > 1:
            raise fail(
                f"trial {trial_id} ended {len(ends)} times ({', '.join(_describe(e) for e in ends)}); every trial "
                "must end exactly once"
            )
        end = ends[0]
        after = events[events.index(end) + 1 :]
        if after:
            raise fail(
                f"trial {trial_id} got {_describe_all(after)} after its end ({_describe(end)}); nothing may follow "
                "a trial's end"
            )
        attempt = self.last_attempt(trial_id)
        first = attempt[0]
        retried = len(attempt) < len(events)
        if not (first.kind == "status" and first.status is TrialStatus.RUNNING):
            raise fail(
                f"trial {trial_id}'s first event{' after its last retry' if retried else ''} is {_describe(first)} "
                f"(its events: {_describe_all(events)}); a trial must report RUNNING before anything else, its end "
                "included"
            )
        finals = [e for e in attempt if e.kind == "final"]
        if end.status is TrialStatus.FAILED and finals:
            raise fail(
                f"trial {trial_id} reported the final result {finals[0].value!r} and then ended FAILED; a failed "
                "trial has no final result (run_trial emits the final result only right before SUCCEEDED)"
            )
        return end

    def last_attempt(self, trial_id: int) -> list[TrialEvent]:
        """The events of ``trial_id`` after its last ``retry`` (all of them if it had none)."""
        events = self.sink.of(trial_id)
        retries = [i for i, e in enumerate(events) if e.kind == "retry"]
        return events[retries[-1] + 1 :] if retries else events

    def succeeded(self, trial_id: int, what: str) -> TrialEvent:
        """The final event of ``trial_id``, which must have ended SUCCEEDED."""
        end = self.end(trial_id)
        if end.status is not TrialStatus.SUCCEEDED:
            raise self.suite.fail(
                f"trial {trial_id} ({what}) ended {end.status}: {_short(end.error)}; it must succeed"
            )
        finals = [e for e in self.last_attempt(trial_id) if e.kind == "final"]
        if len(finals) != 1:
            raise self.suite.fail(
                f"trial {trial_id} ended SUCCEEDED with {len(finals)} final results {[e.value for e in finals]}; a "
                "successful trial reports exactly one, before its end"
            )
        return finals[0]

    def failed(self, trial_id: int, what: str) -> TrialEvent:
        """The end of ``trial_id``, which must be FAILED with an error."""
        end = self.end(trial_id)
        if end.status is not TrialStatus.FAILED:
            raise self.suite.fail(f"{what}, but trial {trial_id} ended {end.status}; it must end FAILED")
        if not end.error:
            raise self.suite.fail(f"{what}; trial {trial_id} ended FAILED with no error text; a FAILED event must say why")
        return end


# --- the suite -------------------------------------------------------------------------------------------


class EngineConformance:
    """Subclass with :attr:`engine_name`; see the module documentation."""

    #: The name the engine is registered under (``nascore_register_engines``).
    engine_name: str = ""
    #: Most trials that may run at once with ``TrialResources(trial_concurrency=2)`` (``None``: 2).
    max_concurrency: int | None = None
    #: Whether ``trial_timeout`` stops a trial that outruns it and fails it (``False``: the engine ignores it).
    honours_timeout: bool = True
    #: Checks that cannot apply to this engine, by test name, with the reason (they are not collected).
    not_applicable: ClassVar[Mapping[str, str]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for check, reason in cls.not_applicable.items():
            if not callable(getattr(cls, check, None)):
                raise TypeError(f"{cls.__name__}.not_applicable names {check!r}, which is not a check of the suite")
            if not reason:
                raise TypeError(f"{cls.__name__}.not_applicable[{check!r}] needs the reason the check cannot apply")
            setattr(cls, check, None)  # pytest does not collect it
    #: Checks this engine is known to fail, by test name, with the reason (strict xfail: a fix must remove it).
    known_failures: ClassVar[Mapping[str, str]] = {}
    #: Seconds the suite waits for the trials of one check to end.
    trial_deadline: float = 60.0
    #: Seconds ``shutdown()`` may take.
    shutdown_limit: float = 5.0
    #: Seconds after ``shutdown()`` returned during which no event may come (checked at the end of them).
    quiet_period: float = 0.5
    #: ``trial_timeout`` of the timeout check, in seconds.
    trial_timeout: float = 1.0
    #: Seconds ``wait(timeout)`` may overrun ``timeout`` when nothing happens.
    wait_grace: float = 5.0

    # --- fixtures ----------------------------------------------------------------------------------

    @pytest.fixture
    def engine_options(self) -> Any:
        """The engine's options as the user would give them (``engine_options``: a mapping or its options
        object); ``None``: the engine's defaults."""
        return None

    @pytest.fixture
    def make_engine(self, engine_options: Any) -> Callable[[TrialResources], ExecutionEngine]:
        """A factory ``make_engine(resources) -> ExecutionEngine``: by default ``create_engine(engine_name, engine_options, resources)``."""
        if not self.engine_name:
            raise NotImplementedError(
                f"{type(self).__name__}: an EngineConformance subclass must set engine_name to the name its engine "
                "is registered under, e.g. engine_name = 'my-engine' (or define a make_engine fixture: a factory "
                "make_engine(resources) -> ExecutionEngine)"
            )
        name = self.engine_name
        return lambda resources: create_engine(name, engine_options, resources)

    @pytest.fixture(autouse=True)
    def _declared_outcome(self, request: pytest.FixtureRequest) -> None:
        node = request.node
        names = (node.name, getattr(node, "originalname", node.name))
        reason = next((self.known_failures[n] for n in names if n in self.known_failures), None)
        if reason:
            request.applymarker(pytest.mark.xfail(reason=reason, strict=True))

    # --- what a subclass may change ------------------------------------------------------------------

    def make_space(self) -> ExecutableSpace:
        """The space the trials' models come from (``freeze(sample)``); a sample of every JSON scalar type."""
        return DictSpace(
            [
                Categorical([1, 2, 3, 4, 5, 6], label="x"),
                Categorical(["relu", "tanh"], label="act"),
                Categorical([0.5, 2.5], label="scale"),
                Categorical([True, False], label="skip"),
            ]
        )

    def make_evaluator(self, behaviour: str, **arguments: Any) -> Evaluator:
        """An evaluator that does what the function ``behaviour`` of :data:`BEHAVIOURS` does, with ``arguments``.

        The default is ``FunctionalEvaluator(function, **arguments)``; an engine that needs evaluators of
        its own gives ones that report the same (the suite checks the results with :func:`expected_value`).
        """
        return FunctionalEvaluator(BEHAVIOURS[behaviour], **arguments)

    def resources(self, trial_concurrency: int = 1, trial_timeout: float | None = None) -> TrialResources:
        """The resources of a check."""
        return TrialResources(trial_concurrency=trial_concurrency, trial_timeout=trial_timeout)

    # --- helpers -------------------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.engine_name or type(self).__name__

    @property
    def concurrency_limit(self) -> int:
        return 2 if self.max_concurrency is None else self.max_concurrency

    def fail(self, message: str) -> AssertionError:
        """An ``AssertionError`` whose message starts with ``engine '<name>'``."""
        return AssertionError(f"engine {self.name!r}: {message}")

    def call(self, what: str, fn: Callable[[], Any]) -> Any:
        """``fn()``; an exception it raises becomes a failure saying that ``what`` raised it."""
        try:
            return fn()
        except Exception as exc:
            raise self.fail(f"{what} raised {_error(exc)}") from exc

    def samples(self, space: ExecutableSpace, count: int) -> list[Sample]:
        """``count`` samples of ``space``, different ones as far as the space has them (deterministic)."""
        grid = []
        for sample in space.grid_samples():
            grid.append(sample)
            if len(grid) >= 256:
                break
        chosen = random.Random(0).sample(grid, min(count, len(grid)))
        return [chosen[i % len(chosen)] for i in range(count)]

    @contextlib.contextmanager
    def started(
        self,
        make_engine: Callable[[TrialResources], ExecutionEngine],
        tmp_path: Path,
        evaluators: list[Evaluator],
        resources: TrialResources,
    ) -> Iterator[EngineRun]:
        """Make the engine, ``check()`` it with ``evaluators``, start it, and shut it down at the end."""
        folder = _gate(tmp_path).parent
        folder.mkdir(parents=True, exist_ok=True)
        space = self.call("make_space()", self.make_space)
        engine = self.call(f"making the engine with {resources}", lambda: make_engine(resources))
        if not isinstance(engine, ExecutionEngine):
            raise self.fail(f"make_engine() returned a {type(engine).__name__}; it must return a nascore.engine.ExecutionEngine")
        for evaluator in evaluators:
            self.call(
                f"check({evaluator!r}) of the suite's evaluator (an engine that cannot run it overrides "
                "make_evaluator and make_space to give evaluators it can run)",
                lambda evaluator=evaluator: engine.check(evaluator, space),
            )
        sink = RecordingSink()
        self.call("start()", lambda: engine.start(EngineContext("conformance", folder, resources, sink, space)))
        run = EngineRun(self, engine, sink, space, folder, resources)
        try:
            yield run
            run.check_unknown_ids()
        finally:
            run.gate.write_text("open")  # trials held in threads of this process end
            if not run.shut_down:
                with contextlib.suppress(Exception):
                    engine.shutdown()

    # --- the checks --------------------------------------------------------------------------------

    def test_the_engine_is_registered_under_its_name(
        self, make_engine: Callable[[TrialResources], ExecutionEngine]
    ) -> None:
        engines = get_plugins().engines
        if self.engine_name not in engines.names():
            raise self.fail(
                f"no engine is registered under this name (registered: {', '.join(engines.names()) or 'none'}); "
                "register it in a nascore_register_engines hook with register(name, EngineClass)"
            )
        entry = engines.registration(self.engine_name)
        registered = entry.obj
        if not (isinstance(registered, type) and issubclass(registered, ExecutionEngine)):
            raise self.fail(
                f"the registered object is {registered!r}, not a subclass of nascore.engine.ExecutionEngine; register "
                "the engine class"
            )
        if registered.name != self.engine_name:
            raise self.fail(
                f"{registered.__name__}.name is {registered.name!r}; it must be the name the engine is registered under"
            )
        options_class = registered.options_class
        if options_class is not None and not (isinstance(options_class, type) and attrs.has(options_class)):
            raise self.fail(
                f"{registered.__name__}.options_class is {options_class!r}; it must be None (no settings) or an "
                "attrs class (@attrs.define), which the core structures engine_options into"
            )
        engine = self.call("making the engine", lambda: make_engine(self.resources()))
        if not isinstance(engine, registered):
            raise self.fail(
                f"making the engine gave a {type(engine).__name__}, not an instance of the registered class "
                f"{registered.__name__}"
            )

    def test_every_trial_ends_once_after_running_with_its_results_in_order(
        self, make_engine: Callable[[TrialResources], ExecutionEngine], tmp_path: Path
    ) -> None:
        evaluator = self.make_evaluator("report_steps", steps=3)
        with self.started(make_engine, tmp_path, [evaluator], self.resources(trial_concurrency=2)) as run:
            if run.idle_slots("right after start()") < 1:
                raise self.fail("idle_slots() is 0 right after start(), with nothing submitted; it must accept a trial")
            if run.running("right after start()") != 0:
                raise self.fail(f"running() is {run.running('right after start()')} right after start(); nothing was submitted")
            samples = self.samples(run.space, 4)
            ids = run.run([(sample, evaluator, None) for sample in samples])
            for trial_id, sample in zip(ids, samples):
                final = run.succeeded(trial_id, "it reports 3 intermediate results and a final one")
                attempt = run.last_attempt(trial_id)
                steps = [e.metric.get("step") if isinstance(e.metric, dict) else None for e in attempt if e.kind == "intermediate"]
                if steps != [0, 1, 2]:
                    raise self.fail(
                        f"trial {trial_id} reported the intermediate results of steps [0, 1, 2], in that order, but "
                        f"its events hold those of steps {steps}; every intermediate result must arrive once, in order"
                    )
                values = [e.value for e in attempt if e.kind == "intermediate"]
                if values != [0.0, 0.1, 0.2]:
                    raise self.fail(
                        f"trial {trial_id} reported the intermediate values [0.0, 0.1, 0.2] but its events hold {values}"
                    )
                last_intermediate = max(i for i, e in enumerate(attempt) if e.kind == "intermediate")
                if attempt.index(final) < last_intermediate:
                    raise self.fail(
                        f"trial {trial_id}'s final result came before its last intermediate result "
                        f"({_describe_all(attempt)}); the final result comes after every intermediate one"
                    )
                expected = {"default": expected_value(sample), "steps": 3}
                if final.value != expected["default"]:
                    raise self.fail(
                        f"trial {trial_id} reported the final result {expected['default']!r} but its final event's "
                        f"value is {final.value!r}"
                    )
                record = final.metric if isinstance(final.metric, dict) else {}
                missing = {k: v for k, v in expected.items() if record.get(k) != v}
                if missing:
                    raise self.fail(
                        f"trial {trial_id} reported the final record {expected} but its final event's metric is "
                        f"{final.metric!r}; the metric must hold the record the evaluator reported"
                    )

    def test_a_failing_trial_fails_with_its_error_and_later_trials_succeed(
        self, make_engine: Callable[[TrialResources], ExecutionEngine], tmp_path: Path
    ) -> None:
        failing = self.make_evaluator("fail", text=FAILURE_TEXT)
        nan = self.make_evaluator("non_finite")
        good = self.make_evaluator("report_steps", steps=1)
        with self.started(make_engine, tmp_path, [failing, nan, good], self.resources()) as run:
            # Two of each, one after the other: an engine that trains models together fails them together.
            samples = self.samples(run.space, 5)
            ids = run.run([(samples[0], failing, None), (samples[1], failing, None), (samples[2], nan, None),
                           (samples[3], nan, None)])
            for raised in ids[:2]:
                end = run.failed(raised, f"trial {raised}'s evaluator raised RuntimeError({FAILURE_TEXT!r})")
                if FAILURE_TEXT not in (end.error or ""):
                    raise self.fail(
                        f"trial {raised}'s evaluator raised RuntimeError({FAILURE_TEXT!r}) but the error of its FAILED "
                        f"event does not hold the exception's text: {_short(end.error)}; it must (run_trial's error does)"
                    )
            for returned_nan in ids[2:]:
                run.failed(returned_nan, f"trial {returned_nan}'s evaluator returned NaN as its final result")
            [later] = run.run([(samples[4], good, None)])
            final = run.succeeded(later, "it comes after failing trials")
            if final.value != expected_value(samples[4]):
                raise self.fail(
                    f"trial {later} reported the final result {expected_value(samples[4])!r} but its final event's "
                    f"value is {final.value!r}"
                )

    def test_the_seed_of_a_trial_is_honoured(
        self, make_engine: Callable[[TrialResources], ExecutionEngine], tmp_path: Path
    ) -> None:
        evaluator = self.make_evaluator("draw")
        with self.started(make_engine, tmp_path, [evaluator], self.resources()) as run:
            [sample] = self.samples(run.space, 1)
            seeds = [5, 6, 5]
            ids = run.run([(sample, evaluator, seed) for seed in seeds])
            draws = [run.succeeded(trial_id, "it returns torch.rand(1)").value for trial_id in ids]
            if draws[0] != draws[2]:
                raise self.fail(
                    f"trials {ids[0]} and {ids[2]} had the same seed 5 (and the same model and evaluator) but drew "
                    f"torch.rand(1) = {draws[0]!r} and {draws[2]!r}; a trial must start from its submission's seed "
                    "(run_trial(..., seed=submission.seed) seeds it)"
                )
            if draws[0] == draws[1]:
                raise self.fail(
                    f"trials {ids[0]} (seed 5) and {ids[1]} (seed 6) drew the same torch.rand(1) = {draws[0]!r}; a "
                    "trial must start from its submission's seed, not from a fixed random state"
                )

    def test_shutdown_while_trials_run_returns_promptly_and_nothing_is_emitted_after(
        self, make_engine: Callable[[TrialResources], ExecutionEngine], tmp_path: Path
    ) -> None:
        held = self.shutdown_limit + 2  # an engine that waits for running trials at shutdown takes longer than the limit
        evaluator = self.make_evaluator("hold", gate=str(_gate(tmp_path)), seconds=held)
        with self.started(make_engine, tmp_path, [evaluator], self.resources()) as run:
            # As many trials as the engine takes at once, two at most (an engine that groups models groups them).
            count = max(1, min(2, run.idle_slots("right after start()")))
            ids = [run.submit(sample, evaluator) for sample in self.samples(run.space, count)]
            deadline = time.monotonic() + self.trial_deadline
            while not any(e.kind == "status" and e.status is TrialStatus.RUNNING for e in run.sink.events):
                if time.monotonic() > deadline:
                    raise self.fail(
                        f"no trial of {ids} reported RUNNING within {self.trial_deadline:g} s (trial_deadline)"
                    )
                run.wait(0.2)
            ended = [trial_id for trial_id in ids if run.ended(trial_id)]
            if ended:
                raise self.fail(
                    f"trial {ended[0]} (it waits {held:g} s) ended before the suite could shut the engine down while "
                    f"it ran ({_describe_all(run.sink.of(ended[0]))}): the engine runs trials inside wait(), in the "
                    "caller's thread; declare this check in not_applicable, with that reason"
                )
            running = [t for t in ids if any(e.status is TrialStatus.RUNNING for e in run.sink.of(t))]
            what = f"trial{'s' if len(running) > 1 else ''} {', '.join(map(str, running))}"
            emitted = len(run.sink.events)
            took = run.shutdown()
            if took > self.shutdown_limit:
                raise self.fail(
                    f"shutdown() took {took:.1f} s while {what} ran; it must stop running trials and return "
                    f"promptly (within {self.shutdown_limit:g} s, shutdown_limit), not wait for them"
                )
            during = run.sink.events[emitted:]
            if during:
                raise self.fail(
                    f"shutdown() emitted {_describe_all(during)} while it stopped {what}; a trial stopped by "
                    "shutdown() gets no event (the experiment marks it INTERRUPTED and runs it again on resume)"
                )
            time.sleep(self.quiet_period)
            after = run.sink.events[emitted:]
            if after:
                raise self.fail(
                    f"after shutdown() returned, the engine emitted {_describe_all(after)}; nothing may be emitted "
                    "after shutdown()"
                )

    def test_an_engine_that_ran_nothing_shuts_down_promptly(
        self, make_engine: Callable[[TrialResources], ExecutionEngine], tmp_path: Path
    ) -> None:
        with self.started(make_engine, tmp_path, [], self.resources()) as run:
            took = run.shutdown()
            if took > self.shutdown_limit:
                raise self.fail(
                    f"shutdown() took {took:.1f} s with no trial ever submitted; it must return promptly (within "
                    f"{self.shutdown_limit:g} s, shutdown_limit)"
                )
            time.sleep(min(self.quiet_period, 0.2))
            if run.sink.events:
                raise self.fail(
                    f"the engine emitted {_describe_all(run.sink.events)} although no trial was submitted"
                )

    def test_a_model_arrives_with_its_sample(
        self, make_engine: Callable[[TrialResources], ExecutionEngine], tmp_path: Path
    ) -> None:
        evaluator = self.make_evaluator("echo_sample")
        with self.started(make_engine, tmp_path, [evaluator], self.resources()) as run:
            samples = self.samples(run.space, 3)
            ids = run.run([(sample, evaluator, None) for sample in samples])
            for trial_id, sample in zip(ids, samples):
                final = run.succeeded(trial_id, "it reports the sample it sees")
                seen = final.metric.get("sample") if isinstance(final.metric, dict) else None
                if seen != sample:
                    raise self.fail(
                        f"trial {trial_id} was submitted with a model of the sample {sample!r}, but inside the trial "
                        f"nascore.get_current_sample() gave {seen!r}; the model must arrive with its sample"
                    )

    def test_at_most_the_concurrency_runs_at_once(
        self, make_engine: Callable[[TrialResources], ExecutionEngine], tmp_path: Path
    ) -> None:
        times = Path(tmp_path) / "times"
        times.mkdir(parents=True, exist_ok=True)
        evaluator = self.make_evaluator("record_times", folder=str(times), seconds=0.3)
        with self.started(make_engine, tmp_path, [evaluator], self.resources(trial_concurrency=2)) as run:
            count = self.concurrency_limit + 2
            samples = self.samples(run.space, count)
            ids = run.run([(sample, evaluator, None) for sample in samples])
            for trial_id in ids:
                run.succeeded(trial_id, "it sleeps 0.3 s")
        intervals = _intervals(times)
        if len(intervals) < count:
            raise self.fail(
                f"{count} trials succeeded but only {len(intervals)} wrote their start and end in {times}; each "
                "trial's evaluator must run once"
            )
        most = _most_at_once(intervals)
        if most > self.concurrency_limit:
            raise self.fail(
                f"{most} trials ran at once with trial_concurrency=2 (max_concurrency is {self.concurrency_limit}); an "
                "engine must run at most trial_concurrency trials at a time"
            )

    def test_trial_timeout_stops_and_fails_a_trial(
        self, make_engine: Callable[[TrialResources], ExecutionEngine], tmp_path: Path
    ) -> None:
        timeout = self.trial_timeout
        held = 2 * timeout + 2 if self.honours_timeout else timeout + 0.5
        evaluator = self.make_evaluator("hold", gate=str(_gate(tmp_path)), seconds=held)
        good = self.make_evaluator("report_steps", steps=1)
        with self.started(make_engine, tmp_path, [evaluator, good], self.resources(trial_timeout=timeout)) as run:
            first, second = self.samples(run.space, 2)
            started = time.monotonic()
            [slow] = run.run([(first, evaluator, None)])
            took = time.monotonic() - started
            end = run.end(slow)
            if not self.honours_timeout:
                if end.status is not TrialStatus.SUCCEEDED:
                    raise self.fail(
                        f"trial {slow} ran {held:g} s with trial_timeout={timeout:g} and ended {end.status} "
                        f"({_short(end.error)}); honours_timeout is False, so the engine must leave it alone (or set "
                        "honours_timeout = True)"
                    )
                return
            what = f"trial {slow} ran past trial_timeout={timeout:g} s (its evaluator waits {held:g} s)"
            if end.status is TrialStatus.SUCCEEDED:
                raise self.fail(
                    f"{what} and ended SUCCEEDED after {took:.1f} s; a trial that outruns trial_timeout must be stopped "
                    "and end FAILED (or declare honours_timeout = False)"
                )
            run.failed(slow, what)
            if "time" not in (end.error or "").lower():
                raise self.fail(f"{what} and ended FAILED, but its error does not say it ran out of time: {_short(end.error)}")
            [later] = run.run([(second, good, None)])
            run.succeeded(later, "it comes after a trial stopped by trial_timeout")
