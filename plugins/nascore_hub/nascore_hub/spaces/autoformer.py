"""The AutoFormer model space: vision transformers of searchable width and depth.

From Chen, Peng, Fu & Ling, "AutoFormer: Searching Transformers for Visual Recognition", ICCV 2021
(https://arxiv.org/abs/2107.00651). A ViT (patch embedding, class token, position embedding, a stack
of pre-norm transformer encoder layers, a classifier) in which four things are searched: the
embedding dimension (one for the whole network), the depth, and in every layer the number of
attention heads (each head has a fixed width, 64 in the paper) and the MLP ratio. The paper's
three spaces (:data:`SPACE_CONFIGS`: ``"tiny"``, ``"small"``, ``"base"``) have about ``2.8e11``,
``7.7e13`` and ``6.2e15`` architectures; the searched AutoFormer-Tiny / Small / Base are the
presets (:data:`PRESETS`).

Weights are shared between the architectures by one-shot strategies (AutoFormer's "weight
entanglement"): the linear layers, layer norms and the patch convolution are ``Mutable<Layer>``
wrappers whose mixed operations slice one super weight, and :func:`oneshot_hooks` gives the mixed
operations of the class token and the position embedding (the space passes them to every one-shot
strategy itself, see :meth:`AutoFormer.extra_oneshot_hooks`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import torch
import torch.nn as nn

import nascore
from nascore.errors import SearchSpaceError
from nascore.nn import (
    ModelSpace,
    MutableConv2d,
    MutableLayerNorm,
    MutableLinear,
    MutableMultiheadAttention,
    ParametrizedModule,
    Repeat,
    basic_unit,
)
from nascore.space import Mutable, MutableExpression
from nascore_hub.spaces.presets import PresetSpace, UnknownPresetError

__all__ = [
    "PRESETS",
    "SPACE_CONFIGS",
    "AbsolutePositionEmbedding",
    "AutoFormer",
    "ClassToken",
    "ClassificationHead",
    "DropPath",
    "MultiheadSelfAttention",
    "PatchEmbedding",
    "RelativePosition2D",
    "SelfAttention",
    "TransformerEncoderLayer",
    "UnknownPresetError",
    "oneshot_hooks",
]

#: The paper's three search spaces (Table 1), as init arguments of :class:`AutoFormer`.
SPACE_CONFIGS: dict[str, dict[str, tuple[Any, ...]]] = {
    "tiny": {
        "search_embed_dim": (192, 216, 240),
        "search_mlp_ratio": (3.0, 3.5, 4.0),
        "search_num_heads": (3, 4),
        "search_depth": (12, 13, 14),
    },
    "small": {
        "search_embed_dim": (320, 384, 448),
        "search_mlp_ratio": (3.0, 3.5, 4.0),
        "search_num_heads": (5, 6, 7),
        "search_depth": (12, 13, 14),
    },
    "base": {
        "search_embed_dim": (528, 576, 624),
        "search_mlp_ratio": (3.0, 3.5, 4.0),
        "search_num_heads": (8, 9, 10),
        "search_depth": (14, 15, 16),
    },
}


def _searched(embed_dim: int, mlp_ratios: Sequence[float], num_heads: Sequence[int]) -> dict[str, Any]:
    """The sample of a searched architecture: its depth is the number of layers given."""
    sample: dict[str, Any] = {"embed_dim": embed_dim, "depth": len(mlp_ratios)}
    for i, (ratio, heads) in enumerate(zip(mlp_ratios, num_heads, strict=True)):
        sample[f"mlp_ratio_{i}"] = ratio
        sample[f"num_head_{i}"] = heads
    return sample


#: The architectures the paper found (AutoFormer-Tiny, -Small, -Base), as samples of the space of
#: :data:`SPACE_CONFIGS` of the same size; only the decisions of the layers they have are given.
PRESETS: dict[str, dict[str, Any]] = {
    "autoformer-tiny": _searched(
        192,
        [3.5, 3.5, 3.0, 3.5, 3.0, 3.0, 4.0, 4.0, 3.5, 4.0, 3.5, 4.0, 3.5],
        [3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 4, 3, 3],
    ),
    "autoformer-small": _searched(
        384,
        [3.0, 3.5, 3.0, 3.5, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 3.5, 4.0],
        [6, 6, 5, 7, 5, 5, 5, 6, 6, 7, 7, 6, 7],
    ),
    "autoformer-base": _searched(
        576,
        [3.5, 3.5, 4.0, 3.5, 4.0, 3.5, 3.5, 3.0, 4.0, 4.0, 3.0, 4.0, 3.0, 3.5],
        [9, 9, 9, 9, 9, 10, 9, 9, 10, 9, 10, 9, 9, 10],
    ),
}

#: The space each preset belongs to.
PRESET_SPACES: dict[str, str] = {"autoformer-tiny": "tiny", "autoformer-small": "small", "autoformer-base": "base"}


# --- building blocks -------------------------------------------------------------------------------


@basic_unit
class DropPath(nn.Module):
    """Stochastic depth: in training, zero the whole residual branch of a sample with probability ``drop_prob``
    (and scale the kept ones by ``1 / (1 - drop_prob)``); in evaluation, the identity.

    A basic unit: the graph format keeps it as one node, so its train / eval behaviour is kept.
    """

    def __init__(self, drop_prob: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= drop_prob < 1.0:
            raise SearchSpaceError(f"DropPath: drop_prob must be in [0, 1), got {drop_prob!r}")
        self.drop_prob = drop_prob

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.drop_prob == 0.0:
            return x
        keep = 1.0 - self.drop_prob
        shape = (x.shape[0],) + (1,) * (x.dim() - 1)
        mask = x.new_empty(shape).bernoulli_(keep)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f"drop_prob={self.drop_prob}"


class PatchEmbedding(nn.Module):
    """Cut the image into ``patch_size`` x ``patch_size`` patches and embed each linearly: a convolution of
    kernel and stride ``patch_size`` to ``embed_dim`` channels, flattened to ``(batch, patches, embed_dim)``.

    ``embed_dim`` may be a choice (the convolution is a :class:`~nascore.nn.MutableConv2d`).
    """

    def __init__(self, in_channels: int, embed_dim: int | Mutable, patch_size: int) -> None:
        super().__init__()
        self.proj = MutableConv2d(in_channels, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class ClassToken(ParametrizedModule):
    """Prepend a learned class token (`ViT <https://arxiv.org/abs/2010.11929>`__) to the sequence of
    patch embeddings: ``(batch, n, embed_dim)`` to ``(batch, n + 1, embed_dim)``.

    ``embed_dim`` may be a choice: frozen, the token has that width; in a one-shot supernet it is
    the prefix of one token as wide as the largest choice (see :func:`oneshot_hooks`).
    """

    def __init__(self, embed_dim: int) -> None:
        super().__init__()
        self.embed_dim = embed_dim
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        nn.init.trunc_normal_(self.cls_token, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat((self.cls_token.expand(x.shape[0], -1, -1), x), dim=1)


class AbsolutePositionEmbedding(ParametrizedModule):
    """Add a learned position embedding to a sequence of ``length`` tokens of width ``embed_dim``.

    ``embed_dim`` may be a choice (the embedding's prefix in a one-shot supernet, as for :class:`ClassToken`).
    """

    def __init__(self, length: int, embed_dim: int) -> None:
        super().__init__()
        self.length = length
        self.embed_dim = embed_dim
        self.pos_embed = nn.Parameter(torch.zeros(1, length, embed_dim))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.pos_embed


@basic_unit
class RelativePosition2D(nn.Module):
    """Relative position embeddings of the tokens of a ``length`` x ``length`` grid of patches after a class
    token (`Shaw et al. <https://arxiv.org/abs/1803.02155>`__, in 2D as in AutoFormer): for every pair of
    tokens, the sum of an embedding of their vertical and of their horizontal distance (clipped to
    ``[-length, length]``); the class token has an embedding of its own.

    Called on a tensor whose second last dimension is the number of tokens ``N`` (the queries, shaped
    ``(batch, heads, N, head_dim)``), it returns the ``(N, N, head_dim)`` embeddings. A basic unit: the
    graph format keeps it as one node.
    """

    def __init__(self, head_dim: int, length: int = 14) -> None:
        super().__init__()
        self.head_dim = head_dim
        self.length = length
        self.embeddings_table_v = nn.Parameter(torch.zeros(2 * length + 2, head_dim))
        self.embeddings_table_h = nn.Parameter(torch.zeros(2 * length + 2, head_dim))
        nn.init.trunc_normal_(self.embeddings_table_v, std=0.02)
        nn.init.trunc_normal_(self.embeddings_table_h, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        patches = x.shape[-2] - 1  # the first token is the class token
        side = math.isqrt(patches)
        position = torch.arange(patches, device=self.embeddings_table_v.device)
        row, column = torch.div(position, side, rounding_mode="floor"), position % side
        vertical = (row[None, :] - row[:, None]).clamp(-self.length, self.length) + self.length + 1
        horizontal = (column[None, :] - column[:, None]).clamp(-self.length, self.length) + self.length + 1
        # Index 0 is the class token's distance to every token, and every token's to it.
        vertical = nn.functional.pad(vertical, (1, 0, 1, 0), value=0)
        horizontal = nn.functional.pad(horizontal, (1, 0, 1, 0), value=0)
        return self.embeddings_table_v[vertical] + self.embeddings_table_h[horizontal]

    def extra_repr(self) -> str:
        return f"head_dim={self.head_dim}, length={self.length}"


class SelfAttention(nn.Module):
    """Multi-head self-attention with a searchable number of heads of a fixed width (AutoFormer's attention).

    The query, key and value projections map ``embed_dim`` to ``num_heads * head_dim`` features and the
    output projection maps them back; all four are :class:`~nascore.nn.MutableLinear`, so ``embed_dim``
    and ``num_heads`` may be choices (their one-shot mixed operations use prefix slices of the largest
    projection: the first heads). Unlike ``nn.MultiheadAttention``, the width of a head does not depend
    on ``embed_dim`` and ``num_heads`` need not divide it. With ``rpe``, the attention adds the
    :class:`RelativePosition2D` embeddings of keys and values (``rpe_length``: patches per side of the image).

    :param embed_dim: the width of the tokens (in and out).
    :param num_heads: the number of heads.
    :param head_dim: the width of a head (64 in the paper).
    :param qkv_bias: whether the query, key and value projections have a bias.
    :param qk_scale: the scale of the attention logits (default ``head_dim ** -0.5``).
    :param attn_drop: dropout on the attention weights; ``proj_drop``: on the output.
    """

    def __init__(
        self,
        embed_dim: int | Mutable,
        num_heads: int | Mutable,
        head_dim: int = 64,
        *,
        qkv_bias: bool = False,
        qk_scale: float | None = None,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
        rpe: bool = False,
        rpe_length: int = 14,
    ) -> None:
        super().__init__()
        if isinstance(head_dim, Mutable) or not isinstance(head_dim, int) or head_dim <= 0:
            raise SearchSpaceError(
                f"SelfAttention: head_dim must be a fixed positive int (the searched width is num_heads), got {head_dim!r}"
            )
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.head_dim = head_dim
        self.scale = qk_scale if qk_scale is not None else head_dim**-0.5
        inner = num_heads * head_dim
        self.q = MutableLinear(embed_dim, inner, bias=qkv_bias)
        self.k = MutableLinear(embed_dim, inner, bias=qkv_bias)
        self.v = MutableLinear(embed_dim, inner, bias=qkv_bias)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = MutableLinear(inner, embed_dim)
        self.proj_drop = nn.Dropout(proj_drop)
        self.rpe = rpe
        if rpe:
            self.rel_pos_embed_k = RelativePosition2D(head_dim, rpe_length)
            self.rel_pos_embed_v = RelativePosition2D(head_dim, rpe_length)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        # (batch, tokens, heads * head_dim) -> (batch, heads, tokens, head_dim); the number of heads
        # follows the projection (a one-shot supernet may give the largest number, masked).
        return x.unflatten(-1, (-1, self.head_dim)).transpose(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self._heads(self.q(x)), self._heads(self.k(x)), self._heads(self.v(x))
        attn = (q @ k.transpose(-2, -1)) * self.scale
        if self.rpe:
            attn = attn + torch.einsum("bhnd,nmd->bhnm", q, self.rel_pos_embed_k(q)) * self.scale
        attn = self.attn_drop(attn.softmax(dim=-1))
        out = attn @ v
        if self.rpe:
            out = out + torch.einsum("bhnm,nmd->bhnd", attn, self.rel_pos_embed_v(q))
        return self.proj_drop(self.proj(out.transpose(1, 2).flatten(2)))


class MultiheadSelfAttention(nn.Module):
    """Self-attention by ``nn.MultiheadAttention`` on ``(batch, tokens, embed_dim)``: heads of width
    ``embed_dim / num_heads`` (the attention of :class:`TransformerEncoderLayer` with ``head_dim=None``).

    ``embed_dim`` and ``num_heads`` may be choices (a :class:`~nascore.nn.MutableMultiheadAttention`);
    every ``embed_dim`` must then be divisible by every ``num_heads``.
    """

    def __init__(self, embed_dim: int | Mutable, num_heads: int | Mutable, *, qkv_bias: bool, attn_drop: float) -> None:
        super().__init__()
        self.attn = MutableMultiheadAttention(embed_dim, num_heads, dropout=attn_drop, bias=qkv_bias, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.attn(x, x, x, need_weights=False)[0]


class TransformerEncoderLayer(nn.Module):
    """A transformer encoder layer of searchable widths: self-attention and an MLP, each in a residual branch
    with layer norm (before the branch with ``pre_norm``, else after the sum), dropout and drop path.

    The MLP is ``Linear(embed_dim, int(embed_dim * mlp_ratio))``, GELU, ``Linear(..., embed_dim)``;
    ``embed_dim``, ``num_heads`` and ``mlp_ratio`` may be choices. ``head_dim`` is the width of a head
    of :class:`SelfAttention`; ``head_dim=None`` uses ``nn.MultiheadAttention`` instead (as a
    :class:`~nascore.nn.MutableMultiheadAttention`: heads of width ``embed_dim / num_heads``, so every
    ``embed_dim`` must be divisible by every ``num_heads``, and no relative positions).
    """

    def __init__(
        self,
        embed_dim: int | Mutable,
        num_heads: int | Mutable,
        mlp_ratio: float | Mutable = 4.0,
        *,
        head_dim: int | None = 64,
        qkv_bias: bool = True,
        qk_scale: float | None = None,
        drop_rate: float = 0.0,
        attn_drop: float = 0.0,
        drop_path: float = 0.0,
        pre_norm: bool = True,
        rpe: bool = False,
        rpe_length: int = 14,
    ) -> None:
        super().__init__()
        self.pre_norm = pre_norm
        if head_dim is None:
            if rpe:
                raise SearchSpaceError(
                    "TransformerEncoderLayer: relative positions (rpe=True) need heads of a fixed width; "
                    "give head_dim (e.g. 64) or set rpe=False"
                )
            _check_divisible(embed_dim, num_heads)
            self.attn: nn.Module = MultiheadSelfAttention(embed_dim, num_heads, qkv_bias=qkv_bias, attn_drop=attn_drop)
        else:
            self.attn = SelfAttention(
                embed_dim, num_heads, head_dim, qkv_bias=qkv_bias, qk_scale=qk_scale, attn_drop=attn_drop,
                proj_drop=drop_rate, rpe=rpe, rpe_length=rpe_length,
            )
        self.attn_layer_norm = MutableLayerNorm(embed_dim)
        self.ffn_layer_norm = MutableLayerNorm(embed_dim)
        hidden = MutableExpression.to_int(embed_dim * mlp_ratio)
        self.fc1 = MutableLinear(embed_dim, hidden)
        self.activation = nn.GELU()
        self.fc2 = MutableLinear(hidden, embed_dim)
        self.dropout = nn.Dropout(drop_rate)
        self.drop_path = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x
        if self.pre_norm:
            x = self.attn_layer_norm(x)
        x = residual + self.drop_path(self.dropout(self.attn(x)))
        if not self.pre_norm:
            x = self.attn_layer_norm(x)
        residual = x
        if self.pre_norm:
            x = self.ffn_layer_norm(x)
        x = self.dropout(self.fc2(self.dropout(self.activation(self.fc1(x)))))
        x = residual + self.drop_path(x)
        if not self.pre_norm:
            x = self.ffn_layer_norm(x)
        return x


class ClassificationHead(nn.Module):
    """The classifier on the encoded tokens: layer norm (with ``pre_norm``; a post-norm encoder ends normalized),
    then the mean of the patch tokens (``global_pooling``) or the class token, then a linear layer to
    ``num_labels`` classes (none with ``num_labels=0``: the features)."""

    def __init__(self, embed_dim: int | Mutable, num_labels: int, *, pre_norm: bool = True, global_pooling: bool = True) -> None:
        super().__init__()
        self.global_pooling = global_pooling
        self.norm: nn.Module = MutableLayerNorm(embed_dim) if pre_norm else nn.Identity()
        self.head: nn.Module = MutableLinear(embed_dim, num_labels) if num_labels > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm(x)
        x = x[:, 1:].mean(dim=1) if self.global_pooling else x[:, 0]
        return self.head(x)


def _check_divisible(embed_dim: Any, num_heads: Any) -> None:
    embeds = _values(embed_dim)
    heads = _values(num_heads)
    bad = [(e, h) for e in embeds for h in heads if e % h]
    if bad:
        raise SearchSpaceError(
            f"with head_dim=None (nn.MultiheadAttention) every embed_dim must be divisible by every num_heads, but "
            f"{', '.join(f'{e} by {h}' for e, h in bad)} are not; give head_dim (heads of a fixed width, as in the "
            "paper) or change the choices"
        )


def _values(value: Any) -> list[Any]:
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, Mutable):
        return list(getattr(value, "values", [value.default()]))
    return [value]


# --- the model space -------------------------------------------------------------------------------


def _choices(name: str, values: Any, kind: type | tuple[type, ...]) -> list[Any]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values:
        raise SearchSpaceError(f"AutoFormer: {name} must be a non-empty list or tuple of values, got {values!r}")
    for value in values:
        if isinstance(value, bool) or not isinstance(value, kind) or value <= 0:
            raise SearchSpaceError(f"AutoFormer: every value of {name} must be a positive number, got {value!r} in {values!r}")
    if len(set(values)) != len(values):
        raise SearchSpaceError(f"AutoFormer: {name} has duplicate values: {values!r}")
    return list(values)


class AutoFormer(PresetSpace, ModelSpace):
    """The AutoFormer search space (Chen et al., "AutoFormer: Searching Transformers for Visual Recognition",
    ICCV 2021, https://arxiv.org/abs/2107.00651).

    A vision transformer: a :class:`PatchEmbedding` of ``patch_size`` patches, a :class:`ClassToken`,
    an :class:`AbsolutePositionEmbedding` (with ``absolute_position``), a ``Repeat`` of
    :class:`TransformerEncoderLayer` (with :class:`RelativePosition2D` embeddings in the attention with
    ``rpe``), and a :class:`ClassificationHead`. The decisions, labelled as in NNI:

    * ``"embed_dim"``: the width of every token, one of ``search_embed_dim``;
    * ``"depth"``: the number of layers, one of ``search_depth``;
    * ``"num_head_<i>"`` and ``"mlp_ratio_<i>"`` for each layer ``i`` (from 0), one of
      ``search_num_heads`` and ``search_mlp_ratio``: active only in the layers the depth keeps.

    ``space_size()`` is therefore ``E * sum(d in D) (H * R) ** d`` for ``E`` embedding dims, depths
    ``D``, ``H`` head counts and ``R`` MLP ratios: ``3 * (6**12 + 6**13 + 6**14) = 280,804,921,344``
    for the default (the paper's "tiny" space), ``77,103,263,459,313`` for "small" and
    ``6,245,364,340,204,353`` for "base" (:meth:`from_config`).

    :param search_embed_dim: the choices of the embedding dimension.
    :param search_mlp_ratio: the choices of the MLP ratio of each layer.
    :param search_num_heads: the choices of the number of heads of each layer.
    :param search_depth: the choices of the depth.
    :param img_size: the side of the (square) input images; a multiple of ``patch_size``.
    :param patch_size: the side of a patch.
    :param in_channels: the channels of the input images.
    :param num_labels: the classes of the classifier (0: no classifier, the features).
    :param head_dim: the width of an attention head (64 in the paper); ``None``: ``nn.MultiheadAttention``
        with heads of width ``embed_dim / num_heads`` (every embedding dim must be divisible by every
        head count, and ``rpe`` must be off).
    :param qkv_bias: whether the query, key and value projections have biases.
    :param drop_rate: dropout after the attention and in the MLP.
    :param attn_drop_rate: dropout on the attention weights.
    :param drop_path_rate: the drop path rate of the last layer (growing linearly from 0 in the first).
    :param pre_norm: layer norm before each residual branch (else after each sum).
    :param global_pooling: classify the mean of the patch tokens (else the class token).
    :param absolute_position: whether to add a learned position embedding.
    :param qk_scale: the scale of the attention logits (default ``head_dim ** -0.5``).
    :param rpe: whether the attention uses relative position embeddings.

    Fixed architectures: :data:`SPACE_CONFIGS` holds the init arguments of the paper's spaces
    (:meth:`space_config`, :meth:`from_config`), :data:`PRESETS` the searched AutoFormer-Tiny / Small /
    Base (``"autoformer-tiny"``, ``"autoformer-small"``, ``"autoformer-base"``): :meth:`preset` gives a
    sample, :meth:`load_preset` the model, built in the preset's space unless other init arguments are
    given. Pretrained weights are not loaded (nothing downloads).
    """

    PRESETS: ClassVar[Mapping[str, Mapping[str, Any]]] = PRESETS
    PRESET_NAMES: ClassVar[tuple[str, ...]] = tuple(PRESETS)
    SPACE_CONFIGS: ClassVar[Mapping[str, Mapping[str, tuple[Any, ...]]]] = SPACE_CONFIGS

    def __init__(
        self,
        search_embed_dim: Sequence[int] = (192, 216, 240),
        search_mlp_ratio: Sequence[float] = (3.0, 3.5, 4.0),
        search_num_heads: Sequence[int] = (3, 4),
        search_depth: Sequence[int] = (12, 13, 14),
        img_size: int = 224,
        patch_size: int = 16,
        in_channels: int = 3,
        num_labels: int = 1000,
        head_dim: int | None = 64,
        qkv_bias: bool = True,
        drop_rate: float = 0.0,
        attn_drop_rate: float = 0.0,
        drop_path_rate: float = 0.1,
        pre_norm: bool = True,
        global_pooling: bool = True,
        absolute_position: bool = True,
        qk_scale: float | None = None,
        rpe: bool = True,
    ) -> None:
        super().__init__()
        embed_dims = _choices("search_embed_dim", search_embed_dim, int)
        mlp_ratios = _choices("search_mlp_ratio", search_mlp_ratio, (int, float))
        head_counts = _choices("search_num_heads", search_num_heads, int)
        depths = _choices("search_depth", search_depth, int)
        for name, value in (("img_size", img_size), ("patch_size", patch_size), ("in_channels", in_channels)):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise SearchSpaceError(f"AutoFormer: {name} must be a positive int, got {value!r}")
        if img_size % patch_size:
            raise SearchSpaceError(
                f"AutoFormer: img_size {img_size} is not a multiple of patch_size {patch_size}; the image must split "
                "into whole patches (e.g. img_size=224, patch_size=16)"
            )
        if head_dim is None and rpe:
            raise SearchSpaceError(
                "AutoFormer: relative positions (rpe=True) need heads of a fixed width; give head_dim (64 in the "
                "paper) or set rpe=False"
            )
        if head_dim is not None and (isinstance(head_dim, bool) or not isinstance(head_dim, int) or head_dim <= 0):
            raise SearchSpaceError(f"AutoFormer: head_dim must be a positive int or None, got {head_dim!r}")
        if head_dim is None:
            _check_divisible(embed_dims, head_counts)
        max_depth = max(depths)
        self.img_size = img_size
        self.patch_size = patch_size
        self.num_patches = (img_size // patch_size) ** 2
        self.num_labels = num_labels

        embed_dim = nascore.choice("embed_dim", embed_dims)
        depth = nascore.choice("depth", depths)
        ratios = [nascore.choice(f"mlp_ratio_{i}", mlp_ratios) for i in range(max_depth)]
        heads = [nascore.choice(f"num_head_{i}", head_counts) for i in range(max_depth)]
        # Stochastic depth: the drop path rate grows linearly from 0 (first layer) to drop_path_rate (last).
        rates = [drop_path_rate * i / (max_depth - 1) for i in range(max_depth)] if max_depth > 1 else [0.0]

        self.patch_embed = PatchEmbedding(in_channels, embed_dim, patch_size)
        self.cls_token = ClassToken(embed_dim)
        self.pos_embed: nn.Module = (
            AbsolutePositionEmbedding(self.num_patches + 1, embed_dim) if absolute_position else nn.Identity()
        )
        self.blocks = Repeat(
            lambda index: TransformerEncoderLayer(
                embed_dim, heads[index], ratios[index], head_dim=head_dim, qkv_bias=qkv_bias, qk_scale=qk_scale,
                drop_rate=drop_rate, attn_drop=attn_drop_rate, drop_path=rates[index], pre_norm=pre_norm, rpe=rpe,
                rpe_length=img_size // patch_size,
            ),
            depth,
            label="blocks",
        )
        self.head = ClassificationHead(embed_dim, num_labels, pre_norm=pre_norm, global_pooling=global_pooling)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pos_embed(self.cls_token(self.patch_embed(x)))
        return self.head(self.blocks(x))

    # --- the paper's spaces and architectures ---------------------------------------------------------

    @classmethod
    def space_config(cls, name: str) -> dict[str, tuple[Any, ...]]:
        """The init arguments of the paper's space ``name`` (``"tiny"``, ``"small"``, ``"base"``)."""
        if name not in SPACE_CONFIGS:
            known = ", ".join(map(repr, SPACE_CONFIGS))
            raise UnknownPresetError(f"AutoFormer has no space config {name!r}; the configs are {known}")
        return dict(SPACE_CONFIGS[name])

    @classmethod
    def from_config(cls, name: str, **kwargs: Any) -> AutoFormer:
        """The paper's space ``name`` (``"tiny"``, ``"small"``, ``"base"``); ``kwargs`` are further init arguments
        (``img_size``, ``num_labels``, ...)."""
        return cls(**{**cls.space_config(name), **kwargs})

    @classmethod
    def load_preset(cls, arch: str | Mapping[str, Any], **kwargs: Any) -> Any:
        """The model of ``arch`` (a preset name or a sample) with fresh weights. A preset is built in its own
        space (:data:`PRESET_SPACES`) unless ``kwargs`` give the ``search_*`` arguments; other init
        arguments (``img_size``, ``num_labels``, ...) apply as given."""
        if isinstance(arch, str) and arch in PRESET_SPACES:
            kwargs = {**cls.space_config(PRESET_SPACES[arch]), **kwargs}
        return super().load_preset(arch, **kwargs)

    @classmethod
    def extra_oneshot_hooks(cls, strategy: Any = None) -> list[Callable[..., Any]]:
        """The mutation hooks one-shot strategies add for this space: see :func:`oneshot_hooks`."""
        return oneshot_hooks()


# --- one-shot -------------------------------------------------------------------------------------


def oneshot_hooks() -> list[Callable[..., Any]]:
    """Mutation hooks turning :class:`ClassToken` and :class:`AbsolutePositionEmbedding` with a choice of
    ``embed_dim`` into mixed operations of a one-shot supernet: the parameter is as wide as the largest
    choice and a choice uses its prefix (masked in the super layout by differentiable strategies).

    :class:`AutoFormer` passes them to every one-shot strategy; pass them as ``mutation_hooks`` to search
    another space using these modules. Needs the ``nascore-strategies`` plugin.
    """
    from nascore_hub.spaces.autoformer_oneshot import MixedAbsolutePositionEmbedding, MixedClassToken

    return [MixedClassToken.mutate, MixedAbsolutePositionEmbedding.mutate]
