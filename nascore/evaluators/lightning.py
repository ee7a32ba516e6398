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

Arguments may hold decisions, searched with the architecture (the evaluators are
:class:`~nascore.evaluator.MutableEvaluator` objects)::

    Classification(learning_rate=nascore.choice("lr", [1e-2, 1e-3]), optimizer=nascore.choice("opt", [Adam, SGD]),
                   max_epochs=nascore.choice("epochs", [2, 5]), train_dataloaders=train, val_dataloaders=val)

Any argument may: the recipe's settings (``learning_rate``, ``weight_decay``, ``optimizer``,
``criterion``), ``seed`` and every Trainer argument, also inside lists and dicts, and the public
attributes (and saved hyperparameters) of a recipe given to :class:`Lightning`. Each trial trains
with the evaluator frozen with its sample. A DataLoader takes no decision itself (it checks its
``batch_size`` when it is made): search a batch size with a :class:`~nascore.evaluators.FunctionalEvaluator`
that builds its loaders, or give the evaluator a :class:`nascore.space.Mutable` whose ``freeze`` returns
the DataLoader for the sample.

Every evaluator knows which way its metric is better (:attr:`Lightning.optimize_mode`:
``Classification`` maximizes ``val_acc``, ``Regression`` minimizes ``val_mse``, a custom recipe says
so with ``metric_mode``), and the experiment follows it. :meth:`Lightning.check` finds setup
mistakes before the first trial: a misspelled Trainer argument, data that is not a DataLoader, a
learning rate that is not positive, an optimizer that is not an optimizer class. The ``check_*``
functions here are shared with other Lightning-based evaluators (the CGO plugin's).

Importing this module without Lightning installed raises
:class:`~nascore.errors.MissingDependencyError` naming the ``pip install`` line.
"""

from __future__ import annotations

import contextlib
import copy
import difflib
import inspect
import logging
import math
import signal
import threading
import warnings
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, IterableDataset

from nascore.errors import EvaluatorError, MissingDependencyError
from nascore.evaluator import MutableEvaluator
from nascore.evaluators.optimizers import make_optimizer
from nascore.space.mutable import (
    LabelledMutable,
    Sample,
    collect_mutables,
    contains_mutable,
    freeze_structure,
    sample_key,
)
from nascore.trial import report_final_result, report_intermediate_result

if TYPE_CHECKING:
    from nascore.evaluators.multimodel import MultiModelLightningModule
    from nascore.format import ExecutableModel
    from nascore.group import ModelGroup

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


class _NullProfiler(pl.profilers.PassThroughProfiler):
    """Lightning's default profiler (it records nothing), with a ``profile`` that costs next to nothing.

    The Trainer wraps each hook call in ``profiler.profile(name)``: about 80 calls a training step of a
    one-shot strategy, 40 of a plain one. The base class's is a generator-based context manager (about
    1 us a call); this returns one shared, stateless null context (about 0.2 us), about 1% of a small
    supernet's step. ``create_trainer`` uses it when the evaluator names no profiler.
    """

    _null: contextlib.nullcontext[None] = contextlib.nullcontext()

    def profile(self, action_name: str) -> contextlib.nullcontext[None]:  # type: ignore[override]
        return self._null


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
    reward of ENAS. ``metric_mode`` says whether larger (``"maximize"``) or smaller
    (``"minimize"``) is better; the experiment then follows it. ``None`` (the default) leaves the
    direction to ``ExperimentConfig.optimize_mode`` (and one-shot strategies maximize).
    """

    metric_name: str | None = None
    metric_mode: str | None = None

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
    ``self.log`` call costs about as much as a small model's step). ``metric_mode`` is the direction
    of ``metric_name`` (``"maximize"`` / ``"minimize"``), ``None`` when not known.
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


# --- evaluators -----------------------------------------------------------------------------------


