"""ENAS: a controller (an LSTM trained with REINFORCE) chooses the paths of a shared-weight supernet.

Each epoch first trains the supernet's weights on the training data, one controller-sampled path
per batch; then trains the controller on the validation data: for each batch it samples a path,
runs the evaluator's ``validation_step`` on it, and takes the validation metric the evaluator logs
(``reward_metric_name``, by default the evaluator's ``metric_name``, e.g. ``val_acc``) as the
reward. The loss is ``-log_prob * (reward - baseline) - entropy_weight * entropy + skip_weight *
skip_penalty`` with an exponential-moving-average baseline, accumulated over
``ctrl_steps_aggregate`` samples per update. After training, ``export_candidates`` paths sampled
by the controller are scored on the validation data and the best ``top_k`` are exported.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from nascore.errors import StrategyError
from nascore.space import Sample, sample_key
from nascore_strategies.oneshot.base import OneShotStrategy
from nascore_strategies.oneshot.controller import ReinforceController, fields_of
from nascore_strategies.oneshot.hooks import MutationHook

__all__ = ["ENAS"]


class ENAS(OneShotStrategy):
    """`ENAS <https://arxiv.org/abs/1802.03268>`__: a REINFORCE controller on a weight-sharing supernet.

    :param mutation_hooks: extra mutation hooks, run before the defaults.
    :param ctrl_kwargs: arguments of :class:`~nascore_strategies.oneshot.controller.ReinforceController`.
    :param entropy_weight: weight of the sample entropy (a bonus, encouraging exploration).
    :param skip_weight: weight of the skip penalty (any-number input choices).
    :param baseline_decay: the reward baseline is ``decay * baseline + (1 - decay) * reward``.
    :param ctrl_lr: learning rate of the controller's Adam optimizer.
    :param ctrl_steps_aggregate: samples whose gradients are accumulated per controller update.
    :param ctrl_grad_clip: clip the controller's gradient norm (0: no clipping).
    :param reward_metric_name: the logged validation metric used as reward (default: the
        evaluator's ``metric_name``; minimized metrics are negated).
    :param warmup_epochs: epochs that train only the weights before the controller learns.
    :param export_candidates: controller samples scored with the trained supernet at export.
    :param top_k: how many architectures to export (the best scored first).
    :param seed: seed of the controller's initialization.
    :param memory_format: the supernet's memory layout in training (``"auto"``, ``"channels_last"``,
        ``"contiguous"``; see :mod:`nascore_strategies.oneshot.layout`).
    :param reuse_memory: keep freed memory in the process while the supernet trains (see
        :mod:`nascore_strategies.oneshot.allocator`).
    :param inplace_relu: ReLUs after convolutions, linear layers and batch normalizations run in place
        while the supernet trains (see :mod:`nascore_strategies.oneshot.inplace`).
    """

    mode = "sampling"

    def __init__(
        self,
        *,
        mutation_hooks: Sequence[MutationHook] | None = None,
        ctrl_kwargs: dict[str, Any] | None = None,
        entropy_weight: float = 1e-4,
        skip_weight: float = 0.8,
        baseline_decay: float = 0.999,
        ctrl_lr: float = 3.5e-4,
        ctrl_steps_aggregate: int = 20,
        ctrl_grad_clip: float = 0.0,
        reward_metric_name: str | None = None,
        warmup_epochs: int = 0,
        export_candidates: int = 16,
        top_k: int = 1,
        seed: int | None = None,
        memory_format: str = "auto",
        reuse_memory: bool = True,
        inplace_relu: bool = True,
    ) -> None:
        super().__init__(mutation_hooks=mutation_hooks, top_k=top_k, seed=seed, memory_format=memory_format,
                         reuse_memory=reuse_memory, inplace_relu=inplace_relu)
        if ctrl_steps_aggregate < 1:
            raise StrategyError(f"ENAS: ctrl_steps_aggregate must be at least 1, got {ctrl_steps_aggregate}")
        if export_candidates < top_k:
            raise StrategyError(f"ENAS: export_candidates ({export_candidates}) must be at least top_k ({top_k})")
        self.ctrl_kwargs = dict(ctrl_kwargs or {})
        self.entropy_weight = entropy_weight
        self.skip_weight = skip_weight
        self.baseline_decay = baseline_decay
        self.ctrl_lr = ctrl_lr
        self.ctrl_steps_aggregate = ctrl_steps_aggregate
        self.ctrl_grad_clip = ctrl_grad_clip
        self.reward_metric_name = reward_metric_name
        self.warmup_epochs = warmup_epochs
        self.export_candidates = export_candidates
        self.controller: ReinforceController | None = None
        self.ctrl_optimizer: torch.optim.Optimizer | None = None
        self.baseline: float | None = None
        self._ctrl_steps = 0

    def create_supernet(self, space: Any) -> Any:
        supernet = super().create_supernet(space)
        # Built on the CPU from a seed of the strategy's generator; the caller's random state is left as it was
        # (CPU only: forking the CUDA generators would initialise CUDA).
        with torch.random.fork_rng(devices=[]):
            torch.random.default_generator.manual_seed(self.rng.randrange(2**31))
            self.controller = ReinforceController(fields_of(self.decisions), **self.ctrl_kwargs)
        self.baseline = None
        self._ctrl_steps = 0
        return supernet

    def extra_modules(self) -> dict[str, torch.nn.Module]:
        assert self.controller is not None
        return {"controller": self.controller}

    def train_dataloader(self, train_dataloaders: Any, val_dataloaders: Any) -> Any:
        from nascore_strategies.oneshot.lightning import ConcatTrainVal

        return ConcatTrainVal(train_dataloaders, val_dataloaders)

    def recipe_batch(self, batch: Any) -> Any:
        kind, data = batch
        return data if kind == "train" else None

    def configure_architecture_optimizers(self, module: Any) -> None:
        assert self.controller is not None
        self.ctrl_optimizer = torch.optim.Adam(self.controller.parameters(), lr=self.ctrl_lr)

    def controller_sample(self) -> Sample:
        """An architecture sampled by the controller (no gradient)."""
        assert self.controller is not None
        with torch.no_grad():
            return self.controller.sample().sample

    def training_step(self, module: Any, batch: Any, batch_idx: int) -> Any:
        kind, data = batch
        if kind == "train":
            self.apply_sample(self.controller_sample())
            return module.weight_step(data, batch_idx)
        if module.current_epoch < self.warmup_epochs:
            return None
        self.controller_step(module, data, batch_idx)
        return None

    def controller_step(self, module: Any, batch: Any, batch_idx: int) -> float:
        """One REINFORCE sample on a validation batch; returns the reward."""
        assert self.controller is not None and self.ctrl_optimizer is not None
        self.controller.train()
        drawn = self.controller.sample()
        self.apply_sample(drawn.sample)
        with torch.no_grad(), module.capture() as logged:
            module.inner.validation_step(batch, batch_idx)
        reward = module.metric(logged)
        self.baseline = reward if self.baseline is None else self.baseline_decay * self.baseline + (1 - self.baseline_decay) * reward
        loss = -drawn.log_prob * (reward - self.baseline) - self.entropy_weight * drawn.entropy
        loss = loss + self.skip_weight * drawn.skip_penalty
        (loss / self.ctrl_steps_aggregate).backward()
        self._ctrl_steps += 1
        if self._ctrl_steps % self.ctrl_steps_aggregate == 0:
            if self.ctrl_grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(self.controller.parameters(), self.ctrl_grad_clip)
            self.ctrl_optimizer.step()
            self.ctrl_optimizer.zero_grad(set_to_none=True)
        module.log("enas_reward", reward, on_step=False, on_epoch=True, batch_size=1)
        return reward

    def validation_step(self, module: Any, batch: Any, batch_idx: int) -> Any:
        self.apply_sample(self.controller_sample())
        return module.inner.validation_step(batch, batch_idx)

    def export_top(self, k: int, ranker: Callable[[list[Sample]], list[tuple[float, Sample]]]) -> list[Sample]:
        assert self.controller is not None
        self.controller.eval()
        found: dict[str, Sample] = {}
        for _ in range(self.export_candidates * 4):
            if len(found) >= self.export_candidates:
                break
            sample = self.controller_sample()
            found.setdefault(sample_key(sample), sample)
        ranked = ranker(list(found.values()))
        return [sample for _, sample in ranked[:k]]

    def algorithm_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {"baseline": self.baseline, "ctrl_steps": self._ctrl_steps}
        if self.ctrl_optimizer is not None:
            state["ctrl_optimizer"] = self.ctrl_optimizer.state_dict()
        return state

    def load_algorithm_state(self, state: dict[str, Any]) -> None:
        self.baseline = state.get("baseline")
        self._ctrl_steps = state.get("ctrl_steps", 0)
        if self.ctrl_optimizer is not None and "ctrl_optimizer" in state:
            self.ctrl_optimizer.load_state_dict(state["ctrl_optimizer"])

    def __repr__(self) -> str:
        return f"ENAS(ctrl_steps_aggregate={self.ctrl_steps_aggregate}, reward_metric_name={self.reward_metric_name!r}, top_k={self.top_k})"
