"""Searching a trained supernet with any multi-trial strategy (the SPOS / once-for-all workflow).

After a weight-sharing search has trained a supernet (typically ``random-oneshot``, which trains
every path evenly), :class:`SubnetEvaluator` scores each trial's architecture as a *sub-net* of it:
the weights are inherited (``supernet.freeze(sample)``), batch-norm statistics are recalibrated on
a few training batches (the supernet's statistics mix every path), and the sub-net is evaluated
without training. Any multi-trial strategy (``evolution``, ``tpe``, ``random``, ...) then searches
thousands of architectures at the cost of a validation pass each::

    oneshot = RandomOneShot()
    trained = Experiment(MySpace(), Classification(...), oneshot, config)
    trained.run()                                   # trains the supernet, saves its weights

    evaluator = SubnetEvaluator.from_experiment(trained, train_dataloaders=train, val_dataloaders=val)
    search = Experiment(MySpace(), evaluator, "evolution", config)
    search.run()                                    # each trial: inherit, recalibrate, evaluate

The evaluator carries the supernet's weights as tensors (a state dict), so it runs on every engine:
trials in this process, in local workers, on remote machines, and several in one trial with ``cgo``
(the supernet is then built once for the group). It scores with the accuracy of a
classifier by default; pass ``metric=f(model, val_dataloaders) -> float`` for anything else.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Hashable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn as nn

from nascore.errors import EvaluatorError
from nascore.evaluator import Evaluator
from nascore.format import ExecutableModel
from nascore.nn import ModelSpace
from nascore.space import Sample
from nascore.trial import report_final_result

if TYPE_CHECKING:
    from nascore.group import ModelGroup

__all__ = ["SubnetEvaluator", "recalibrate_batch_norm", "classification_accuracy"]

Metric = Callable[[nn.Module, Iterable[Any]], float]


def classification_accuracy(model: nn.Module, batches: Iterable[Any]) -> float:
    """The fraction of ``(inputs, labels)`` batches the model's arg-max classifies right."""
    correct = total = 0
    with torch.no_grad():
        for inputs, labels in batches:
            predicted = model(inputs).argmax(dim=-1)
            correct += int((predicted == labels).sum())
            total += int(labels.numel())
    if total == 0:
        raise EvaluatorError("SubnetEvaluator: the validation data has no sample to score")
    return correct / total


