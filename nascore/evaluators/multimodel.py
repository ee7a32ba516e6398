"""Training several models in one trial: the multi-model Lightning recipes behind ``Evaluator.evaluate_group``.

:class:`MultiModelLightningModule` holds the models in ``self.models`` and trains them with manual
optimization, one optimizer per model, so each model's updates are exactly those it would get
alone; every batch is loaded once for all of them. :class:`MultiModelSupervisedLearningModule` is
the ``(x, y)`` recipe: the core's :class:`~nascore.evaluators.Classification` and
:class:`~nascore.evaluators.Regression` train a :class:`~nascore.group.ModelGroup` with it, so the
same evaluator works alone and under the ``cgo`` engine. Per-model metrics are logged as
``val_<name>/<index>`` and reported for each model's own trial.

Placement: by default (``"pack"``) every model trains on the trial's device. With ``"spread"`` (an
evaluator argument, or the ``cgo`` engine's ``engine_options.placement``) model ``i`` trains on
device ``i % n`` of the trial's ``n`` devices; each batch is loaded once and copied once to each
other device in use. See :mod:`nascore.evaluators.placement`.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
import torch.nn as nn

from nascore.errors import EvaluatorError
from nascore.evaluators.lightning import pl  # raises MissingDependencyError without the extra
from nascore.evaluators.optimizers import make_optimizer
from nascore.evaluators.placement import assign_devices, check_placement, distinct_devices, trial_devices
from nascore.trial import report_intermediate_result

__all__ = [
    "GroupReporter",
    "MultiModelLightningModule",
    "MultiModelSupervisedLearningModule",
    "model_metrics",
]

_log = logging.getLogger(__name__)


class MultiModelLightningModule(pl.LightningModule):
    """Base of multi-model recipes: ``self.models`` (an ``nn.ModuleList``) trained together.

    Subclasses implement :meth:`training_step` / :meth:`validation_step` over all models and log
    each model's validation metrics as ``<metric>/<index>``; ``metric_name`` names the metric that
    scores a model and ``metric_mode`` whether larger (``"maximize"``) or smaller (``"minimize"``)
    is better (the default pair is ``val_loss``, minimized); the experiment follows it. A recipe
    that changes ``metric_name`` says its ``metric_mode`` too.

    Placement (see :mod:`nascore.evaluators.placement`): Lightning first moves the whole recipe to the
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
        self.combined: nn.Module | None = None
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

    def set_models(self, models: Sequence[nn.Module], combined: nn.Module | None = None) -> None:
        """Give the recipe the models to train (called once per evaluation, on a fresh copy).

        ``combined``: one module computing every model from the same input (its ``forward`` returns
        the tuple of their outputs; ``models`` are its submodules), as a group's combined model
        builds it (:class:`nascore.group.ModelGroup`). Steps then run it once per batch instead of
        each model; it keeps every model on the main device (placement ``pack``).
        """
        self.models = nn.ModuleList(models)
        self.combined = combined
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
        return pl.utilities.move_data_to_device(value, self.device)

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
        if self.combined is not None:
            return list(self.combined(x))
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
        if self.combined is not None:  # one generated module computes every model from the batch, read once
            x, y = batch
            for index, y_hat in enumerate(self.combined(x)):
                self._check_output(index, y_hat)
                yield index, y_hat, y, self.criterion
            return
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
    return pl.utilities.move_data_to_device(batch, device)


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


class GroupReporter(pl.Callback):
    """Reports every validation epoch: each model's record for its own trial (``members``), or the one model's."""

    def __init__(self, metric_name: str, count: int, members: bool = True) -> None:
        self.metric_name = metric_name
        self.count = count
        self.members = members
        self.last: list[dict[str, float]] | None = None

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        self.last = model_metrics(trainer, self.metric_name, self.count)
        for index, record in enumerate(self.last):
            report_intermediate_result(record, member=index if self.members else None)
