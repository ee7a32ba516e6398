"""One-shot mixed operations of :mod:`nascore_hub.spaces.autoformer`'s class token and position
embedding with a choice of ``embed_dim`` (the parameter is as wide as the largest choice, a choice uses
its prefix). Imported by :func:`~nascore_hub.spaces.autoformer.oneshot_hooks` only, since it needs the
``nascore-strategies`` plugin that the hub does not depend on.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn as nn

from nascore.space import collect_mutables
from nascore_hub.spaces.autoformer import AbsolutePositionEmbedding, ClassToken
from nascore_strategies.oneshot.supermodule.operation import MixedOperation, pad_dim, slice_dim

__all__ = ["MixedClassToken", "MixedAbsolutePositionEmbedding"]


class _MixedPrefixParameter(MixedOperation):
    """A module holding one parameter whose last dimension is ``embed_dim``: a choice uses its prefix."""

    argument_list = ("embed_dim",)
    parameter: ClassVar[str]

    def init_layer(self, super_arguments: dict[str, Any], arguments: dict[str, Any], choices: dict[str, Any]) -> None:
        nn.Module.__init__(self)
        # A plain module of the largest width gives the super parameter (initialized as the module does).
        layer = self.bound_type(**super_arguments)
        for name, value in super_arguments.items():
            setattr(self, name, value)
        self.register_parameter(self.parameter, getattr(layer, self.parameter))

    def maskable_arguments(self) -> set[str]:
        return {"embed_dim"}

    def mask_row(self, name: str, value: Any) -> torch.Tensor:
        return (torch.arange(self.embed_dim) < value).float()

    def sliced(self, embed_dim: int) -> torch.Tensor:
        return getattr(self, self.parameter)[..., :embed_dim]

    def weighted(self, args: dict[str, Any]) -> torch.Tensor:
        return getattr(self, self.parameter) * self.mask("embed_dim", args["embed_dim"])

    @classmethod
    def mutate(cls, module: nn.Module, name: str, memo: dict[str, Any], mutate_kwargs: dict[str, Any]) -> Any:
        if type(module) is cls.bound_type and module.mutables:  # type: ignore[union-attr]
            labels = ", ".join(sorted({m.label for m in collect_mutables(module.mutables)}))  # type: ignore[union-attr]
            where = f"module {name!r} ({cls.bound_type.__name__} {labels})"
            return cls(module, mutate_kwargs["mode"], mutate_kwargs.get("arch"), where)  # type: ignore[arg-type]
        return None

class MixedClassToken(_MixedPrefixParameter):
    """:class:`ClassToken` with a choice of ``embed_dim``: the prefix of the widest token."""

    bound_type = ClassToken
    parameter = "cls_token"

    def forward_with_args(self, args: dict[str, Any], x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        token = self.sliced(args["embed_dim"])
        x = slice_dim(x, -1, token.shape[-1]) if x.shape[-1] > token.shape[-1] else x
        return torch.cat((token.expand(x.shape[0], -1, -1), x), dim=1)

    def forward_weighted(self, args: dict[str, Any], x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        token = self.weighted(args)
        return torch.cat((token.expand(x.shape[0], -1, -1), pad_dim(x, -1, self.embed_dim)), dim=1)

class MixedAbsolutePositionEmbedding(_MixedPrefixParameter):
    """:class:`AbsolutePositionEmbedding` with a choice of ``embed_dim``: the prefix of the widest embedding."""

    bound_type = AbsolutePositionEmbedding
    parameter = "pos_embed"

    def forward_with_args(self, args: dict[str, Any], x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        embedding = self.sliced(args["embed_dim"])
        x = slice_dim(x, -1, embedding.shape[-1]) if x.shape[-1] > embedding.shape[-1] else x
        return x + embedding

    def forward_weighted(self, args: dict[str, Any], x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return pad_dim(x, -1, self.embed_dim) + self.weighted(args)
