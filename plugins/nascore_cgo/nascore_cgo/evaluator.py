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

Placement: by default (``placement="pack"``) every model of a merged trial trains on the trial's
device. With ``placement="spread"`` (an evaluator argument, or the ``cgo`` engine's
``engine_options.placement``) model ``i`` trains on device ``i % n`` of the trial's ``n`` devices
(the GPUs its training-service seat sees: set ``trial_gpu_number = n``); each batch is loaded once
and copied once to each other device in use. See :mod:`nascore_cgo.placement`.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn as nn
from pytorch_lightning.utilities import move_data_to_device

from nascore.errors import EvaluatorError
from nascore.evaluator import Evaluator
from nascore.evaluators.lightning import (
    METRIC_MODES,
    TRAINER_DEFAULTS,
    InterruptGuard,
    accuracy,
    check_dataloaders,
    check_metric_mode,
    check_num_classes,
    check_optimization,
    check_trainer_arguments,
    fit,
    make_optimizer,
    mse,
    quiet_lightning,
)
from nascore.format import ExecutableModel
from nascore.trial import report_final_result, report_intermediate_result
from nascore_cgo.placement import assign_devices, check_placement, distinct_devices, trial_devices
from nascore_cgo.plan import MergedModel

__all__ = [
    "MultiModelLightningModule",
    "MultiModelSupervisedLearningModule",
    "MultiModelLightning",
    "Classification",
    "Regression",
]

_log = logging.getLogger(__name__)


class MultiModelLightningModule(pl.LightningModule):
    """Base of multi-model recipes: ``self.models`` (an ``nn.ModuleList``) trained together.

    Subclasses implement :meth:`training_step` / :meth:`validation_step` over all models and log
    each model's validation metrics as ``<metric>/<index>``; ``metric_name`` names the metric that
    scores a model and ``metric_mode`` whether larger (``"maximize"``) or smaller (``"minimize"``)
    is better (the default pair is ``val_loss``, minimized); the experiment follows it. A recipe
    that changes ``metric_name`` says its ``metric_mode`` too.

    Placement (see :mod:`nascore_cgo.placement`): Lightning first moves the whole recipe to the
    trial's main device; then :meth:`place_models` (called by :meth:`on_fit_start` and the other
    ``on_*_start`` hooks, and by :meth:`MultiModelSupervisedLearningModule.configure_optimizers`
    before it builds the optimizers) moves model ``i`` to :attr:`model_devices` ``[i]``. A step
    feeds model ``i`` the batch from :meth:`batches_on_devices` ``[model_devices[i]]``: one copy per
    distinct device, not per model. Subclasses that override those hooks call ``super()``.

    :param placement: ``"pack"`` (every model on the main device), ``"spread"`` (model ``i`` on
        device ``i % n``), or ``None``: the trial's setting (``engine_options.placement`` of the
        ``cgo`` engine), ``"pack"`` when it has none.
    :param devices: with ``"spread"``, the devices to spread over (main device first) instead of
        the trial's devices (its visible CUDA devices); e.g. ``["cuda:0", "cuda:1"]``.
    """

    metric_name: str = "val_loss"
    metric_mode: str | None = "minimize"

    def __init__(self, *, placement: str | None = None, devices: Sequence[torch.device | str | int] | None = None) -> None:
        super().__init__()
        self.models = nn.ModuleList()
        self.placement = None if placement is None else check_placement(placement, "placement", EvaluatorError)
        if devices is not None:
            if placement != "spread":
                raise EvaluatorError(
                    f"devices={list(devices)!r} says where placement='spread' puts the models, but placement is "
                    f"{placement!r}; pass placement='spread' too, or leave devices out"
                )
            try:
                devices = [torch.device(d) for d in devices]
            except (RuntimeError, TypeError) as exc:
                raise EvaluatorError(f"devices must be torch devices such as ['cuda:0', 'cuda:1']: {exc}") from None
            if not devices:
                raise EvaluatorError("devices is empty; give the devices to spread the models over, or leave it out")
        self.devices: list[torch.device] | None = devices
        #: how many times a batch was copied from the main device to another device (spread only)
        self.batch_copies = 0
        self._model_devices: list[torch.device] | None = None

    def set_models(self, models: Sequence[nn.Module]) -> None:
        """Give the recipe the models to train (called once per evaluation, on a fresh copy)."""
        self.models = nn.ModuleList(models)
        self._model_devices = None

    # --- placement ---------------------------------------------------------------------------

    @property
    def model_devices(self) -> list[torch.device]:
        """The device of each model: the main device for all until :meth:`place_models` spreads them."""
        if self._model_devices is None or len(self._model_devices) != len(self.models):
            return [self.device] * len(self.models)
        return list(self._model_devices)

    def place_models(self) -> list[torch.device]:
        """Move every model to its device (idempotent); returns :attr:`model_devices`.

        ``pack`` moves nothing (the models are where Lightning put the recipe). ``spread`` moves the
        models, then each optimizer's state to its parameters' devices (Lightning moved it to the
        main device).
        """
        placement = self.placement or "pack"
        if placement == "pack" or len(self.models) < 2:
            self._model_devices = None
            return self.model_devices
        trainer = self._trainer
        if trainer is not None and trainer.num_devices > 1:
            raise EvaluatorError(
                f"placement='spread' places the models of one trial on its devices within one process, but the "
                f"Trainer runs on {trainer.num_devices} devices (data parallel); leave the Trainer's devices "
                "argument out (the CGO evaluators then use devices=1), or use placement='pack'"
            )
        devices = self.devices if self.devices is not None else trial_devices(self.device)
        if self.devices is None and len(devices) == 1:
            _info_once(
                f"placement='spread': the trial has one device ({devices[0]}), so its models are packed onto it; "
                "give merged trials several GPUs with the training service's trial_gpu_number"
            )
        mapping = assign_devices(len(self.models), devices, "spread")
        for model, device in zip(self.models, mapping):
            model.to(device)
        self._model_devices = mapping
        if trainer is not None:
            for optimizer in trainer.optimizers:
                _optimizer_state_to_params(optimizer)
        return list(mapping)

    def batches_on_devices(self, batch: Any) -> dict[torch.device, Any]:
        """``batch`` (on the main device) on every device a model uses: one copy per distinct device."""
        main = self.device
        batches: dict[torch.device, Any] = {}
        for device in distinct_devices(self.model_devices):
            if device == main:
                batches[device] = batch
            else:
                batches[device] = _copy_to(batch, device)
                self.batch_copies += 1
        return batches

    def to_main_device(self, value: Any) -> Any:
        """``value`` (tensors in any structure) on the main device, e.g. a metric before ``self.log``."""
        return move_data_to_device(value, self.device)

    def on_fit_start(self) -> None:
        self.place_models()

    def on_validation_start(self) -> None:
        self.place_models()

    def on_test_start(self) -> None:
        self.place_models()

    def on_predict_start(self) -> None:
        self.place_models()

    def forward(self, x: Any) -> list[Any]:
        """Every model's output for the same input (each on the main device): the batch is fed to all of them."""
        inputs = self.batches_on_devices(x)
        devices = self.model_devices
        return [self.to_main_device(model(inputs[device])) for model, device in zip(self.models, devices)]