class Lightning(MutableEvaluator):
    """Evaluate with a Lightning recipe: ``Lightning(module, train_dataloaders=..., val_dataloaders=..., **trainer_kwargs)``.

    :param lightning_module: the recipe (a :class:`LightningModule` without a model); each
        evaluation gets a deep copy.
    :param train_dataloaders: the training data (any iterable Lightning accepts).
    :param val_dataloaders: the validation data that scores a model (required: the trial's metric
        comes from it).
    :param seed: when given, every model is initialised after ``torch.manual_seed(seed)`` and its
        training (data order, dropout) is seeded with it too, so a model scores the same whether it
        trains alone or with others in one trial (engine ``cgo``). Without it, models start from their
        trials' seeds (``ExperimentConfig.seed``) and the training of a group follows its first model's.
    :param placement: where the models of a group trial train: ``"pack"`` (all on the trial's device)
        or ``"spread"`` (model ``i`` on device ``i % n`` of the trial's ``n`` GPUs); default: the
        engine's ``engine_options.placement``, else ``"pack"``. See :mod:`nascore.evaluators.placement`.
    :param trainer_kwargs: keyword arguments of ``pytorch_lightning.Trainer`` (``max_epochs``,
        ``accelerator``, ``callbacks``, ...). Unless given, Lightning's logger, checkpointing,
        progress bar and model summary are off.

    The metric's direction is the recipe's ``metric_mode`` (:attr:`optimize_mode`); :meth:`check`
    (called by the experiment before the first trial) finds the mistakes that would otherwise fail
    every trial.

    Arguments may hold decisions (``nascore.choice``): see :class:`~nascore.evaluator.MutableEvaluator`;
    the public attributes and saved hyperparameters of the recipe may too. Such an evaluator is the
    template of the evaluators trials train with (:meth:`~nascore.evaluator.MutableEvaluator.freeze`).

    Several models in one trial (:meth:`evaluate_group`, used by the ``cgo`` engine): a
    :class:`SupervisedLearningModule` recipe (that of :class:`Classification` and :class:`Regression`)
    trains a group with one optimizer per model and each batch loaded once; so does a
    :class:`~nascore.evaluators.multimodel.MultiModelLightningModule` recipe, which also trains
    single models. Other recipes train one model per trial (:meth:`merge_key` is ``None``).
    """

    def __init__(
        self,
        lightning_module: LightningModule | MultiModelLightningModule,
        train_dataloaders: Any = None,
        val_dataloaders: Any = None,
        *,
        seed: int | None = None,
        placement: str | None = None,
        **trainer_kwargs: Any,
    ) -> None:
        from nascore.evaluators.multimodel import MultiModelLightningModule
        from nascore.evaluators.placement import check_placement

        if not isinstance(lightning_module, (LightningModule, MultiModelLightningModule)):
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
        if placement is not None:
            placement = check_placement(placement, "placement", EvaluatorError)
        self.module = lightning_module
        self.train_dataloaders = train_dataloaders
        self.val_dataloaders = val_dataloaders
        self.seed = seed
        #: where a group's models train (this argument, else a multi-model recipe's own); None: the engine's
        self.placement: str | None = placement if placement is not None else getattr(lightning_module, "placement", None)
        self.trainer_kwargs = trainer_kwargs

    @classmethod
    def argument_mutables(cls, value: Any) -> Iterator[LabelledMutable]:
        """The decisions in one argument; in a recipe, those in its public attributes and saved hyperparameters."""
        if isinstance(value, pl.LightningModule):
            for attribute in _recipe_settings(value).values():
                yield from collect_mutables(attribute)
        else:
            yield from super().argument_mutables(value)

    @classmethod
    def freeze_argument(cls, value: Any, sample: Sample) -> Any:
        """One argument with its decisions set from ``sample``; a recipe holding some is copied first."""
        if not isinstance(value, pl.LightningModule):
            return super().freeze_argument(value, sample)
        settings = _recipe_settings(value)
        if not any(contains_mutable(attribute) for attribute in settings.values()):
            return value
        recipe = copy.deepcopy(value)
        for name, attribute in settings.items():
            if not contains_mutable(attribute):
                continue
            if isinstance(name, tuple):  # a saved hyperparameter: (its dict's attribute, its key)
                hparams = getattr(recipe, name[0])
                hparams[name[1]] = freeze_structure(attribute, sample)
            else:
                setattr(recipe, name, freeze_structure(attribute, sample))
        return recipe

    @property
    def metric_name(self) -> str | None:
        """The validation metric that scores a model (``None``: the only one logged)."""
        return self.module.metric_name

    @property
    def metric_mode(self) -> str:
        """How one-shot strategies rank the metric: the recipe's ``metric_mode``, ``"maximize"`` if it has none."""
        return self.module.metric_mode or "maximize"

    @property
    def optimize_mode(self) -> str | None:
        """The recipe's ``metric_mode``: ``"maximize"``, ``"minimize"``, or ``None`` when the recipe does not say."""
        mode = self.module.metric_mode
        return mode if mode in METRIC_MODES else None

    def check(self) -> None:
        """Raise :class:`~nascore.errors.EvaluatorError` for a setup mistake that would fail every trial.

        Checks the Trainer arguments against the installed ``pytorch_lightning.Trainer`` (names, and
        settings under which no validation epoch runs), the dataloaders, and the recipe (its
        ``metric_mode``; the learning rate, weight decay and optimizer of a
        :class:`SupervisedLearningModule`). Builds no Trainer and reads no data.
        """
        owner = type(self).__name__
        check_trainer_arguments(owner, self.trainer_kwargs)
        check_dataloaders(owner, self.train_dataloaders, self.val_dataloaders)
        check_metric_mode(owner, self.module.metric_mode)
        if isinstance(self.module, SupervisedLearningModule) or hasattr(self.module, "optimizer_class"):
            check_optimization(owner, self.module.learning_rate, self.module.weight_decay, self.module.optimizer_class)
            check_num_classes(owner, self.module.num_outputs)
        if self.seed is not None and (not isinstance(self.seed, int) or isinstance(self.seed, bool)):
            raise EvaluatorError(f"{owner}: seed must be an integer (or None: no seeding), got {self.seed!r}")

    def create_module(self) -> LightningModule:
        """A fresh copy of the recipe, without a model."""
        return copy.deepcopy(self.module)

    def create_trainer(self, callbacks: Sequence[pl.Callback] = (), **overrides: Any) -> pl.Trainer:
        """A new Trainer from the evaluator's arguments, ``overrides`` and extra ``callbacks``.

        The user's callbacks are deep-copied, so state (early stopping, ...) never leaks between trials.
        Without a ``profiler`` argument the Trainer gets a no-op profiler, as Lightning's default, but
        cheaper per hook call.
        """
        kwargs = {**TRAINER_DEFAULTS, **self.trainer_kwargs, **overrides}
        if kwargs.get("profiler") is None:  # Lightning's default, without its cost per hook call
            kwargs["profiler"] = _NullProfiler()
        user_callbacks = kwargs.pop("callbacks", None) or []
        if not isinstance(user_callbacks, (list, tuple)):
            user_callbacks = [user_callbacks]
        all_callbacks = [*copy.deepcopy(list(user_callbacks)), *callbacks]
        with quiet_lightning():
            return pl.Trainer(callbacks=all_callbacks, **kwargs)

    def evaluate(self, model: ExecutableModel) -> Any:
        """Build ``model`` (after ``torch.manual_seed(seed)`` with a ``seed``) and train it; a group goes to :meth:`evaluate_group`."""
        from nascore.evaluators.multimodel import MultiModelLightningModule
        from nascore.group import ModelGroup

        self.check_frozen()
        if isinstance(model, ModelGroup):
            return self.evaluate_group(model)
        if isinstance(self.module, MultiModelLightningModule):  # a group recipe trains one model as a group of one
            return self._train_group([self._build(model)], placement=None, members=False)
        return self.evaluate_module(self._build(model))

    def _build(self, model: ExecutableModel) -> nn.Module:
        if self.seed is not None:
            torch.manual_seed(self.seed)
        return model.build()

    def evaluate_module(self, module: nn.Module) -> Any:
        """Train ``module``; report the validation metrics of each epoch, then the last ones as final."""
        self.check_frozen()
        recipe = self.create_module()
        recipe.set_model(module)
        reporter = _TrialReporter(self.metric_name)
        trainer = self.create_trainer(callbacks=[reporter])
        if self.seed is not None:
            pl.seed_everything(self.seed, verbose=False)
        fit(trainer, recipe, train_dataloaders=self.train_dataloaders, val_dataloaders=self.val_dataloaders)
        if reporter.last is None:
            raise EvaluatorError(_NO_VALIDATION)
        report_final_result(reporter.last)
        return None

    # --- several models in one trial ------------------------------------------------------------

    def group_recipe(self) -> MultiModelLightningModule | None:
        """A fresh multi-model recipe equivalent to this evaluator's, or ``None`` when it cannot train groups."""
        from nascore.evaluators.multimodel import (
            MultiModelLightningModule,
            MultiModelSupervisedLearningModule,
        )

        if isinstance(self.module, MultiModelLightningModule):
            return copy.deepcopy(self.module)
        if type(self.module) is SupervisedLearningModule:  # a subclass may train differently: not merged
            recipe = copy.deepcopy(self.module)
            return MultiModelSupervisedLearningModule(
                recipe.criterion, recipe.metrics, learning_rate=recipe.learning_rate, weight_decay=recipe.weight_decay,
                optimizer=recipe.optimizer_class, metric_name=recipe.metric_name, metric_mode=recipe.metric_mode,
                num_outputs=recipe.num_outputs,
            )
        return None

    def merge_key(self) -> Hashable | None:
        """Evaluations with equal keys read the same data the same way and may share a trial (``None``: never).

        An evaluator frozen from one with decisions adds its values: trials whose evaluators were
        frozen with different values (learning rates, epochs, ...) are never merged.
        """
        recipe = self.group_recipe()
        if recipe is None:
            return None
        signature = getattr(recipe, "signature", None)
        key = (id(self.train_dataloaders), id(self.val_dataloaders), signature() if callable(signature) else id(self.module),
               self.seed, self.placement, repr(sorted(self.trainer_kwargs.items())))
        return key if not self.decisions else (*key, sample_key(self.decisions))

    def check_group(self, settings: Mapping[str, Any]) -> None:
        """The engine's ``placement`` and this evaluator's must not contradict each other."""
        wanted = settings.get("placement")
        if wanted is not None and self.placement is not None and wanted != self.placement:
            raise EvaluatorError(
                f"config.engine_options.placement is {wanted!r} but the evaluator was given placement="
                f"{self.placement!r}; set the placement in one of them only"
            )

    def evaluate_group(self, group: ModelGroup) -> Any:
        """Train the members of ``group`` together, each with its own optimizer; report each for its own trial."""
        self.check_frozen()
        modules = [self._build(member) for member in group.members]
        placement = self.placement or group.settings.get("placement") or "pack"
        combined = None
        if group.combined is not None and placement == "pack" and len(modules) > 1:
            combined = self._combine(group, modules)
        return self._train_group(modules, placement=placement, members=True, combined=combined)

    @staticmethod
    def _combine(group: ModelGroup, modules: list[nn.Module]) -> tuple[nn.Module, list[nn.Module]]:
        """The group's combined module, each member's weights (built from its own seed) loaded into it."""
        from nascore.group import combined_member

        module = group.combined.build()  # type: ignore[union-attr]
        parts = []
        for index, member in enumerate(modules):
            part = module.get_submodule(combined_member(index))
            part.load_state_dict(member.state_dict())
            parts.append(part)
        return module, parts

    def _train_group(
        self, modules: list[nn.Module], placement: str | None, members: bool,
        combined: tuple[nn.Module, list[nn.Module]] | None = None,
    ) -> None:
        from nascore.evaluators.multimodel import GroupReporter

        recipe = self.group_recipe()
        if recipe is None:
            raise EvaluatorError(
                f"{type(self).__name__} with the recipe {type(self.module).__name__} trains one model per trial; "
                "to train several in one trial, use a SupervisedLearningModule recipe (Classification, Regression) "
                "or a nascore.evaluators.multimodel.MultiModelLightningModule"
            )
        if combined is not None:
            recipe.set_models(combined[1], combined=combined[0])
        else:
            recipe.set_models(modules)
        recipe.placement = self.placement or placement or "pack"
        reporter = GroupReporter(recipe.metric_name, len(modules), members=members)
        overrides: dict[str, Any] = {}
        if len(modules) > 1 and "devices" not in self.trainer_kwargs and "strategy" not in self.trainer_kwargs:
            # One process drives the trial's device(s): pack uses the first, spread all of them. With
            # several visible GPUs Lightning's default would start data-parallel training instead.
            overrides["devices"] = 1
        trainer = self.create_trainer(callbacks=[reporter], **overrides)
        if self.seed is not None:
            pl.seed_everything(self.seed, verbose=False)
        fit(trainer, recipe, train_dataloaders=self.train_dataloaders, val_dataloaders=self.val_dataloaders)
        if reporter.last is None:
            raise EvaluatorError(_NO_VALIDATION)
        for index, record in enumerate(reporter.last):
            report_final_result(record, member=index if members else None)

    def __repr__(self) -> str:
        mutables = self.mutables()
        if mutables:
            return f"{type(self).__name__}({type(self.module).__name__}, decisions {sorted(mutables)})"
        decisions = f", {self.decisions!r}" if self.decisions else ""
        return f"{type(self).__name__}({type(self.module).__name__}, {self.trainer_kwargs!r}{decisions})"


