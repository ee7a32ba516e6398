"""Multi-model training for CGO: several models trained together on each batch, each with its own optimizer.

:class:`MultiModelLightningModule` is the Lightning recipe for a merged trial: it holds the models
in ``self.models`` and trains them with manual optimization, one optimizer per model, so each
model's updates are exactly those it would get alone. :class:`MultiModelSupervisedLearningModule`
is the ``(x, y)`` recipe behind the ready evaluators :class:`Classification` and :class:`Regression`::

    evaluator = Classification(train_dataloaders=train, val_dataloaders=val, num_classes=10,
                               learning_rate=1e-3, max_epochs=5, seed=0)

The evaluators train one model (an ordinary trial) or a :class:`~nascore_cgo.plan.MergedModel`;
for a merged model every report is ``{"default": mean, "cgo": [record of model 0, ...]}``, which
the CGO engine splits back into one result per original trial. Per-model metrics are logged as
``val_<name>/<index>``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn as nn

from nascore.errors import EvaluatorError
from nascore.evaluator import Evaluator
from nascore.evaluators.lightning import (
    TRAINER_DEFAULTS,
    _InterruptGuard,
    accuracy,
    fit,
    make_optimizer,
    mse,
    quiet_lightning,
)
from nascore.format import ExecutableModel
from nascore.trial import report_final_result, report_intermediate_result
from nascore_cgo.plan import MergedModel

__all__ = [
    "MultiModelLightningModule",
    "MultiModelSupervisedLearningModule",
    "MultiModelLightning",
    "Classification",
    "Regression",
]


class MultiModelLightningModule(pl.LightningModule):
    """Base of multi-model recipes: ``self.models`` (an ``nn.ModuleList``) trained together.

    Subclasses implement :meth:`training_step` / :meth:`validation_step` over all models and log
    each model's validation metrics as ``<metric>/<index>``; ``metric_name`` names the metric that
    scores a model.
    """

    metric_name: str = "val_loss"
    metric_mode: str = "minimize"

    def __init__(self) -> None:
        super().__init__()
        self.models = nn.ModuleList()

    def set_models(self, models: Sequence[nn.Module]) -> None:
        """Give the recipe the models to train (called once per evaluation, on a fresh copy)."""
        self.models = nn.ModuleList(models)

    def forward(self, x: Any) -> list[Any]:
        """Every model's output for the same input: the batch is fed to all of them."""
        return [model(x) for model in self.models]


class MultiModelSupervisedLearningModule(MultiModelLightningModule):
    """``(x, y)`` batches, one criterion and metrics ``fn(y_hat, y)``, one optimizer per model."""

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
        self.automatic_optimization = False  # one optimizer per model, each stepped on its own loss
        self.criterion = criterion
        self.metrics = dict(metrics)
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.optimizer_class = optimizer
        self.metric_name = metric_name
        self.metric_mode = metric_mode
        self.num_outputs = num_outputs

    def signature(self) -> tuple[Any, ...]:
        """What two recipes must share for their models to be trained together."""
        return (
            type(self).__qualname__, type(self.criterion).__qualname__, tuple(sorted(self.metrics)),
            self.learning_rate, self.weight_decay, self.optimizer_class.__qualname__, self.metric_name, self.num_outputs,
        )

    def _check_output(self, index: int, y_hat: torch.Tensor) -> None:
        if self.num_outputs is not None and y_hat.dim() >= 2 and y_hat.shape[-1] != self.num_outputs:
            raise EvaluatorError(
                f"model {index} of the trial outputs {y_hat.shape[-1]} values per sample but the evaluator was "
                f"given num_classes={self.num_outputs}; make the last layer output {self.num_outputs} values"
            )

    def training_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        optimizers = self.optimizers()
        optimizers = optimizers if isinstance(optimizers, list) else [optimizers]
        for index, (model, optimizer) in enumerate(zip(self.models, optimizers)):
            y_hat = model(x)
            self._check_output(index, y_hat)
            loss = self.criterion(y_hat, y)
            optimizer.zero_grad()
            self.manual_backward(loss)
            optimizer.step()

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        for index, model in enumerate(self.models):
            y_hat = model(x)
            self._check_output(index, y_hat)
            self.log(f"val_loss/{index}", self.criterion(y_hat, y), batch_size=len(y), on_epoch=True)
            for name, fn in self.metrics.items():
                self.log(f"val_{name}/{index}", fn(y_hat, y), batch_size=len(y), on_epoch=True)

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        return [
            make_optimizer(self.optimizer_class, model.parameters(), self.learning_rate, self.weight_decay)
            for model in self.models
        ]