class MultiModelSupervisedLearningModule(MultiModelLightningModule):
    """``(x, y)`` batches, one criterion and metrics ``fn(y_hat, y)``, one optimizer per model.

    Losses and metrics are computed on each model's device and logged from the main device.
    ``metric_mode`` is the direction of ``metric_name`` (``"maximize"`` / ``"minimize"``), ``None``
    when not known: the experiment then follows its own ``optimize_mode``.
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
        metric_mode: str | None = None,
        num_outputs: int | None = None,
        placement: str | None = None,
        devices: Sequence[torch.device | str | int] | None = None,
    ) -> None:
        super().__init__(placement=placement, devices=devices)
        self.automatic_optimization = False  # one optimizer per model, each stepped on its own loss
        self.criterion = criterion
        self.metrics = dict(metrics)
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.optimizer_class = optimizer
        self.metric_name = metric_name
        self.metric_mode = metric_mode
        self.num_outputs = num_outputs
        self._criteria: dict[torch.device, nn.Module] = {}  # copies of a stateful criterion on other devices

    def signature(self) -> tuple[Any, ...]:
        """What two recipes must share for their models to be trained together."""
        return (
            type(self).__qualname__, type(self.criterion).__qualname__, tuple(sorted(self.metrics)),
            self.learning_rate, self.weight_decay, self.optimizer_class.__qualname__, self.metric_name, self.num_outputs,
            self.placement, None if self.devices is None else tuple(str(d) for d in self.devices),
        )

    def _check_output(self, index: int, y_hat: torch.Tensor) -> None:
        if self.num_outputs is not None and y_hat.dim() >= 2 and y_hat.shape[-1] != self.num_outputs:
            raise EvaluatorError(
                f"model {index} of the trial outputs {y_hat.shape[-1]} values per sample but the evaluator was "
                f"given num_classes={self.num_outputs}; make the last layer output {self.num_outputs} values"
            )

    def criterion_on(self, device: torch.device) -> nn.Module:
        """The criterion on ``device``: itself when it holds no tensors or is there, else a cached copy."""
        tensors = [*self.criterion.parameters(), *self.criterion.buffers()]
        if not tensors or all(t.device == device for t in tensors):
            return self.criterion
        copy_ = self._criteria.get(device)
        if copy_ is None:
            copy_ = self._criteria[device] = copy.deepcopy(self.criterion).to(device)
        return copy_

    def _outputs(self, batch: Any) -> Iterator[tuple[int, torch.Tensor, torch.Tensor, nn.Module]]:
        """``(index, y_hat, y, criterion)`` for each model, all on the model's device."""
        inputs = self.batches_on_devices(batch)
        for index, (model, device) in enumerate(zip(self.models, self.model_devices)):
            x, y = inputs[device]
            y_hat = model(x)
            self._check_output(index, y_hat)
            yield index, y_hat, y, self.criterion_on(device)

    def training_step(self, batch: Any, batch_idx: int) -> None:
        optimizers = self.optimizers()
        optimizers = optimizers if isinstance(optimizers, list) else [optimizers]
        for (_, y_hat, y, criterion), optimizer in zip(self._outputs(batch), optimizers):
            loss = criterion(y_hat, y)
            optimizer.zero_grad()
            self.manual_backward(loss)
            optimizer.step()

    def _evaluation_step(self, batch: Any, prefix: str) -> None:
        size = len(batch[1])
        for index, y_hat, y, criterion in self._outputs(batch):
            values = {f"{prefix}_loss": criterion(y_hat, y), **{f"{prefix}_{name}": fn(y_hat, y) for name, fn in self.metrics.items()}}
            for name, value in values.items():
                self.log(f"{name}/{index}", self.to_main_device(value), batch_size=size, on_epoch=True)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._evaluation_step(batch, "val")

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._evaluation_step(batch, "test")

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        self.place_models()  # the optimizers are built on the parameters where they will train
        return [
            make_optimizer(self.optimizer_class, model.parameters(), self.learning_rate, self.weight_decay)
            for model in self.models
        ]