def _recipe_settings(recipe: pl.LightningModule) -> dict[Any, Any]:
    """A recipe's public attributes (``{name: value}``) and saved hyperparameters (``{(dict, key): value}``)."""
    settings: dict[Any, Any] = {name: value for name, value in vars(recipe).items() if not name.startswith("_")}
    for holder in ("_hparams", "_hparams_initial"):
        hparams = recipe.__dict__.get(holder)
        if isinstance(hparams, Mapping):
            settings.update({(holder, key): value for key, value in hparams.items()})
    return settings


class Classification(Lightning):
    """Train a classifier with cross-entropy and score it by validation accuracy (``val_acc``).

    NNI-compatible arguments: ``criterion`` (a loss class), ``learning_rate``, ``weight_decay``,
    ``optimizer`` (an optimizer class), ``train_dataloaders``, ``val_dataloaders``, ``num_classes``
    (checked against the model's output), ``seed`` and ``placement`` (see :class:`Lightning`), and any
    ``Trainer`` keyword argument. Works alone and under the ``cgo`` engine (several models per trial).
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
        super().__init__(module, train_dataloaders, val_dataloaders, seed=seed, placement=placement, **trainer_kwargs)


class Regression(Lightning):
    """Train a regressor with mean squared error and score it by validation MSE (``val_mse``; smaller is better).

    Its :attr:`~Lightning.optimize_mode` is ``"minimize"``, so the experiment minimizes the metric
    without being told. Arguments as for :class:`Classification`.
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
        module = SupervisedLearningModule(
            criterion(),
            {"mse": mse},
            learning_rate=learning_rate,
            weight_decay=weight_decay,
            optimizer=optimizer,
            metric_name="val_mse",
            metric_mode="minimize",
        )
        super().__init__(module, train_dataloaders, val_dataloaders, seed=seed, placement=placement, **trainer_kwargs)


