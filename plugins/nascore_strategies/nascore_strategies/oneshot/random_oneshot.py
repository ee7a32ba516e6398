"""RandomOneShot: train a supernet on uniformly sampled paths, then rank sampled architectures with it.

Every training step samples one architecture uniformly (`SPOS <https://arxiv.org/abs/1904.00420>`__,
optionally only those a ``filter`` accepts) and trains the weights of that path. After training,
``export_candidates`` sampled architectures are scored on the validation data with the supernet's
shared weights (BatchNorm uses batch statistics, since running statistics are shared by every
path), and the best ``top_k`` are exported.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from nascore.errors import StrategyError
from nascore.space import Sample, sample_key
from nascore_strategies.oneshot.base import OneShotStrategy
from nascore_strategies.oneshot.hooks import MutationHook

__all__ = ["RandomOneShot"]


class RandomOneShot(OneShotStrategy):
    """Uniform path sampling.

    :param mutation_hooks: extra mutation hooks, run before the defaults.
    :param filter: ``filter(sample) -> bool``; only architectures it accepts are trained and exported.
    :param export_candidates: how many sampled architectures are scored with the trained supernet
        to choose the exported ones.
    :param top_k: how many architectures to export (the best scored first).
    :param seed: seed of the sampling.
    :param memory_format: the supernet's memory layout in training (``"auto"``, ``"channels_last"``,
        ``"contiguous"``; see :mod:`nascore_strategies.oneshot.layout`).
    :param reuse_memory: keep freed memory in the process while the supernet trains (see
        :mod:`nascore_strategies.oneshot.allocator`).
    :param inplace_relu: ReLUs after convolutions, linear layers and batch normalizations run in place
        while the supernet trains (see :mod:`nascore_strategies.oneshot.inplace`).
    """

    mode = "sampling"
    #: Give up when the filter rejects this many samples in a row.
    max_rejections = 1000

    def __init__(
        self,
        *,
        mutation_hooks: Sequence[MutationHook] | None = None,
        filter: Callable[[Sample], bool] | None = None,  # noqa: A002 - NNI's name
        export_candidates: int = 16,
        top_k: int = 1,
        seed: int | None = None,
        memory_format: str = "auto",
        reuse_memory: bool = True,
        inplace_relu: bool = True,
    ) -> None:
        super().__init__(mutation_hooks=mutation_hooks, top_k=top_k, seed=seed, memory_format=memory_format,
                         reuse_memory=reuse_memory, inplace_relu=inplace_relu)
        if filter is not None and not callable(filter):
            raise StrategyError(f"RandomOneShot: filter must be a function sample -> bool, got {filter!r}")
        if export_candidates < top_k:
            raise StrategyError(f"RandomOneShot: export_candidates ({export_candidates}) must be at least top_k ({top_k})")
        self.filter = filter
        self.export_candidates = export_candidates

    def random_sample(self) -> Sample:
        """A uniformly random architecture that the filter accepts."""
        for _ in range(self.max_rejections):
            sample = {label: decision.random_value(self.rng) for label, decision in self.decisions.items()}
            if self.filter is None or self.filter(sample):
                return sample
        raise StrategyError(
            f"RandomOneShot: the filter rejected {self.max_rejections} random architectures in a row; "
            "loosen it, or check that it accepts some architecture of the space"
        )

    def training_step(self, module: Any, batch: Any, batch_idx: int) -> Any:
        self.apply_sample(self.random_sample())
        return module.weight_step(batch, batch_idx)

    def validation_step(self, module: Any, batch: Any, batch_idx: int) -> Any:
        self.apply_sample(self.random_sample())
        return module.inner.validation_step(batch, batch_idx)

    def candidates(self, count: int) -> list[Sample]:
        """Up to ``count`` distinct random architectures (fewer when the space is smaller)."""
        found: dict[str, Sample] = {}
        for _ in range(count * 10):
            if len(found) >= count:
                break
            sample = self.random_sample()
            found.setdefault(sample_key(sample), sample)
        return list(found.values())

    def export_top(self, k: int, ranker: Callable[[list[Sample]], list[tuple[float, Sample]]]) -> list[Sample]:
        ranked = ranker(self.candidates(self.export_candidates))
        return [sample for _, sample in ranked[:k]]

    def __repr__(self) -> str:
        return f"RandomOneShot(export_candidates={self.export_candidates}, top_k={self.top_k})"