def _copy_to(batch: Any, device: torch.device) -> Any:
    return move_data_to_device(batch, device)


def _optimizer_state_to_params(optimizer: Any) -> None:
    """Move an optimizer's per-parameter state to its parameter's device (``step`` counters stay put)."""
    optimizer = getattr(optimizer, "optimizer", optimizer)  # a LightningOptimizer wraps the torch one
    for group in optimizer.param_groups:
        for param in group["params"]:
            state = optimizer.state.get(param)
            if not isinstance(state, dict):
                continue
            for key, value in state.items():
                if key != "step" and isinstance(value, torch.Tensor) and value.device != param.device:
                    state[key] = value.to(param.device)


_LOGGED_ONCE: set[str] = set()


def _info_once(message: str) -> None:
    if message not in _LOGGED_ONCE:
        _LOGGED_ONCE.add(message)
        _log.info(message)


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
    :param placement: where the models of a merged trial train: ``"pack"`` (all on the trial's
        device) or ``"spread"`` (model ``i`` on device ``i % n`` of the trial's ``n`` devices; set
        the training service's ``trial_gpu_number`` to ``n``). Default: the recipe's ``placement``,
        else the ``cgo`` engine's ``engine_options.placement``, else ``"pack"``. A merged trial's
        Trainer gets ``devices=1`` unless told otherwise: one process trains its models (on one
        device, or spread), not data-parallel copies.
    :param trainer_kwargs: keyword arguments of ``pytorch_lightning.Trainer``.

    The metric's direction is the recipe's ``metric_mode`` (:attr:`optimize_mode`); :meth:`check`
    finds the setup mistakes that would fail every trial, as the core Lightning evaluators do.
    """

    def __init__(
        self,
        lightning_module: MultiModelLightningModule,
        train_dataloaders: Any = None,
        val_dataloaders: Any = None,
        seed: int | None = None,
        placement: str | None = None,
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
        if placement is not None:
            placement = check_placement(placement, "placement", EvaluatorError)
        self.module = lightning_module
        #: the placement chosen for this evaluator (its own argument, else its recipe's); None: the trial's
        self.placement: str | None = placement if placement is not None else lightning_module.placement
        self.train_dataloaders = train_dataloaders
        self.val_dataloaders = val_dataloaders
        self.seed = seed
        self.trainer_kwargs = trainer_kwargs

    @property
    def optimize_mode(self) -> str | None:
        """The recipe's ``metric_mode``: ``"maximize"`` or ``"minimize"`` (``None`` if it says neither)."""
        mode = self.module.metric_mode
        return mode if mode in METRIC_MODES else None

    def check(self) -> None:
        """Raise :class:`~nascore.errors.EvaluatorError` for a setup mistake that would fail every trial.

        The checks of :meth:`nascore.evaluators.Lightning.check` (Trainer arguments, dataloaders, the
        recipe's ``metric_mode`` and optimizer settings), plus ``seed`` (an integer or ``None``).
        """
        owner = type(self).__name__
        check_trainer_arguments(owner, self.trainer_kwargs)
        check_dataloaders(owner, self.train_dataloaders, self.val_dataloaders)
        check_metric_mode(owner, self.module.metric_mode)
        if isinstance(self.module, MultiModelSupervisedLearningModule):
            check_optimization(owner, self.module.learning_rate, self.module.weight_decay, self.module.optimizer_class)
            check_num_classes(owner, self.module.num_outputs)
        if self.seed is not None and (not isinstance(self.seed, int) or isinstance(self.seed, bool)):
            raise EvaluatorError(f"{owner}: seed must be an integer (or None: no seeding), got {self.seed!r}")

    def merge_key(self) -> tuple[Any, ...]:
        """Models whose evaluators have equal keys read the same data the same way and may share a trial."""
        signature = getattr(self.module, "signature", None)
        recipe = signature() if callable(signature) else id(self.module)
        return (id(self.train_dataloaders), id(self.val_dataloaders), recipe, self.seed, self.placement,
                repr(sorted(self.trainer_kwargs.items())))

    def evaluate(self, model: ExecutableModel) -> Any:
        members = model.members() if isinstance(model, MergedModel) else [model]
        modules = []
        for member in members:
            if self.seed is not None:
                torch.manual_seed(self.seed)
            modules.append(member.build())
        merged = isinstance(model, MergedModel)
        return self._train(modules, merged=merged, placement=getattr(model, "placement", None) if merged else None)

    def evaluate_module(self, module: nn.Module) -> Any:
        if self.seed is not None:
            torch.manual_seed(self.seed)
        return self._train([module], merged=False)

    def _train(self, modules: list[nn.Module], merged: bool, placement: str | None = None) -> None:
        recipe = copy.deepcopy(self.module)
        recipe.set_models(modules)
        recipe.placement = self.placement or placement or "pack"
        reporter = _MultiReporter(recipe.metric_name, len(modules), merged)
        kwargs = {**TRAINER_DEFAULTS, **self.trainer_kwargs}
        if merged and len(modules) > 1 and "devices" not in kwargs and "strategy" not in kwargs:
            # One process drives the trial's device(s): pack uses the first, spread all of them. With
            # several visible GPUs Lightning's default would start data-parallel training instead.
            kwargs["devices"] = 1
        user_callbacks = kwargs.pop("callbacks", None) or []
        if not isinstance(user_callbacks, (list, tuple)):
            user_callbacks = [user_callbacks]
        if self.seed is not None:
            pl.seed_everything(self.seed, verbose=False)
        with quiet_lightning():
            trainer = pl.Trainer(callbacks=[*copy.deepcopy(list(user_callbacks)), reporter, InterruptGuard()], **kwargs)
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
    """Train classifiers with cross-entropy, scored by validation accuracy (``val_acc``), several per trial.

    ``placement="pack"`` / ``"spread"`` says where a merged trial's models train (see :class:`MultiModelLightning`).
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
        seed: int | None = None,
        placement: str | None = None,
        **trainer_kwargs: Any,
    ) -> None:
        module = MultiModelSupervisedLearningModule(
            criterion(), {"acc": accuracy}, learning_rate=learning_rate, weight_decay=weight_decay,
            optimizer=optimizer, metric_name="val_acc", metric_mode="maximize", num_outputs=num_classes,
            placement=placement,
        )
        super().__init__(module, train_dataloaders, val_dataloaders, seed=seed, **trainer_kwargs)


class Regression(MultiModelLightning):
    """Train regressors with mean squared error, scored by validation MSE (``val_mse``; smaller is better).

    Its :attr:`~MultiModelLightning.optimize_mode` is ``"minimize"``, so the experiment minimizes the
    metric without being told. ``placement="pack"`` / ``"spread"`` as for :class:`Classification`.
    """

    def __init__(
        self,
        criterion: type[nn.Module] = nn.MSELoss,
        learning_rate: float = 1e-3,
        weight_decay: float = 0.0,
        optimizer: type[torch.optim.Optimizer] = torch.optim.Adam,
        train_dataloaders: Any = None,
        val_dataloaders: Any = None,
        seed: int | None = None,
        placement: str | None = None,
        **trainer_kwargs: Any,
    ) -> None:
        module = MultiModelSupervisedLearningModule(
            criterion(), {"mse": mse}, learning_rate=learning_rate, weight_decay=weight_decay,
            optimizer=optimizer, metric_name="val_mse", metric_mode="minimize", placement=placement,
        )
        super().__init__(module, train_dataloaders, val_dataloaders, seed=seed, **trainer_kwargs)
