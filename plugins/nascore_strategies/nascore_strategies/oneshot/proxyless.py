"""Proxyless: ProxylessNAS's binary gates, one sampled path per step, and an optional cost penalty.

Like DARTS, every step has an architecture step (validation batch) and a weight step (training
batch), but each samples one path from ``softmax(alpha)`` and runs only that path: memory grows
with one candidate instead of all of them. The architecture gradient comes from binary gates
(see :mod:`nascore_strategies.oneshot.supermodule.proxyless`), and an
:class:`~nascore_strategies.oneshot.penalty.ExpectedCostPenalty` can push towards cheaper
architectures (FLOPs or measured latency). Exports the strongest value of every decision.
"""

from __future__ import annotations

from typing import Any

import torch

from nascore.space import Sample
from nascore_strategies.oneshot.darts import DARTS, frozen
from nascore_strategies.oneshot.supermodule.proxyless import sample_from_alpha

__all__ = ["Proxyless"]


class Proxyless(DARTS):
    """`ProxylessNAS <https://arxiv.org/abs/1812.00332>`__: binary gates on one sampled path.

    :param mutation_hooks: extra mutation hooks, run before the defaults.
    :param arc_learning_rate: learning rate of the architecture optimizer.
    :param warmup_epochs: epochs that train only the weights (on sampled paths) first.
    :param penalty: an :class:`~nascore_strategies.oneshot.penalty.ExpectedCostPenalty`
        (``ExpectedCostPenalty("latency", weight=0.1)``) added to the architecture loss.
    :param gradient_clip_val: clip the weights' gradient norm.
    :param top_k: how many architectures to export (the most probable first).
    :param seed: seed of the architecture parameters' initialization.
    """

    mode = "proxyless"

    def __init__(self, **kwargs: Any) -> None:
        if kwargs.get("unrolled"):
            from nascore.errors import StrategyError

            raise StrategyError("Proxyless has no second-order (unrolled) variant; use DARTS(unrolled=True)")
        super().__init__(**kwargs)

    def sample_path(self) -> Sample:
        """Draw one value per decision from ``softmax(alpha)`` and make the supernet run that path."""
        assert self.arch is not None
        sample = {label: sample_from_alpha(self.arch, label) for label in self.decisions if label in self.arch}
        return self.apply_sample(sample)

    def architecture_step(self, module: Any, train_batch: Any, val_batch: Any, batch_idx: int) -> None:
        assert self.arch is not None and self.arch_optimizer is not None
        self.arch_optimizer.zero_grad(set_to_none=True)
        self.sample_path()
        self.arch.binary_gates = True
        try:
            with frozen(self._trainable_weights(module)):  # architecture gradients only
                loss = self.architecture_loss(module, val_batch, batch_idx)
        finally:
            self.arch.binary_gates = False
        if not loss.requires_grad:  # no decision on the sampled path
            return
        torch.autograd.backward(loss, inputs=self.arch.alpha_list())
        self.arch_optimizer.step()

    def before_weight_step(self) -> None:
        self.sample_path()

    def validation_step(self, module: Any, batch: Any, batch_idx: int) -> Any:
        self.apply_sample(self.export_sample())
        return module.inner.validation_step(batch, batch_idx)

    def __repr__(self) -> str:
        return f"Proxyless(arc_learning_rate={self.arc_learning_rate}, penalty={self.penalty!r}, top_k={self.top_k})"