_NO_VALIDATION = (
    "training finished without a validation epoch, so there is no metric to report; check "
    "limit_val_batches / check_val_every_n_epoch in the Trainer arguments and that val_dataloaders is not empty"
)

# --- checks before the first trial ----------------------------------------------------------------

#: The directions a metric can have (``Evaluator.optimize_mode`` and a recipe's ``metric_mode``).
METRIC_MODES = ("maximize", "minimize")


def trainer_parameters() -> list[str] | None:
    """The keyword arguments the installed ``pytorch_lightning.Trainer`` takes; ``None`` if it takes any."""
    try:
        parameters = inspect.signature(pl.Trainer.__init__).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return None
    return [p.name for p in parameters if p.name != "self" and p.kind is not inspect.Parameter.VAR_POSITIONAL]


def check_trainer_arguments(owner: str, trainer_kwargs: Mapping[str, Any]) -> None:
    """Raise :class:`EvaluatorError` for Trainer arguments that would fail (or score nothing in) every trial.

    ``owner`` names the evaluator in the message. Unknown names are compared with the installed
    Trainer's signature (close names are suggested); user callbacks must be ``pl.Callback``
    instances; and settings under which no validation epoch runs (``max_epochs=0``,
    ``limit_val_batches=0``, ...) are refused, since a trial's metric comes from validation.
    """
    accepted = trainer_parameters()
    if accepted is not None:
        unknown = [name for name in trainer_kwargs if name not in accepted]
        if unknown:
            described = []
            for name in unknown:
                close = difflib.get_close_matches(name, accepted, n=1)
                described.append(f"{name!r}; did you mean {close[0]!r}?" if close else repr(name))
            noun = "argument" if len(unknown) == 1 else "arguments"
            raise EvaluatorError(
                f"{owner}: unknown Trainer {noun} {', '.join(described)} "
                f"(pytorch_lightning.Trainer accepts: {', '.join(accepted)})"
            )
    _check_callbacks(owner, trainer_kwargs.get("callbacks"))
    reason = _no_validation_reason(trainer_kwargs)
    if reason is not None:
        raise EvaluatorError(
            f"{owner}: {reason}, so no validation epoch would run and no trial would have a metric to report; "
            "a trial is scored on val_dataloaders at the end of each validation epoch"
        )


