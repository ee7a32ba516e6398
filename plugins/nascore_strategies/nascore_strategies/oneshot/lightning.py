"""Training a supernet with Lightning: the one-shot Lightning module and the training loop around it.

:class:`OneShotModule` wraps the evaluator's recipe (a :class:`nascore.evaluators.LightningModule`
whose model is the supernet) and hands ``training_step`` to the strategy. Lightning's automatic
optimization steps the evaluator's optimizer (with its schedulers, gradient clipping and
accumulation); architecture parameters and controllers have their own optimizers, stepped by the
strategy inside its training step. The recipe's ``self.log`` calls go through the wrapper, which
also captures them: ENAS's reward and the ranking of sampled architectures read the validation
metric the recipe logs.

Importing this module needs Lightning (the ``oneshot`` extra of ``nascore-strategies``).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import math
import warnings
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import torch
import torch.nn as nn

from nascore.errors import StrategyError
from nascore.evaluators.lightning import Lightning, fit, pl, quiet_lightning
from nascore.space import Sample, sample_key
from nascore_strategies.oneshot.allocator import reused_memory
from nascore_strategies.oneshot.batching import batched
from nascore_strategies.oneshot.inplace import inplace_relus
from nascore_strategies.oneshot.layout import (
    convert_batch,
    convert_module,
    has_spatial_ops,
    keep_gradient_layout,
    trial_run,
)

if TYPE_CHECKING:
    from nascore_strategies.oneshot.base import OneShotStrategy

__all__ = ["ConcatTrainVal", "InterleavedTrainVal", "OneShotModule", "train_supernet"]

_log = logging.getLogger(__name__)


def loss_of(output: Any) -> torch.Tensor:
    """The loss in what a ``training_step`` returned (a tensor, or a dict with ``"loss"``)."""
    if isinstance(output, dict):
        return output["loss"]
    if not isinstance(output, torch.Tensor):
        raise StrategyError(f"the evaluator's training_step returned {type(output).__name__}; return the loss (a tensor)")
    return output


def batch_size_of(batch: Any) -> int:
    """The number of samples in a batch: the length of its first tensor."""
    if isinstance(batch, torch.Tensor):
        return int(batch.shape[0]) if batch.dim() else 1
    if isinstance(batch, (list, tuple)) and batch:
        return batch_size_of(batch[0])
    if isinstance(batch, dict) and batch:
        return batch_size_of(next(iter(batch.values())))
    return 1


def on_device(batch: Any, device: torch.device) -> bool:
    """Whether every tensor in ``batch`` (tensors, numbers, strings, ``None`` and tuples / lists / dicts of
    them) is on ``device``; ``False`` for anything else, which Lightning may know how to move."""
    if isinstance(batch, torch.Tensor):
        return batch.device == device
    if isinstance(batch, (list, tuple)):
        return all(on_device(item, device) for item in batch)
    if isinstance(batch, dict):
        return all(on_device(item, device) for item in batch.values())
    return batch is None or isinstance(batch, (int, float, str, bytes))


def _as_float(value: Any) -> float:
    return float(value.detach().float().mean()) if isinstance(value, torch.Tensor) else float(value)


class OneShotModule(pl.LightningModule):
    """The Lightning module a one-shot strategy trains: the evaluator's recipe plus the search logic."""

    def __init__(self, inner: pl.LightningModule, strategy: OneShotStrategy, metric_name: str | None, metric_mode: str) -> None:
        super().__init__()
        self.inner = inner
        if strategy.arch is not None:
            self.arch = strategy.arch
        for name, module in strategy.extra_modules().items():
            self.add_module(name, module)
        self.__dict__["strategy"] = strategy
        self.automatic_optimization = strategy.automatic_optimization
        self.metric_name = metric_name
        self.metric_mode = metric_mode
        self.logged: dict[str, Any] = {}
        #: Training steps skipped because their loss was not finite (see :meth:`finite`).
        self.skipped_steps = 0
        #: Weight steps whose loss was finite.
        self.trained_steps = 0
        self._forward_logs = True
        self.ranking: list[Sample] | None = None
        self._ranking_totals: list[float] = []
        self._ranking_counts: list[int] = []
        #: The supernet's memory layout, ``"channels_last"`` or ``"contiguous"`` (decided on the first training batch).
        self.layout: str | None = None
        self._layout_handles: list[Any] | None = None

    def __setattr__(self, name: str, value: Any) -> None:
        """Plain attributes are set directly: Lightning sets ``_current_fx_name`` on every hook call (about 45
        times a training step), and ``nn.Module.__setattr__`` first checks whether the value is a parameter,
        a module or a buffer (about 2 us a call; 3% of a small RandomOneShot step). A name already in the
        instance's ``__dict__`` is not a parameter, buffer or submodule, so only its value needs checking."""
        if name in self.__dict__ and not isinstance(value, (torch.Tensor, nn.Module)):
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    # --- the recipe's logging --------------------------------------------------------------------

    def _inner_log(self, name: str, value: Any, *args: Any, **kwargs: Any) -> None:
        self.logged[name] = value
        if self._forward_logs:
            self.log(name, value, *args, **kwargs)

    @contextlib.contextmanager
    def capture(self) -> Iterator[dict[str, Any]]:
        """Inside, the recipe's ``self.log`` calls are recorded (and yielded) but not logged."""
        previous = self._forward_logs
        self._forward_logs = False
        self.logged = {}
        try:
            yield self.logged
        finally:
            self._forward_logs = previous

    def metric(self, logged: dict[str, Any]) -> float:
        """The scoring metric among ``logged`` values, as a number where larger is better."""
        name = self.metric_name
        if name is None:
            if len(logged) == 1:
                name = next(iter(logged))
            elif "default" in logged:
                name = "default"
        if name is None or name not in logged:
            raise StrategyError(
                f"{type(self.strategy).__name__} scores architectures by a validation metric, but the evaluator's "
                f"validation_step logged {sorted(logged) or 'nothing'}"
                + (f" and not {name!r}" if name else "")
                + "; log the metric with self.log(name, value) in validation_step and set metric_name on the recipe "
                "(or reward_metric_name on the strategy)"
            )
        value = _as_float(logged[name])
        return value if self.metric_mode == "maximize" else -value

    # --- steps ---------------------------------------------------------------------------------

    def inner_training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        """The recipe's training step; returns its loss."""
        return loss_of(self.inner.training_step(batch, batch_idx))

    def weight_step(self, batch: Any, batch_idx: int) -> torch.Tensor | None:
        """The recipe's training step as the weight step Lightning optimizes.

        ``None`` (Lightning skips the step) when the loss depends on no trainable weight, as happens
        when a sampled path is only parameter-free operators.
        """
        loss = self.inner_training_step(batch, batch_idx)
        if not loss.requires_grad:
            return None
        if not self.finite(loss, "weight"):
            return None
        self.trained_steps += 1
        return loss

    def finite(self, loss: torch.Tensor, what: str) -> bool:
        """Whether ``loss`` is finite; a non-finite one is skipped (it would make the shared weights or the
        architecture weights NaN for every architecture), counted, and reported."""
        if math.isfinite(loss.item()) if loss.numel() == 1 else bool(torch.isfinite(loss.detach()).all()):
            return True  # a scalar loss (the usual case) is checked with one read, not two kernels and a read
        self.skipped_steps += 1
        if self.skipped_steps == 1 or self.skipped_steps % 100 == 0:
            _log.warning(
                "%s: the loss of %s step is %s (epoch %d, step %d); the step is skipped (%d so far). A candidate "
                "that overflows (exp, cosh, ...) or a learning rate too high does this: restrict the candidates, "
                "lower the learning rate or clip gradients",
                type(self.strategy).__name__, f"an {what}" if what[0] in "aeiou" else f"a {what}", float(loss.detach().float().sum()), self.current_epoch,
                self.global_step, self.skipped_steps,
            )
        return False

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.inner(*args, **kwargs)

    def training_step(self, batch: Any, batch_idx: int) -> Any:
        return self.strategy.training_step(self, batch, batch_idx)

    # Lightning reads this signature (``inspect.getfullargspec``) before every training step; a function's
    # ``__signature__`` is what ``inspect`` returns without parsing it again (about 1% of a small step).
    training_step.__signature__ = inspect.signature(training_step)  # type: ignore[attr-defined]

    def validation_step(self, batch: Any, batch_idx: int) -> Any:
        if self.ranking is not None:
            return self._ranking_step(batch, batch_idx)
        return self.strategy.validation_step(self, batch, batch_idx)

    def _ranking_step(self, batch: Any, batch_idx: int) -> None:
        assert self.ranking is not None
        size = batch_size_of(batch)
        norms = [m for m in self.inner.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        for norm in norms:  # shared weights, per-architecture statistics: normalize with the batch's
            norm.train()
        try:
            for index, sample in enumerate(self.ranking):
                self.strategy.apply_sample(sample)
                with self.capture() as logged:
                    self.inner.validation_step(batch, batch_idx)
                self._ranking_totals[index] += self.metric(logged) * size
                self._ranking_counts[index] += size
        finally:
            for norm in norms:
                norm.eval()

    def configure_gradient_clipping(self, optimizer: Any, gradient_clip_val: float | None = None,
                                    gradient_clip_algorithm: str | None = None) -> None:
        """Lightning's clipping; without a ``gradient_clip_val`` (the default) nothing to clip, and Lightning's
        checks of the clipping settings, run before every optimizer step, are skipped."""
        if gradient_clip_val is None and self.trainer.gradient_clip_val is None:
            return
        super().configure_gradient_clipping(optimizer, gradient_clip_val, gradient_clip_algorithm)

    def configure_optimizers(self) -> Any:
        config = self.inner.configure_optimizers()
        self.strategy.configure_architecture_optimizers(self)
        return config

    # --- batches ---------------------------------------------------------------------------------

    def transfer_batch_to_device(self, batch: Any, device: torch.device, dataloader_idx: int) -> Any:
        """``batch`` as it is when every tensor in it is already on ``device`` (a CPU run); else Lightning's move.

        Lightning's own walks the batch with ``apply_to_collection`` and calls ``.to(device)`` on each
        tensor, which returns it unchanged: about 60 us a step for a DARTS pair of batches.
        """
        if on_device(batch, device):
            return batch
        return super().transfer_batch_to_device(batch, device, dataloader_idx)

    # --- memory layout ---------------------------------------------------------------------------

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        if self.layout is None and self.trainer.training:
            self.layout = self.choose_layout(batch)
        if self.layout == "channels_last":
            if self._layout_handles is None and self.trainer.training:
                self._layout_handles = keep_gradient_layout(self.inner)
            return convert_batch(batch, "channels_last")
        return batch

    def release_layout(self) -> None:
        """Undo what :func:`keep_gradient_layout` did to the supernet's pooling layers (after training)."""
        for handle in self._layout_handles or ():
            handle.remove()
        self._layout_handles = None

    def choose_layout(self, batch: Any) -> str | None:
        """Settle the strategy's ``memory_format`` on the first training batch (``None``: on a later one).

        With ``"auto"``: ``channels_last`` on CPU for supernets with 2-D convolutions or pooling,
        unless a forward pass of some path works in the contiguous layout but fails in
        ``channels_last`` (``.view()`` of a spatial tensor, say). The trial passes run without
        gradients, on paths that together cover every candidate, and leave no trace (BatchNorm
        statistics and random number generators are restored).
        """
        wanted = self.strategy.memory_format
        if wanted != "auto":
            convert_module(self.inner, wanted)
            return wanted
        if self.device.type != "cpu" or not has_spatial_ops(self.inner):
            return "contiguous"
        recipe_batch = self.strategy.recipe_batch(batch)
        if recipe_batch is None:
            return None
        converted = convert_batch(recipe_batch, "channels_last")
        convert_module(self.inner, "channels_last")
        with torch.random.fork_rng(devices=[]):
            for path in self.strategy.covering_paths():
                failure = trial_run(self.inner, functools.partial(self._trial_forward, converted, path))
                if failure is None:
                    continue
                convert_module(self.inner, "contiguous")
                if trial_run(self.inner, functools.partial(self._trial_forward, recipe_batch, path)) is None:
                    _log.info("%s: the supernet trains in the contiguous memory layout; in channels_last it fails: %s",
                              type(self.strategy).__name__, failure)
                    return "contiguous"
                convert_module(self.inner, "channels_last")  # fails either way: not the layout's doing
        _log.debug("%s: the supernet trains in the channels_last memory layout", type(self.strategy).__name__)
        return "channels_last"

    def _trial_forward(self, batch: Any, path: Sample | None) -> None:
        if path is not None:
            self.strategy.apply_sample(path)
        arch = self.strategy.arch
        with arch.scope() if arch is not None else contextlib.nullcontext(), self.capture():
            self.inner.training_step(batch, 0)

    # --- hooks passed on to the recipe -------------------------------------------------------------

    def setup(self, stage: str) -> None:
        self.inner.log = self._inner_log  # the recipe is not attached to the loop; its logs go through here
        self.inner.setup(stage)

    def teardown(self, stage: str) -> None:
        self.inner.teardown(stage)

    def on_fit_start(self) -> None:
        self.strategy.cover_cuda()  # a seeded search also seeds CUDA if fitting just initialised it
        self.inner.on_fit_start()

    def on_fit_end(self) -> None:
        self.inner.on_fit_end()

    def on_train_start(self) -> None:
        self.inner.on_train_start()

    def on_train_end(self) -> None:
        self.inner.on_train_end()

    def on_train_epoch_start(self) -> None:
        self.strategy.on_train_epoch_start(self)
        self.inner.on_train_epoch_start()

    def on_train_epoch_end(self) -> None:
        self.inner.on_train_epoch_end()

    def on_validation_epoch_start(self) -> None:
        self.inner.on_validation_epoch_start()

    def on_validation_epoch_end(self) -> None:
        self.inner.on_validation_epoch_end()

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["nascore_oneshot"] = self.strategy.algorithm_state()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if "nascore_oneshot" in checkpoint:
            self.strategy.load_algorithm_state(checkpoint["nascore_oneshot"])

    # --- ranking architectures with the trained supernet -----------------------------------------------

    def start_ranking(self, samples: list[Sample]) -> None:
        self.ranking = list(samples)
        self._ranking_totals = [0.0] * len(samples)
        self._ranking_counts = [0] * len(samples)

    def finish_ranking(self) -> list[float]:
        scores = [t / c if c else -math.inf for t, c in zip(self._ranking_totals, self._ranking_counts)]
        self.ranking = None
        return scores


class InterleavedTrainVal:
    """One epoch of training batches, each paired with a validation batch: ``{"train": b, "val": b}``.

    The validation data is cycled when it is shorter than the training data (DARTS, Proxyless).
    A ``DataLoader`` over a ``TensorDataset`` reads whole batches (:func:`~nascore_strategies.oneshot.batching.batched`).
    """

    def __init__(self, train: Any, val: Any) -> None:
        self.train = train
        self.val = val

    def __len__(self) -> int:
        return len(self.train)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        train, val = batched(self.train), batched(self.val)
        val_iter = iter(val)
        for train_batch in train:
            try:
                val_batch = next(val_iter)
            except StopIteration:
                val_iter = iter(val)
                try:
                    val_batch = next(val_iter)
                except StopIteration:
                    raise StrategyError("the validation data is empty; the strategy needs validation batches") from None
            yield {"train": train_batch, "val": val_batch}


class ConcatTrainVal:
    """One epoch of every training batch, then every validation batch: ``("train", b)`` then ``("val", b)`` (ENAS)."""

    def __init__(self, train: Any, val: Any) -> None:
        self.train = train
        self.val = val

    def __len__(self) -> int:
        return len(self.train) + len(self.val)

    def __iter__(self) -> Iterator[tuple[str, Any]]:
        for batch in batched(self.train):
            yield "train", batch
        for batch in batched(self.val):
            yield "val", batch


class _SearchCallback(pl.Callback):
    """What a one-shot search does around Lightning's loop, in one callback (Lightning calls every hook of every
    callback on every step, overridden or not):

    * stops training when the experiment's budget (max_duration, a stop request) is spent (``should_stop``);
    * logs the validation metrics after each epoch;
    * records the architecture weights (their softmax) about ten times an epoch, and saves them after each
      epoch (strategies with architecture parameters).
    """

    def __init__(self, strategy: OneShotStrategy, should_stop: Callable[[], bool] | None) -> None:
        self.strategy = strategy
        self.should_stop = should_stop
        self.history = strategy.arch is not None
        self.steps = 0

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.history:
            self.strategy.record_architecture(trainer.current_epoch, self.steps)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int) -> None:
        if self.should_stop is not None and not trainer.should_stop and self.should_stop():
            _log.info("The experiment's budget is spent: supernet training stops at epoch %d", trainer.current_epoch)
            trainer.should_stop = True
        if not self.history:
            return
        self.steps += 1
        batches = trainer.num_training_batches
        every = max(1, int(batches) // 10) if isinstance(batches, int) or (isinstance(batches, float) and math.isfinite(batches)) else 10
        if (batch_idx + 1) % every == 0:
            self.strategy.record_architecture(trainer.current_epoch, self.steps)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.history:
            self.strategy.record_architecture(trainer.current_epoch, self.steps)
            self._save()

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.history:
            self._save()

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or getattr(pl_module, "ranking", None) is not None or not _log.isEnabledFor(logging.INFO):
            return
        metrics = {k: round(_as_float(v), 4) for k, v in trainer.callback_metrics.items() if k.startswith("val")}
        _log.info("%s epoch %d: %s", type(self.strategy).__name__, trainer.current_epoch, metrics)

    def _save(self) -> None:
        try:
            self.strategy.save_architecture_history()
        except OSError as exc:  # a record for the dashboard: never a reason to stop training
            _log.warning("%s: cannot save the architecture weights' history: %s", type(self.strategy).__name__, exc)


def train_supernet(strategy: OneShotStrategy, evaluator: Any, should_stop: Callable[[], bool] | None) -> list[Sample]:
    """Train ``strategy.supernet`` with the Lightning ``evaluator``; return the top architectures."""
    if not isinstance(evaluator, Lightning):
        raise StrategyError(
            f"{type(strategy).__name__} trains the supernet with a Lightning evaluator (nascore.evaluators.Classification, "
            f"Regression or Lightning), got {type(evaluator).__name__}; one-shot strategies cannot use a "
            "FunctionalEvaluator because they need the training steps, not a finished training"
        )
    inner = evaluator.create_module()
    inner.set_model(strategy.supernet)
    reward_name = getattr(strategy, "reward_metric_name", None)
    module = OneShotModule(inner, strategy, reward_name or evaluator.metric_name, evaluator.metric_mode)
    strategy.oneshot_module = module
    overrides: dict[str, Any] = {"num_sanity_val_steps": evaluator.trainer_kwargs.get("num_sanity_val_steps", 0)}
    overrides.update(strategy.trainer_overrides())
    if strategy.arch is not None:
        strategy.architecture_history = []
    trainer = evaluator.create_trainer(callbacks=[_SearchCallback(strategy, should_stop)], **overrides)
    train_data = strategy.train_dataloader(evaluator.train_dataloaders, evaluator.val_dataloaders)
    if isinstance(trainer.strategy, pl.strategies.SingleDeviceStrategy) and not trainer.overfit_batches:
        # A plain in-memory loader is read whole batches at a time. Not where Lightning re-creates the
        # user's DataLoader: with a distributed sampler (DDP & co), or a sequential one (overfit_batches).
        train_data = batched(train_data)
    _log.info("%s: training the supernet", type(strategy).__name__)
    with warnings.catch_warnings():
        # Steps that only train an architecture optimizer (ENAS's controller) return None on purpose.
        warnings.filterwarnings("ignore", message=r".*`training_step` returned `None`.*")
        with reused_memory(strategy.reuse_memory), inplace_relus(strategy.supernet, strategy.inplace_relu):
            try:
                fit(trainer, module, train_dataloaders=train_data, val_dataloaders=evaluator.val_dataloaders)
            finally:
                module.release_layout()
    if module.skipped_steps and not module.trained_steps:
        raise StrategyError(
            f"{type(strategy).__name__}: every training step's loss was not finite ({module.skipped_steps} skipped), "
            "so the supernet learned nothing and no architecture is exported. A candidate that overflows (exp, "
            "cosh, ...) or a learning rate too high does this: restrict the candidates or lower the learning rate"
        )
    if module.skipped_steps:
        _log.warning("%s: %d training step(s) skipped: their loss was not finite", type(strategy).__name__,
                     module.skipped_steps)

    def ranker(samples: list[Sample]) -> list[tuple[float, Sample]]:
        """Score ``samples`` by the validation metric of each path of the trained supernet, best first."""
        unique = list({sample_key(s): s for s in samples}.values())
        module.start_ranking(unique)
        try:
            with quiet_lightning():
                trainer.validate(module, dataloaders=evaluator.val_dataloaders, verbose=False)
        finally:
            scores = module.finish_ranking()
        ranked = sorted(zip(scores, unique), key=lambda pair: -pair[0])
        return [(score, sample) for score, sample in ranked]

    space = strategy.space
    constrained = space is not None and bool(space.decisions().constraints)
    # With constraints, rank more architectures: those that violate one are dropped after the export.
    return strategy.export_top(strategy.top_k * (CONSTRAINED_EXPORT_FACTOR if constrained else 1), ranker)


#: With constraints in the space, the supernet ranks this many times ``top_k`` architectures to keep ``top_k``.
CONSTRAINED_EXPORT_FACTOR = 20
