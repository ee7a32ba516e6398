"""DARTS and GumbelDARTS: differentiable architecture search by gradient descent on architecture weights.

Every step has two phases on a pair of batches (one training, one validation):

1. *architecture step*: the loss of the validation batch is minimized over the architecture
   parameters only (the backward pass computes no weight gradients). First order by default;
   ``unrolled=True`` uses DARTS' second-order approximation (a virtual weight step and a
   finite-difference Hessian-vector product);
2. *weight step*: the evaluator's training step on the training batch, with the architecture
   parameters fixed, optimized by Lightning with the evaluator's optimizer.

GumbelDARTS mixes with Gumbel-softmax samples instead of the softmax, with a temperature annealed
linearly over the epochs. Both export the strongest value of every decision; ``top_k`` exports the
``k`` most probable architectures.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch

from nascore.errors import StrategyError
from nascore.evaluators.optimizers import make_optimizer
from nascore.space import Sample
from nascore_strategies.oneshot.base import OneShotStrategy, k_best
from nascore_strategies.oneshot.hooks import MutationHook
from nascore_strategies.oneshot.penalty import ExpectedCostPenalty

__all__ = ["DARTS", "GumbelDARTS", "ranked_by_probability"]

_log = logging.getLogger(__name__)


@contextlib.contextmanager
def frozen(parameters: Sequence[torch.Tensor]) -> Iterator[None]:
    """``parameters`` take no gradient inside (their ``requires_grad`` is restored on exit)."""
    for p in parameters:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in parameters:
            p.requires_grad_(True)


def ranked_by_probability(strategy: OneShotStrategy, k: int) -> list[Sample]:
    """The ``k`` most probable architectures under the architecture parameters (decisions are independent)."""
    assert strategy.arch is not None
    best = strategy.export_sample()
    labels = [label for label in strategy.decisions if label in strategy.arch]
    factors = [strategy.arch.ranked(label, k) for label in labels]
    result = []
    for _, values in k_best(factors, k):
        sample = dict(best)
        sample.update(zip(labels, values))
        result.append({label: sample[label] for label in strategy.decisions})
    return result


class DARTS(OneShotStrategy):
    """Differentiable architecture search (`DARTS <https://arxiv.org/abs/1806.09055>`__).

    :param mutation_hooks: extra mutation hooks, run before the defaults.
    :param arc_learning_rate: learning rate of the architecture optimizer (Adam, betas (0.5, 0.999),
        weight decay 1e-3, as in DARTS).
    :param unrolled: second-order DARTS (a virtual step of the weights with the weight optimizer's
        learning rate before the architecture gradient).
    :param warmup_epochs: epochs that train only the weights before architecture steps begin.
    :param penalty: an :class:`~nascore_strategies.oneshot.penalty.ExpectedCostPenalty` added to
        the architecture loss.
    :param gradient_clip_val: clip the weights' gradient norm (Lightning's ``gradient_clip_val``).
    :param top_k: how many architectures to export (the most probable first).
    :param seed: seed of the architecture parameters' initialization.
    :param memory_format: the supernet's memory layout in training (``"auto"``, ``"channels_last"``,
        ``"contiguous"``; see :mod:`nascore_strategies.oneshot.layout`).
    :param reuse_memory: keep freed memory in the process while the supernet trains (see
        :mod:`nascore_strategies.oneshot.allocator`).
    :param inplace_relu: ReLUs after convolutions, linear layers and batch normalizations run in place
        while the supernet trains (see :mod:`nascore_strategies.oneshot.inplace`).
    """

    mode = "differentiable"

    def __init__(
        self,
        *,
        mutation_hooks: Sequence[MutationHook] | None = None,
        arc_learning_rate: float = 3.0e-4,
        unrolled: bool = False,
        warmup_epochs: int = 0,
        penalty: ExpectedCostPenalty | None = None,
        gradient_clip_val: float | None = None,
        top_k: int = 1,
        seed: int | None = None,
        memory_format: str = "auto",
        reuse_memory: bool = True,
        inplace_relu: bool = True,
    ) -> None:
        super().__init__(mutation_hooks=mutation_hooks, top_k=top_k, seed=seed, memory_format=memory_format,
                         reuse_memory=reuse_memory, inplace_relu=inplace_relu)
        if penalty is not None and not isinstance(penalty, ExpectedCostPenalty):
            raise StrategyError(f"{type(self).__name__}: penalty must be an ExpectedCostPenalty, got {type(penalty).__name__}")
        self.arc_learning_rate = arc_learning_rate
        self.unrolled = unrolled
        self.warmup_epochs = warmup_epochs
        self.penalty = penalty
        self.gradient_clip_val = gradient_clip_val
        self.arch_optimizer: torch.optim.Optimizer | None = None
        self._weights: tuple[Any, list[torch.Tensor]] | None = None  # (inner module, its parameters), walked once

    def trainer_overrides(self) -> dict[str, Any]:
        return {"gradient_clip_val": self.gradient_clip_val} if self.gradient_clip_val is not None else {}

    def train_dataloader(self, train_dataloaders: Any, val_dataloaders: Any) -> Any:
        from nascore_strategies.oneshot.lightning import InterleavedTrainVal

        return InterleavedTrainVal(train_dataloaders, val_dataloaders)

    def recipe_batch(self, batch: Any) -> Any:
        return batch["train"]

    def configure_architecture_optimizers(self, module: Any) -> None:
        assert self.arch is not None
        self.arch_optimizer = make_optimizer(torch.optim.Adam, self.arch.alphas, self.arc_learning_rate, 1.0e-3,
                                             betas=(0.5, 0.999))

    def training_step(self, module: Any, batch: Any, batch_idx: int) -> Any:
        assert self.arch is not None
        if module.current_epoch >= self.warmup_epochs:
            self.architecture_step(module, batch["train"], batch["val"], batch_idx)
        self.before_weight_step()
        with self.arch.frozen(), self.arch.scope():
            return module.weight_step(batch["train"], batch_idx)

    def before_weight_step(self) -> None:
        """Choose the path of the weight step (differentiable: nothing to choose)."""

    def architecture_loss(self, module: Any, batch: Any, batch_idx: int) -> torch.Tensor:
        """The recipe's loss on ``batch`` (its logs are not recorded), plus the cost penalty."""
        assert self.arch is not None
        with self.arch.scope(), module.capture():
            loss = module.inner_training_step(batch, batch_idx)
        if self.penalty is not None:
            if not self.penalty.profiled:
                def forward() -> None:
                    with module.capture():
                        module.inner.training_step(batch, batch_idx)

                self.penalty.profile(self.supernet_modules(), forward)
            loss = loss + self.penalty(self.arch)
        return loss

    def architecture_step(self, module: Any, train_batch: Any, val_batch: Any, batch_idx: int) -> None:
        assert self.arch is not None and self.arch_optimizer is not None
        self.arch_optimizer.zero_grad(set_to_none=True)
        alphas = self.arch.alpha_list()
        if self.unrolled:
            self._unrolled_gradient(module, train_batch, val_batch, batch_idx)
        else:
            # The weights take no gradient here: autograd records nothing for the layers before the
            # first decision, and the backward pass computes architecture gradients only.
            with frozen(self._trainable_weights(module)):
                loss = self.architecture_loss(module, val_batch, batch_idx)
            if not loss.requires_grad:  # no decision on the path of this batch
                return
            if not module.finite(loss, "architecture"):
                return
            # Gradients of the architecture parameters only: no weight gradient is computed.
            torch.autograd.backward(loss, inputs=alphas)
        self.arch_optimizer.step()

    def _trainable_weights(self, module: Any) -> list[torch.Tensor]:
        """The weights that train now (the module tree is walked once, ``requires_grad`` is read every step)."""
        if self._weights is None or self._weights[0] is not module.inner:
            self._weights = (module.inner, list(module.inner.parameters()))
        return [p for p in self._weights[1] if p.requires_grad]

    def _unrolled_gradient(self, module: Any, train_batch: Any, val_batch: Any, batch_idx: int) -> None:
        """Second-order DARTS: grad_alpha L_val(w', alpha) - xi * Hessian-vector product (finite differences)."""
        assert self.arch is not None
        alphas = self.arch.alpha_list()
        weights = [p for p in module.inner.parameters() if p.requires_grad]
        xi = float(module.trainer.optimizers[0].param_groups[0]["lr"])
        backup = [p.detach().clone() for p in weights]

        with self.arch.frozen(), self.arch.scope(), module.capture():
            train_loss = module.inner_training_step(train_batch, batch_idx)
        weight_grads = torch.autograd.grad(train_loss, weights, allow_unused=True)
        with torch.no_grad():
            for p, g in zip(weights, weight_grads):
                if g is not None:
                    p.sub_(xi * g)
        val_loss = self.architecture_loss(module, val_batch, batch_idx)
        grads = torch.autograd.grad(val_loss, alphas + weights, allow_unused=True)
        alpha_grads, unrolled_weight_grads = grads[: len(alphas)], grads[len(alphas) :]

        norm = math.sqrt(sum(float((g * g).sum()) for g in unrolled_weight_grads if g is not None))
        eps = 0.01 / max(norm, 1e-12)

        def alpha_gradient_at(sign: float) -> Sequence[torch.Tensor | None]:
            with torch.no_grad():
                for p, b, g in zip(weights, backup, unrolled_weight_grads):
                    p.copy_(b if g is None else b + sign * eps * g)
            with self.arch.scope(), module.capture():
                loss = module.inner_training_step(train_batch, batch_idx)
            return torch.autograd.grad(loss, alphas, allow_unused=True)

        positive = alpha_gradient_at(1.0)
        negative = alpha_gradient_at(-1.0)
        with torch.no_grad():
            for p, b in zip(weights, backup):
                p.copy_(b)
            for alpha, g, gp, gn in zip(alphas, alpha_grads, positive, negative):
                grad = torch.zeros_like(alpha) if g is None else g.clone()
                if gp is not None and gn is not None:
                    grad -= xi * (gp - gn) / (2 * eps)
                alpha.grad = grad

    def validation_step(self, module: Any, batch: Any, batch_idx: int) -> Any:
        assert self.arch is not None
        with self.arch.scope():
            return module.inner.validation_step(batch, batch_idx)

    def export_top(self, k: int, ranker: Callable[[list[Sample]], list[tuple[float, Sample]]]) -> list[Sample]:
        return ranked_by_probability(self, k)

    def algorithm_state(self) -> dict[str, Any]:
        return {"arch_optimizer": self.arch_optimizer.state_dict()} if self.arch_optimizer is not None else {}

    def load_algorithm_state(self, state: dict[str, Any]) -> None:
        if self.arch_optimizer is not None and "arch_optimizer" in state:
            self.arch_optimizer.load_state_dict(state["arch_optimizer"])

    def __repr__(self) -> str:
        return f"{type(self).__name__}(arc_learning_rate={self.arc_learning_rate}, unrolled={self.unrolled}, top_k={self.top_k})"