def recalibrate_batch_norm(model: nn.Module, batches: Iterable[Any], count: int) -> int:
    """Recompute the running statistics of every batch-norm layer on ``count`` training batches.

    The statistics are reset and averaged over the batches (cumulative average), in training mode
    without gradients; the model is left in eval mode. Returns the number of batches used.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    model.eval()
    if not norms or count <= 0:
        return 0
    momentum = {}
    for norm in norms:
        momentum[norm] = norm.momentum
        norm.reset_running_stats()
        norm.momentum = None  # a cumulative average over the batches
        norm.train()
    used = 0
    with torch.no_grad():
        for batch in batches:
            if used >= count:
                break
            inputs = batch[0] if isinstance(batch, (list, tuple)) else batch
            model(inputs)
            used += 1
    for norm in norms:
        norm.momentum = momentum[norm]
    model.eval()
    return used


class SubnetEvaluator(Evaluator):
    """Score a trial's architecture as a sub-net of a trained supernet: inherited weights, batch-norm
    statistics recalibrated, no training.

    :param space: the model space the supernet was built from (the experiments' space).
    :param weights: the trained supernet's state dict (tensors), or the path of a saved one
        (``<experiment>/strategy/supernet.pt``).
    :param train_dataloaders: batches for batch-norm recalibration (``(inputs, labels)`` or inputs).
    :param val_dataloaders: batches the sub-net is scored on.
    :param recalibration_batches: how many training batches recalibrate batch norm. Default: 20.
    :param metric: ``f(model, val_dataloaders) -> float``; default: classification accuracy.
    :param optimize_mode: the metric's direction. Default: ``"maximize"``.
    """

    def __init__(
        self,
        space: ModelSpace,
        weights: dict[str, torch.Tensor] | str | Path,
        *,
        train_dataloaders: Iterable[Any],
        val_dataloaders: Iterable[Any],
        recalibration_batches: int = 20,
        metric: Metric | None = None,
        optimize_mode: str = "maximize",
    ) -> None:
        if not isinstance(space, ModelSpace):
            raise EvaluatorError(f"SubnetEvaluator needs the nascore.nn.ModelSpace the supernet was built from, got {type(space).__name__}")
        if isinstance(weights, (str, Path)):
            path = Path(weights)
            if not path.is_file():
                raise EvaluatorError(
                    f"SubnetEvaluator: no supernet weights at {str(path)!r}; a one-shot experiment saves them in "
                    "<experiment>/strategy/supernet.pt once its supernet is trained"
                )
            weights = torch.load(path, map_location="cpu", weights_only=True)
        if optimize_mode not in ("maximize", "minimize"):
            raise EvaluatorError(f"SubnetEvaluator: optimize_mode must be 'maximize' or 'minimize', got {optimize_mode!r}")
        if not isinstance(recalibration_batches, int) or recalibration_batches < 0:
            raise EvaluatorError(f"SubnetEvaluator: recalibration_batches must be an int >= 0, got {recalibration_batches!r}")
        self.space = space
        self.weights = dict(weights)
        self.train_dataloaders = train_dataloaders
        self.val_dataloaders = val_dataloaders
        self.recalibration_batches = recalibration_batches
        self.metric = metric
        self._optimize_mode = optimize_mode
        self._supernet: nn.Module | None = None

    @classmethod
    def from_experiment(cls, experiment: Any, **kwargs: Any) -> SubnetEvaluator:
        """The evaluator of the supernet a one-shot ``experiment`` trained (its space and saved weights)."""
        from nascore_strategies.oneshot.base import SUPERNET_FILE

        return cls(experiment.space, experiment.path / "strategy" / SUPERNET_FILE, **kwargs)

    @property
    def optimize_mode(self) -> str:
        return self._optimize_mode

    def check(self) -> None:
        self.supernet()  # the weights must fit the space's supernet: an error before the first trial

    def supernet(self) -> nn.Module:
        """The supernet with the trained weights (built once per process)."""
        if self._supernet is None:
            from nascore_strategies.oneshot.random_oneshot import RandomOneShot

            strategy = RandomOneShot(seed=0)  # the weights' names do not depend on the algorithm that trained them
            supernet = strategy.create_supernet(copy.deepcopy(self.space))
            try:
                supernet.load_state_dict(self.weights)
            except RuntimeError as exc:
                raise EvaluatorError(
                    f"SubnetEvaluator: the supernet weights do not fit the supernet of {type(self.space).__name__} "
                    f"(a different space, or a space changed since the supernet was trained): {exc}"
                ) from exc
            self._supernet = supernet
        return self._supernet

    def subnet(self, sample: Sample) -> nn.Module:
        """The sub-net of ``sample`` with the supernet's weights and batch norm recalibrated (eval mode)."""
        model = self.supernet().freeze(sample)
        recalibrate_batch_norm(model, self.train_dataloaders, self.recalibration_batches)
        return model

    def evaluate(self, model: ExecutableModel) -> Any:
        from nascore.group import ModelGroup

        self.check_frozen()
        if isinstance(model, ModelGroup):
            return self.evaluate_group(model)
        return self.evaluate_module(self.subnet(dict(model.sample)))

    def merge_key(self) -> Hashable:
        """Trials scored by this one evaluator may share a trial (engine ``cgo``): the supernet is built once."""
        return ("SubnetEvaluator", id(self))

    def evaluate_group(self, group: ModelGroup) -> None:
        """Score every member of ``group`` in turn, each reported for its own trial."""
        for index, member in enumerate(group.members):
            report_final_result(self.evaluate_module(self.subnet(dict(member.sample))), member=index)

    def evaluate_module(self, module: nn.Module) -> float:
        """The metric of ``module`` on the validation data (the trial's final result)."""
        return float((self.metric or classification_accuracy)(module.eval(), self.val_dataloaders))

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_supernet"] = None  # rebuilt where the trial runs
        return state
