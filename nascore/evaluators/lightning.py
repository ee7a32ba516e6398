"""Lightning evaluators: train and score models with PyTorch Lightning (the ``lightning`` extra).

:class:`Classification` and :class:`Regression` take plain torch DataLoaders and the keyword
arguments of ``pytorch_lightning.Trainer``::

    evaluator = Classification(train_dataloaders=train, val_dataloaders=val, num_classes=10,
                               learning_rate=1e-3, optimizer=torch.optim.Adam, max_epochs=5)

:class:`Lightning` is the general form: a :class:`LightningModule` (the training recipe, with
``self.model`` the network being trained) plus DataLoaders and Trainer arguments.

The same evaluator serves both kinds of search:

* **multi-trial**: :meth:`Lightning.evaluate_module` trains one built model, reports the
  validation metric of every epoch with :func:`nascore.report_intermediate_result` and the last one
  with :func:`nascore.report_final_result` (a dict whose ``"default"`` is the module's
  ``metric_name``, e.g. ``val_acc``, plus every other ``val_*`` metric);
* **one-shot**: a one-shot strategy takes a fresh recipe from :meth:`Lightning.create_module`,
  gives it the supernet with :meth:`LightningModule.set_model` and wraps it in its own Lightning
  module, trained by a Trainer from :meth:`Lightning.create_trainer`.

Importing this module without Lightning installed raises
:class:`~nascore.errors.MissingDependencyError` naming the ``pip install`` line.
"""

from __future__ import annotations

import copy
import inspect
import logging
import signal
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from nascore.errors import EvaluatorError, MissingDependencyError
from nascore.evaluator import Evaluator
from nascore.trial import report_final_result, report_intermediate_result

LIGHTNING_MISSING = (
    "the Lightning evaluators and the one-shot strategies need PyTorch Lightning, which is not installed. "
    "Install it with: pip install 'nascore[lightning]'  (or: pip install 'pytorch-lightning>=2.1')"
)

try:
    import pytorch_lightning as pl
except ImportError as _exc:  # pragma: no cover - exercised only without the extra
    raise MissingDependencyError(LIGHTNING_MISSING) from _exc

__all__ = [
    "Classification",
    "Lightning",
    "LightningModule",
    "Regression",
    "SupervisedLearningModule",
    "fit",
    "pl",
    "quiet_lightning",
]

_log = logging.getLogger(__name__)

#: Trainer settings nascore changes from Lightning's defaults (a trial has its own log folder and
#: reports through nascore; Lightning's loggers, checkpoints and progress bars are opt-in).
TRAINER_DEFAULTS: dict[str, Any] = {
    "logger": False,
    "enable_checkpointing": False,
    "enable_progress_bar": False,
    "enable_model_summary": False,
}

# Warnings that Lightning emits for every small in-memory DataLoader; they are noise in a search.
_QUIET_WARNINGS = (
    r".*does not have many workers.*",
    r".*The number of training batches .* is smaller than the logging interval.*",
    r".*isinstance\(treespec, LeafSpec\)` is deprecated.*",
)
# Info lines Lightning prints for every Trainer created (one per trial in a multi-trial search).
_QUIET_INFO_PREFIXES = ("GPU available", "TPU available", "HPU available", "IPU available", "💡 Tip", "`Trainer.fit` stopped")


# --- the training recipe --------------------------------------------------------------------------


class LightningModule(pl.LightningModule):
    """A training recipe: ``training_step``, ``validation_step`` and ``configure_optimizers`` on ``self.model``.

    Subclass it for a custom recipe. ``metric_name`` names the metric logged (with ``self.log``) in
    ``validation_step`` that scores a model: it becomes the trial's ``"default"`` metric and the
    reward of ENAS. ``metric_mode`` says whether larger (``"maximize"``) or smaller is better.
    """

    metric_name: str | None = None
    metric_mode: str = "maximize"

    def set_model(self, model: nn.Module) -> None:
        """Give the recipe the network to train (a built model, or a one-shot supernet)."""
        self.model = model

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.model(*args, **kwargs)