def model_metrics(trainer: pl.Trainer, metric_name: str, count: int) -> list[dict[str, float]]:
    """Each model's logged validation metrics as ``{"default": <metric_name>, "val_...": value}``."""
    logged = {name: float(value) for name, value in trainer.callback_metrics.items()}
    records = []
    for index in range(count):
        suffix = f"/{index}"
        record = {name[: -len(suffix)]: value for name, value in logged.items() if name.endswith(suffix)}
        if metric_name not in record:
            raise EvaluatorError(
                f"the validation step did not log {metric_name}{suffix} for model {index} (logged: {sorted(logged)}); "
                f"log each model's metrics as self.log('{metric_name}/<index>', value)"
            )
        records.append({"default": record[metric_name], **record})
    return records


class _MultiReporter(pl.Callback):
    """Reports every validation epoch: one record per model, merged into one report."""

    def __init__(self, metric_name: str, count: int, merged: bool) -> None:
        self.metric_name = metric_name
        self.count = count
        self.merged = merged
        self.last: dict[str, Any] | None = None

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        self.last = merged_report(model_metrics(trainer, self.metric_name, self.count), self.merged)
        report_intermediate_result(self.last)


def merged_report(records: list[dict[str, float]], merged: bool) -> dict[str, Any]:
    """One report for a trial: the record itself for one model, ``{"default": mean, "cgo": records}`` for a merged one."""
    if not merged:
        return records[0]
    return {"default": sum(r["default"] for r in records) / len(records), "cgo": records}


