"""What every supernet module shares: :class:`BaseSuperNetModule`, :class:`ArchParameters`, mixing outputs.

A one-shot strategy turns each primitive of a model space (``LayerChoice``, ``InputChoice``,
``Repeat``, ``Cell``, a ``Mutable<Layer>`` with choices in its arguments) into a supernet module.
Supernet modules come in three kinds, one per family of algorithms:

* *differentiable* (DARTS, GumbelDARTS): every path runs and the outputs are mixed with weights
  computed from architecture parameters, one logit vector per decision label (:class:`ArchParameters`);
* *path sampling* (RandomOneShot, ENAS): one path runs, the one sampled by the strategy
  (:meth:`BaseSuperNetModule.resample`);
* *proxyless* (Proxyless): one path, sampled from the architecture parameters, runs; the gradient
  of the architecture parameters comes from binary gates, computed in the path's own backward.

Modules that hold the same label share its architecture parameters and its sampled value: the same
label is the same decision.

Every supernet module is a :class:`~nascore.nn.MutableModule`: a supernet is still a space of the
same decisions (``supernet.simplify()``, ``supernet.contains(sample)``), and freezing it with a
sample (``supernet.freeze(sample)``, or one module's ``freeze``) gives the plain PyTorch model of that
architecture with the supernet's trained weights: each module's :meth:`~BaseSuperNetModule.frozen`
returns its chosen candidate, or for a mixed operation the plain layer with its slice of the super
weights.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import torch
import torch.nn as nn
import torch.nn.functional as F

from nascore.errors import StrategyError
from nascore.nn import MutableModule
from nascore.nn.base import module_conditional_leaves
from nascore.space import Categorical, CategoricalMultiple, LabelledMutable, Sample

__all__ = ["ArchParameters", "BaseSuperNetModule", "MODES", "weighted_sum"]

MODES = ("differentiable", "sampling", "proxyless")


class ArchParameters(nn.Module):
    """The architecture parameters of a supernet: a logit vector ``alpha`` per decision label.

    ``weights(label)`` is ``softmax(alpha)``, or a Gumbel-softmax sample at temperature :attr:`tau`
    when :attr:`gumbel` is on. Inside :meth:`scope` the weights of a label are computed once, so
    every module using the label sees the same (Gumbel) sample during one forward pass.
    """

    def __init__(self, *, init_std: float = 1e-3, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.alphas = nn.ParameterList()
        self.decisions: dict[str, LabelledMutable] = {}
        self._index: dict[str, int] = {}
        self.init_std = init_std
        self.generator = generator
        self.gumbel = False
        self.tau = 1.0
        #: Proxyless: whether binary gates compute architecture gradients in the current forward.
        self.binary_gates = False
        self._cache: dict[Any, Any] | None = None

    def register(self, decision: LabelledMutable, where: str = "") -> nn.Parameter:
        """The logits of ``decision`` (created on first use; a label always maps to one parameter)."""
        if not isinstance(decision, (Categorical, CategoricalMultiple)):
            raise StrategyError(
                f"{where or 'supernet'}: decision {decision.label!r} is a {type(decision).__name__}; one-shot "
                "strategies search categorical decisions only"
            )
        known = self.decisions.get(decision.label)
        if known is not None:
            if known is not decision and not known.equals(decision):
                raise StrategyError(
                    f"{where or 'supernet'}: label {decision.label!r} names two different decisions "
                    f"({known!r} and {decision!r}); give one of them another label"
                )
            return self.alpha(decision.label)
        size = len(decision.values)
        alpha = nn.Parameter(torch.randn(size, generator=self.generator) * self.init_std)
        self._index[decision.label] = len(self.alphas)
        self.alphas.append(alpha)
        self.decisions[decision.label] = decision
        return alpha

    def __contains__(self, label: object) -> bool:
        return label in self._index

    def labels(self) -> list[str]:
        return list(self._index)

    def alpha(self, label: str) -> nn.Parameter:
        # The list's own entry, read directly: ``ParameterList.__getitem__`` normalizes the index through a
        # string and ``getattr`` (about 2 us; weights() reads every label on every forward pass).
        return self.alphas._parameters[str(self._index[label])]  # type: ignore[return-value]

    def alpha_list(self) -> list[nn.Parameter]:
        """Every label's logits, in registration order (the entries of :attr:`alphas`)."""
        return list(self.alphas._parameters.values())  # type: ignore[arg-type]

    def probs(self, label: str) -> torch.Tensor:
        """``softmax(alpha)``: the probability of each value of ``label``."""
        return F.softmax(self.alpha(label), dim=-1)

    def weights(self, label: str) -> torch.Tensor:
        """The mixing weights of ``label`` for this forward pass (softmax, or Gumbel-softmax)."""
        cache = self._cache
        if cache is not None:
            cached = cache.get(label)
            if cached is not None:
                return cached
        alpha = self.alpha(label)
        if self.gumbel:
            weights = F.gumbel_softmax(alpha, tau=self.tau, hard=False, dim=-1)
        else:
            weights = F.softmax(alpha, dim=-1)
        if cache is not None:
            cache[label] = weights
        return weights

    def per_pass(self, key: tuple[Any, ...], compute: Callable[[], Any]) -> Any:
        """``compute()``, computed once per forward pass inside :meth:`scope`: every call with an equal ``key``
        gets the first result (outside a scope, every call computes). ``key`` must name everything the result
        depends on; modules use it to share what they derive from the weights, such as a channel mask that
        several layers of one ``width`` decision apply."""
        cache = self._cache
        if cache is None:
            return compute()
        value = cache.get(key)
        if value is None:
            value = cache[key] = compute()
        return value

    @contextlib.contextmanager
    def scope(self) -> Iterator[None]:
        """One forward pass: each label's weights are computed (and Gumbel noise drawn) once."""
        # Plain attribute writes: nn.Module.__setattr__ first checks for parameters, buffers and modules.
        outer = self._cache
        self.__dict__["_cache"] = {}
        try:
            yield
        finally:
            self.__dict__["_cache"] = outer

    @contextlib.contextmanager
    def frozen(self) -> Iterator[None]:
        """Architecture parameters take no gradient inside (a weight step needs none)."""
        alphas = self.alpha_list()
        previous = [p.requires_grad for p in alphas]
        for p in alphas:
            p.requires_grad_(False)
        try:
            yield
        finally:
            for p, flag in zip(alphas, previous):
                p.requires_grad_(flag)

    # --- export --------------------------------------------------------------------------------

    def export_probs(self) -> dict[str, dict[Any, float]]:
        """``{label: {value: probability}}`` for every label (lists of indices become tuples)."""
        result: dict[str, dict[Any, float]] = {}
        for label, decision in self.decisions.items():
            probs = self.probs(label).detach().cpu().tolist()
            result[label] = {_hashable(v): p for v, p in zip(decision.values, probs)}  # type: ignore[attr-defined]
        return result

    def export(self, label: str) -> Any:
        """The most likely value of ``label`` (for a multiple choice: the ``n_chosen`` most likely)."""
        decision = self.decisions[label]
        alpha = self.alpha(label).detach()
        if not bool(torch.isfinite(alpha).all()):
            raise StrategyError(
                f"the architecture weights of {label!r} are not finite ({alpha.tolist()}): training diverged, so "
                "no architecture can be read from them. Restrict the candidates that overflow, lower the learning "
                "rates (arc_learning_rate too) or clip gradients, and train again"
            )
        if isinstance(decision, CategoricalMultiple):
            chosen = _n_chosen(decision)
            top = sorted(torch.topk(alpha, chosen).indices.tolist())
            return [decision.values[i] for i in top]
        return decision.values[int(alpha.argmax())]  # type: ignore[attr-defined]

    def ranked(self, label: str, limit: int) -> list[tuple[float, Any]]:
        """Up to ``limit`` values of ``label``, most likely first, with their log-probabilities."""
        decision = self.decisions[label]
        logp = F.log_softmax(self.alpha(label).detach().float(), dim=-1).cpu().tolist()
        if isinstance(decision, CategoricalMultiple):
            import itertools

            chosen = _n_chosen(decision)
            combos = sorted(
                itertools.combinations(range(len(logp)), chosen), key=lambda c: -sum(logp[i] for i in c)
            )[:limit]
            return [(sum(logp[i] for i in c), [decision.values[i] for i in c]) for c in combos]
        order = sorted(range(len(logp)), key=lambda i: -logp[i])[:limit]
        return [(logp[i], decision.values[i]) for i in order]  # type: ignore[attr-defined]


