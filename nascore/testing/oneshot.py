"""A conformance suite for one-shot strategies, the companion of :mod:`nascore.testing.strategies`.

A one-shot strategy turns the model space into a supernet, trains it once with the experiment's
Lightning evaluator and records the architectures it exports as trials. Its author subclasses
:class:`OneShotStrategyTestSuite` in a test module and names the strategy as its distribution
registers it::

    from nascore.testing.oneshot import OneShotStrategyTestSuite

    class TestMyOneShot(OneShotStrategyTestSuite):
        strategy_name = "my-oneshot"              # what Experiment(space, evaluator, "my-oneshot") finds
        unsupported = {"any_inputs"}              # primitives of PRIMITIVES it refuses (see below)

or, to check the strategy with some arguments, gives the ``make_strategy`` fixture as in the
multi-trial suite (a factory ``make_strategy(**kwargs) -> Strategy``)::

        @pytest.fixture
        def make_strategy(self):
            return lambda **kwargs: MyOneShot(top_k=2, **kwargs)

pytest then runs real experiments (``Experiment(space, evaluator, strategy, config).run()``, the
format :attr:`~OneShotStrategyTestSuite.format` and the engine :attr:`~OneShotStrategyTestSuite.engine`,
a :class:`~nascore.evaluators.Classification` evaluator on tiny synthetic data) and checks that:

* a run trains the supernet for the evaluator's ``max_epochs``, ends ``DONE``, and
  ``export_top_models()`` gives an architecture of the space: every label, each value one of its choices;
* three runs with the same ``ExperimentConfig(seed=...)`` export the same architectures, whatever
  torch's and Python's global random state was before each run;
* the supernet is one: every candidate of the space's ``LayerChoice`` runs a training forward
  pass (with gradients) during the search, before any exported architecture is trained on its own;
* each primitive of :data:`PRIMITIVES` (``Repeat``, ``Cell``, ``MutableConv2d``, input choices of
  two or of any number of inputs) is searched, or, when the subclass lists it in
  :attr:`~OneShotStrategyTestSuite.unsupported`, refused before the experiment starts with a
  :class:`~nascore.errors.StrategyError` naming the decision's label and the strategy; a module
  with decisions of its own that no one-shot strategy can know is refused the same way (or searched);
* the strategy is registered under :attr:`~OneShotStrategyTestSuite.strategy_name` by an installed
  distribution, is a :class:`~nascore.strategy.Strategy` subclass, and documents every keyword
  argument of its constructor (``:param name:`` in its docstrings or those of the classes it
  passes ``**kwargs`` on to).

Every failing check says what is wrong in words and names the strategy. The default space
(:class:`TinySpace`) has a width choice in a ``MutableLinear``, a ``LayerChoice`` of three
operators (one with weights) and an ``InputChoice``; override
:meth:`~OneShotStrategyTestSuite.make_space` for a strategy that cannot search those (the check of
the candidates is skipped unless it returns a probed ``TinySpace``), and
:meth:`~OneShotStrategyTestSuite.make_evaluator` for one that needs another recipe. A check that a
strategy is known to fail is listed in :attr:`~OneShotStrategyTestSuite.known_failures` (a strict
xfail). Each test runs one to three experiments of two epochs on 96 samples, a fraction of a second
each on one CPU thread (the suite runs them with one torch thread).

The experiments need PyTorch Lightning and the format and engine named by the suite (``raw`` from
nascore-formats and ``sequential`` from nascore-engines by default); without them the tests are
skipped, saying what to install.
"""

from __future__ import annotations

import collections
import contextlib
import inspect
import random
import re
from collections.abc import Callable, Collection, Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import pytest
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset

import nascore
from nascore.errors import StrategyError
from nascore.nn import (
    Cell,
    InputChoice,
    LayerChoice,
    ModelSpace,
    MutableConv2d,
    MutableLinear,
    MutableModule,
    Repeat,
)
from nascore.plugin import create_strategy, get_plugins
from nascore.strategy import Strategy
from nascore.trial import get_current_trial

__all__ = ["OneShotStrategyTestSuite", "PRIMITIVES", "TinySpace", "UnknownPrimitiveSpace"]