def accuracy(y_hat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Share of samples whose highest logit is the label."""
    return (y_hat.argmax(dim=-1) == y).float().mean()


def mse(y_hat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean squared error."""
    return F.mse_loss(y_hat, y)


class SupervisedLearningModule(LightningModule):
    """``(x, y)`` batches, a loss, metrics ``fn(y_hat, y)``, and one optimizer over ``self.parameters()``.

    Logs ``val_loss`` and ``val_<metric>`` every validation epoch, and ``train_loss`` and
    ``train_<metric>`` on the training steps where something would show them: every step with the
    progress bar on, every ``log_every_n_steps`` steps with a logger, never without either (a
    ``self.log`` call costs about as much as a small model's step).
    """

    def __init__(
        self,
        criterion: nn.Module,
        metrics: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]],
        *,
        learning_rate: float = 1e-3,
        weight_decay: float = 0.0,
        optimizer: type[torch.optim.Optimizer] = torch.optim.Adam,
        metric_name: str,
        metric_mode: str = "maximize",
        num_outputs: int | None = None,
    ) -> None:
        super().__init__()
        self.criterion = criterion
        self.metrics = dict(metrics)
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.optimizer_class = optimizer
        self.metric_name = metric_name
        self.metric_mode = metric_mode
        self.num_outputs = num_outputs

    def _check_output(self, y_hat: torch.Tensor) -> None:
        if self.num_outputs is not None and y_hat.dim() >= 2 and y_hat.shape[-1] != self.num_outputs:
            raise EvaluatorError(
                f"the model outputs {y_hat.shape[-1]} values per sample but the evaluator was given "
                f"num_classes={self.num_outputs}; make the last layer output {self.num_outputs} values, "
                "or pass the right num_classes"
            )

    def _step(self, batch: Any, prefix: str) -> torch.Tensor:
        x, y = batch
        y_hat = self(x)
        self._check_output(y_hat)
        loss = self.criterion(y_hat, y)
        size = len(y)
        on_epoch = prefix == "val"
        if on_epoch or self._training_logs_shown():
            self.log(f"{prefix}_loss", loss, batch_size=size, on_step=not on_epoch, on_epoch=on_epoch, prog_bar=True)
            for name, fn in self.metrics.items():
                self.log(f"{prefix}_{name}", fn(y_hat.detach(), y), batch_size=size, on_step=not on_epoch, on_epoch=on_epoch)
        return loss

    def _training_logs_shown(self) -> bool:
        trainer = self._trainer
        if trainer is None or trainer.progress_bar_callback is not None:
            return True
        if not trainer.loggers:
            return False
        return trainer.global_step % max(trainer.log_every_n_steps, 1) == 0

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._step(batch, "val")

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return make_optimizer(self.optimizer_class, self.parameters(), self.learning_rate, self.weight_decay)


def make_optimizer(
    optimizer: type[torch.optim.Optimizer], params: Any, learning_rate: float, weight_decay: float
) -> torch.optim.Optimizer:
    """``optimizer(params, lr=..., weight_decay=...)``, with ``foreach=True`` where the class takes it."""
    kwargs: dict[str, Any] = {"lr": learning_rate, "weight_decay": weight_decay}
    if _takes_foreach(optimizer):
        kwargs["foreach"] = True  # one multi-tensor kernel per step instead of a loop over parameters
    return optimizer(params, **kwargs)


def _takes_foreach(optimizer: type[torch.optim.Optimizer]) -> bool:
    try:
        return "foreach" in inspect.signature(optimizer.__init__).parameters
    except (TypeError, ValueError):
        return False


# --- evaluators -----------------------------------------------------------------------------------


