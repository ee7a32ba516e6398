"""The one-shot strategy: build a supernet from the space, train it once, export the chosen architectures.

:class:`OneShotStrategy` implements the :class:`~nascore.strategy.Strategy` contract itself (no
ask/tell loop):

1. :meth:`~OneShotStrategy.setup` converts a deep copy of the space into a supernet with the
   mutation hooks (the user's first, then the algorithm's defaults), so a space the algorithm cannot
   search is refused before anything runs, with the module path and labels in the message;
2. :meth:`~OneShotStrategy.run` trains the supernet with the experiment's Lightning evaluator (its
   recipe wrapped in the strategy's Lightning module), exports the ``top_k`` architectures the
   algorithm ranks best, and records each as a trial of the experiment: the experiment's
   evaluator trains it on its own and its validation metric is the trial's result. So
   ``exp.export_top_models()``, ``nascore show`` and resume work as for any strategy;
3. the trained supernet's weights (its state dict, no pickled objects) are saved in the
   experiment's strategy folder (``<experiment>/strategy/supernet.pt``), so that
   ``exp.export_top_models(formatter="instance")`` gives sub-nets that inherit them
   (:meth:`~OneShotStrategy.trained_model`, ``supernet.freeze(sample)``), also from
   ``Experiment.view`` in a later session, without training again.

With a seed (the strategy's, or the experiment's ``ExperimentConfig(seed=...)`` given to
:meth:`~OneShotStrategy.setup`), the search is deterministic: building the supernet (the weights
of the mixed operations) and the search (architecture noise, sampled paths, controller samples,
the evaluator's dropout, the order of a ``DataLoader(shuffle=True)`` created without a
``generator``) run in a :class:`SeededRandomState` seeded from the strategy's random generator, so
the same seed exports the same architectures whatever torch's, Python's and NumPy's global random
state was, and that state is left as it was. A ``DataLoader`` of the evaluator created with a
``generator=`` of its own shuffles from that generator (it belongs to the user: a second search
with the same evaluator object continues its sequence; give each run a freshly seeded one). Without
any seed the search draws from the global random state, as training in PyTorch usually does.

Subclasses (DARTS, GumbelDARTS, ENAS, RandomOneShot, Proxyless) provide the training step and
the ranking. Lightning is imported only when training starts, so the strategies can be listed and
configured without it.
"""

from __future__ import annotations

import contextlib
import copy
import heapq
import json
import logging
import math
import os
import random
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar

import torch
import torch.nn as nn

from nascore.errors import ConstraintViolationError, SampleValidationError, StrategyError
from nascore.nn import ModelSpace
from nascore.space import CategoricalMultiple, LabelledMutable, Sample, sample_key
from nascore.strategy import Strategy, StrategyContext
from nascore_strategies.oneshot.hooks import (
    MutationHook,
    default_mutation_hooks,
    traverse_and_mutate_submodules,
)
from nascore_strategies.oneshot.layout import check_memory_format
from nascore_strategies.oneshot.supermodule import sampling as _sampling
from nascore_strategies.oneshot.supermodule.base import ArchParameters, BaseSuperNetModule

if TYPE_CHECKING:
    from nascore.evaluator import Evaluator
    from nascore.format import ExecutableSpace
    from nascore.record import TrialRecord

__all__ = ["OneShotStrategy", "SeededRandomState", "k_best"]

_log = logging.getLogger(__name__)

#: The file in the experiment's strategy folder holding the trained supernet's state dict.
SUPERNET_FILE = "supernet.pt"
#: The file in the experiment's strategy folder recording the architecture weights over training (JSON:
#: ``{"strategy", "values": {label: [values]}, "points": [{"epoch", "step", "probs": {label: [p, ...]}}]}``),
#: rewritten after every training epoch; ``nascore dashboard`` draws it.
ARCHITECTURE_HISTORY_FILE = "architecture_weights.json"


def initialised_cuda_devices() -> list[int]:
    """The CUDA devices whose random state can be forked without side effects: all, once CUDA is initialised.

    Before that, none: reading a CUDA random state initialises CUDA, which a forked worker process
    of the parent could then no longer use.
    """
    return list(range(torch.cuda.device_count())) if torch.cuda.is_initialized() else []


