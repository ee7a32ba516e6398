"""Supernet modules: differentiable, path-sampling and proxyless versions of every primitive, and mixed operations."""

from nascore_strategies.oneshot.supermodule.base import ArchParameters, BaseSuperNetModule, weighted_sum
from nascore_strategies.oneshot.supermodule.differentiable import (
    DifferentiableMixedCell,
    DifferentiableMixedInput,
    DifferentiableMixedLayer,
    DifferentiableMixedRepeat,
)
from nascore_strategies.oneshot.supermodule.operation import (
    NATIVE_MIXED_OPERATIONS,
    MixedBatchNorm2d,
    MixedConv2d,
    MixedLayerNorm,
    MixedLinear,
    MixedMultiheadAttention,
    MixedOperation,
    mixed_operation_hook,
)
from nascore_strategies.oneshot.supermodule.proxyless import (
    ProxylessMixedCell,
    ProxylessMixedInput,
    ProxylessMixedLayer,
    ProxylessMixedRepeat,
)
from nascore_strategies.oneshot.supermodule.sampling import (
    PathSamplingCell,
    PathSamplingInput,
    PathSamplingLayer,
    PathSamplingRepeat,
)

__all__ = [
    "NATIVE_MIXED_OPERATIONS",
    "ArchParameters",
    "BaseSuperNetModule",
    "DifferentiableMixedCell",
    "DifferentiableMixedInput",
    "DifferentiableMixedLayer",
    "DifferentiableMixedRepeat",
    "MixedBatchNorm2d",
    "MixedConv2d",
    "MixedLayerNorm",
    "MixedLinear",
    "MixedMultiheadAttention",
    "MixedOperation",
    "PathSamplingCell",
    "PathSamplingInput",
    "PathSamplingLayer",
    "PathSamplingRepeat",
    "ProxylessMixedCell",
    "ProxylessMixedInput",
    "ProxylessMixedLayer",
    "ProxylessMixedRepeat",
    "mixed_operation_hook",
    "weighted_sum",
]