class Lightning(Evaluator):
    """Evaluate with a Lightning recipe: ``Lightning(module, train_dataloaders=..., val_dataloaders=..., **trainer_kwargs)``.

    :param lightning_module: the recipe (a :class:`LightningModule` without a model); each
        evaluation gets a deep copy.
    :param train_dataloaders: the training data (any iterable Lightning accepts).
    :param val_dataloaders: the validation data that scores a model (required: the trial's metric
        comes from it).
    :param trainer_kwargs: keyword arguments of ``pytorch_lightning.Trainer`` (``max_epochs``,
        ``accelerator``, ``callbacks``, ...). Unless given, Lightning's logger, checkpointing,
        progress bar and model summary are off.
    """

    def __init__(
        self,
        lightning_module: LightningModule,
        train_dataloaders: Any = None,
        val_dataloaders: Any = None,
        **trainer_kwargs: Any,
    ) -> None:
        if not isinstance(lightning_module, LightningModule):
            raise EvaluatorError(
                f"Lightning evaluator needs a nascore.evaluators.LightningModule (it has set_model), "
                f"got {type(lightning_module).__name__}; derive your recipe from nascore.evaluators.LightningModule"
            )
        if train_dataloaders is None or val_dataloaders is None:
            raise EvaluatorError(
                f"{type(self).__name__} needs both train_dataloaders and val_dataloaders: the model is trained on "
                "the first and scored on the second"
            )
        if "trainer" in trainer_kwargs:
            raise EvaluatorError(
                f"{type(self).__name__} takes the Trainer's keyword arguments (max_epochs=..., accelerator=...), "
                "not a Trainer object: every evaluation builds its own Trainer"
            )
        self.module = lightning_module
        self.train_dataloaders = train_dataloaders
        self.val_dataloaders = val_dataloaders
        self.trainer_kwargs = trainer_kwargs

    @property
    def metric_name(self) -> str | None:
        """The validation metric that scores a model (``None``: the only one logged)."""
        return self.module.metric_name

    @property
    def metric_mode(self) -> str:
        return self.module.metric_mode

    def create_module(self) -> LightningModule:
        """A fresh copy of the recipe, without a model."""
        return copy.deepcopy(self.module)

    def create_trainer(self, callbacks: Sequence[pl.Callback] = (), **overrides: Any) -> pl.Trainer:
        """A new Trainer from the evaluator's arguments, ``overrides`` and extra ``callbacks``.

        The user's callbacks are deep-copied, so state (early stopping, ...) never leaks between trials.
        """
        kwargs = {**TRAINER_DEFAULTS, **self.trainer_kwargs, **overrides}
        user_callbacks = kwargs.pop("callbacks", None) or []
        if not isinstance(user_callbacks, (list, tuple)):
            user_callbacks = [user_callbacks]
        all_callbacks = [*copy.deepcopy(list(user_callbacks)), *callbacks, _InterruptGuard()]
        with quiet_lightning():
            return pl.Trainer(callbacks=all_callbacks, **kwargs)

    def evaluate_module(self, module: nn.Module) -> Any:
        """Train ``module``; report the validation metrics of each epoch, then the last ones as final."""
        recipe = self.create_module()
        recipe.set_model(module)
        reporter = _TrialReporter(self.metric_name)
        trainer = self.create_trainer(callbacks=[reporter])
        fit(trainer, recipe, train_dataloaders=self.train_dataloaders, val_dataloaders=self.val_dataloaders)
        if reporter.last is None:
            raise EvaluatorError(
                "training finished without a validation epoch, so there is no metric to report; check "
                "limit_val_batches / check_val_every_n_epoch in the Trainer arguments and that val_dataloaders is not empty"
            )
        report_final_result(reporter.last)
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({type(self.module).__name__}, {self.trainer_kwargs!r})"


class Classification(Lightning):
    """Train a classifier with cross-entropy and score it by validation accuracy (``val_acc``).

    NNI-compatible arguments: ``criterion`` (a loss class), ``learning_rate``, ``weight_decay``,
    ``optimizer`` (an optimizer class), ``train_dataloaders``, ``val_dataloaders``, ``num_classes``
    (checked against the model's output), and any ``Trainer`` keyword argument.
    """

    def __init__(
        self,
        criterion: type[nn.Module] = nn.CrossEntropyLoss,
        learning_rate: float = 1e-3,
        weight_decay: float = 0.0,
        optimizer: type[torch.optim.Optimizer] = torch.optim.Adam,
        train_dataloaders: Any = None,
        val_dataloaders: Any = None,
        num_classes: int | None = None,
        **trainer_kwargs: Any,
    ) -> None:
        module = SupervisedLearningModule(
            criterion(),
            {"acc": accuracy},
            learning_rate=learning_rate,
            weight_decay=weight_decay,
            optimizer=optimizer,
            metric_name="val_acc",
            metric_mode="maximize",
            num_outputs=num_classes,
        )
        super().__init__(module, train_dataloaders, val_dataloaders, **trainer_kwargs)


