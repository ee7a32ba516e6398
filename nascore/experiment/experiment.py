"""The experiment: a space, an evaluator and a strategy, run on an engine and recorded in a store.

>>> exp = Experiment(MySpace(), FunctionalEvaluator(train), "random", ExperimentConfig(max_trials=20))
>>> exp.run()
>>> exp.export_top_models(top_k=3)

Decisions in the evaluator's arguments (``FunctionalEvaluator(train, lr=nascore.choice("lr", [0.1,
0.01]))``) are searched with the architecture: samples, trials and exported samples hold them too
(see :mod:`nascore.experiment.space`). One-shot strategies, which train with the evaluator itself,
refuse such an evaluator.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import torch.nn as nn

from nascore.errors import ExperimentError, NascoreError, ShippingError, StrategyError
from nascore.evaluator import Evaluator
from nascore.experiment.config import ExperimentConfig, default_experiment_dir, trial_resources
from nascore.experiment.driver import STRATEGY_FOLDER, TrialDriver
from nascore.experiment.space import SearchSpace, check_evaluator, model_sample, search_space, stored_value
from nascore.experiment.store import HEARTBEAT_INTERVAL, ExperimentStore
from nascore.format import ExecutableSpace
from nascore.plugin import PluginHost, create_engine, create_format, create_strategy, get_plugins
from nascore.record import TrialRecord
from nascore.serialization import build_from_spec, import_path, object_spec
from nascore.strategy import Strategy

__all__ = ["Experiment"]

_log = logging.getLogger("nascore.experiment")

_FORMATTERS = ("dict", "instance", "code")


class Experiment:
    """Run a search and keep its results.

    :param space: the model space (an :class:`~nascore.nn.ModelSpace` instance).
    :param evaluator: how a candidate is trained and scored.
    :param strategy: a registered strategy name (``"random"``, ``"evolution"``, ...) or a strategy object.
    :param config: an :class:`ExperimentConfig`; keyword arguments override its fields.
    :param id: the experiment id (default: a new unique one).
    """

    def __init__(
        self,
        space: nn.Module | None,
        evaluator: Evaluator | None,
        strategy: str | Strategy | None,
        config: ExperimentConfig | None = None,
        *,
        id: str | None = None,  # noqa: A002 - the public name users expect
        **overrides: Any,
    ) -> None:
        config = config or ExperimentConfig()
        if overrides:
            try:
                config = attrs.evolve(config, **overrides)
            except TypeError as exc:
                raise ExperimentError(f"unknown experiment setting: {exc}") from None
        self.config = config
        self.space = space
        _check_evaluator_type(evaluator)
        self.evaluator = evaluator
        self.strategy = strategy
        self._strategy_by_name = isinstance(strategy, str)
        self.id = id or _new_id()
        self.status = "CREATED"
        self._resuming = False
        self._readonly = False
        self._budget_changed = False
        self._store: ExperimentStore | None = None
        self._executable_space: ExecutableSpace | None = None
        self._model_space: ExecutableSpace | None = None
        self._space_evaluator: Evaluator | None = None

    # --- where things are ----------------------------------------------------------------------

    @property
    def path(self) -> Path:
        """The experiment's folder: ``<experiment_dir>/<id>``."""
        return self.config.experiment_dir / self.id

    def _plugins(self) -> PluginHost:
        return get_plugins()

    def executable_space(self) -> ExecutableSpace:
        """The space searched: the model space in the configured format (built once), with the decisions of the
        evaluator's arguments when it has any (a :class:`~nascore.experiment.space.SearchSpace`)."""
        if self._model_space is None:
            if self.space is None:
                raise ExperimentError(
                    f"experiment {self.id} has no model space: pass space= to Experiment.resume/view, or make the "
                    "space class importable with JSON init arguments so it can be rebuilt from the store"
                )
            model_format = create_format(self.config.format, self.config.format_options, plugins=self._plugins())
            self._model_space = model_format.build(self.space)
        if self._executable_space is None or self._space_evaluator is not self.evaluator:
            self._executable_space = search_space(self._model_space, self.evaluator)
            self._space_evaluator = self.evaluator
        return self._executable_space

    # --- running -------------------------------------------------------------------------------

    def run(self) -> str:
        """Run the search until the strategy is done or the budget is spent; returns the final status.

        ``"DONE"``, or ``"INTERRUPTED"`` after Ctrl-C: unfinished trials are marked INTERRUPTED and
        :meth:`resume` continues later (a second Ctrl-C while it winds down aborts at once). Errors
        that stop the search (the store cannot be written, a setup mistake that failed the first
        trials, a trial folder that cannot be written) are raised; the experiment stays resumable.
        Only one process runs an experiment at a time: a second one is refused, naming the first.
        """
        if self._readonly:
            raise ExperimentError(
                f"experiment {self.id} was opened read-only with Experiment.view(); use Experiment.resume() to continue it"
            )
        if self.status not in ("CREATED",) and not self._resuming:
            raise ExperimentError(f"experiment {self.id} has already run ({self.status}); use Experiment.resume() to continue it")
        if self.strategy is None and self.config.strategy is not None:
            self.strategy, self._strategy_by_name = self.config.strategy, True
        if self.evaluator is None or self.strategy is None:
            raise ExperimentError(
                f"experiment {self.id} needs an evaluator and a strategy to run (give a strategy to Experiment, "
                "or name one in config.strategy)"
            )
        check_evaluator(self.evaluator)  # with decisions: each value, as trials would get it
        self._follow_evaluator_direction(self.evaluator)
        plugins = self._plugins()
        space = self.executable_space()
        strategy = self._resolve_strategy(plugins)
        engine = create_engine(self.config.engine, self.config.engine_options, trial_resources(self.config), plugins=plugins)
        if isinstance(space, SearchSpace):  # engines run models with evaluators holding plain values
            engine.check(space.default_evaluator(), space.model_space)
        else:
            engine.check(self.evaluator, space)
        strategy.setup(space, optimize_mode=self.config.optimize_mode, seed=self.config.seed)

        store = self._open_store(strategy)
        try:
            return self._run_with(store, strategy, engine, space, plugins)
        finally:
            self._resuming = False
            self.close()  # releases the experiment; results stay readable: trials() and export reopen it read-only

    def _run_with(self, store: ExperimentStore, strategy: Strategy, engine: Any, space: Any, plugins: PluginHost) -> str:
        driver = TrialDriver(
            experiment_id=self.id, space=space, evaluator=self.evaluator, strategy=strategy, engine=engine,  # type: ignore[arg-type]
            store=store, config=self.config, plugins=plugins, elapsed_before=store.get_meta("elapsed", 0.0),
        )
        self._set_status(store, "RUNNING")
        _log.info("Experiment %s started in %s", self.id, self.path)
        started = False
        with _heartbeat(store):
            try:
                driver.start_engine()
                started = True
                if self._resuming:
                    self._continue(strategy, driver, store)
                strategy.run(driver)
                driver.wait_all()
                self._set_status(store, "DONE")
            except KeyboardInterrupt:  # a second Ctrl-C while this winds down aborts at once
                ids = driver.interrupt()
                _quietly(lambda: self._set_status(store, "INTERRUPTED"), "record the experiment's status")
                _log.warning("Experiment %s interrupted; %d unfinished trial(s) will rerun on resume", self.id, len(ids))
            except BaseException:
                driver.interrupt()
                _quietly(lambda: self._set_status(store, "FAILED"), "record the experiment's status")
                raise
            finally:
                _quietly(lambda: store.set_meta("elapsed", driver.elapsed()), "record the elapsed time")
                if started:
                    engine.shutdown()
                driver.progress.close(self.status)
        self._log_summary(store)
        return self.status

    def extend_budget(self, *, max_trials: int | None = None, max_duration: float | str | None = None) -> None:
        """Give a resumed experiment a new budget (``max_trials`` counts every trial, those run before
        included); saved with the experiment when :meth:`run` continues it."""
        if not self._resuming:
            raise ExperimentError("extend_budget() is for an experiment opened with Experiment.resume()")
        changes = {name: value for name, value in (("max_trials", max_trials), ("max_duration", max_duration))
                   if value is not None}
        self.config = attrs.evolve(self.config, **changes)
        self._budget_changed = True

    def _follow_evaluator_direction(self, evaluator: Evaluator) -> None:
        """Take the evaluator's metric direction unless the config sets one; a contradiction is an error."""
        wanted, known = self.config.optimize_mode, evaluator.optimize_mode
        if wanted is not None and known is not None and wanted != known:
            raise ExperimentError(
                f"optimize_mode={wanted!r} contradicts the evaluator: {type(evaluator).__name__} reports a metric "
                f"to {known}; leave optimize_mode unset to follow the evaluator, or use an evaluator whose metric "
                f"is to {wanted}"
            )
        mode = wanted or known or "maximize"
        if mode != wanted:
            self.config = attrs.evolve(self.config, optimize_mode=mode)

    def _resolve_strategy(self, plugins: PluginHost) -> Strategy:
        if isinstance(self.strategy, Strategy):
            return self.strategy
        if isinstance(self.strategy, str):
            if self.config.strategy is not None and self.config.strategy != self.strategy and self.config.strategy_options:
                raise ExperimentError(
                    f"config.strategy_options are for strategy {self.config.strategy!r}, but the experiment was given "
                    f"strategy {self.strategy!r}; give one strategy"
                )
            strategy = create_strategy(self.strategy, plugins=plugins, **self.config.strategy_options)
            self.strategy = strategy
            return strategy
        if self.config.strategy_options:
            raise ExperimentError(
                "config.strategy_options are set, but the strategy was given as an object; pass its arguments to "
                "its constructor, or give the strategy by name"
            )
        raise StrategyError(f"strategy must be a registered name or a Strategy object, got {self.strategy!r}")

    def _open_store(self, strategy: Strategy) -> ExperimentStore:
        """Open the store for writing, which takes the experiment's writer lock (or create it, whole)."""
        self.close()
        if self._resuming:
            store = ExperimentStore.open(self.config.experiment_dir, self.id)
            try:
                recorded = store.get_meta("space")
                current = _space_summary(self.executable_space())
                if recorded is not None and recorded != current:
                    raise ExperimentError(
                        f"the space given to resume experiment {self.id} differs from the one it was run with "
                        "(labels or candidates changed); resume with the original space"
                    )
                if self._budget_changed:
                    store.set_meta("config", self.config.to_dict())
            except BaseException:
                store.close()
                raise
        else:
            store = ExperimentStore.create(self.config.experiment_dir, self.id, {
                "config": self.config.to_dict(),
                "space": _space_summary(self.executable_space()),
                "space_spec": _try_spec(lambda: _space_spec(self.space)),
                "evaluator_spec": _evaluator_spec(self.evaluator),
                "strategy": _strategy_name(strategy, self._plugins(), self._strategy_by_name),
                "experiment_name": self.config.experiment_name,
                "status": "CREATED",
            })
        self._store = store
        return store

    def _continue(self, strategy: Strategy, driver: TrialDriver, store: ExperimentStore) -> None:
        trials = store.trials()
        strategy.restore(store.get_meta("strategy_state"), trials)
        unfinished = [t for t in trials if not t.status.finished]
        _log.info(
            "Resuming experiment %s: %d finished trial(s) kept, %d interrupted trial(s) to rerun",
            self.id, len(trials) - len(unfinished), len(unfinished),
        )
        for trial in unfinished:
            while driver.idle_slots() <= 0:
                for done in driver.wait():
                    strategy.tell(done)
            driver.resubmit(trial)

    def _set_status(self, store: ExperimentStore, status: str) -> None:
        self.status = status
        store.set_meta("status", status)
        store.set_meta("updated", time.time())
        self._plugins().notify_experiment_status_changed(self.id, status)

    def _log_summary(self, store: ExperimentStore) -> None:
        counts = store.status_counts()
        best = self.best_trial()
        summary = ", ".join(f"{n} {s.lower()}" for s, n in sorted(counts.items()))
        if best is not None:
            _log.info("Experiment %s %s: %s; best trial %d metric=%.6g %s", self.id, self.status, summary, best.id, best.metric, best.sample)
        else:
            _log.info("Experiment %s %s: %s; no successful trial", self.id, self.status, summary)

    # --- resuming and viewing ------------------------------------------------------------------

    @classmethod
    def resume(
        cls,
        experiment_id: str,
        space: nn.Module | None = None,
        evaluator: Evaluator | None = None,
        strategy: str | Strategy | None = None,
        *,
        experiment_dir: str | Path | None = None,
    ) -> Experiment:
        """Reopen a stopped or killed experiment; :meth:`run` then continues it.

        Finished trials are kept; trials that were running when it stopped run again. ``space`` and
        ``evaluator`` may be left out when they could be stored as data (importable, JSON arguments).
        ``strategy`` may be left out when it was given by a registered name.
        """
        exp = cls._from_store(experiment_id, space, evaluator, strategy, experiment_dir, readonly=False)
        exp._resuming = True
        if exp.evaluator is None:
            raise ExperimentError(
                f"experiment {experiment_id}: its evaluator could not be stored as data; pass evaluator= to resume"
            )
        if exp.strategy is None:
            raise ExperimentError(
                f"experiment {experiment_id}: its strategy was an object, not a registered name; pass strategy= to resume"
            )
        return exp

    @classmethod
    def view(
        cls, experiment_id: str, space: nn.Module | None = None, *, experiment_dir: str | Path | None = None
    ) -> Experiment:
        """Open an experiment read-only to look at its trials and export models; never runs trials."""
        exp = cls._from_store(experiment_id, space, None, None, experiment_dir, readonly=True)
        exp._store = ExperimentStore.open(exp.config.experiment_dir, experiment_id, readonly=True)
        exp._readonly = True
        return exp

    @classmethod
    def _from_store(
        cls, experiment_id: str, space: Any, evaluator: Any, strategy: Any, experiment_dir: Any, readonly: bool
    ) -> Experiment:
        experiment_dir = Path(experiment_dir).expanduser() if experiment_dir else default_experiment_dir()
        with ExperimentStore.open(experiment_dir, experiment_id, readonly=True) as store:
            store.check_rows()  # every row must read back: never open for writing a store we cannot read
            meta = store.meta()
        config = ExperimentConfig.from_dict({**meta.get("config", {}), "experiment_dir": str(experiment_dir)})
        if space is None and meta.get("space_spec"):
            space = _try_spec(lambda: build_from_spec(meta["space_spec"]), strict=not readonly)
        if evaluator is None and meta.get("evaluator_spec"):  # read-only: results need no evaluator
            evaluator = _try_spec(lambda: build_from_spec(meta["evaluator_spec"]), strict=not readonly)
        if strategy is None:
            strategy = meta.get("strategy", {}).get("name")
        exp = cls(space, evaluator, strategy, config, id=experiment_id)
        exp.status = meta.get("status", "UNKNOWN")
        return exp

    # --- results -------------------------------------------------------------------------------

    def _reader(self) -> ExperimentStore:
        if self._store is None:
            self._store = ExperimentStore.open(self.config.experiment_dir, self.id, readonly=True)
        return self._store

    def trials(self) -> list[TrialRecord]:
        """Every trial recorded so far, in submission order."""
        return self._reader().trials(with_intermediates=True)

    def best_trial(self) -> TrialRecord | None:
        ranked = self._ranked()
        return ranked[0] if ranked else None

    def _ranked(self) -> list[TrialRecord]:
        done = [t for t in self._reader().trials() if t.succeeded]
        reverse = self.config.optimize_mode != "minimize"
        return sorted(done, key=lambda t: (t.metric if reverse else -t.metric, -t.id), reverse=True)  # type: ignore[operator]

    def export_top_models(self, top_k: int = 1, formatter: str = "dict") -> list[Any]:
        """The ``top_k`` best architectures, best first.

        ``formatter``: ``"dict"`` gives samples (``{label: value}``, usable with :func:`nascore.fixed_arch`),
        ``"instance"`` built ``nn.Module`` objects, ``"code"`` Python source (formats that generate code).
        After a weight-sharing (one-shot) search, ``"instance"`` models are sub-nets with the supernet's
        trained weights (:meth:`~nascore.strategy.Strategy.trained_model`), also from :meth:`view`.
        A sample holds the values of the evaluator's decisions too (``evaluator.freeze(sample)`` gives the
        evaluator the trial trained with); ``"instance"`` and ``"code"`` are the models alone.
        """
        if formatter not in _FORMATTERS:
            raise ExperimentError(f"unknown formatter {formatter!r}; use one of {', '.join(_FORMATTERS)}")
        if not isinstance(top_k, int) or top_k < 1:
            raise ExperimentError(f"top_k must be a positive int, got {top_k!r}")
        best = self._ranked()[:top_k]
        if formatter == "dict":
            return [self._exported_sample(t.sample) for t in best]
        space = self.executable_space()
        model_space = space.model_space if isinstance(space, SearchSpace) else space
        models = [model_space.freeze(model_sample(space, t.sample)) for t in best]
        if formatter == "instance":
            trained = self._trained_models([model_sample(space, t.sample) for t in best])
            return [t if t is not None else m.build() for t, m in zip(trained, models)]
        try:
            return [m.to_code() for m in models]
        except NotImplementedError as exc:
            raise ExperimentError(f"formatter 'code' is not available: {exc}; use format='graph'") from None

    def _trained_models(self, samples: list[dict[str, Any]]) -> list[Any]:
        """The models the strategy trained for ``samples`` (``None`` each where it trained none).

        Only a strategy that kept files in the experiment's strategy folder is asked; one given by name
        (as in :meth:`view`) is created and set up on the space first.
        """
        artifact_dir = self.path / STRATEGY_FOLDER
        if not artifact_dir.is_dir() or self.strategy is None:
            return [None] * len(samples)
        strategy = self._resolve_strategy(self._plugins())
        if strategy.space is None:
            strategy.setup(self.executable_space(), optimize_mode=self.config.optimize_mode, seed=self.config.seed)
        return [strategy.trained_model(sample, artifact_dir) for sample in samples]

    def _exported_sample(self, sample: dict[str, Any]) -> dict[str, Any]:
        """A recorded sample, with the evaluator's values that the store kept as text mapped back to the candidates."""
        sample = dict(sample)
        mutables = self.evaluator.mutables() if self.evaluator is not None else {}
        for label, mutable in mutables.items():
            if label in sample:
                sample[label] = stored_value(mutable, sample[label])
        return sample

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    def __repr__(self) -> str:
        return f"Experiment(id={self.id!r}, status={self.status!r}, path={str(self.path)!r})"