def _n_chosen(decision: CategoricalMultiple) -> int:
    if decision.n_chosen is None:
        raise StrategyError(
            f"decision {decision.label!r} chooses any number of inputs (n_chosen=None); differentiable "
            "strategies need a fixed n_chosen"
        )
    return decision.n_chosen


def _hashable(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


class BaseSuperNetModule(MutableModule):
    """A module of a supernet: it stands for one or more decisions of the model space.

    Subclasses implement :meth:`search_space_spec` (the decisions) and :meth:`frozen` (the plain
    module for a sample, with the supernet's weights), and as the algorithm needs:
    :meth:`resample` (choose the path to run), :meth:`export` (the best value of each decision) and
    :meth:`export_probs`. The classmethod :meth:`mutate` is a mutation hook that builds the module
    from a primitive of the space (see :mod:`nascore_strategies.oneshot.hooks`).
    """

    #: Which algorithm family the module belongs to (one of :data:`MODES`).
    mode: ClassVar[str] = ""

    def search_space_spec(self) -> dict[str, LabelledMutable]:
        """The decisions this module stands for, ``{label: decision}``."""
        raise NotImplementedError

    def leaf_mutables(self) -> Iterator[LabelledMutable]:
        for leaf, _ in self.conditional_leaves():
            if isinstance(leaf, LabelledMutable):
                yield leaf

    def conditional_leaves(self) -> Iterator[tuple[Any, tuple[Any, ...]]]:
        """This module's decisions (always active), then those inside its children.

        Modules with branches (a layer choice's candidates, a repeat's blocks) say when each is active.
        """
        for decision in self.search_space_spec().values():
            yield decision, ()
        for child in self.children():
            yield from module_conditional_leaves(child)

    def frozen(self, sample: Sample) -> nn.Module:
        """The plain module this one stands for under ``sample``, with the supernet's weights (no supernet
        module left inside). Called on a copy: it may hand out its own parts."""
        raise NotImplementedError(
            f"{type(self).__name__} cannot be frozen into a plain module: implement frozen(sample) to export "
            "sub-nets with inherited weights"
        )

    def resample(self, memo: Sample) -> Sample:
        """Choose the path to run: values in ``memo`` are used as they are, others are chosen here.

        Returns this module's values. Differentiable modules run every path and return ``{}``.
        """
        return {}

    def export(self, memo: Sample) -> Sample:
        """The best value of each decision not already in ``memo``."""
        raise NotImplementedError

    def export_probs(self, memo: Sample) -> dict[str, dict[Any, float]]:
        """``{label: {value: probability}}`` for the decisions not in ``memo``."""
        raise NotImplementedError(f"{type(self).__name__} has no probabilities to export")

    @classmethod
    def mutate(cls, module: nn.Module, name: str, memo: dict[str, Any], mutate_kwargs: dict[str, Any]) -> Any:
        """Mutation hook: return a supernet module replacing ``module``, or ``None`` to leave it."""
        return None


class ArchModuleMixin:
    """Modules whose decisions have architecture parameters in an :class:`ArchParameters`.

    They are built with the strategy's ``ArchParameters`` (``mutate_kwargs["arch"]``), register
    their decisions in it, and export from it.
    """

    arch: ArchParameters
    mode: str

    @classmethod
    def create(cls, module: nn.Module, where: str, mutate_kwargs: dict[str, Any]) -> Any:
        arch = mutate_kwargs.get("arch")
        if not isinstance(arch, ArchParameters):
            raise StrategyError(f"{cls.mode} supernet modules need mutate_kwargs['arch'] (an ArchParameters)")
        return cls(module, arch, where)  # type: ignore[call-arg]

    def bind_arch(self, arch: ArchParameters, where: str) -> None:
        """Keep ``arch`` and register every decision of this module in it."""
        attach(self, "arch", arch)  # type: ignore[arg-type]
        for decision in self.arch_decisions():  # type: ignore[attr-defined]
            arch.register(decision, where)

    def export(self, memo: Sample) -> Sample:
        return {label: self.arch.export(label) for label in self.search_space_spec() if label not in memo}  # type: ignore[attr-defined]

    def export_probs(self, memo: Sample) -> dict[str, dict[Any, float]]:
        probs = self.arch.export_probs()
        return {label: probs[label] for label in self.search_space_spec() if label not in memo}  # type: ignore[attr-defined]


def attach(module: nn.Module, name: str, obj: Any) -> None:
    """Keep a reference to ``obj`` on ``module`` without registering it as a submodule or parameter.

    Supernet modules refer to the shared :class:`ArchParameters`, which belongs to the one-shot
    Lightning module; registering it in every supernet module would duplicate it in state dicts.
    """
    module.__dict__[name] = obj


def weighted_sum(outputs: list[Any], weights: torch.Tensor | list[torch.Tensor], where: str) -> Any:
    """``sum(w * out)``; outputs may be tensors, numbers (the sum is a tensor), or tuples / lists / dicts
    of them, nested (``None`` entries stay ``None``).

    :raises StrategyError: the outputs differ in shape, so they cannot be mixed; the message names ``where``.
    """
    first = outputs[0]
    if isinstance(first, torch.Tensor):
        shape = first.shape
        if any(out.shape != shape for out in outputs):
            shapes = {tuple(out.shape) for out in outputs}
            raise StrategyError(
                f"{where}: the candidates give outputs of different shapes {sorted(shapes)}; a differentiable "
                "strategy adds the outputs up, so they must have the same shape. Make every candidate produce "
                "the same shape, or use a sampling strategy (random-oneshot, enas, proxyless)"
            )
        w = weights if isinstance(weights, torch.Tensor) else torch.stack(list(weights))
        dtype, device = first.dtype, first.device
        if w.dtype != dtype:
            w = w.to(dtype)
        if all(out.dtype == dtype and out.device == device and out.layout == torch.strided for out in outputs):
            return _WeightedSum.apply(w, *outputs)
        mixed = first * w[0]
        for i in range(1, len(outputs)):
            mixed = torch.addcmul(mixed, outputs[i], w[i])
        return mixed
    if isinstance(first, (tuple, list)):
        if len({len(out) for out in outputs}) != 1:
            raise StrategyError(f"{where}: the candidates give sequences of different lengths; they cannot be mixed")
        items = [weighted_sum([out[i] for out in outputs], weights, where) if first[i] is not None else None
                 for i in range(len(first))]
        return type(first)(items)
    if isinstance(first, dict):
        if any(set(out) != set(first) for out in outputs):
            raise StrategyError(f"{where}: the candidates give dicts with different keys; they cannot be mixed")
        return type(first)((key, weighted_sum([out[key] for out in outputs], weights, where)) for key in first)
    if isinstance(first, (int, float)) and not isinstance(first, bool):
        w = weights if isinstance(weights, torch.Tensor) else torch.stack(list(weights))
        return sum(w[i] * float(out) for i, out in enumerate(outputs))
    if first is None:
        return None
    raise StrategyError(
        f"{where}: a differentiable strategy can mix tensors, numbers and tuples / lists / dicts of them, not "
        f"{type(first).__name__}"
    )



class _WeightedSum(torch.autograd.Function):
    """``sum_i w[i] * outputs[i]`` for tensors of one shape, dtype and device, as one autograd node.

    Against a chain of ``addcmul`` (one node, one new tensor and one select of ``w`` per candidate) it
    accumulates in place, keeps the outputs for backward only when ``w`` takes a gradient (an architecture
    step; a weight step keeps none), and computes ``d/dw`` with no product tensor: one dot product per
    candidate, or for small outputs one matrix-vector product over them stacked (:func:`_dots`). The
    outputs' memory format (channels_last) is preserved. The backward pass is made of differentiable
    operations, so higher-order gradients work.
    """

    @staticmethod
    def forward(ctx: Any, w: torch.Tensor, *outputs: torch.Tensor) -> torch.Tensor:
        scales = w.unbind()  # one view per weight, in one call
        mixed = outputs[0] * scales[0]
        for i in range(1, len(outputs)):
            mixed.addcmul_(outputs[i], scales[i])
        ctx.count = len(outputs)
        if ctx.needs_input_grad[0]:
            ctx.save_for_backward(w, *outputs)
        else:
            ctx.save_for_backward(w)
        return mixed

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        w, *outputs = ctx.saved_tensors
        grad_w = _dots(grad, outputs) if ctx.needs_input_grad[0] else None
        needed = ctx.needs_input_grad[1:]
        scales = w.unbind() if any(needed) else ()
        grads = [grad * scales[i] if needed[i] else None for i in range(ctx.count)]
        return (grad_w, *grads)


#: Up to this many bytes of outputs, :func:`_dots` stacks them and takes one matrix-vector product: for small
#: tensors the calls cost more than the arithmetic, and the copy stays in cache (6 outputs of 16x8x8x8: 21 us
#: against 33). Beyond it, the copy costs more than the calls it saves (6 of 16x8x16x16: even; 6 of 64x16x16x16:
#: 648 us against 169).
_STACKED_BYTES = 256 * 1024


def _dots(grad: torch.Tensor, outputs: list[torch.Tensor]) -> torch.Tensor:
    """``[(grad * out).sum() for out in outputs]`` as one vector, without product tensors where the layouts allow."""
    if not (grad.dtype in (torch.float32, torch.float64) and _dense(grad)
            and all(out.stride() == grad.stride() and out.shape == grad.shape for out in outputs)):
        return torch.stack([(grad * out).sum() for out in outputs])
    n = grad.numel()
    flat = grad.as_strided((n,), (1,))  # the elements in memory order, as every output has them
    if n * len(outputs) * grad.element_size() <= _STACKED_BYTES:
        stacked = torch.stack(outputs)
        if stacked.stride() == (n, *grad.stride()):  # one block per output, each in the outputs' memory order
            return torch.mv(stacked.as_strided((len(outputs), n), (n, 1)), flat)
    return torch.stack([torch.dot(flat, out.as_strided((n,), (1,))) for out in outputs])


def _dense(t: torch.Tensor) -> bool:
    """Whether ``t``'s elements fill its memory with no gaps or overlaps (contiguous in some standard layout)."""
    if t.is_contiguous():
        return True
    if t.dim() == 4:
        return t.is_contiguous(memory_format=torch.channels_last)
    if t.dim() == 5:
        return t.is_contiguous(memory_format=torch.channels_last_3d)
    return False