class SeededRandomState:
    """Inside, the global random states are seeded from ``seed``; on exit they are restored.

    Covers torch's CPU generator, the generators of the CUDA devices (those initialised on entry;
    CUDA initialised inside, e.g. when Lightning moves the supernet to a GPU, is covered from
    :meth:`cover_cuda` on, which the one-shot Lightning module calls when fitting starts), Python's
    ``random``, NumPy's global generator (when NumPy is imported) and the generator the sampling
    supernet modules use for decisions they were not given. Built on :func:`torch.random.fork_rng`.
    """

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._stack: contextlib.ExitStack | None = None
        self._cuda_covered = False

    def __enter__(self) -> SeededRandomState:
        stack = contextlib.ExitStack()
        try:
            devices = initialised_cuda_devices()
            stack.enter_context(torch.random.fork_rng(devices=devices))
            # Not torch.manual_seed: it would also seed (lazily) CUDA generators that the fork does not restore.
            torch.random.default_generator.manual_seed(self.seed)
            self._seed_cuda(devices)
            self._cuda_covered = bool(devices)
            for generator in (random, _sampling._rng):
                stack.callback(generator.setstate, generator.getstate())
                generator.seed(self.seed)
            numpy = sys.modules.get("numpy")
            if numpy is not None:
                stack.callback(numpy.random.set_state, numpy.random.get_state())
                numpy.random.seed(self.seed % 2**32)
        except BaseException:
            stack.close()
            raise
        self._stack = stack
        return self

    def _seed_cuda(self, devices: list[int]) -> None:
        for index in devices:
            torch.cuda.default_generators[index].manual_seed(self.seed)

    def cover_cuda(self) -> None:
        """Fork and seed the CUDA generators if CUDA was initialised since entry (restored on exit)."""
        if self._stack is None or self._cuda_covered or not torch.cuda.is_initialized():
            return
        devices = initialised_cuda_devices()
        self._stack.enter_context(torch.random.fork_rng(devices=devices))
        self._seed_cuda(devices)
        self._cuda_covered = True

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        stack, self._stack = self._stack, None
        if stack is not None:
            stack.close()