def _evaluator_spec(evaluator: Evaluator | None) -> dict[str, Any] | None:
    """The evaluator as data for resume; ``None`` for one with decisions (a spec of its defaults would lose them)."""
    if evaluator is None or evaluator.mutables():
        return None
    return evaluator.to_spec()


def _check_evaluator_type(evaluator: Any) -> None:
    if evaluator is None or isinstance(evaluator, Evaluator):
        return
    if callable(evaluator):
        name = getattr(evaluator, "__qualname__", None) or type(evaluator).__name__
        raise ExperimentError(
            f"the evaluator must be a nascore Evaluator, got the function {name!r}: wrap it as "
            f"FunctionalEvaluator({name}) (from nascore.evaluators import FunctionalEvaluator)"
        )
    raise ExperimentError(
        f"the evaluator must be a nascore Evaluator, got {type(evaluator).__name__}: use FunctionalEvaluator(function) "
        "or a Lightning evaluator (Classification, Regression) from nascore.evaluators"
    )


@contextlib.contextmanager
def _heartbeat(store: ExperimentStore) -> Iterator[None]:
    """Record a heartbeat every HEARTBEAT_INTERVAL seconds while the block runs (what `nascore list` reads)."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(HEARTBEAT_INTERVAL):
            try:
                store.beat()
            except NascoreError as exc:  # the run's own writes meet the same problem and report it
                _log.debug("Heartbeat not recorded: %s", exc)

    _quietly(store.beat, "record a heartbeat")
    thread = threading.Thread(target=beat, name="nascore-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def _quietly(action: Callable[[], Any], what: str) -> None:
    """Do ``action`` while the run stops for another reason: a failure is logged, not raised over that reason."""
    try:
        action()
    except NascoreError as exc:
        _log.warning("Could not %s: %s", what, exc)


def _new_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)


def _space_summary(space: ExecutableSpace) -> list[list[str]]:
    return [[label, mutable.describe()] for label, mutable in sorted(space.simplify().items())]


def _space_spec(space: Any) -> dict[str, Any]:
    init = getattr(space, "init_arguments", None)
    if init is None:
        raise ShippingError(f"{type(space).__name__} does not record its init arguments (not a ModelSpace)")
    args, kwargs = init
    return object_spec(type(space), args, kwargs)


def _try_spec(make: Any, strict: bool = False) -> Any:
    try:
        return make()
    except NascoreError as exc:
        if strict:
            raise
        _log.debug("Not stored as data: %s", exc)
        return None


def _strategy_name(strategy: Strategy, plugins: PluginHost, by_name: bool) -> dict[str, Any]:
    """The registered name (kept only if the user gave the strategy by name) and the class path."""
    name = None
    if by_name:
        name = next((e.name for e in plugins.strategies.entries() if e.obj is type(strategy)), None)
    return {"name": name, "class": import_path(type(strategy))}
