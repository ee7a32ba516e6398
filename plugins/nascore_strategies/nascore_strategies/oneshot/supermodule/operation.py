"""Mixed operations: layers whose init arguments are choices, with weights shared by every choice.

A ``MutableConv2d(3, nascore.choice("width", [16, 32, 64]), kernel_size=choice(...))`` becomes a
:class:`MixedConv2d` holding one *super* weight, as large as the largest choice; every choice uses a
slice of it (channels: the prefix; kernel: the centred square, floored to the top left when the
sizes differ by an odd number). The same mixed operation serves every algorithm (``mode``):

* ``"sampling"``: the layer runs with the sampled values, on slices of the super weight; its
  output is exactly that of the plain layer with those values and sliced weights.
* ``"differentiable"``: the output is the expectation over the choices, in the *super layout*
  (the largest channel / feature size, zeros beyond the chosen size). Where the layer is linear in
  a choice (channels, kernel size with matching padding: FBNetV2's trick) the choices are mixed by
  masking the super weight with the weighted sum of the choices' masks, in one run of the layer;
  any other choice (groups, stride, dilation, LayerNorm shapes, attention sizes) is enumerated,
  each combination runs, and the outputs are mixed (they must agree in shape).
* ``"proxyless"``: the sampled values run in the super layout, and binary gates give the
  gradient of each decision's architecture parameters.

Supported arguments: ``Conv2d`` (in/out channels, kernel size, stride, padding, dilation, groups),
``Linear`` (in/out features), ``BatchNorm2d`` (features; eps and momentum when sampling),
``LayerNorm`` (normalized shape, eps) and ``MultiheadAttention`` (embed dim, heads, dropout).
Write a subclass of :class:`MixedOperation` (and pass its ``mutate`` as a mutation hook) to support
another layer.
"""

from __future__ import annotations

import inspect
import itertools
from typing import Any, ClassVar

import torch
import torch.nn as nn
import torch.nn.functional as F

from nascore.errors import StrategyError
from nascore.nn import ParametrizedModule
from nascore.space import Categorical, LabelledMutable, Sample
from nascore.space.mutable import contains_mutable
from nascore_strategies.oneshot.supermodule._expression import MAX_COMBINATIONS, ArgumentChoice, one_hot
from nascore_strategies.oneshot.supermodule.base import (
    MODES,
    ArchParameters,
    BaseSuperNetModule,
    attach,
    weighted_sum,
)
from nascore_strategies.oneshot.supermodule.sampling import _rng

__all__ = [
    "MixedBatchNorm2d",
    "MixedConv2d",
    "MixedLayerNorm",
    "MixedLinear",
    "MixedMultiheadAttention",
    "MixedOperation",
    "NATIVE_MIXED_OPERATIONS",
    "Weighted",
    "mixed_operation_hook",
]


class Weighted:
    """A choice argument under a distribution: a weight for each of ``choice.values``."""

    __slots__ = ("choice", "weights")

    def __init__(self, choice: ArgumentChoice, weights: torch.Tensor) -> None:
        self.choice = choice
        self.weights = weights

    def __repr__(self) -> str:
        return f"Weighted({self.choice.values!r})"


def _pair(value: Any) -> tuple[Any, Any]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)  # type: ignore[return-value]


def pad_dim(x: torch.Tensor, dim: int, size: int) -> torch.Tensor:
    """``x`` zero-padded at the end of ``dim`` to ``size`` (unchanged when already that large)."""
    dim = dim % x.dim()
    missing = size - x.shape[dim]
    if missing <= 0:
        return x
    pad = [0, 0] * (x.dim() - dim - 1) + [0, missing]
    return F.pad(x, pad)


def slice_dim(x: torch.Tensor, dim: int, size: int) -> torch.Tensor:
    """The first ``size`` entries of ``x`` along ``dim``."""
    if x.shape[dim] == size:
        return x
    return x.narrow(dim, 0, size)