class MultiModelLightning(Evaluator):
    """Evaluate one model or a merged group with a :class:`MultiModelLightningModule` recipe.

    :param lightning_module: the recipe (without models); every evaluation gets a deep copy.
    :param train_dataloaders: training data, loaded once per batch for all models of a trial.
    :param val_dataloaders: validation data that scores every model.
    :param seed: when given, every model is initialised after ``torch.manual_seed(seed)`` and the
        data order is seeded too, so a model trained in a merged trial gets the same result as alone.
    :param trainer_kwargs: keyword arguments of ``pytorch_lightning.Trainer``.
    """

    def __init__(
        self,
        lightning_module: MultiModelLightningModule,
        train_dataloaders: Any = None,
        val_dataloaders: Any = None,
        seed: int | None = None,
        **trainer_kwargs: Any,
    ) -> None:
        if not isinstance(lightning_module, MultiModelLightningModule):
            raise EvaluatorError(
                f"{type(self).__name__} needs a nascore_cgo.MultiModelLightningModule recipe, got "
                f"{type(lightning_module).__name__}; derive your recipe from nascore_cgo.MultiModelLightningModule"
            )
        if train_dataloaders is None or val_dataloaders is None:
            raise EvaluatorError(f"{type(self).__name__} needs both train_dataloaders and val_dataloaders")
        if "trainer" in trainer_kwargs:
            raise EvaluatorError(f"{type(self).__name__} takes the Trainer's keyword arguments, not a Trainer object")
        self.module = lightning_module
        self.train_dataloaders = train_dataloaders
        self.val_dataloaders = val_dataloaders
        self.seed = seed
        self.trainer_kwargs = trainer_kwargs

    def merge_key(self) -> tuple[Any, ...]:
        """Models whose evaluators have equal keys read the same data the same way and may share a trial."""
        signature = getattr(self.module, "signature", None)
        recipe = signature() if callable(signature) else id(self.module)
        return (id(self.train_dataloaders), id(self.val_dataloaders), recipe, self.seed,
                repr(sorted(self.trainer_kwargs.items())))

    def evaluate(self, model: ExecutableModel) -> Any:
        members = model.members() if isinstance(model, MergedModel) else [model]
        modules = []
        for member in members:
            if self.seed is not None:
                torch.manual_seed(self.seed)
            modules.append(member.build())
        return self._train(modules, merged=isinstance(model, MergedModel))

    def evaluate_module(self, module: nn.Module) -> Any:
        if self.seed is not None:
            torch.manual_seed(self.seed)
        return self._train([module], merged=False)

    def _train(self, modules: list[nn.Module], merged: bool) -> None:
        recipe = copy.deepcopy(self.module)
        recipe.set_models(modules)
        reporter = _MultiReporter(recipe.metric_name, len(modules), merged)
        kwargs = {**TRAINER_DEFAULTS, **self.trainer_kwargs}
        user_callbacks = kwargs.pop("callbacks", None) or []
        if not isinstance(user_callbacks, (list, tuple)):
            user_callbacks = [user_callbacks]
        if self.seed is not None:
            pl.seed_everything(self.seed, verbose=False)
        with quiet_lightning():
            trainer = pl.Trainer(callbacks=[*copy.deepcopy(list(user_callbacks)), reporter, _InterruptGuard()], **kwargs)
        fit(trainer, recipe, train_dataloaders=self.train_dataloaders, val_dataloaders=self.val_dataloaders)
        if reporter.last is None:
            raise EvaluatorError(
                "training finished without a validation epoch, so there is no metric to report; check "
                "limit_val_batches / check_val_every_n_epoch and that val_dataloaders is not empty"
            )
        report_final_result(reporter.last)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({type(self.module).__name__}, {self.trainer_kwargs!r})"


class Classification(MultiModelLightning):
    """Train classifiers with cross-entropy, scored by validation accuracy (``val_acc``), several per trial."""

    def __init__(
        self,
        criterion: type[nn.Module] = nn.CrossEntropyLoss,
        learning_rate: float = 1e-3,
        weight_decay: float = 0.0,
        optimizer: type[torch.optim.Optimizer] = torch.optim.Adam,
        train_dataloaders: Any = None,
        val_dataloaders: Any = None,
        num_classes: int | None = None,
        seed: int | None = None,
        **trainer_kwargs: Any,
    ) -> None:
        module = MultiModelSupervisedLearningModule(
            criterion(), {"acc": accuracy}, learning_rate=learning_rate, weight_decay=weight_decay,
            optimizer=optimizer, metric_name="val_acc", metric_mode="maximize", num_outputs=num_classes,
        )
        super().__init__(module, train_dataloaders, val_dataloaders, seed=seed, **trainer_kwargs)


class Regression(MultiModelLightning):
    """Train regressors with mean squared error, scored by validation MSE (``val_mse``; use ``optimize_mode="minimize"``)."""

    def __init__(
        self,
        criterion: type[nn.Module] = nn.MSELoss,
        learning_rate: float = 1e-3,
        weight_decay: float = 0.0,
        optimizer: type[torch.optim.Optimizer] = torch.optim.Adam,
        train_dataloaders: Any = None,
        val_dataloaders: Any = None,
        seed: int | None = None,
        **trainer_kwargs: Any,
    ) -> None:
        module = MultiModelSupervisedLearningModule(
            criterion(), {"mse": mse}, learning_rate=learning_rate, weight_decay=weight_decay,
            optimizer=optimizer, metric_name="val_mse", metric_mode="minimize",
        )
        super().__init__(module, train_dataloaders, val_dataloaders, seed=seed, **trainer_kwargs)