def _check_callbacks(owner: str, callbacks: Any) -> None:
    if callbacks is None:
        return
    for callback in callbacks if isinstance(callbacks, (list, tuple)) else [callbacks]:
        if not isinstance(callback, pl.Callback):
            what = f"the class {callback.__name__}" if isinstance(callback, type) else f"{callback!r:.60} ({type(callback).__name__})"
            raise EvaluatorError(
                f"{owner}: Trainer argument 'callbacks' holds {what}, not a pytorch_lightning.Callback instance; "
                "pass instances such as callbacks=[EarlyStopping(monitor='val_loss')]"
            )


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _no_validation_reason(trainer_kwargs: Mapping[str, Any]) -> str | None:
    """Which Trainer setting (if any) means that fitting runs no validation epoch."""
    for name in ("max_epochs", "max_steps", "limit_train_batches", "limit_val_batches"):
        value = trainer_kwargs.get(name)
        if _is_number(value) and value == 0:
            return f"Trainer argument {name}={value!r}"
    max_epochs, every = trainer_kwargs.get("max_epochs"), trainer_kwargs.get("check_val_every_n_epoch")
    if _is_number(max_epochs) and max_epochs > 0 and _is_number(every) and every > max_epochs:
        return f"Trainer arguments check_val_every_n_epoch={every!r} with max_epochs={max_epochs!r}"
    return None