#: Features of the synthetic inputs and classes of their labels.
FEATURES = 16
CLASSES = 3

# Probes (keyed by a string, so that the deep copies a supernet or a frozen model makes of a probe
# report to the same place): training forward passes per candidate during the search, and the
# training epochs the evaluator's Trainer ran outside trials.
_SEARCH_PASSES: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
_SEARCH_EPOCHS: collections.Counter[str] = collections.Counter()


def _searching() -> bool:
    """Outside any trial: the strategy's own work (supernet training), not an exported model's."""
    return get_current_trial() is None


class _Probe(nn.Module):
    """Runs ``inner``; counts its training forward passes with gradients during the search."""

    def __init__(self, key: str, name: str, inner: nn.Module) -> None:
        super().__init__()
        self.key = key
        self.name = name
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.key and self.training and torch.is_grad_enabled() and _searching():
            _SEARCH_PASSES[self.key][self.name] += 1
        return self.inner(x)


# --- the spaces -------------------------------------------------------------------------------------


class TinySpace(ModelSpace):
    """16 features to 3 classes: ``width`` (a choice in ``MutableLinear``), ``op`` (a ``LayerChoice``
    of a linear layer, ``tanh`` and ``relu``) and ``skip`` (an ``InputChoice`` of the layer's input or output).

    ``probe`` names where the candidates of ``op`` count their training passes (the suite's business).
    """

    def __init__(self, probe: str = "") -> None:
        super().__init__()
        width = nascore.choice("width", [4, 8])
        self.stem = MutableLinear(FEATURES, width)
        self.op = LayerChoice(
            {
                "linear": _Probe(probe, "linear", MutableLinear(width, width)),
                "tanh": _Probe(probe, "tanh", nn.Tanh()),
                "relu": _Probe(probe, "relu", nn.ReLU()),
            },
            label="op",
        )
        self.skip = InputChoice(2, 1, label="skip")
        self.head = MutableLinear(width, CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = torch.relu(self.stem(x))
        return self.head(self.skip([hidden, self.op(hidden)]))


class _RepeatSpace(ModelSpace):
    """``depth``: a ``Repeat`` of one to three linear blocks."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Linear(FEATURES, 8)
        self.body = Repeat(lambda index: nn.Sequential(nn.Linear(8, 8), nn.ReLU()), (1, 3), label="depth")
        self.head = nn.Linear(8, CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(torch.relu(self.stem(x))))


class _CellSpace(ModelSpace):
    """``cell``: a two-node ``Cell`` over a linear layer and ``tanh`` (its decisions are ``cell/...``)."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Linear(FEATURES, 8)
        self.cell = Cell({"linear": lambda: nn.Linear(8, 8), "tanh": lambda: nn.Tanh()}, num_nodes=2, label="cell")
        self.head = nn.Linear(16, CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.cell(torch.relu(self.stem(x))))


class _LooseEndCellSpace(ModelSpace):
    """``loose_end_cell``: a ``Cell`` whose output concatenates its loose ends (1 or 2 nodes); the head adds them up."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Linear(FEATURES, 8)
        self.cell = Cell(
            {"linear": lambda: nn.Linear(8, 8), "tanh": lambda: nn.Tanh()}, num_nodes=2, merge_op="loose_end", label="cell"
        )
        self.head = nn.Linear(8, CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.cell(torch.relu(self.stem(x)))
        return self.head(out.view(out.shape[0], -1, 8).sum(1))


class _ConvSpace(ModelSpace):
    """``channels`` and ``kernel``: choices in the arguments of a ``MutableConv2d`` (inputs seen as 1x4x4 images)."""

    def __init__(self) -> None:
        super().__init__()
        channels = nascore.choice("channels", [4, 8])
        kernel = nascore.choice("kernel", [1, 3])
        self.conv = MutableConv2d(1, channels, kernel, padding=kernel // 2)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = MutableLinear(channels, CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = torch.relu(self.conv(x.reshape(-1, 1, 4, 4)))
        return self.head(self.pool(hidden).flatten(1))


class _InputsSpace(ModelSpace):
    """``inputs``: an ``InputChoice`` of two (``n_chosen=2``, summed) or any number (``n_chosen=None``) of three inputs."""

    def __init__(self, n_chosen: int | None = 2) -> None:
        super().__init__()
        self.branches = nn.ModuleList(nn.Linear(FEATURES, 8) for _ in range(3))
        self.inputs = InputChoice(3, n_chosen, reduction="sum" if n_chosen else "none", label="inputs")
        self.head = nn.Linear(8, CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        candidates = [torch.relu(branch(x)) for branch in self.branches]
        chosen = self.inputs(candidates)
        if isinstance(chosen, (list, tuple)):  # any number of inputs, maybe none: add them up
            chosen = sum(chosen, torch.zeros_like(candidates[0]))
        return self.head(chosen)


class _Scale(MutableModule):
    """A module with a decision of its own (``scale``) that no one-shot strategy can know."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = self.add_mutable(nascore.choice("scale", [0.5, 1.0]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale.default_value()  # type: ignore[attr-defined]


class UnknownPrimitiveSpace(ModelSpace):
    """A linear model with a home-made ``MutableModule`` holding the decision ``scale``."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(FEATURES, CLASSES)
        self.scale = _Scale()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale(self.linear(x))


#: The primitives each strategy searches, or refuses when its suite lists them in ``unsupported``:
#: name -> (a factory of a space using it, the label of its decision).
PRIMITIVES: dict[str, tuple[Callable[[], ModelSpace], str]] = {
    "repeat": (_RepeatSpace, "depth"),
    "cell": (_CellSpace, "cell"),
    "loose_end_cell": (_LooseEndCellSpace, "cell"),
    "conv2d": (_ConvSpace, "channels"),
    "two_inputs": (lambda: _InputsSpace(2), "inputs"),
    "any_inputs": (lambda: _InputsSpace(None), "inputs"),
}


def _data(seed: int = 0) -> tuple[DataLoader, DataLoader]:
    """96 training and 32 validation samples of 16 features, labelled by a random linear map into 3 classes."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(128, FEATURES, generator=generator)
    y = (x @ torch.randn(FEATURES, CLASSES, generator=generator)).argmax(dim=1)
    train = DataLoader(TensorDataset(x[:96], y[:96]), batch_size=8, shuffle=True,
                       generator=torch.Generator().manual_seed(seed))
    val = DataLoader(TensorDataset(x[96:], y[96:]), batch_size=16)
    return train, val


def _epoch_probe(key: str) -> Any:
    """A Lightning callback counting the training epochs run outside trials (the supernet's)."""
    import pytorch_lightning as pl

    class EpochProbe(pl.Callback):
        def __init__(self) -> None:
            self.key = key

        def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
            if _searching():
                _SEARCH_EPOCHS[self.key] += 1

    return EpochProbe()


# --- the suite --------------------------------------------------------------------------------------


class _Run:
    """One experiment: the strategy, the experiment, how it ended (its status, or what it raised) and what the probes saw."""

    def __init__(self, strategy: Strategy, experiment: Any, status: str | None, error: Exception | None,
                 passes: Mapping[str, int], epochs: int) -> None:
        self.strategy = strategy
        self.experiment = experiment
        self.status = status
        self.error = error
        self.passes = dict(passes)
        self.epochs = epochs


class OneShotStrategyTestSuite:
    """Subclass with :attr:`strategy_name` (or a ``make_strategy`` fixture); see the module documentation."""

    #: The name the strategy is registered under by its distribution.
    strategy_name: ClassVar[str | None] = None
    #: Names of :data:`PRIMITIVES` the strategy cannot search (it must refuse them clearly).
    unsupported: ClassVar[Collection[str]] = frozenset()
    #: Epochs of supernet training (the evaluator's ``max_epochs``).
    epochs: ClassVar[int] = 2
    #: The experiment's seed.
    seed: ClassVar[int] = 7
    #: The model format and the engine of the experiments.
    format: ClassVar[str] = "raw"
    engine: ClassVar[str] = "sequential"
    #: Checks known to fail, as ``{"test_name" or "test_name[parameter]": "why"}``: they are marked
    #: ``xfail(strict=True)``, so a fix is noticed.
    known_failures: ClassVar[Mapping[str, str]] = {}

    @pytest.fixture
    def make_strategy(self) -> Callable[..., Strategy]:
        """A factory ``make_strategy(**kwargs) -> Strategy``: by default the class registered as :attr:`strategy_name`."""
        if not self.strategy_name:
            raise NotImplementedError(
                "a OneShotStrategyTestSuite subclass must set strategy_name (the name its distribution registers) "
                "or define a make_strategy fixture: a factory make_strategy(**kwargs) -> Strategy"
            )
        name = self.strategy_name
        return lambda **kwargs: create_strategy(name, **kwargs)

    @pytest.fixture(autouse=True)
    def _known_failure(self, request: pytest.FixtureRequest) -> None:
        node = request.node
        reason = self.known_failures.get(node.name) or self.known_failures.get(getattr(node, "originalname", ""))
        if reason:
            request.applymarker(pytest.mark.xfail(reason=reason, strict=True))

    # --- what a subclass may change ---------------------------------------------------------------

    def make_space(self, probe: str = "") -> ModelSpace:
        """The space searched by the tests; ``probe`` goes to :class:`TinySpace` (candidates without it count nothing)."""
        return TinySpace(probe)

    def make_evaluator(self, epoch_probe: Any = None) -> Any:
        """A fresh evaluator (data in the same order every time); ``epoch_probe`` is a callback to pass to its Trainer."""
        from nascore.evaluators import Classification

        train, val = _data()
        callbacks = [epoch_probe] if epoch_probe is not None else []
        return Classification(train_dataloaders=train, val_dataloaders=val, num_classes=CLASSES, learning_rate=1e-2,
                              max_epochs=self.epochs, callbacks=callbacks)

    # --- helpers ------------------------------------------------------------------------------------

    def describe(self, strategy: Strategy | None = None) -> str:
        """How messages name the strategy: ``'darts' (DARTS)``."""
        kind = type(strategy).__name__ if strategy is not None else None
        if self.strategy_name and kind:
            return f"{self.strategy_name!r} ({kind})"
        return repr(self.strategy_name) if self.strategy_name else kind or type(self).__name__

    def check_stack(self) -> None:
        """Skip when the experiments cannot run here (no Lightning, format or engine); fail when a plugin is broken."""
        pytest.importorskip("pytorch_lightning", reason="the one-shot suite trains supernets with PyTorch Lightning")
        host = get_plugins()
        missing = [f"{kind} {name!r}" for kind, name, registry in
                   (("format", self.format, host.formats), ("engine", self.engine, host.engines)) if name not in registry]
        if not missing:
            return
        if host.failures:
            broken = "; ".join(str(failure) for failure in host.failures)
            pytest.fail(f"the one-shot suite needs the {' and the '.join(missing)}, which are not loaded because plugins "
                        f"failed to load: {broken}")
        disabled = f" (disabled here: {', '.join(sorted({p.distribution for p in host.disabled}))})" if host.disabled else ""
        pytest.skip(f"the one-shot suite runs experiments with the {' and the '.join(missing)}, which no loaded plugin "
                    f"provides{disabled}: the format 'raw' comes with nascore-formats, the engine 'sequential' with "
                    "nascore-engines; install them, or set format/engine on the suite")

    def run_experiment(
        self,
        make_strategy: Callable[..., Strategy],
        folder: Path,
        space: ModelSpace | None = None,
        *,
        global_seed: int = 0,
    ) -> _Run:
        """Run one experiment with a new strategy, the suite's evaluator and the experiment seed :attr:`seed`.

        The space (by default :meth:`make_space` with probes) is built from torch seed 0, so every run
        starts from the same weights; torch's and Python's global random state are set from
        ``global_seed`` before the run and restored after it. What ``Experiment.run()`` raises is
        returned in :attr:`_Run.error`.
        """
        from nascore.experiment import Experiment, ExperimentConfig

        self.check_stack()
        key = f"{type(self).__qualname__}:{folder}"
        _SEARCH_PASSES.pop(key, None)
        _SEARCH_EPOCHS.pop(key, None)
        status, error = None, None
        with _isolated_random_state(), _one_thread():
            torch.manual_seed(0)
            if space is None:
                space = self.make_space(key)
            evaluator = self.make_evaluator(_epoch_probe(key))
            strategy = make_strategy()
            torch.manual_seed(global_seed)
            random.seed(global_seed)
            config = ExperimentConfig(format=self.format, engine=self.engine, experiment_dir=folder, seed=self.seed)
            experiment = Experiment(space, evaluator, strategy, config)
            try:
                status = experiment.run()
            except Exception as exc:  # the checks report it, naming the strategy
                error = exc
            finally:
                passes, epochs = _SEARCH_PASSES.pop(key, collections.Counter()), _SEARCH_EPOCHS.pop(key, 0)
        return _Run(strategy, experiment, status, error, passes, epochs)

    def checked_run(self, make_strategy: Callable[..., Strategy], folder: Path, **kwargs: Any) -> _Run:
        """:meth:`run_experiment`, which must end ``DONE``."""
        run = self.run_experiment(make_strategy, folder, **kwargs)
        who = self.describe(run.strategy)
        if run.error is not None:
            raise AssertionError(f"{who}: Experiment.run() raised {type(run.error).__name__}: {run.error}") from run.error
        assert run.status == "DONE" and run.experiment.status == "DONE", (
            f"{who}: the experiment ended {run.status!r} (status {run.experiment.status!r}), not 'DONE'"
        )
        return run

    def check_exports(self, run: _Run, space: ModelSpace) -> list[dict[str, Any]]:
        """The experiment's best architecture is one of ``space``; returns the exported architectures."""
        who = self.describe(run.strategy)
        trials = run.experiment.trials()
        assert trials, f"{who}: the run recorded no trial; a one-shot strategy records each exported architecture as one"
        unfinished = [t.id for t in trials if not t.status.finished]
        assert not unfinished, f"{who}: the run ended with trials {unfinished} unfinished"
        exported = run.experiment.export_top_models()
        assert exported, (
            f"{who}: export_top_models() returned nothing: no trial succeeded ({'; '.join(map(_outcome, trials))})"
        )
        decisions = space.simplify()
        for sample in exported:
            missing = sorted(set(decisions) - set(sample))
            extra = sorted(set(sample) - set(decisions))
            assert not missing, f"{who}: the exported architecture {sample} has no value for the label(s) {missing}"
            assert not extra, f"{who}: the exported architecture {sample} has label(s) {extra} that are not in the space"
            for label, decision in decisions.items():
                assert decision.contains({label: sample[label]}), (
                    f"{who}: the exported architecture gives {label!r} the value {sample[label]!r}, which is not one "
                    f"of its choices ({decision!r})"
                )
            assert space.contains(sample), f"{who}: the exported architecture {sample} is not in the space: {space.check_contains(sample)}"
        return exported

    def check_refusal(
        self,
        make_strategy: Callable[..., Strategy],
        folder: Path,
        space_factory: Callable[[], ModelSpace],
        labels: Collection[str],
        what: str,
        *,
        may_search: bool = False,
    ) -> None:
        """An experiment on the space is refused before it starts, with a StrategyError naming a label and the strategy.

        ``may_search``: a search that ends ``DONE`` with an architecture of the space passes too.
        """
        with _isolated_random_state():
            torch.manual_seed(0)
            space = space_factory()
        run = self.run_experiment(make_strategy, folder, space=space)
        who = self.describe(run.strategy)
        error = run.error
        if error is None:
            assert may_search, (
                f"{who} searched {what} (the run ended {run.status!r}), but the suite lists it in unsupported; "
                "take it out of unsupported"
            )
            assert run.status == "DONE", f"{who}: the run on {what} ended {run.status!r}, not 'DONE'"
            self.check_exports(run, space_factory())
            return
        if not isinstance(error, StrategyError):
            raise AssertionError(
                f"{who} cannot search {what}, and says so with {type(error).__name__}: {error}; raise a StrategyError "
                "from setup() (check_space) that names the decision's label and the strategy"
            ) from error
        message = str(error)
        assert any(repr(label) in message for label in labels), (
            f"{who} refused {what}, but its error does not name the decision ({' or '.join(map(repr, labels))}): {message}"
        )
        names = sorted({name.lower() for name in (self.strategy_name, type(run.strategy).__name__) if name})
        assert any(name in message.lower() for name in names), (
            f"{who} refused {what}, but its error does not name the strategy ({' or '.join(names)}): {message}"
        )
        started = sorted(p.name for p in folder.iterdir()) if folder.exists() else []
        assert not started, (
            f"{who} refused {what} only after the experiment started (it recorded {started}); refuse it in setup() "
            "(check_space), before anything runs"
        )

    # --- the checks -----------------------------------------------------------------------------------

    def test_a_run_trains_the_supernet_and_exports_an_architecture_of_the_space(
        self, make_strategy: Callable[..., Strategy], tmp_path: Path
    ) -> None:
        run = self.checked_run(make_strategy, tmp_path)
        who = self.describe(run.strategy)
        assert run.epochs == self.epochs, (
            f"{who}: the supernet trained for {run.epochs} epoch(s) with the experiment's evaluator, which says "
            f"max_epochs={self.epochs}; train it with a Trainer from evaluator.create_trainer(), for the evaluator's epochs"
        )
        self.check_exports(run, self.make_space())

    def test_the_same_seed_exports_the_same_architectures(
        self, make_strategy: Callable[..., Strategy], tmp_path: Path
    ) -> None:
        # Three runs, each from another global random state (as in a notebook, or after other work).
        runs = [self.checked_run(make_strategy, tmp_path / f"run{index}", global_seed=index) for index in (1, 2, 3)]
        exported = [[t.sample for t in run.experiment.trials()] for run in runs]
        assert exported[0] == exported[1] == exported[2], (
            f"{self.describe(runs[0].strategy)}: three runs with ExperimentConfig(seed={self.seed}) on the "
            f"same space, weights and data, started from different global random states, exported different "
            f"architectures: {' / '.join(map(str, exported))}. Take every random choice of the search from the seed "
            "(Strategy.rng, or torch generators seeded from it): the initial weights of the supernet modules built in "
            "setup, architecture parameters, sampled paths, Gumbel noise; not torch's or Python's global random state"
        )

    def test_the_supernet_trains_every_candidate_during_the_search(
        self, make_strategy: Callable[..., Strategy], tmp_path: Path
    ) -> None:
        run = self.checked_run(make_strategy, tmp_path)
        who = self.describe(run.strategy)
        candidates = ("linear", "tanh", "relu")
        if not run.passes and type(self).make_space is not OneShotStrategyTestSuite.make_space:
            pytest.skip("make_space() is overridden and its candidates are not probed (pass probe= to TinySpace)")
        untrained = [name for name in candidates if not run.passes.get(name)]
        assert not untrained, (
            f"{who}: during the search, the candidate(s) {untrained} of the LayerChoice 'op' never ran a training "
            f"forward pass with gradients (passes per candidate: {dict(run.passes)}); a supernet holds every "
            "candidate and trains each (all at once, or on sampled paths)"
        )

    @pytest.mark.parametrize("primitive", list(PRIMITIVES))
    def test_each_primitive_is_searched_or_refused_clearly(
        self, make_strategy: Callable[..., Strategy], tmp_path: Path, primitive: str
    ) -> None:
        unknown = sorted(set(self.unsupported) - set(PRIMITIVES))
        assert not unknown, (
            f"{self.describe(make_strategy())}: the suite's unsupported lists {unknown}, which are not among {sorted(PRIMITIVES)}"
        )
        factory, label = PRIMITIVES[primitive]
        what = f"a space with {primitive} (label {label!r})"
        if primitive in self.unsupported:
            with _isolated_random_state():
                labels = [label, *factory().simplify()]
            self.check_refusal(make_strategy, tmp_path, factory, dict.fromkeys(labels), what)
            return
        with _isolated_random_state():
            torch.manual_seed(0)
            space = factory()
        run = self.run_experiment(make_strategy, tmp_path, space=space)
        who = self.describe(run.strategy)
        if run.error is not None:
            raise AssertionError(
                f"{who} could not search {what}: {type(run.error).__name__}: {run.error}. If it cannot, list "
                f"{primitive!r} in the suite's unsupported (and refuse it with a clear StrategyError)"
            ) from run.error
        assert run.status == "DONE", f"{who}: the run on {what} ended {run.status!r}, not 'DONE'"
        self.check_exports(run, factory())

    def test_a_primitive_no_one_shot_strategy_knows_is_refused_clearly(
        self, make_strategy: Callable[..., Strategy], tmp_path: Path
    ) -> None:
        what = "a space whose module 'scale' (a home-made MutableModule with the decision 'scale') no hook converts"
        self.check_refusal(make_strategy, tmp_path, UnknownPrimitiveSpace, ["scale"], what, may_search=True)

    def test_registered_by_a_distribution_with_documented_options(
        self, make_strategy: Callable[..., Strategy]
    ) -> None:
        from nascore.plugin.manager import RUNTIME_DISTRIBUTION

        name = self.strategy_name
        assert name, (
            f"{type(self).__name__}: set strategy_name to the name the strategy is registered under "
            "(register(name, cls) in the distribution's nascore_register_strategies hook)"
        )
        host = get_plugins()
        assert name in host.strategies, (
            f"no strategy is registered as {name!r} (registered: {', '.join(host.strategies.names()) or 'none'}"
            + (f"; plugin failures: {'; '.join(map(str, host.failures))}" if host.failures else "")
            + "); register it in the nascore_register_strategies hook of the distribution's nascore entry point"
        )
        registration = host.strategies.registration(name)
        registered = registration.obj
        assert registration.distribution and registration.distribution != RUNTIME_DISTRIBUTION, (
            f"strategy {name!r} is registered in-process ({registration.plugin!r}), not by an installed distribution; "
            "register it from the distribution's nascore entry point so that users can name it"
        )
        assert inspect.isclass(registered) and issubclass(registered, Strategy), (
            f"strategy {name!r} (from {registration.provider}) is registered as {registered!r}, which is not a "
            "nascore.strategy.Strategy subclass"
        )
        strategy = make_strategy()
        assert isinstance(strategy, registered), (
            f"strategy {name!r} is registered as {registered.__qualname__}, but the suite's make_strategy gives a "
            f"{type(strategy).__qualname__}"
        )
        options = constructor_options(registered)
        documented = documented_options(registered)
        undocumented = [option for option in options if option not in documented]
        assert not undocumented, (
            f"{name!r} ({registered.__qualname__}): the constructor option(s) {undocumented} are not documented; "
            "describe each with ':param name:' in the class docstring (strategy_options are these keyword arguments)"
        )


# --- helpers ----------------------------------------------------------------------------------------


def constructor_options(cls: type) -> list[str]:
    """The keyword arguments ``cls(...)`` takes, following ``**kwargs`` to the base classes' constructors."""
    options: list[str] = []
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        if klass is Strategy or klass is object:
            break
        parameters = list(inspect.signature(init).parameters.values())[1:]
        for parameter in parameters:
            if parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY) and parameter.name not in options:
                options.append(parameter.name)
        if not any(p.kind is p.VAR_KEYWORD for p in parameters):
            break
    return options


_PARAM = re.compile(r":param\s+(?:[^:\s]+\s+)?(\w+)\s*:")


def documented_options(cls: type) -> set[str]:
    """The names with a ``:param name:`` in the docstrings of ``cls`` and its bases (class or ``__init__``)."""
    names: set[str] = set()
    for klass in cls.__mro__:
        for doc in (klass.__dict__.get("__doc__"), getattr(klass.__dict__.get("__init__"), "__doc__", None)):
            if doc:
                names.update(_PARAM.findall(doc))
    return names


def _outcome(trial: Any) -> str:
    """``trial 1 FAILED: ValueError: ...``: a trial's end in one line."""
    error = (trial.error or "").strip().splitlines()
    return f"trial {trial.id} {trial.status}" + (f": {error[0]}" if error else "")


@contextlib.contextmanager
def _isolated_random_state() -> Iterator[None]:
    """torch's (CPU) and Python's global random state are restored on exit."""
    state = random.getstate()
    try:
        with torch.random.fork_rng(devices=[]):
            yield
    finally:
        random.setstate(state)


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