class GumbelDARTS(DARTS):
    """DARTS with Gumbel-softmax sampling (`SNAS <https://arxiv.org/abs/1812.09926>`__, FBNet).

    :param gumbel_temperature: the initial temperature.
    :param use_temp_anneal: anneal the temperature linearly from ``gumbel_temperature`` (first
        epoch) down to ``min_temp`` (after the last epoch); else keep it fixed.
    :param min_temp: the final temperature of the annealing.

    The other parameters are those of :class:`DARTS`.
    """

    def __init__(
        self,
        *,
        gumbel_temperature: float = 1.0,
        use_temp_anneal: bool = False,
        min_temp: float = 0.33,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not gumbel_temperature >= min_temp > 0:
            raise StrategyError(
                f"GumbelDARTS: need gumbel_temperature >= min_temp > 0, got {gumbel_temperature} and {min_temp}"
            )
        self.gumbel_temperature = gumbel_temperature
        self.use_temp_anneal = use_temp_anneal
        self.min_temp = min_temp

    def create_supernet(self, space: Any) -> Any:
        supernet = super().create_supernet(space)
        assert self.arch is not None
        self.arch.gumbel = True
        self.arch.tau = self.gumbel_temperature
        return supernet

    def temperature(self, epoch: int, max_epochs: int | None) -> float:
        """The temperature of ``epoch`` (0-based) out of ``max_epochs``."""
        if not self.use_temp_anneal or not max_epochs or max_epochs < 0:
            return self.gumbel_temperature
        progress = min(epoch / max_epochs, 1.0)
        return self.gumbel_temperature - (self.gumbel_temperature - self.min_temp) * progress

    def on_train_epoch_start(self, module: Any) -> None:
        assert self.arch is not None
        self.arch.tau = self.temperature(module.current_epoch, module.trainer.max_epochs)
        _log.debug("GumbelDARTS: epoch %d, temperature %.4f", module.current_epoch, self.arch.tau)

    def __repr__(self) -> str:
        return (
            f"GumbelDARTS(gumbel_temperature={self.gumbel_temperature}, use_temp_anneal={self.use_temp_anneal}, "
            f"min_temp={self.min_temp}, top_k={self.top_k})"
        )