def check_dataloaders(owner: str, train_dataloaders: Any, val_dataloaders: Any) -> None:
    """Raise :class:`EvaluatorError` for training or validation data that no trial could use.

    Refused: a ``Dataset`` (not wrapped in a DataLoader), a ``LightningDataModule`` (the evaluator
    passes two dataloaders), an iterator or generator (the first trial would use it up), something
    that is not iterable, and a DataLoader with no batches. Nothing is loaded.
    """
    for name, data in (("train_dataloaders", train_dataloaders), ("val_dataloaders", val_dataloaders)):
        problem = _data_problem(data)
        if problem is not None:
            raise EvaluatorError(f"{owner}: {name} {problem}")


def _data_problem(data: Any) -> str | None:
    kind = type(data).__name__
    if isinstance(data, DataLoader):
        try:
            batches = len(data)
        except TypeError:  # an IterableDataset without __len__: its length is unknown until it is read
            return None
        if batches == 0:
            return (
                f"has no batches (its dataset has {_dataset_size(data)} samples, batch_size={data.batch_size}, "
                f"drop_last={data.drop_last}); give it data, or a batch_size no larger than the dataset"
            )
        return None
    if isinstance(data, pl.LightningDataModule):
        return (
            f"is a LightningDataModule ({kind}); pass its dataloaders instead: "
            "train_dataloaders=dm.train_dataloader(), val_dataloaders=dm.val_dataloader() (after dm.setup('fit'))"
        )
    if isinstance(data, Dataset) and not isinstance(data, IterableDataset):
        return f"is a Dataset ({kind}), not a DataLoader; wrap it: DataLoader(dataset, batch_size=...)"
    if isinstance(data, Iterator):
        return (
            f"is an iterator ({kind}), which the first trial would use up; pass a DataLoader, "
            "which every trial can iterate again"
        )
    if not isinstance(data, Iterable):
        return f"must be a torch DataLoader (or another iterable of batches), got {kind} {data!r:.80}"
    return None