class OneShotStrategy(Strategy):
    """Base class of one-shot strategies.

    :param mutation_hooks: extra hooks turning your own primitives into supernet modules; they run
        before the algorithm's defaults (see :mod:`nascore_strategies.oneshot.hooks`).
    :param top_k: how many architectures to export, best first, each recorded as a trial.
    :param seed: seed of the strategy's random choices (defaults to the experiment's seed).
    :param memory_format: the supernet's memory layout in training: ``"auto"`` (``channels_last``
        for convolutional supernets on CPU, where it is much faster), ``"channels_last"`` or
        ``"contiguous"`` (see :mod:`nascore_strategies.oneshot.layout`).
    :param reuse_memory: keep freed memory in the process while the supernet trains, so a step
        reuses the buffers of the step before instead of faulting fresh pages in from the kernel
        (glibc's ``malloc`` on Linux; see :mod:`nascore_strategies.oneshot.allocator`).
    :param inplace_relu: while the supernet trains, a ``ReLU`` right after a convolution, linear layer
        or batch normalization of a ``Sequential`` overwrites its input instead of allocating a new
        tensor; same values and gradients (see :mod:`nascore_strategies.oneshot.inplace`).
    """

    #: Algorithm family: ``"differentiable"``, ``"sampling"`` or ``"proxyless"``.
    mode: ClassVar[str] = ""
    #: Whether Lightning steps the evaluator's optimizer (architecture optimizers are stepped by the strategy).
    automatic_optimization: ClassVar[bool] = True

    def __init__(
        self,
        *,
        mutation_hooks: Sequence[MutationHook] | None = None,
        top_k: int = 1,
        seed: int | None = None,
        memory_format: str = "auto",
        reuse_memory: bool = True,
        inplace_relu: bool = True,
    ) -> None:
        super().__init__(seed=seed)
        if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
            raise StrategyError(f"{type(self).__name__}: top_k must be a positive int, got {top_k!r}")
        self.memory_format = check_memory_format(memory_format, type(self).__name__)
        if not isinstance(reuse_memory, bool):
            raise StrategyError(f"{type(self).__name__}: reuse_memory must be True or False, got {reuse_memory!r}")
        self.reuse_memory = reuse_memory
        if not isinstance(inplace_relu, bool):
            raise StrategyError(f"{type(self).__name__}: inplace_relu must be True or False, got {inplace_relu!r}")
        self.inplace_relu = inplace_relu
        self.mutation_hooks = list(mutation_hooks or [])
        self.top_k = top_k
        self.supernet: nn.Module | None = None
        self.arch: ArchParameters | None = None
        self.decisions: dict[str, LabelledMutable] = {}
        #: The Lightning module that trained the supernet (after :meth:`search`).
        self.oneshot_module: Any = None
        #: The exported architectures, best first (after :meth:`search`, or restored on resume).
        self.exported: list[Sample] | None = None
        self._submitted: set[str] = set()
        self.effective_seed = self.seed
        self._random_state: SeededRandomState | None = None
        #: The probabilities of the decisions' values over training (strategies with architecture weights).
        self.architecture_history: list[dict[str, Any]] = []
        #: Where :meth:`save_architecture_history` writes (the experiment's strategy folder, set by :meth:`run`).
        self.artifact_dir: Path | None = None

    # --- the supernet ----------------------------------------------------------------------------

    def default_mutation_hooks(self) -> list[MutationHook]:
        """The algorithm's own hooks, run after the user's; the last one refuses unsupported modules."""
        return default_mutation_hooks(self.mode)

    def mutate_kwargs(self) -> dict[str, Any]:
        """What every mutation hook receives as ``mutate_kwargs``."""
        return {"mode": self.mode, "arch": self.arch, "strategy": type(self).__name__}

    def seeded_random_state(self) -> contextlib.AbstractContextManager[SeededRandomState | None]:
        """A :class:`SeededRandomState` seeded from :attr:`rng`, or (without a seed) a context that changes nothing."""
        if self.effective_seed is None:
            return contextlib.nullcontext()
        return SeededRandomState(self.rng.randrange(2**31))

    def cover_cuda(self) -> None:
        """Seed the CUDA generators for the rest of the search, if CUDA was initialised after it started."""
        if self._random_state is not None:
            self._random_state.cover_cuda()

    def create_supernet(self, space: nn.Module) -> nn.Module:
        """Convert a deep copy of ``space`` into this algorithm's supernet (the space is left untouched).

        With a seed, the modules the hooks create are initialised from it (see :class:`SeededRandomState`).
        Raises a :class:`~nascore.errors.StrategyError` naming the strategy when a module cannot be converted.
        """
        if not isinstance(space, ModelSpace):
            raise StrategyError(
                f"{type(self).__name__} searches a nascore.nn.ModelSpace, got {type(space).__name__}; derive the "
                "model class from ModelSpace"
            )
        supernet = copy.deepcopy(space)
        generator = torch.Generator().manual_seed(self.rng.randrange(2**31))
        self.arch = ArchParameters(generator=generator) if self.mode != "sampling" else None
        model_hooks = getattr(space, "extra_oneshot_hooks", None)
        hooks = [*self.mutation_hooks, *(model_hooks(self) if callable(model_hooks) else []), *self.default_mutation_hooks()]
        try:
            with self.seeded_random_state():
                traverse_and_mutate_submodules(supernet, hooks, self.mutate_kwargs(), memo={})
        except StrategyError as exc:
            name = type(self).__name__
            if str(exc).startswith(name):
                raise
            raise StrategyError(f"{name} cannot search this space: {exc}") from exc
        self.supernet = supernet
        self.decisions = self._check_coverage(space, supernet)
        return supernet

    def _check_coverage(self, space: ModelSpace, supernet: nn.Module) -> dict[str, LabelledMutable]:
        covered: dict[str, LabelledMutable] = {}
        for module in self.supernet_modules():
            covered.update(module.search_space_spec())
        wanted = space.simplify()
        missing = sorted(set(wanted) - set(covered))
        if missing:
            raise StrategyError(
                f"{type(self).__name__}: the decision(s) {', '.join(map(repr, missing))} of the space are not used by "
                "any supernet module (a mutation hook replaced the module holding them with one that does not "
                "report them in search_space_spec(), or they are registered on the model space itself). Make "
                "every decision belong to a LayerChoice, InputChoice, Repeat, Cell or Mutable<Layer>, or handle it "
                "in a mutation hook"
            )
        if not covered:
            raise StrategyError(f"{type(self).__name__}: the space has no decision to search")
        return {label: covered[label] for label in wanted}

    def supernet_modules(self) -> list[BaseSuperNetModule]:
        """The supernet modules of :attr:`supernet`, in module order (listed once, when it is built)."""
        if self.supernet is None:
            return []
        cached = self.__dict__.get("_supernet_modules")
        if cached is None or cached[0] is not self.supernet:
            cached = (self.supernet, [m for m in self.supernet.modules() if isinstance(m, BaseSuperNetModule)])
            self.__dict__["_supernet_modules"] = cached
        return cached[1]

    def apply_sample(self, sample: Sample) -> Sample:
        """Make every supernet module run the path of ``sample`` (missing labels are chosen by the modules)."""
        memo = dict(sample)
        for module in self.supernet_modules():
            module.resample(memo)
        return memo

    def export_sample(self) -> Sample:
        """The best architecture as each supernet module sees it."""
        memo: Sample = {}
        for module in self.supernet_modules():
            memo.update(module.export(memo))
        return memo

    # --- Strategy contract ---------------------------------------------------------------------

    def check_space(self, space: ExecutableSpace) -> None:
        self.create_supernet(getattr(space, "space", space))

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["exported"] = self.exported
        return state

    def restore(self, state: dict[str, Any] | None, submitted: list[TrialRecord]) -> None:
        super().restore(state, submitted)
        if state and state.get("exported") is not None:
            self.exported = [dict(s) for s in state["exported"]]
        self._submitted = {sample_key(t.sample) for t in submitted}

    def run(self, context: StrategyContext) -> None:
        """Train the supernet (unless a resumed run already did), then record the exported architectures."""
        if self.supernet is None:
            raise StrategyError(f"{type(self).__name__}.setup(space) must be called before run()")
        if self.exported is None:
            self.artifact_dir = context.artifact_dir
            self.search(context.evaluator, should_stop=context.should_stop)
            if context.artifact_dir is not None:
                self.save_supernet(context.artifact_dir)
        assert self.exported is not None
        # One spelling per architecture (decisions of branches it does not take left out), each once.
        canonical: dict[str, Sample] = {}
        for sample in self.exported:
            sample = context.space.canonical_sample(sample)
            canonical.setdefault(sample_key(sample), sample)
        self.exported = list(canonical.values())
        for rank, sample in enumerate(self.exported):
            if sample_key(sample) in self._submitted:
                continue
            if rank > 0 and context.should_stop():
                _log.info("%s: budget spent; %d of %d exported architectures recorded", type(self).__name__, rank, len(self.exported))
                break
            while context.idle_slots() <= 0:
                context.wait()
            context.submit(sample)
            self._submitted.add(sample_key(sample))
        while context.running() > 0:
            context.wait()

    # --- trained weights ---------------------------------------------------------------------------

    def save_supernet(self, folder: Path) -> Path:
        """Save the supernet's trained weights (its state dict: tensors only) to ``folder/supernet.pt``."""
        if self.supernet is None:
            raise StrategyError(f"{type(self).__name__}: there is no supernet to save; call setup(space) and search() first")
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / SUPERNET_FILE
        partial = path.with_suffix(".partial")
        torch.save(self.supernet.state_dict(), partial)
        partial.replace(path)  # a reader never sees half a file
        return path

    def record_architecture(self, epoch: int, step: int) -> None:
        """Append to :attr:`architecture_history` the probability of every value of every decision (softmax of the
        architecture weights; ``None`` where they are not finite). Strategies without architecture weights record nothing."""
        if self.arch is None:
            return
        probs: dict[str, list[float | None]] = {}
        with torch.no_grad():
            for label in self.arch.labels():
                probs[label] = [round(p, 6) if math.isfinite(p) else None for p in self.arch.probs(label).cpu().tolist()]
        point = {"epoch": epoch, "step": step, "probs": probs}
        if self.architecture_history and self.architecture_history[-1]["step"] == step:
            self.architecture_history[-1] = point
        else:
            self.architecture_history.append(point)

    def save_architecture_history(self, folder: Path | None = None) -> Path | None:
        """Write :attr:`architecture_history` to ``folder/architecture_weights.json`` (default: :attr:`artifact_dir`).

        Written whole or not at all (a reader never sees half a file); ``None`` when there is nothing or nowhere to write.
        """
        folder = folder if folder is not None else self.artifact_dir
        if folder is None or self.arch is None or not self.architecture_history:
            return None
        values = {label: [_json_value(v) for v in self.arch.decisions[label].values]  # type: ignore[attr-defined]
                  for label in self.arch.labels()}
        document = {"strategy": type(self).__name__, "values": values, "points": self.architecture_history}
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / ARCHITECTURE_HISTORY_FILE
        partial = path.with_name(path.name + ".partial")
        partial.write_text(json.dumps(document, allow_nan=False))
        os.replace(partial, path)
        return path

    def freeze(self, sample: Sample) -> nn.Module:
        """The sub-net of ``sample`` with the supernet's weights: a plain PyTorch model (``supernet.freeze``)."""
        if self.supernet is None:
            raise StrategyError(f"{type(self).__name__}: there is no supernet yet; call setup(space) first")
        return self.supernet.freeze(sample)

    def trained_model(self, sample: Sample, artifact_dir: Path) -> nn.Module | None:
        """The sub-net of ``sample`` inheriting the weights saved in ``artifact_dir`` (``None`` if none were)."""
        path = artifact_dir / SUPERNET_FILE
        if not path.is_file():
            return None
        if self.supernet is None:
            raise StrategyError(f"{type(self).__name__}: call setup(space) before asking for trained models")
        if self.__dict__.get("_loaded_from") != path:
            state = torch.load(path, map_location="cpu", weights_only=True)
            try:
                self.supernet.load_state_dict(state)
            except RuntimeError as exc:
                raise StrategyError(
                    f"{type(self).__name__}: the supernet weights in {str(path)!r} do not fit the supernet of this space "
                    f"(was the space changed since the search?): {exc}"
                ) from exc
            self.__dict__["_loaded_from"] = path
        return self.freeze(sample).eval()

    def search(self, evaluator: Evaluator, *, should_stop: Callable[[], bool] | None = None) -> list[Sample]:
        """Train the supernet with ``evaluator`` (a Lightning evaluator) and return the exported architectures.

        With a seed, training and ranking run in a :class:`SeededRandomState` (the caller's global
        random state is restored afterwards).
        """
        if self.supernet is None:
            raise StrategyError(f"{type(self).__name__}: call setup(space) (or create_supernet) before search()")
        from nascore_strategies.oneshot.lightning import train_supernet  # imports Lightning

        with self.seeded_random_state() as state:
            self._random_state = state
            try:
                samples = train_supernet(self, evaluator, should_stop)
            finally:
                self._random_state = None
        if not samples:
            raise StrategyError(f"{type(self).__name__} exported no architecture")
        checked: dict[str, Sample] = {}
        violated: list[str] = []
        for sample in samples:
            if self.space is not None:
                sample = self.space.canonical_sample(sample)
                try:
                    self.space.validate(sample)
                except ConstraintViolationError as exc:  # the supernet trains every path; constraints apply at export
                    violated.append(exc.label or "?")
                    continue
                except SampleValidationError as exc:
                    raise StrategyError(f"{type(self).__name__} exported an architecture the space refuses: {exc}") from exc
            checked.setdefault(sample_key(sample), sample)
        if not checked:
            raise StrategyError(
                f"{type(self).__name__}: none of the {len(samples)} architectures the trained supernet ranks best "
                f"satisfies the space's constraint(s) {sorted(set(violated))}. One-shot strategies train every path "
                "and apply constraints when they export: loosen the constraint, raise top_k, or search with a "
                "multi-trial strategy, which only proposes architectures that satisfy it"
            )
        checked = list(checked.values())[: self.top_k]
        self.exported = checked
        if violated:
            _log.info("%s: %d exported architecture(s) violated a constraint and were dropped", type(self).__name__, len(violated))
        _log.info("%s exported %d architecture(s); best: %s", type(self).__name__, len(checked), checked[0])
        return checked

    # --- what an algorithm implements (called by the Lightning module) --------------------------

    def extra_modules(self) -> dict[str, nn.Module]:
        """Modules with trained state besides the supernet (a controller), kept by the Lightning module."""
        return {}

    def trainer_overrides(self) -> dict[str, Any]:
        """Trainer arguments the algorithm sets on top of the evaluator's."""
        return {}

    def configure_architecture_optimizers(self, module: Any) -> None:
        """Create the optimizers of architecture parameters (stepped by the strategy, not by Lightning)."""

    def train_dataloader(self, train_dataloaders: Any, val_dataloaders: Any) -> Any:
        """The data of one training epoch (DARTS-like algorithms pair training and validation batches)."""
        return train_dataloaders

    def training_step(self, module: Any, batch: Any, batch_idx: int) -> Any:
        raise NotImplementedError

    def recipe_batch(self, batch: Any) -> Any:
        """The recipe's training batch inside a batch of :meth:`train_dataloader` (``None``: it has none)."""
        return batch

    def covering_paths(self) -> list[Sample | None]:
        """Paths whose forward passes together run every candidate (``[None]``: one pass runs them all).

        Path ``j`` takes the ``j``-th value of every decision (wrapping around), so
        ``max(len(values))`` paths cover a sampling supernet.
        """
        if self.mode == "differentiable":
            return [None]
        sizes = {label: len(getattr(d, "values", ())) for label, d in self.decisions.items()}
        paths: list[Sample | None] = []
        for j in range(max(sizes.values(), default=0)):
            path: Sample = {}
            for label, decision in self.decisions.items():
                values = list(getattr(decision, "values", ()))
                if not values:
                    continue
                if isinstance(decision, CategoricalMultiple):  # a window of n_chosen values, in candidate order
                    chosen = decision.n_chosen if decision.n_chosen is not None else 1
                    path[label] = [values[i] for i in sorted({(j + i) % len(values) for i in range(chosen)})]
                else:
                    path[label] = values[j % len(values)]
            paths.append(path)
        return paths or [None]

    def validation_step(self, module: Any, batch: Any, batch_idx: int) -> Any:
        """Validate the supernet as the algorithm sees it (by default: the path of :meth:`export_sample`)."""
        self.apply_sample(self.export_sample())
        return module.inner.validation_step(batch, batch_idx)

    def on_train_epoch_start(self, module: Any) -> None:
        """Called at the start of every training epoch."""

    def export_top(self, k: int, ranker: Callable[[list[Sample]], list[tuple[float, Sample]]]) -> list[Sample]:
        """The ``k`` best architectures, best first. ``ranker`` scores samples with the trained supernet."""
        raise NotImplementedError

    def algorithm_state(self) -> dict[str, Any]:
        """State to save in Lightning checkpoints (optimizers of architecture parameters, baselines)."""
        return {}

    def load_algorithm_state(self, state: dict[str, Any]) -> None:
        """Load what :meth:`algorithm_state` saved."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(top_k={self.top_k})"


def _json_value(value: Any) -> Any:
    """``value`` if JSON can hold it, else its ``repr``."""
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return repr(value)
    return value


def k_best(factors: Sequence[Sequence[tuple[float, Any]]], k: int) -> list[tuple[float, list[Any]]]:
    """The ``k`` highest-scoring combinations of independent factors.

    Each factor is a list of ``(score, value)`` sorted best first; a combination scores the sum of
    its values' scores (log-probabilities multiply the probabilities). Returns ``(score, values)``
    best first (best-first search over index vectors).
    """
    if any(not f for f in factors):
        return []
    start = tuple(0 for _ in factors)

    def score(indices: tuple[int, ...]) -> float:
        return sum(f[i][0] for f, i in zip(factors, indices))

    heap = [(-score(start), start)]
    seen = {start}
    result: list[tuple[float, list[Any]]] = []
    while heap and len(result) < k:
        negative, indices = heapq.heappop(heap)
        result.append((-negative, [f[i][1] for f, i in zip(factors, indices)]))
        for position in range(len(factors)):
            if indices[position] + 1 < len(factors[position]):
                child = indices[:position] + (indices[position] + 1,) + indices[position + 1 :]
                if child not in seen:
                    seen.add(child)
                    heapq.heappush(heap, (-score(child), child))
    return result
