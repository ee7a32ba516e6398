"""PyTorch search-space primitives.

``ModelSpace`` is the root of a space; ``LayerChoice``, ``InputChoice``, ``Repeat`` and ``Cell``
mutate the structure; ``ParametrizedModule`` and the ``Mutable<Layer>`` wrappers (``MutableConv2d``,
``MutableLinear``, ... one for every ``torch.nn`` layer) take choices in their init arguments;
``fixed_arch`` builds a space directly as one frozen model.
"""

from nascore.nn import layers as _layers
from nascore.nn.base import (
    ModelSpace,
    MutableModule,
    ParametrizedModule,
    fixed_arch,
    freeze_tree,
    is_frozen_build,
    model_context,
)
from nascore.nn.basic_unit import basic_unit, is_basic_unit
from nascore.nn.cell import Cell
from nascore.nn.choice import ChosenInputs, InputChoice, LayerChoice
from nascore.nn.layers import *  # noqa: F403 - the generated Mutable<Layer> wrappers
from nascore.nn.repeat import Repeat

__all__ = [
    "Cell",
    "ChosenInputs",
    "InputChoice",
    "LayerChoice",
    "ModelSpace",
    "MutableModule",
    "ParametrizedModule",
    "Repeat",
    "basic_unit",
    "fixed_arch",
    "freeze_tree",
    "is_basic_unit",
    "is_frozen_build",
    "model_context",
    *_layers.__all__,
]