def _dataset_size(loader: DataLoader) -> str:
    try:
        return str(len(loader.dataset))  # type: ignore[arg-type]
    except TypeError:
        return "an unknown number of"


def check_optimization(owner: str, learning_rate: Any, weight_decay: Any, optimizer: Any) -> None:
    """Raise :class:`EvaluatorError` unless ``learning_rate`` > 0, ``weight_decay`` >= 0 (finite numbers)
    and ``optimizer`` is a ``torch.optim.Optimizer`` subclass."""
    if not (_is_number(learning_rate) and math.isfinite(learning_rate) and learning_rate > 0):
        raise EvaluatorError(
            f"{owner}: learning_rate must be a positive number, got {learning_rate!r}; pass e.g. learning_rate=1e-3"
        )
    if not (_is_number(weight_decay) and math.isfinite(weight_decay) and weight_decay >= 0):
        raise EvaluatorError(
            f"{owner}: weight_decay must be a number >= 0, got {weight_decay!r}; pass e.g. weight_decay=1e-4, or leave it out"
        )
    if not (isinstance(optimizer, type) and issubclass(optimizer, torch.optim.Optimizer)):
        got = f"an instance of {type(optimizer).__name__}" if isinstance(optimizer, torch.optim.Optimizer) else repr(optimizer)
        raise EvaluatorError(
            f"{owner}: optimizer must be a torch.optim.Optimizer subclass such as torch.optim.Adam (the class: "
            f"each trial builds its own optimizer for its model), got {got}"
        )


def check_metric_mode(owner: str, metric_mode: Any) -> None:
    """Raise :class:`EvaluatorError` unless the recipe's ``metric_mode`` is ``"maximize"``, ``"minimize"`` or ``None``."""
    if metric_mode is not None and metric_mode not in METRIC_MODES:
        raise EvaluatorError(
            f"{owner}: the recipe's metric_mode must be 'maximize' or 'minimize' (or None: not known), got {metric_mode!r}"
        )


def check_num_classes(owner: str, num_classes: Any) -> None:
    """Raise :class:`EvaluatorError` unless ``num_classes`` is ``None`` or a positive integer."""
    if num_classes is not None and not (isinstance(num_classes, int) and not isinstance(num_classes, bool) and num_classes > 0):
        raise EvaluatorError(
            f"{owner}: num_classes must be a positive integer (the model's outputs per sample), got {num_classes!r}; "
            "or leave it out to skip the output check"
        )


# --- running a Trainer ----------------------------------------------------------------------------


def fit(trainer: pl.Trainer, module: pl.LightningModule, **fit_kwargs: Any) -> None:
    """``trainer.fit`` that keeps nascore's Ctrl-C behaviour.

    On Ctrl-C Lightning shuts down, ignores further SIGINTs and calls ``sys.exit(1)`` while it handles the
    ``KeyboardInterrupt``; here the SIGINT handler is restored and ``KeyboardInterrupt`` raised instead, so
    the experiment is marked INTERRUPTED and can be resumed. Lightning's ``SystemExit`` is told apart from
    one the training code raised itself by what it was raised while handling (its ``__context__``): no
    callback is needed, so none costs Lightning's per-hook dispatch on every step.
    """
    main_thread = threading.current_thread() is threading.main_thread()
    handler = signal.getsignal(signal.SIGINT) if main_thread else None
    try:
        with quiet_lightning():
            trainer.fit(module, **fit_kwargs)
    except SystemExit as exc:
        if isinstance(exc.__context__, KeyboardInterrupt):
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