class MixedOperation(BaseSuperNetModule):
    """Base class of mixed operations.

    A subclass names the layer it replaces (``bound_type``) and the arguments that may be choices
    (``argument_list``; ``sampling_only`` for those only a sampling strategy can search), and
    implements :meth:`super_init_argument` (the argument of the super layer),
    :meth:`forward_with_args` (the layer for concrete values) and :meth:`forward_weighted` (the
    layer in the super layout, for concrete values or :class:`Weighted` ones of the arguments in
    :attr:`maskable`).
    """

    bound_type: ClassVar[type[nn.Module]]
    argument_list: ClassVar[tuple[str, ...]] = ()
    sampling_only: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, module: ParametrizedModule, mode: str, arch: ArchParameters | None, where: str) -> None:
        if mode not in MODES:
            raise StrategyError(f"{where}: unknown supernet mode {mode!r}; expected one of {MODES}")
        arguments = self._bind(module.trace_args, module.trace_kwargs, where)
        choices: dict[str, ArgumentChoice] = {}
        for name, value in arguments.items():
            if not contains_mutable(value):
                continue
            if name not in self.argument_list:
                raise StrategyError(
                    f"{where}: argument {name!r} of nn.{self.bound_type.__name__} is a choice, which the mixed "
                    f"operation cannot share weights over (it supports {', '.join(self.argument_list)}). "
                    "Make it a LayerChoice between fixed layers, or write a mutation hook for it"
                )
            if mode != "sampling" and name in self.sampling_only:
                raise StrategyError(
                    f"{where}: argument {name!r} of nn.{self.bound_type.__name__} can only be searched by a sampling "
                    "strategy (random-oneshot, enas); make it fixed, or a LayerChoice between fixed layers"
                )
            choices[name] = ArgumentChoice(name, value, where)
        super_arguments = {
            name: (self.super_init_argument(name, choices[name]) if name in choices else value)
            for name, value in arguments.items()
        }
        self.__dict__["where"] = where  # for messages of init_layer (before nn.Module.__init__ has run)
        self.init_layer(super_arguments, arguments, choices)
        self.where = where
        self.mode = mode
        self.arguments = arguments
        self.mutable_arguments = choices
        leaves: dict[str, Categorical] = {}
        for choice in choices.values():
            for leaf in choice.leaves:
                leaves.setdefault(leaf.label, leaf)
        self.leaves = leaves
        attach(self, "arch", arch)
        if mode != "sampling":
            if arch is None:
                raise StrategyError(f"{where}: a {mode} mixed operation needs architecture parameters")
            for leaf in leaves.values():
                arch.register(leaf, where)
        self.__dict__["_sampled"] = {label: leaf.default_value() for label, leaf in leaves.items()}
        self.maskable: set[str] = set(self.maskable_arguments()) & set(choices)
        branch = [label for name, c in choices.items() if name not in self.maskable for label in c.labels]
        self.branch_labels = list(dict.fromkeys(branch))
        #: Per maskable argument, its mask matrix's contents: modules whose matrices are equal share the
        #: weighted mask of a forward pass (:meth:`mask`).
        self._mask_keys: dict[str, tuple[Any, ...]] = {}
        self._mask_buffers: dict[str, str] = {}  # the buffer of each maskable argument's mask matrix
        for name in self.maskable:
            rows = [self.mask_row(name, value) for value in choices[name].values]
            matrix = torch.stack(rows).float()
            self._mask_buffers[name] = f"_mask_{name}"
            self.register_buffer(self._mask_buffers[name], matrix, persistent=False)
            self._mask_keys[name] = (tuple(matrix.shape), matrix.numpy().tobytes())

    # --- what a subclass defines ----------------------------------------------------------------

    def init_layer(self, super_arguments: dict[str, Any], arguments: dict[str, Any], choices: dict[str, ArgumentChoice]) -> None:
        """Initialize the super layer (by default: the bound layer with the super arguments)."""
        self.bound_type.__init__(self, **super_arguments)

    def super_init_argument(self, name: str, choice: ArgumentChoice) -> Any:
        """The value of argument ``name`` for the super layer (by default the largest)."""
        return max(choice.values)

    def maskable_arguments(self) -> set[str]:
        """The choice arguments :meth:`forward_weighted` takes as :class:`Weighted` (mixed by masks)."""
        return set()

    def mask_row(self, name: str, value: Any) -> torch.Tensor:
        """The mask of one value of a maskable argument (a flat 0/1 vector)."""
        raise NotImplementedError

    def forward_with_args(self, args: dict[str, Any], *inputs: Any, **kwargs: Any) -> Any:
        """The layer for concrete values of every argument, on slices of the super weights."""
        raise NotImplementedError

    def forward_weighted(self, args: dict[str, Any], *inputs: Any, **kwargs: Any) -> Any:
        """The layer in the super layout; maskable arguments may be :class:`Weighted`."""
        raise NotImplementedError

    # --- helpers for subclasses ------------------------------------------------------------------

    def check_input_width(self, size: int, largest: int, argument: str, what: str) -> None:
        """Refuse an input wider than the largest value of ``argument``: no candidate could take it.

        Slicing it would hide the error and export architectures that cannot be built.
        """
        if size <= largest:
            return
        choice = self.mutable_arguments.get(argument)
        decided = f" (decided by {', '.join(map(repr, choice.labels))})" if choice is not None else ""
        raise StrategyError(
            f"{self.where}: the input has {size} {what}, more than the largest {argument} of this "
            f"nn.{self.bound_type.__name__} ({largest}){decided}. No candidate can take it, so every exported "
            f"model would fail to build: make the layer before it give at most {largest} {what}, or add {size} "
            f"to the candidates of {argument}"
        )

    def mask(self, name: str, value: Any) -> torch.Tensor:
        """The (weighted) mask of a maskable argument: concrete value or :class:`Weighted`.

        A weighted mask is computed once per forward pass for every module with an equal mask matrix and
        the same weights: the convolution, batch norm and linear layer of one ``width`` decision share it.
        """
        matrix: torch.Tensor = self._buffers[self._mask_buffers[name]]  # type: ignore[assignment]
        if isinstance(value, Weighted):
            weights = value.weights
            if self.arch is None:
                return _weighted_rows(weights, matrix)
            # The entry keeps ``weights`` alive, so no other tensor takes its id while the pass lasts.
            key = ("mask", self._mask_keys[name], matrix.dtype, matrix.device, id(weights))
            return self.arch.per_pass(key, lambda: (weights, _weighted_rows(weights, matrix)))[1]
        return matrix[self.mutable_arguments[name].index_of(value)]

    # --- supernet module API ----------------------------------------------------------------------

    @classmethod
    def _bind(cls, args: tuple[Any, ...], kwargs: dict[str, Any], where: str) -> dict[str, Any]:
        try:
            bound = inspect.signature(cls.bound_type.__init__).bind(None, *args, **kwargs)
        except TypeError as exc:
            raise StrategyError(f"{where}: cannot read the arguments of nn.{cls.bound_type.__name__}: {exc}") from None
        bound.apply_defaults()
        arguments = dict(bound.arguments)
        arguments.pop(next(iter(arguments)))  # self
        return arguments

    def search_space_spec(self) -> dict[str, LabelledMutable]:
        return dict(self.leaves)

    def resample(self, memo: Sample) -> Sample:
        if self.mode == "differentiable":
            return {}
        sampled: Sample = {}
        for label, leaf in self.leaves.items():
            if label not in memo:
                if self.mode == "proxyless":
                    from nascore_strategies.oneshot.supermodule.proxyless import sample_from_alpha

                    memo[label] = sample_from_alpha(self.arch, label)
                else:
                    memo[label] = leaf.random_value(_rng)
            sampled[label] = memo[label]
        self.__dict__["_sampled"] = sampled
        return dict(sampled)

    def export(self, memo: Sample) -> Sample:
        if self.arch is not None and self.mode != "sampling":
            return {label: self.arch.export(label) for label in self.leaves if label not in memo}
        return {label: value for label, value in self._sampled.items() if label not in memo}

    def export_probs(self, memo: Sample) -> dict[str, dict[Any, float]]:
        if self.arch is None or self.mode == "sampling":
            return super().export_probs(memo)
        probs = self.arch.export_probs()
        return {label: probs[label] for label in self.leaves if label not in memo}

    @classmethod
    def mutate(cls, module: nn.Module, name: str, memo: dict[str, Any], mutate_kwargs: dict[str, Any]) -> Any:
        if isinstance(module, ParametrizedModule) and module.mutables and _wrapped(module) is cls.bound_type:
            return cls(module, mutate_kwargs["mode"], mutate_kwargs.get("arch"), _where(module, name))
        return None

    # --- forward --------------------------------------------------------------------------------------

    def frozen(self, sample: Sample) -> nn.Module:
        """The plain layer for ``sample``: its arguments' values, and its slice of the super weights."""
        args = self.concrete_arguments(sample)
        layer = self.bound_type(**args)
        reference = next(iter(self.parameters()), None)
        if reference is not None:
            layer = layer.to(device=reference.device, dtype=reference.dtype)
        with torch.no_grad():
            layer.load_state_dict(self.sliced_state(args, layer.state_dict()))
        return layer.train(self.training)

    def sliced_state(self, args: dict[str, Any], shapes: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The state of the plain layer for ``args`` (``shapes``: its own state dict) taken from the super
        layer: by default the leading slice of each tensor (prefix channels, features)."""
        own = self.state_dict()
        return {name: own[name][tuple(slice(0, n) for n in tensor.shape)].clone() for name, tensor in shapes.items()}

    def concrete_arguments(self, sample: Sample) -> dict[str, Any]:
        args = dict(self.arguments)
        for name, choice in self.mutable_arguments.items():
            args[name] = choice.value(sample)
        return args

    def forward(self, *inputs: Any, **kwargs: Any) -> Any:
        if self.mode == "sampling":
            return self.forward_with_args(self.concrete_arguments(self._sampled), *inputs, **kwargs)
        if self.mode == "differentiable":
            leaf_weights = {label: self.arch.weights(label) for label in self.leaves}
            return self._mixed(leaf_weights, None, inputs, kwargs)
        return self._proxyless_forward(inputs, kwargs)

    def _arguments(self, leaf_weights: dict[str, torch.Tensor], fixed: Sample) -> dict[str, Any]:
        """The layer's arguments: a choice whose decisions are all in ``fixed`` takes its value, any other is
        :class:`Weighted` by ``leaf_weights`` (this runs for every mixed layer on every differentiable pass)."""
        args = self.arguments.copy()
        for name, choice in self.mutable_arguments.items():
            if fixed and all(label in fixed for label in choice.labels):
                args[name] = choice.value(fixed)
            else:
                args[name] = Weighted(choice, choice.weights(leaf_weights))
        return args

    def _mixed(self, leaf_weights: dict[str, torch.Tensor], fixed: Sample | None, inputs: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Expectation over the choices; with ``fixed`` the branch decisions take those values."""
        if not self.branch_labels:
            return self.forward_weighted(self._arguments(leaf_weights, fixed or {}), *inputs, **kwargs)
        if fixed is not None:
            return self.forward_weighted(self._arguments(leaf_weights, fixed), *inputs, **kwargs)
        leaves = [self.leaves[label] for label in self.branch_labels]
        outputs: list[Any] = []
        weights: list[torch.Tensor] = []
        for indices in itertools.product(*(range(len(leaf.values)) for leaf in leaves)):
            branch = {leaf.label: leaf.values[i] for leaf, i in zip(leaves, indices)}
            conditioned = dict(leaf_weights)
            weight = None
            for leaf, i in zip(leaves, indices):
                vector = leaf_weights[leaf.label]
                conditioned[leaf.label] = one_hot(len(leaf.values), i, vector)
                weight = vector[i] if weight is None else weight * vector[i]
            outputs.append(self.forward_weighted(self._arguments(conditioned, branch), *inputs, **kwargs))
            weights.append(weight)  # type: ignore[arg-type]
        return weighted_sum(outputs, torch.stack(weights), self.where)

    def _proxyless_forward(self, inputs: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        from nascore_strategies.oneshot.supermodule.proxyless import binary_gate

        def run(sample: Sample) -> Any:
            # Every decision is fixed to its sampled value: the layer runs once, in the super layout.
            return self._mixed({}, sample, inputs, kwargs)

        output = run(self._sampled)
        if not (self.arch.binary_gates and torch.is_grad_enabled()):
            return output
        for label, leaf in self.leaves.items():
            alpha = self.arch.alpha(label)
            if not alpha.requires_grad:
                continue

            def recompute(k: int, label: str = label, leaf: Categorical = leaf) -> Any:
                return run({**self._sampled, label: leaf.values[k]})

            output = binary_gate(alpha, output, recompute, leaf.index_of(self._sampled[label]), self.where)
        return output

    def extra_repr(self) -> str:
        choices = ", ".join(f"{name}={choice.values}" for name, choice in self.mutable_arguments.items())
        return f"mode={self.mode!r}, {choices}"


def _weighted_rows(weights: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    """``weights @ matrix`` (the rows of ``matrix`` weighted and added up) as one matrix-vector product."""
    return torch.mv(matrix.t(), weights if weights.dtype == matrix.dtype else weights.to(matrix.dtype))


def _wrapped(module: nn.Module) -> type[nn.Module] | None:
    if not isinstance(module, ParametrizedModule):
        return None
    return type(module).wrapped_layer(inherited=True)


def _where(module: nn.Module, name: str) -> str:
    labels = ", ".join(repr(m.label) for m in getattr(module, "mutables", []) if hasattr(m, "label"))
    if not labels:
        from nascore.space import collect_mutables

        labels = ", ".join(repr(m.label) for m in collect_mutables(getattr(module, "mutables", [])))
    return f"module {name!r} ({type(module).__name__} {labels})"


# --- Linear ------------------------------------------------------------------------------------------


class MixedLinear(MixedOperation, nn.Linear):
    """``nn.Linear`` with choices of ``in_features`` / ``out_features`` (prefix slices of the super weight)."""

    bound_type = nn.Linear
    argument_list = ("in_features", "out_features")

    def maskable_arguments(self) -> set[str]:
        return {"in_features", "out_features"}

    def mask_row(self, name: str, value: Any) -> torch.Tensor:
        size = self.in_features if name == "in_features" else self.out_features
        return (torch.arange(size) < value).float()

    def forward_with_args(self, args: dict[str, Any], x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        in_features, out_features = args["in_features"], args["out_features"]
        self.check_input_width(x.shape[-1], self.in_features, "in_features", "features")
        weight = self.weight[:out_features, :in_features]
        bias = self.bias[:out_features] if self.bias is not None else None
        return F.linear(slice_dim(x, -1, in_features) if x.shape[-1] > in_features else x, weight, bias)

    def forward_weighted(self, args: dict[str, Any], x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        weight, bias = self.weight, self.bias
        self.check_input_width(x.shape[-1], self.in_features, "in_features", "features")
        if "in_features" in self.mutable_arguments:
            x = pad_dim(x, -1, self.in_features)
            weight = weight * self.mask("in_features", args["in_features"])  # broadcast over the rows
        if "out_features" in self.mutable_arguments:
            mask = self.mask("out_features", args["out_features"])
            weight = weight * mask.unsqueeze(1)
            bias = bias * mask if bias is not None else None
        return F.linear(x, weight, bias)


# --- Conv2d ------------------------------------------------------------------------------------------


def _effective_padding(padding: Any, kernel: tuple[int, int], dilation: tuple[int, int]) -> tuple[int, int] | None:
    """Symmetric zero padding per dimension, or ``None`` when it is not symmetric ("same" with an even span)."""
    if padding == "valid":
        return (0, 0)
    if padding == "same":
        result = []
        for k, d in zip(kernel, dilation):
            span = d * (k - 1)
            if span % 2:
                return None
            result.append(span // 2)
        return (result[0], result[1])
    return _pair(padding)  # type: ignore[return-value]


class MixedConv2d(MixedOperation, nn.Conv2d):
    """``nn.Conv2d`` with choices of channels, kernel size, stride, padding, dilation and groups.

    The super weight is ``(max out_channels, max in_channels // groups, max kh, max kw)``; a choice
    uses its prefix channels and the centred kernel. Differentiable: channels (with ``groups=1``)
    and kernel sizes whose padding keeps the output size (``padding = dilation * (k - 1) / 2``) are
    mixed by masks; groups, stride, dilation and other paddings are enumerated.
    """

    bound_type = nn.Conv2d
    argument_list = ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "groups")

    def init_layer(self, super_arguments: dict[str, Any], arguments: dict[str, Any], choices: dict[str, ArgumentChoice]) -> None:
        self._check_groups(arguments, choices)
        in_channels, groups = arguments["in_channels"], arguments["groups"]
        if "in_channels" in choices or "groups" in choices:
            pairs = ArgumentChoice("in_channels/groups", (in_channels, groups), "conv")
            in_per_group = max(a // g for a, g in pairs.values)
        else:
            in_per_group = in_channels // groups
        kernels = [_pair(k) for k in (choices["kernel_size"].values if "kernel_size" in choices else [arguments["kernel_size"]])]
        self.max_kernel = (max(k[0] for k in kernels), max(k[1] for k in kernels))
        self.max_in_channels = max(choices["in_channels"].values) if "in_channels" in choices else in_channels
        self.conv_padding_mode = arguments["padding_mode"]
        nn.Conv2d.__init__(
            self,
            in_channels=in_per_group,
            out_channels=super_arguments["out_channels"],
            kernel_size=self.max_kernel,
            bias=arguments["bias"],
            device=arguments.get("device"),
            dtype=arguments.get("dtype"),
        )
        self.super_padding: tuple[int, int] | None = self._kernel_mask_padding(arguments, choices)

    def _check_groups(self, arguments: dict[str, Any], choices: dict[str, ArgumentChoice]) -> None:
        """Refuse up front the combinations of channels and groups that no conv can have.

        ``groups`` may follow ``in_channels`` (a depthwise conv: ``groups=in_channels``) while
        ``out_channels`` is a choice of its own: every combination the decisions can make must have
        both channel counts divisible by ``groups``, or the space itself could not build that model.
        """
        names = [n for n in ("in_channels", "out_channels", "groups") if n in choices]
        if not names or "groups" not in choices and arguments["groups"] == 1:
            return
        leaves: dict[str, Categorical] = {}
        for name in names:
            for leaf in choices[name].leaves:
                leaves.setdefault(leaf.label, leaf)
        bad: list[str] = []
        combinations = itertools.islice(itertools.product(*(leaf.values for leaf in leaves.values())), MAX_COMBINATIONS)
        for combination in combinations:
            sample = dict(zip(leaves, combination))
            value = {n: choices[n].value(sample) if n in choices else arguments[n] for n in ("in_channels", "out_channels", "groups")}
            if value["in_channels"] % value["groups"] or value["out_channels"] % value["groups"]:
                bad.append(", ".join(f"{label}={v!r}" for label, v in sample.items()))
        if bad:
            shown = "; ".join(bad[:5]) + (f"; ... ({len(bad) - 5} more)" if len(bad) > 5 else "")
            raise StrategyError(
                f"{self.where}: in_channels and out_channels must be multiples of groups, but "
                f"these decisions make a conv that cannot exist: {shown}. Make the channel choices multiples of every "
                "groups value (e.g. out_channels = groups * a choice of multipliers)"
            )

    def _kernel_mask_padding(self, arguments: dict[str, Any], choices: dict[str, ArgumentChoice]) -> tuple[int, int] | None:
        """The padding of the super kernel when kernel sizes can be mixed by masks, else ``None``."""
        if "kernel_size" not in choices or "dilation" in choices:
            return None
        dilation = _pair(arguments["dilation"])
        pairs = ArgumentChoice("kernel_size/padding", (arguments["kernel_size"], arguments["padding"]), "conv")
        super_padding: set[tuple[int, int]] = set()
        for kernel, padding in pairs.values:
            kernel = _pair(kernel)
            effective = _effective_padding(padding, kernel, dilation)
            if effective is None:
                return None
            implied = []
            for dim in range(2):
                offset = self.max_kernel[dim] - kernel[dim]
                if offset % 2:
                    return None
                implied.append(effective[dim] + dilation[dim] * offset // 2)
            super_padding.add((implied[0], implied[1]))
        return super_padding.pop() if len(super_padding) == 1 else None

    def maskable_arguments(self) -> set[str]:
        result: set[str] = set()
        if "groups" not in self.mutable_arguments and self.arguments["groups"] == 1:
            result |= {"in_channels", "out_channels"}
        if self.super_padding is not None:
            result |= {"kernel_size", "padding"}
        return result

    def mask_row(self, name: str, value: Any) -> torch.Tensor:
        if name == "in_channels":
            return (torch.arange(self.max_in_channels) < value).float()
        if name == "out_channels":
            return (torch.arange(self.out_channels) < value).float()
        if name == "kernel_size":
            mask = torch.zeros(self.max_kernel)
            top, left, kh, kw = self._kernel_box(_pair(value))
            mask[top : top + kh, left : left + kw] = 1.0
            return mask.reshape(-1)
        return torch.ones(1)  # padding: implied by the kernel size

    def _kernel_box(self, kernel: tuple[int, int]) -> tuple[int, int, int, int]:
        return (self.max_kernel[0] - kernel[0]) // 2, (self.max_kernel[1] - kernel[1]) // 2, kernel[0], kernel[1]

    def _conv(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, args: dict[str, Any], padding: Any) -> torch.Tensor:
        stride, dilation, groups = _pair(args["stride"]), _pair(args["dilation"]), args["groups"]
        if self.conv_padding_mode != "zeros":
            kernel = (weight.shape[2], weight.shape[3])
            effective = _effective_padding(padding, kernel, dilation)
            if effective is None:
                raise StrategyError(
                    f"{self.where}: padding={padding!r} is not symmetric for kernel {kernel}, which padding_mode="
                    f"{self.conv_padding_mode!r} needs; use explicit int padding"
                )
            pad = (effective[1], effective[1], effective[0], effective[0])
            return F.conv2d(F.pad(x, pad, mode=self.conv_padding_mode), weight, bias, stride, 0, dilation, groups)
        return F.conv2d(x, weight, bias, stride, padding if isinstance(padding, str) else _pair(padding), dilation, groups)

    def _sliced_kernel(self, weight: torch.Tensor, kernel: Any) -> torch.Tensor:
        top, left, kh, kw = self._kernel_box(_pair(kernel))
        if (kh, kw) == self.max_kernel:
            return weight
        return weight[:, :, top : top + kh, left : left + kw]

    def sliced_state(self, args: dict[str, Any], shapes: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        state = super().sliced_state(args, {name: t for name, t in shapes.items() if name != "weight"})
        in_channels, out_channels, groups = args["in_channels"], args["out_channels"], args["groups"]
        state["weight"] = self._sliced_kernel(self.weight[:out_channels, : in_channels // groups], args["kernel_size"]).clone()
        return state

    def forward_with_args(self, args: dict[str, Any], x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        in_channels, out_channels, groups = args["in_channels"], args["out_channels"], args["groups"]
        weight = self._sliced_kernel(self.weight[:out_channels, : in_channels // groups], args["kernel_size"])
        bias = self.bias[:out_channels] if self.bias is not None else None
        self.check_input_width(x.shape[1], self.max_in_channels, "in_channels", "channels")
        if x.shape[1] > in_channels:
            x = slice_dim(x, 1, in_channels)
        return self._conv(x, weight, bias, args, args["padding"])

    def forward_weighted(self, args: dict[str, Any], x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        weight, bias = self.weight, self.bias
        groups = args["groups"]
        self.check_input_width(x.shape[1], self.max_in_channels, "in_channels", "channels")
        if "in_channels" in self.maskable:
            x = pad_dim(x, 1, self.max_in_channels)
            weight = weight * self.mask("in_channels", args["in_channels"]).view(1, -1, 1, 1)
        else:
            in_channels = args["in_channels"]
            x = slice_dim(x, 1, in_channels) if x.shape[1] > in_channels else pad_dim(x, 1, in_channels)
            weight = slice_dim(weight, 1, in_channels // groups)
        out_channels = None
        if "out_channels" in self.maskable:
            mask = self.mask("out_channels", args["out_channels"])
            weight = weight * mask.view(-1, 1, 1, 1)
            bias = bias * mask if bias is not None else None
        else:
            out_channels = args["out_channels"]
            weight = weight[:out_channels]
            bias = bias[:out_channels] if bias is not None else None
        if "kernel_size" in self.maskable:
            weight = weight * self.mask("kernel_size", args["kernel_size"]).view(self.max_kernel)
            padding: Any = self.super_padding
        else:
            weight = self._sliced_kernel(weight, args["kernel_size"])
            padding = args["padding"]
        y = self._conv(x, weight, bias, args, padding)
        if out_channels is not None:
            y = pad_dim(y, 1, self.out_channels)
        return y


# --- BatchNorm2d -------------------------------------------------------------------------------------


class MixedBatchNorm2d(MixedOperation, nn.BatchNorm2d):
    """``nn.BatchNorm2d`` with a choice of ``num_features`` (prefix of weight, bias and running statistics).

    ``eps`` and ``momentum`` may be choices for sampling strategies. Differentiable: the super
    layer normalizes every channel (channels are independent) and the output is masked.
    """

    bound_type = nn.BatchNorm2d
    argument_list = ("num_features", "eps", "momentum")
    sampling_only = frozenset({"eps", "momentum"})

    def super_init_argument(self, name: str, choice: ArgumentChoice) -> Any:
        if name == "num_features":
            return max(choice.values)
        return choice.values[0]

    def maskable_arguments(self) -> set[str]:
        return {"num_features"}

    def mask_row(self, name: str, value: Any) -> torch.Tensor:
        return (torch.arange(self.num_features) < value).float()

    def forward_with_args(self, args: dict[str, Any], x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        features = args["num_features"]
        weight = self.weight[:features] if self.weight is not None else None
        bias = self.bias[:features] if self.bias is not None else None
        return self._normalize(args, x, weight, bias)

    def _normalize(self, args: dict[str, Any], x: torch.Tensor, weight: torch.Tensor | None,
                   bias: torch.Tensor | None) -> torch.Tensor:
        """Batch normalization of the first ``num_features`` channels of ``x`` with this affine ``weight`` / ``bias``."""
        features, momentum, eps = args["num_features"], args["momentum"], args["eps"]
        if x.shape[1] > features:
            x = slice_dim(x, 1, features)
        factor = 0.0 if momentum is None else momentum
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
            if momentum is None:
                factor = 1.0 / float(self.num_batches_tracked)
        training = self.training or (self.running_mean is None and self.running_var is None)
        track = not self.training or self.track_running_stats
        running_mean = slice_dim(self.running_mean, 0, features) if track and self.running_mean is not None else None
        running_var = slice_dim(self.running_var, 0, features) if track and self.running_var is not None else None
        return F.batch_norm(x, running_mean, running_var, weight, bias, training, factor, eps)

    def forward_weighted(self, args: dict[str, Any], x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        x = pad_dim(x, 1, self.num_features)
        mask = self.mask("num_features", args["num_features"])
        full = {**args, "num_features": self.num_features}
        if self.weight is not None and self.bias is not None:
            # mask * (x_hat * weight + bias) == x_hat * (weight * mask) + bias * mask: the mask goes into the
            # affine parameters (vectors), not onto the output (a full-size multiplication, and its backward).
            return self._normalize(full, x, self.weight * mask, self.bias * mask)
        return self.forward_with_args(full, x) * mask[None, :, None, None]


# --- LayerNorm ---------------------------------------------------------------------------------------


def _shape(value: Any) -> tuple[int, ...]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,)


class MixedLayerNorm(MixedOperation, nn.LayerNorm):
    """``nn.LayerNorm`` with choices of ``normalized_shape`` (prefix of each trailing dimension) and ``eps``.

    Differentiable: the statistics depend on the shape, so every shape runs on its slice of the
    input and the outputs, zero-padded to the super shape, are mixed.
    """

    bound_type = nn.LayerNorm
    argument_list = ("normalized_shape", "eps")

    def super_init_argument(self, name: str, choice: ArgumentChoice) -> Any:
        if name == "normalized_shape":
            shapes = [_shape(v) for v in choice.values]
            if len({len(s) for s in shapes}) != 1:
                raise StrategyError(f"normalized_shape choices {choice.values} differ in length; they must not")
            return tuple(max(s[i] for s in shapes) for i in range(len(shapes[0])))
        return choice.values[0]

    def _input_slice(self, x: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
        for offset, size in enumerate(shape):
            dim = x.dim() - len(shape) + offset
            x = slice_dim(x, dim, size) if x.shape[dim] > size else pad_dim(x, dim, size)
        return x

    def forward_with_args(self, args: dict[str, Any], x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        shape = _shape(args["normalized_shape"])
        index = tuple(slice(0, n) for n in shape)
        weight = self.weight[index] if self.weight is not None else None
        bias = self.bias[index] if self.bias is not None else None
        return F.layer_norm(self._input_slice(x, shape), shape, weight, bias, args["eps"])

    def forward_weighted(self, args: dict[str, Any], x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        y = self.forward_with_args(args, x)
        super_shape = tuple(self.normalized_shape)
        for offset, size in enumerate(super_shape):
            y = pad_dim(y, y.dim() - len(super_shape) + offset, size)
        return y


# --- MultiheadAttention ------------------------------------------------------------------------------


class MixedMultiheadAttention(MixedOperation, nn.MultiheadAttention):
    """``nn.MultiheadAttention`` with choices of ``embed_dim``, ``num_heads``, ``kdim``, ``vdim`` and ``dropout``.

    The query, key and value projections use the first ``embed_dim`` rows of each projection of the
    super layer and its first ``embed_dim`` (query), ``kdim`` (key) and ``vdim`` (value) columns; the
    output projection its top-left square. Every ``embed_dim`` must be divisible by every
    ``num_heads`` it is used with. Without ``kdim`` / ``vdim`` the key and value have ``embed_dim``
    features; with them (fixed or choices), sizes of their own. Differentiable: every combination runs and the outputs (zero-padded to the super
    ``embed_dim``) are mixed.
    """

    bound_type = nn.MultiheadAttention
    argument_list = ("embed_dim", "num_heads", "kdim", "vdim", "dropout")

    def init_layer(self, super_arguments: dict[str, Any], arguments: dict[str, Any], choices: dict[str, ArgumentChoice]) -> None:
        pairs = ArgumentChoice("embed_dim/num_heads", (arguments["embed_dim"], arguments["num_heads"]), "attention") \
            if ("embed_dim" in choices or "num_heads" in choices) else None
        if pairs is not None:
            bad = [(e, h) for e, h in pairs.values if e % h]
            if bad:
                raise StrategyError(f"{self.where}: embed_dim is not divisible by num_heads for {bad}; every combination must divide")
        kwargs = dict(super_arguments)
        kwargs["num_heads"] = 1
        if "dropout" in choices:
            kwargs["dropout"] = 0.0
        nn.MultiheadAttention.__init__(self, **kwargs)

    def super_init_argument(self, name: str, choice: ArgumentChoice) -> Any:
        if name in ("embed_dim", "kdim", "vdim"):
            return max(choice.values)
        return choice.values[0]

    def _sizes(self, args: dict[str, Any]) -> tuple[int, int, int]:
        embed = args["embed_dim"]
        return embed, args.get("kdim") or embed, args.get("vdim") or embed

    def _projections(self, args: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """The query, key and value projection weights and the packed bias for ``args``, sliced from the
        super layer (whether it packs its projections or not)."""
        embed, kdim, vdim = self._sizes(args)
        full = self.embed_dim
        if self._qkv_same_embed_dim:
            q, k, v = (self.in_proj_weight[i * full : (i + 1) * full] for i in range(3))
        else:
            q, k, v = self.q_proj_weight, self.k_proj_weight, self.v_proj_weight
        bias = None
        if self.in_proj_bias is not None:
            bias = torch.cat([self.in_proj_bias[i * full : i * full + embed] for i in range(3)])
        return q[:embed, :embed], k[:embed, :kdim], v[:embed, :vdim], bias

    def sliced_state(self, args: dict[str, Any], shapes: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        names = ("in_proj_weight", "q_proj_weight", "k_proj_weight", "v_proj_weight", "in_proj_bias")
        state = super().sliced_state(args, {n: t for n, t in shapes.items() if n not in names})
        q, k, v, bias = self._projections(args)
        if "in_proj_weight" in shapes:  # the plain layer packs equal sizes into one projection
            state["in_proj_weight"] = torch.cat([q, k, v]).clone()
        else:
            state.update(q_proj_weight=q.clone(), k_proj_weight=k.clone(), v_proj_weight=v.clone())
        if bias is not None and "in_proj_bias" in shapes:
            state["in_proj_bias"] = bias.clone()
        return state

    def forward_with_args(  # type: ignore[override]
        self,
        args: dict[str, Any],
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        key_padding_mask: torch.Tensor | None = None,
        need_weights: bool = True,
        attn_mask: torch.Tensor | None = None,
        average_attn_weights: bool = True,
        is_causal: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        embed, kdim, vdim = self._sizes(args)
        heads, dropout = args["num_heads"], args["dropout"]
        if self.batch_first:
            query, key, value = (t.transpose(1, 0) for t in (query, key, value))

        def fit(t: torch.Tensor, size: int) -> torch.Tensor:
            return slice_dim(t, -1, size) if t.shape[-1] > size else pad_dim(t, -1, size)

        query, key, value = fit(query, embed), fit(key, kdim), fit(value, vdim)
        q_weight, k_weight, v_weight, in_bias = self._projections(args)
        bias_k = self.bias_k[..., :embed] if self.bias_k is not None else None
        bias_v = self.bias_v[..., :embed] if self.bias_v is not None else None
        out_bias = self.out_proj.bias[:embed] if self.out_proj.bias is not None else None
        output, weights = F.multi_head_attention_forward(
            query, key, value, embed, heads, None, in_bias, bias_k, bias_v, self.add_zero_attn, dropout,
            self.out_proj.weight[:embed, :embed], out_bias, training=self.training, key_padding_mask=key_padding_mask,
            need_weights=need_weights, attn_mask=attn_mask, average_attn_weights=average_attn_weights,
            is_causal=is_causal, use_separate_proj_weight=True, q_proj_weight=q_weight, k_proj_weight=k_weight,
            v_proj_weight=v_weight,
        )
        if self.batch_first:
            output = output.transpose(1, 0)
        return output, weights

    def forward_weighted(self, args: dict[str, Any], *inputs: Any, **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor | None]:  # type: ignore[override]
        output, weights = self.forward_with_args(args, *inputs, **kwargs)
        return pad_dim(output, -1, self.embed_dim), weights


#: The layer each built-in mixed operation replaces.
NATIVE_MIXED_OPERATIONS: dict[type[nn.Module], type[MixedOperation]] = {
    op.bound_type: op for op in (MixedConv2d, MixedLinear, MixedBatchNorm2d, MixedLayerNorm, MixedMultiheadAttention)
}


def mixed_operation_hook(module: nn.Module, name: str, memo: dict[str, Any], mutate_kwargs: dict[str, Any]) -> Any:
    """Mutation hook: a ``Mutable<Layer>`` with choices becomes the mixed operation of its layer, if there is one."""
    if not isinstance(module, ParametrizedModule) or not module.mutables:
        return None
    op = NATIVE_MIXED_OPERATIONS.get(_wrapped(module))  # type: ignore[arg-type]
    if op is None:
        return None
    return op(module, mutate_kwargs["mode"], mutate_kwargs.get("arch"), _where(module, name))