class Regression(Lightning):
    """Train a regressor with mean squared error and score it by validation MSE (``val_mse``; smaller is better).

    Run the experiment with ``optimize_mode="minimize"``. Arguments as for :class:`Classification`.
    """

    def __init__(
        self,
        criterion: type[nn.Module] = nn.MSELoss,
        learning_rate: float = 1e-3,
        weight_decay: float = 0.0,
        optimizer: type[torch.optim.Optimizer] = torch.optim.Adam,
        train_dataloaders: Any = None,
        val_dataloaders: Any = None,
        **trainer_kwargs: Any,
    ) -> None:
        module = SupervisedLearningModule(
            criterion(),
            {"mse": mse},
            learning_rate=learning_rate,
            weight_decay=weight_decay,
            optimizer=optimizer,
            metric_name="val_mse",
            metric_mode="minimize",
        )
        super().__init__(module, train_dataloaders, val_dataloaders, **trainer_kwargs)


# --- running a Trainer ----------------------------------------------------------------------------


def fit(trainer: pl.Trainer, module: pl.LightningModule, **fit_kwargs: Any) -> None:
    """``trainer.fit`` that keeps nascore's Ctrl-C behaviour.

    On Ctrl-C Lightning shuts down, ignores further SIGINTs and calls ``sys.exit(1)``; here the
    SIGINT handler is restored and ``KeyboardInterrupt`` raised instead, so the experiment is
    marked INTERRUPTED and can be resumed.
    """
    guard = next((cb for cb in trainer.callbacks if isinstance(cb, _InterruptGuard)), None)
    main_thread = threading.current_thread() is threading.main_thread()
    handler = signal.getsignal(signal.SIGINT) if main_thread else None
    try:
        with quiet_lightning():
            trainer.fit(module, **fit_kwargs)
    except SystemExit:
        if guard is not None and guard.interrupted:
            raise KeyboardInterrupt from None
        raise
    finally:
        if main_thread and handler is not None and signal.getsignal(signal.SIGINT) is not handler:
            signal.signal(signal.SIGINT, handler)


@contextmanager
def quiet_lightning() -> Iterator[None]:
    """Silence Lightning's per-Trainer device lines and its warnings about small in-memory DataLoaders."""
    rank_zero = logging.getLogger("pytorch_lightning.utilities.rank_zero")
    quiet = _DropInfo()
    rank_zero.addFilter(quiet)
    try:
        with warnings.catch_warnings():
            for pattern in _QUIET_WARNINGS:
                warnings.filterwarnings("ignore", message=pattern)
            yield
    finally:
        rank_zero.removeFilter(quiet)


class _DropInfo(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.getMessage()).startswith(_QUIET_INFO_PREFIXES)


class _InterruptGuard(pl.Callback):
    """Remembers that fitting stopped because of Ctrl-C (Lightning turns it into ``sys.exit``)."""

    def __init__(self) -> None:
        self.interrupted = False

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        if isinstance(exception, KeyboardInterrupt):
            self.interrupted = True


def _as_float(value: Any) -> float:
    return float(value.item() if isinstance(value, torch.Tensor) else value)


def validation_metrics(trainer: pl.Trainer, metric_name: str | None) -> dict[str, float]:
    """The logged validation metrics as ``{"default": <metric_name>, "val_...": value, ...}``.

    With ``metric_name=None`` the only logged metric whose name starts with ``val`` scores the model.

    :raises EvaluatorError: ``metric_name`` was not logged (or, when it is ``None``, not exactly one
        ``val*`` metric was).
    """
    logged = {name: _as_float(value) for name, value in trainer.callback_metrics.items()}
    validation = {name: value for name, value in logged.items() if name.startswith("val")}
    if metric_name is None:
        if len(validation) != 1:
            raise EvaluatorError(
                f"the validation step logged {sorted(validation) or 'no val* metric'}; set metric_name on the "
                "LightningModule to say which metric scores a model"
            )
        metric_name = next(iter(validation))
    if metric_name not in logged:
        raise EvaluatorError(
            f"the validation step did not log {metric_name!r} (logged: {sorted(logged) or 'nothing'}); log it with "
            f"self.log({metric_name!r}, value) in validation_step, or set metric_name to a logged name"
        )
    return {"default": logged[metric_name], **validation, metric_name: logged[metric_name]}


class _TrialReporter(pl.Callback):
    """Reports the validation metrics of every epoch as an intermediate result; keeps the last."""

    def __init__(self, metric_name: str | None) -> None:
        self.metric_name = metric_name
        self.last: dict[str, float] | None = None

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        self.last = validation_metrics(trainer, self.metric_name)
        report_intermediate_result(self.last)
